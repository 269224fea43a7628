"""Video: reading and writing through ffmpeg, decode at any size and frame rate, metrics,
round trips, and eval against the source of a --frames/--max-side encode."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from inrcodec.cli import main
from inrcodec.codec import decode_file, describe, encode_file, evaluate_file
from inrcodec.errors import InrcodecError, UsageError
from inrcodec.media import Signal, handler_for_medium, handler_for_path
from inrcodec.media import video as video_module
from inrcodec.media.image import image_to_uint
from inrcodec.media.video import read_video, write_video
from inrcodec.metrics import psnr
from inrcodec.options import EncodeOptions, resolve_options
from tests.conftest import SHARED_DATA

HANDLER = handler_for_medium("video")

REALSHORT = SHARED_DATA / "video" / "realshort.mp4"
PHOTO = Path(__file__).parent / "data" / "kodim05_crop256.png"
TINY = EncodeOptions(steps=60, lr=5e-3, width=32, depth=2, batch_size=2048, device="cpu")


def pattern(frames: int = 8, height: int = 16, width: int = 16) -> np.ndarray:
    """A 4x4 bright square moving diagonally over a gradient, (T, H, W, 3) uint8."""
    y, x = np.mgrid[0:height, 0:width]
    video = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        video[t, ..., 0] = x * 255 // max(1, width - 1)
        video[t, ..., 1] = y * 255 // max(1, height - 1)
        video[t, ..., 2] = 40
        video[t, t : t + 4, t : t + 4] = 250
    return video


def gif(path: Path, video: np.ndarray, fps: float = 10) -> Path:
    """A GIF (lossless for these few colours), so read values can be checked exactly."""
    frames = [Image.fromarray(f).quantize(256, dither=Image.Dither.NONE) for f in video]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=1000 / fps, loop=0)
    return path


@pytest.fixture
def moving_mp4(tmp_path: Path) -> Path:
    """The 16x16x8 moving pattern as H.264, at 8 fps."""
    path = tmp_path / "moving.mp4"
    write_video(path, pattern(), 8.0)
    return path


def assert_user_error(path: Path, match: str) -> None:
    with pytest.raises(InrcodecError, match=match) as info:
        read_video(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# --- reading -------------------------------------------------------------------------


def test_read_mp4(moving_mp4: Path) -> None:
    signal = HANDLER.read(moving_mp4)
    assert handler_for_path(moving_mp4) is HANDLER
    assert signal.medium == "video" and signal.values.shape == (8, 16, 16, 3)
    assert (signal.channels, signal.bit_depth, signal.rate) == ("RGB", 8, 8.0)
    assert signal.value_range == (0.0, 255.0) and signal.values.dtype == np.float32
    assert psnr(signal.values, pattern()) > 25  # H.264 at CRF 18 on tiny frames: close


def test_read_gif_exactly_with_frames_and_max_side(tmp_path: Path) -> None:
    path = gif(tmp_path / "p.gif", pattern(6, 12, 20))
    signal = read_video(path)
    assert signal.values.shape == (6, 12, 20, 3) and signal.rate == pytest.approx(10)
    np.testing.assert_array_equal(signal.values, pattern(6, 12, 20))
    assert read_video(path, frames=2).values.shape == (2, 12, 20, 3)
    assert read_video(path, max_side=10).values.shape == (6, 6, 10, 3)
    assert read_video(path, max_side=64).values.shape == (6, 12, 20, 3)  # never upscales
    for selection, match in [
        ({"frames": 0}, "--frames"),
        ({"max_side": 2.5}, "--max-side"),
        ({"start": 1.0}, "--start does not apply to video"),
    ]:
        with pytest.raises(UsageError, match=match):
            HANDLER.read(path, **selection)


def test_bad_files_give_one_line_errors(tmp_path: Path, moving_mp4: Path) -> None:
    data = moving_mp4.read_bytes()
    files = {
        "empty.mp4": (b"", "empty file"),
        "text.mp4": (b"just text\n" * 20, "not a readable video"),
        "header.mp4": (data[:100], "not a readable video"),
    }
    for name, (content, message) in files.items():
        (tmp_path / name).write_bytes(content)
        assert_user_error(tmp_path / name, message)
    assert_user_error(tmp_path / "missing.mp4", "no such file")
    sound = tmp_path / "sound.mp4"  # a FLAC named .mp4: no video stream
    sf.write(sound, np.zeros(800, np.float32), 8000, format="FLAC")
    assert_user_error(sound, "does not contain any stream")


def test_videos_over_the_size_cap_are_refused(
    moving_mp4: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video_module, "MAX_VOXELS", 16 * 16 * 3)
    assert_user_error(moving_mp4, "4 frames of 16x16 are over 768 pixels; pick a part")
    assert read_video(moving_mp4, frames=3).values.shape == (3, 16, 16, 3)


def test_bad_file_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.mov"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(100))
    assert main(["encode", str(bad), "-o", str(tmp_path / "x.inr"), "--quiet"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "bad.mov: not a readable video" in lines[0]
    assert not (tmp_path / "x.inr").exists()


# --- writing -------------------------------------------------------------------------


def test_odd_sizes_are_padded_for_h264_and_kept_in_png_folders(tmp_path: Path) -> None:
    video = pattern(3, 15, 17)
    write_video(tmp_path / "odd.mp4", video, 5.0)
    back = read_video(tmp_path / "odd.mp4")
    assert back.values.shape == (3, 16, 18, 3) and back.rate == 5.0
    assert np.abs(back.values[:, :15, :17] - video).mean() < 8

    write_video(tmp_path / "frames", video, 5.0)
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["frame_000000.png", "frame_000001.png", "frame_000002.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "frames" / names[2])), video[2])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_write_refusals(tmp_path: Path) -> None:
    video = pattern(2, 4, 4)
    with pytest.raises(InrcodecError, match="unknown video extension"):
        write_video(tmp_path / "x.avi", video, 5.0)
    (tmp_path / "taken.mp4").write_bytes(b"precious")
    with pytest.raises(InrcodecError, match="--force"):
        write_video(tmp_path / "taken.mp4", video, 5.0)
    assert (tmp_path / "taken.mp4").read_bytes() == b"precious"
    write_video(tmp_path / "taken.mp4", video, 5.0, force=True)
    assert read_video(tmp_path / "taken.mp4").values.shape == (2, 4, 4, 3)


# --- decode grid ---------------------------------------------------------------------


def test_output_shape() -> None:
    shape = (8, 16, 20)
    assert HANDLER.output_shape(shape, 8.0, {}) == (shape, 8.0)
    assert HANDLER.output_shape(shape, 8.0, {"scale": 2}) == ((8, 32, 40), 8.0)
    assert HANDLER.output_shape(shape, 8.0, {"size": "10x6", "fps": 24}) == ((24, 6, 10), 24.0)
    assert HANDLER.output_shape((1, 4, 4), 8.0, {"fps": 30}) == ((1, 4, 4), 30.0)
    for request, match in [
        ({"rate": 48000}, "--rate does not apply to video"),
        ({"fps": 0}, "--fps must be a positive number"),
        ({"scale": 2, "size": "4x4"}, "not both"),
    ]:
        with pytest.raises(UsageError, match=match):
            HANDLER.output_shape(shape, 8.0, request)


def test_metrics_are_per_frame() -> None:
    signal = Signal("video", pattern().astype(np.float32), "RGB", (0.0, 255.0), 8, 8.0)
    decoded = image_to_uint(signal.values, 8)
    decoded[3] = decoded[3] // 2
    metrics = HANDLER.metrics(signal, decoded)
    assert len(metrics["psnr_per_frame"]) == len(metrics["ssim_per_frame"]) == 8
    assert metrics["psnr_per_frame"][0] == math.inf
    assert metrics["psnr_min"] == metrics["psnr_per_frame"][3] < 20
    assert metrics["ssim"] == pytest.approx(np.mean(metrics["ssim_per_frame"]))
    rate = HANDLER.rate_metrics(1000, (8, 16, 16), 3, 8.0)
    assert rate["bpp"] == pytest.approx(8000 / (8 * 16 * 16))


# --- round trips ---------------------------------------------------------------------


def test_codec_round_trip_with_scale_and_fps(moving_mp4: Path, tmp_path: Path) -> None:
    inr = tmp_path / "moving.inr"
    report = encode_file(moving_mp4, inr, TINY)
    assert report.medium == "video" and report.metrics["psnr"] > 20
    assert len(report.metrics["psnr_per_frame"]) == 8
    facts = describe(inr)
    assert (facts["shape"], facts["rate"], facts["channels"]) == ([8, 16, 16], 8.0, "RGB")

    decoded = decode_file(inr, tmp_path / "x2.mp4", {"scale": 2, "fps": 16}, device="cpu")
    back = read_video(tmp_path / "x2.mp4")
    assert decoded.shape == [16, 32, 32] and back.values.shape == (16, 32, 32, 3)
    assert back.rate == 16.0  # 16 frames at 16 fps: the same second as 8 at 8 fps

    metrics = evaluate_file(inr, moving_mp4, device="cpu")
    assert metrics["psnr"] == pytest.approx(report.metrics["psnr"], abs=1e-4)
    assert metrics["bpp"] == pytest.approx(inr.stat().st_size * 8 / (8 * 16 * 16))


def test_one_frame_video(tmp_path: Path) -> None:
    still = gif(tmp_path / "still.gif", pattern(1, 9, 11))
    encode_file(still, tmp_path / "still.inr", replace(TINY, steps=5))
    decode_file(tmp_path / "still.inr", tmp_path / "still.mp4", {"fps": 30}, device="cpu")
    assert read_video(tmp_path / "still.mp4").values.shape == (1, 10, 12, 3)  # padded even


def test_eval_reads_the_reference_as_encode_did(tmp_path: Path) -> None:
    """--frames/--max-side encodes evaluate against the full-size source, and unrelated
    references are refused instead of compared on a stretched grid."""
    source = gif(tmp_path / "big.gif", pattern(6, 24, 32))
    options = replace(TINY, steps=5, frames=4, max_side=16)
    report = encode_file(source, tmp_path / "small.inr", options)
    assert describe(tmp_path / "small.inr")["shape"] == [4, 12, 16]
    metrics = evaluate_file(tmp_path / "small.inr", source, device="cpu")
    assert metrics["psnr"] == pytest.approx(report.metrics["psnr"], abs=1e-4)
    np.testing.assert_array_equal(
        HANDLER.read_reference(source, (4, 12, 16), 10.0, {}).values,
        read_video(source, frames=4, max_side=16).values,
    )

    refusals = [
        (gif(tmp_path / "tall.gif", pattern(6, 32, 24)), "do not scale to the model's 16x12"),
        (gif(tmp_path / "short.gif", pattern(3, 24, 32)), "has 3 frames, the model holds 4"),
        (gif(tmp_path / "fast.gif", pattern(6, 24, 32), fps=25), "is 25 fps"),
    ]
    for path, message in refusals:
        with pytest.raises(InrcodecError, match=message):
            evaluate_file(tmp_path / "small.inr", path, device="cpu")


def test_cli_round_trip(moving_mp4: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inr, frames = tmp_path / "m.inr", tmp_path / "frames"
    flags = ["--steps", "20", "--width", "16", "--depth", "1", "--batch-size", "256"]
    assert (
        main(["encode", str(moving_mp4), "-o", str(inr), *flags, "--device", "cpu", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["medium"] == "video" and {"psnr", "ssim", "bpp"} <= set(report["metrics"])

    assert main(["decode", str(inr), "-o", str(frames), "--fps", "4", "--device", "cpu"]) == 0
    assert len(list(frames.iterdir())) == 4
    capsys.readouterr()
    assert main(["eval", str(inr), str(moving_mp4), "--device", "cpu", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert len(results["psnr_per_frame"]) == 8 and results["psnr_min"][0] <= results["psnr"][0]
    assert main(["decode", str(inr), "-o", str(tmp_path / "a.mp4"), "--rate", "8000"]) == 2


# --- real data -----------------------------------------------------------------------


@pytest.mark.skipif(not REALSHORT.exists(), reason="needs ../shared/data/video")
def test_realshort_four_frames(tmp_path: Path) -> None:
    signal = read_video(REALSHORT, frames=4, max_side=32)
    assert signal.values.shape == (4, 24, 32, 3) and signal.rate == pytest.approx(30.02)
    options = replace(TINY, steps=3, width=16, depth=1, frames=4, max_side=32)
    report = encode_file(REALSHORT, tmp_path / "rs.inr", options)
    metrics = evaluate_file(tmp_path / "rs.inr", REALSHORT, device="cpu")
    assert metrics["psnr"] == pytest.approx(report.metrics["psnr"], abs=1e-4)


# --- 3-D latent grids, the default (issue 33) ----------------------------------------

GRID = ["--arch", "grid", "--device", "cpu", "--quiet"]


def drifting(frames: int = 12, height: int = 24, width: int = 32) -> np.ndarray:
    """A smooth colour pattern drifting a pixel a frame to the right, (T, H, W, 3)."""
    y, x = np.mgrid[0:height, 0:width]
    video = [
        np.stack([np.sin((x - t) / 5), np.cos(y / 4 + (x - t) / 7), np.sin((x - t + y) / 9)], -1)
        for t in range(frames)
    ]
    return np.rint(127.5 + 100 * np.stack(video)).astype(np.uint8)


@pytest.fixture(scope="module")
def grid_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The drifting clip (a lossless GIF at 10 fps) and its file from the video default,
    with a rate target."""
    folder = tmp_path_factory.mktemp("grid_video")
    source = gif(folder / "drift.gif", drifting())
    flags = [*GRID, "--steps", "200", "--target-bpp", "1.5"]
    assert main(["encode", str(source), "-o", str(folder / "d.inr"), *flags]) == 0
    return source, folder / "d.inr"


def test_the_default_codes_video_in_3d_latent_grids(grid_video: tuple[Path, Path]) -> None:
    source, inr = grid_video
    facts = describe(inr)
    assert facts["arch"] == "grid" and facts["shape"] == [12, 24, 32]
    assert (
        facts["hyper_parameters"]["stride"] == resolve_options(None, "video").arch_options["stride"]
    )
    metrics = evaluate_file(inr, source, device="cpu")
    assert metrics["psnr"] > 20 and metrics["bpp"] < 1.5  # a flat clip of its mean: 10 dB


def test_a_grid_video_decodes_at_any_size_and_frame_rate_bit_exactly(
    grid_video: tuple[Path, Path], tmp_path: Path
) -> None:
    _, inr = grid_video
    first = decode_file(inr, tmp_path / "a", {"scale": 2, "fps": 25}, device="cpu")
    assert first.shape == [30, 48, 64]
    again = decode_file(inr, tmp_path / "b", {"scale": 2, "fps": 25}, device="cpu")
    assert again.shape == first.shape
    frames = [sorted((tmp_path / run).iterdir()) for run in ("a", "b")]
    assert len(frames[0]) == 30
    for a, b in zip(*frames, strict=True):
        assert a.read_bytes() == b.read_bytes()  # the same PNG bytes, run after run
    small = decode_file(inr, tmp_path / "c.mp4", {"size": "16x12", "fps": 5}, device="cpu")
    assert small.shape == [6, 12, 16] and read_video(tmp_path / "c.mp4").values.shape[0] == 6


def test_a_frame_rate_decode_between_segments_has_no_step(tmp_path: Path) -> None:
    """Two segments of 6 frames sharing 2: at 4x the frame rate the frames across each border
    change no more than elsewhere (the crossfade, on top of each segment's continuous fit)."""
    source = gif(tmp_path / "long.gif", drifting(12, 16, 24))
    flags = [*GRID, "--steps", "200", "-O", "segment=6", "-O", "overlap=2"]
    assert main(["encode", str(source), "-o", str(tmp_path / "s.inr"), *flags]) == 0
    assert describe(tmp_path / "s.inr")["hyper_parameters"]["segment"] == 6
    frames = decoded_frames(tmp_path / "s.inr", tmp_path / "fast", fps=40.0)
    steps = np.abs(np.diff(frames.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
    assert steps.max() < 3 * np.median(steps), steps.round(2)


def decoded_frames(inr: Path, folder: Path, fps: float) -> np.ndarray:
    decode_file(inr, folder, {"fps": fps}, device="cpu")
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.iterdir())])


def test_a_video_target_is_met_from_below(grid_video: tuple[Path, Path]) -> None:
    bits = grid_video[1].stat().st_size * 8
    assert 0.5 * 1.5 * 12 * 24 * 32 < bits <= 1.5 * 12 * 24 * 32


def test_the_default_follows_a_pan_and_can_be_told_not_to(tmp_path: Path) -> None:
    """A clip panning over a photo, a row and two columns a frame: the file stores that
    motion in quarter pixels; `-O motion=[]` stores none."""
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    pan = np.stack([photo[40 + t : 72 + t, 2 * t : 48 + 2 * t] for t in range(8)])
    source = gif(tmp_path / "pan.gif", pan)
    flags = [*GRID, "--steps", "20"]
    assert main(["encode", str(source), "-o", str(tmp_path / "m.inr"), *flags]) == 0
    stored = describe(tmp_path / "m.inr")["hyper_parameters"]["motion"]
    assert stored == [[4 * t, 8 * t] for t in range(8)]
    off = [*flags, "-O", "motion=[]"]
    assert main(["encode", str(source), "-o", str(tmp_path / "n.inr"), *off]) == 0
    assert describe(tmp_path / "n.inr")["hyper_parameters"]["motion"] == []
