"""Video files <-> `Signal` through the ffmpeg binary that ships with imageio-ffmpeg.

Frames are decoded to 8-bit RGB (any pixel format, alpha dropped) and stacked into a
(T, H, W, 3) grid on the 0..255 scale, like images; `Signal.rate` is the frame rate.
--frames keeps the first N frames and --max-side downscales (ffmpeg's area filter) so
that the longest side is at most that many pixels; both bound the work of fitting.

Output: H.264 (libx264, yuv420p, CRF 18) in .mp4/.mov/.mkv, or, for a path without a
suffix, a folder of PNG frames (frame_000000.png, ...). yuv420p needs even sizes, so an
odd width or height is padded by repeating the last column or row: nothing decoded is
lost, and `ffmpeg -vf crop=W:H:0:0` takes it back off.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from inrcodec.atomic import atomic_output, ensure_writable
from inrcodec.errors import InrcodecError, UsageError, one_line
from inrcodec.media.base import MediumHandler, OutputFormat, Signal
from inrcodec.media.helpers import (
    check_input_file,
    known_rate,
    positive,
    refuse_options,
    retimed_length,
)
from inrcodec.media.image import image_to_uint, pixel_rate_metrics, spatial_shape
from inrcodec.media.registry import register_medium
from inrcodec.metrics import psnr, ssim

# A float32 RGB copy of 2**26 voxels is 768 MiB, and fitting holds coordinates and
# targets of the same size; --frames and --max-side pick a smaller part.
MAX_VOXELS = 2**26
DEFAULT_FPS = 25.0  # when the file gives none
_H264_SUFFIXES = {".mp4", ".mov", ".mkv"}
_H264_OPTIONS = ["-crf", "18", "-preset", "medium"]  # the output is lossy already: keep it

_LOG = logging.getLogger("imageio_ffmpeg")

SizeFor = Callable[[int, int], tuple[int, int]]  # source (W, H) -> frames to decode (W, H)


def _check_whole(value: int, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{flag} must be a positive whole number, got {value!r}")


def fit_within(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(W, H) scaled down, aspect kept, so that the longest side is at most `max_side`."""
    longest = max(width, height)
    if max_side is None or longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _ffmpeg_reason(exc: Exception) -> str:
    """What ffmpeg said last: its last "[component] message" line (else its last line),
    without the component and the "Error opening input:" style prefixes."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    tagged = [line.split("]", 1)[-1] for line in lines if line.startswith("[")]
    last = (tagged or lines or [type(exc).__name__])[-1]
    return one_line(last.rsplit(": ", 1)[-1].strip())


def _start(path: Path, frames: int | None, size: tuple[int, int] | None) -> tuple[dict, Iterator]:
    """Start decoding; returns ffmpeg's stream facts and the generator of raw RGB frames."""
    # Every decoded frame once: no frames duplicated or dropped to fit a constant rate.
    params = ["-fps_mode", "passthrough"]
    params += [] if frames is None else ["-frames:v", str(frames)]
    if size is not None:
        params += ["-vf", f"scale={size[0]}:{size[1]}:flags=area"]
    level = _LOG.level
    _LOG.setLevel(logging.ERROR)  # it warns when the size differs from the source's
    try:
        generator = imageio_ffmpeg.read_frames(str(path), output_params=params)
        meta = next(generator)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise InrcodecError(f"{path}: not a readable video ({_ffmpeg_reason(exc)})") from exc
    finally:
        _LOG.setLevel(level)
    return meta, generator


def _read_video(path: Path, frames: int | None, size_for: SizeFor) -> Signal:
    """Decode up to `frames` frames at the size `size_for` picks from the source size."""
    check_input_file(path, "a video file")
    meta, generator = _start(path, frames, None)
    stack: list[np.ndarray] = []
    try:
        width, height = meta["size"]  # after ffmpeg's automatic rotation
        target = size_for(width, height)
        if target != (width, height):
            generator.close()
            meta, generator = _start(path, frames, target)
            width, height = meta["size"]
        for buffer in generator:
            stack.append(np.frombuffer(buffer, np.uint8).reshape(height, width, 3))
            if len(stack) * width * height > MAX_VOXELS:
                raise InrcodecError(
                    f"{path}: {len(stack)} frames of {width}x{height} are over "
                    f"{MAX_VOXELS:,} pixels; pick a part with --frames or --max-side"
                )
    except (OSError, RuntimeError, ValueError) as exc:
        raise InrcodecError(f"{path}: truncated or corrupted video ({one_line(exc)})") from exc
    finally:
        generator.close()
    if not stack:
        raise InrcodecError(f"{path}: no video frames could be decoded")
    fps = float(meta.get("fps") or 0)
    _check_complete(path, len(stack), frames, meta)
    return Signal(
        medium="video",
        values=np.stack(stack).astype(np.float32),
        channels="RGB",
        value_range=(0.0, 255.0),
        bit_depth=8,
        rate=fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS,
        source=str(path),
    )


def _check_complete(path: Path, decoded: int, wanted: int | None, meta: dict) -> None:
    """Refuse a file that ends early: an MP4 cut short after its index decodes its first
    frames without an error from the reader. Only when fewer frames came than the file's
    duration promises (its audio may outlast the video) is the video stream decoded again,
    to ask ffmpeg whether it is damaged."""
    duration, fps = float(meta.get("duration") or 0), float(meta.get("fps") or 0)
    promised = round(duration * fps) if math.isfinite(duration * fps) else 0
    if decoded >= min(wanted or promised, promised) - 1:
        return
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path)]
    command += ["-map", "0:v:0", "-f", "null", "-"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    if errors or result.returncode:
        reason = _ffmpeg_reason(RuntimeError("\n".join(errors[:1]) or "ffmpeg failed"))
        raise InrcodecError(
            f"{path}: truncated or corrupted video ({decoded} of {promised} frames: {reason})"
        )


def read_video(path: str | Path, frames: int | None = None, max_side: int | None = None) -> Signal:
    """Read the first `frames` frames (all by default) as float32 (T, H, W, 3) on 0..255,
    downscaled so that the longest side is at most `max_side`."""
    if frames is not None:
        _check_whole(frames, "--frames")
    if max_side is not None:
        _check_whole(max_side, "--max-side")
    return _read_video(Path(path), frames, lambda w, h: fit_within(w, h, max_side))


def _even(values: np.ndarray) -> np.ndarray:
    """Pad (T, H, W, C) to even H and W by repeating the last row/column (yuv420p)."""
    height, width = values.shape[1:3]
    return np.pad(values, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def _write_h264(path: Path, values: np.ndarray, fps: float, force: bool) -> None:
    frames = _even(values)
    height, width = frames.shape[1:3]
    faststart = ["-movflags", "+faststart"] if path.suffix.lower() != ".mkv" else []
    with atomic_output(path, force) as tmp:
        try:
            writer = imageio_ffmpeg.write_frames(
                str(tmp),
                (width, height),
                fps=fps,
                codec="libx264",
                pix_fmt_out="yuv420p",
                quality=None,
                macro_block_size=1,
                ffmpeg_log_level="error",
                output_params=_H264_OPTIONS + faststart,
            )
            writer.send(None)
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
            writer.close()
        except (OSError, RuntimeError) as exc:
            raise InrcodecError(f"{path}: cannot write video ({_ffmpeg_reason(exc)})") from exc


def _write_png_frames(path: Path, values: np.ndarray, force: bool) -> None:
    """Write frame_000000.png, ... into a new folder next to `path`, then rename it into
    place, so that a failure never leaves a partial folder."""
    ensure_writable(path, force)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0700
        for index, frame in enumerate(values):
            Image.fromarray(frame).save(tmp / f"frame_{index:06d}.png", format="PNG")
        if path.exists():  # a file, replaced under --force (a folder is refused above)
            path.unlink()
        os.rename(tmp, path)
    except OSError as exc:
        raise InrcodecError(f"{path}: cannot write frames ({exc.strerror or exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_video(path: str | Path, values: np.ndarray, fps: float, force: bool = False) -> None:
    """Write (T, H, W, 3) uint8 frames: H.264 by suffix, or PNG frames for no suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == "":
        _write_png_frames(path, values, force)
    elif suffix in _H264_SUFFIXES:
        _write_h264(path, values, fps, force)
    else:
        known = ", ".join(sorted(_H264_SUFFIXES))
        raise InrcodecError(
            f"{path}: unknown video extension (use {known}, or no suffix for PNG frames)"
        )


@register_medium
class VideoHandler(MediumHandler):
    medium = "video"
    extensions = frozenset({".mp4", ".mov", ".mkv", ".webm", ".gif"})
    output_suffix = ".mp4"

    def read(self, path: Path, **selection) -> Signal:
        refuse_options(selection, {"frames", "max_side"}, "video", f"{path}: ")
        return read_video(path, **selection)

    def read_reference(
        self, path: Path, shape: tuple[int, ...], rate: float | None, selection: dict
    ) -> Signal:
        """The first T frames of `path`, scaled to the model's H x W as encode scaled them
        (so eval of a --frames/--max-side encode compares with exactly what was fitted).

        Refused: a source that is smaller than the model, of another aspect ratio, shorter,
        or at another frame rate, since any of these means a different video.
        """
        frames, height, width = shape
        fps = known_rate(rate, "frame rate")

        def size_for(w: int, h: int) -> tuple[int, int]:
            if (w, h) != (width, height) and fit_within(w, h, max(width, height)) != (
                width,
                height,
            ):
                raise InrcodecError(
                    f"{path}: {w}x{h} frames do not scale to the model's {width}x{height}; "
                    "evaluate against the video that was encoded"
                )
            return width, height

        reference = _read_video(path, frames, size_for)
        found = reference.grid_shape[0]
        if found < frames:
            raise InrcodecError(
                f"{path}: has {found} frames, the model holds {frames}; "
                "evaluate against the video that was encoded"
            )
        if not math.isclose(known_rate(reference.rate, "frame rate"), fps, rel_tol=0.01):
            raise InrcodecError(
                f"{path}: is {reference.rate:g} fps, the model holds {fps:g} fps; "
                "evaluate against the video that was encoded"
            )
        return reference

    def output_shape(
        self, shape: tuple[int, ...], rate: float | None, request: dict
    ) -> tuple[tuple[int, ...], float | None]:
        refuse_options(request, {"scale", "size", "fps"}, "video")
        fps = known_rate(rate, "frame rate")
        height, width = spatial_shape(shape, request)
        if "fps" not in request:
            return (shape[0], height, width), fps
        new_fps = positive(request["fps"], "--fps")
        return (retimed_length(shape[0], fps, new_fps), height, width), new_fps

    def output_dtype(self, bit_depth: int) -> np.dtype:
        return np.dtype(np.uint8)

    def to_output(self, raw: np.ndarray, bit_depth: int) -> np.ndarray:
        return image_to_uint(raw, 8)

    def write(
        self, path: Path, values: np.ndarray, output_format: OutputFormat, *, force: bool
    ) -> None:
        write_video(path, values, known_rate(output_format.rate, "frame rate"), force)

    def metrics(self, reference: Signal, decoded: np.ndarray) -> dict[str, float | list[float]]:
        """Per-frame PSNR (peak 255) and SSIM of the 8-bit output against the reference
        frames, their means and minima (the worst frame is what a viewer notices)."""
        ref = image_to_uint(reference.values, 8)
        psnrs = [psnr(r, d) for r, d in zip(ref, decoded, strict=True)]
        ssims = [ssim(r, d) for r, d in zip(ref, decoded, strict=True)]
        return {
            "psnr": float(np.mean(psnrs)),
            "ssim": float(np.mean(ssims)),
            "psnr_min": min(psnrs),
            "ssim_min": min(ssims),
            "psnr_per_frame": psnrs,
            "ssim_per_frame": ssims,
        }

    def rate_metrics(
        self, file_bytes: int, shape: tuple[int, ...], channels: int, rate: float | None
    ) -> dict[str, float]:
        """bpp over every pixel of every frame, bits / (T·H·W), and bits per second."""
        seconds = shape[0] / known_rate(rate, "frame rate")
        return {
            **pixel_rate_metrics(file_bytes, shape, channels),
            "bps": 8.0 * file_bytes / seconds,
        }
