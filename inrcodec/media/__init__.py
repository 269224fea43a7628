"""Media I/O: files on disk <-> `Signal`, a regular grid of float samples in raw units."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Medium = Literal["image", "audio", "video"]


@dataclass
class Signal:
    """A signal sampled on a regular grid.

    `values` has shape grid + (channels,) and dtype float32, in the medium's raw units:
    0..255 for images and video (16-bit sources are divided by 257), amplitude in
    [-1, 1] for audio. The sym-power soft boundary is defined in these units, so
    every reader must deliver them.
    """

    medium: Medium
    values: np.ndarray
    channels: str  # "L", "LA", "RGB", "RGBA" for images and video; "mono"/"Nch" for audio
    value_range: tuple[float, float]  # decoded values are clamped to this range
    bit_depth: int  # bits per sample of the source (8 or 16 for images)
    rate: float | None = None  # samples per second (audio) or frames per second (video)
    source: str = ""  # where it came from, for messages
    extra: dict = field(default_factory=dict)

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[:-1])

    @property
    def num_channels(self) -> int:
        return int(self.values.shape[-1])


class MediumHandler:
    """What the codec needs to know about one medium; one instance per medium module."""

    medium: Medium
    extensions: frozenset[str]  # lower-case input suffixes, with the dot
    output_suffix: str  # default decode output suffix

    def read(self, path: Path, **selection) -> Signal:
        """Read the file; `selection` (start, duration, frames, max_side) picks a part of it.
        A reader refuses selection options that make no sense for its medium."""
        raise NotImplementedError

    def output_shape(
        self, shape: tuple[int, ...], rate: float | None, request: dict
    ) -> tuple[tuple[int, ...], float | None]:
        """Decode grid and rate for a request such as {"scale": 2} or {"size": (W, H)}."""
        raise NotImplementedError

    def read_reference(
        self, path: Path, shape: tuple[int, ...], rate: float | None, selection: dict
    ) -> Signal:
        """`path` read as the reference for `eval` of a model fitted on the grid `shape`
        at `rate`, from the part `selection` (the encode's start, duration, frames,
        max_side) of its source. Images: the file as it is, and eval renders the model at
        the reference's size."""
        return self.read(path)

    def output_dtype(self, bit_depth: int) -> np.dtype:
        raise NotImplementedError

    def to_output(self, raw: np.ndarray, bit_depth: int) -> np.ndarray:
        """Raw values (clamped floats) -> what is written and compared (e.g. uint8)."""
        raise NotImplementedError

    def write(
        self,
        path: Path,
        values: np.ndarray,
        channels: str,
        bit_depth: int,
        rate: float | None,
        force: bool,
    ) -> None:
        raise NotImplementedError

    def peak(self, signal: Signal) -> float:
        """The PSNR peak used while training (the value-range span)."""
        low, high = signal.value_range
        return high - low

    def metrics(self, reference: Signal, decoded: np.ndarray) -> dict[str, float | list[float]]:
        """Quality of `decoded` (output dtype) against the reference signal.

        Scalars are summaries; a list is a per-frame series (key ending in `_per_frame`)."""
        raise NotImplementedError

    def rate_metrics(
        self, file_bytes: int, shape: tuple[int, ...], channels: int, rate: float | None
    ) -> dict[str, float]:
        """Rate from the real file size: bpp for images and video, bits/s for audio."""
        raise NotImplementedError


def _handlers() -> tuple[MediumHandler, ...]:
    from inrcodec.media import audio, image, video

    return (image.HANDLER, audio.HANDLER, video.HANDLER)


def handler_for_medium(medium: str) -> MediumHandler:
    return {h.medium: h for h in _handlers()}[medium]


def handler_for_path(path: Path) -> MediumHandler:
    """Pick the medium from the file extension."""
    from inrcodec.errors import InrcodecError

    suffix = path.suffix.lower()
    for handler in _handlers():
        if suffix in handler.extensions:
            return handler
    raise InrcodecError(f"{path}: unsupported file type {suffix or '(no extension)'!r}")


def supported_extensions() -> set[str]:
    """Every input suffix some medium reads (for picking files out of directories)."""
    return set().union(*(h.extensions for h in _handlers()))


# --- helpers shared by the handlers ---------------------------------------------------


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, for error messages built from library errors."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def check_input_file(path: Path, kind: str) -> None:
    """Refuse a missing, directory or empty input before a decoder sees it; `kind` is e.g.
    "an image file"."""
    from inrcodec.errors import InrcodecError

    if not path.exists():
        raise InrcodecError(f"{path}: no such file")
    if path.is_dir():
        raise InrcodecError(f"{path}: is a directory, not {kind}")
    if path.stat().st_size == 0:
        raise InrcodecError(f"{path}: empty file")


def refuse_options(
    options: Iterable[str], allowed: set[str], medium: str, prefix: str = ""
) -> None:
    """A UsageError naming the CLI flags (`max_side` -> --max-side) among `options` that are
    not `allowed` for `medium` (plural, e.g. "images")."""
    from inrcodec.errors import UsageError

    names = ["--" + k.replace("_", "-") for k in options if k not in allowed]
    if names:
        verb = "does" if len(names) == 1 else "do"
        raise UsageError(f"{prefix}{', '.join(names)} {verb} not apply to {medium}")


def positive(value: float, flag: str, zero_ok: bool = False) -> float:
    """`value` as a float if it is a finite positive number (or zero, with `zero_ok`),
    else a UsageError naming `flag`."""
    from inrcodec.errors import UsageError

    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and (number > 0 or (zero_ok and number == 0))):
        what = "zero or a positive number" if zero_ok else "a positive number"
        raise UsageError(f"{flag} must be {what}, got {value}")
    return number


def known_rate(rate: float | None, what: str) -> float:
    """Audio and video always have a rate (`what`: "sample rate", "frame rate"); only a
    hand-made container could lack one."""
    from inrcodec.errors import InrcodecError

    if rate is None:
        raise InrcodecError(f"the model records no {what}")
    return rate


def retimed_length(samples: int, rate: float, new_rate: float) -> int:
    """Samples (or frames) that keep the duration at `new_rate`.

    A one-sample grid stays one sample: the model only ever saw t = 0, so other times
    would be extrapolation, not interpolation.
    """
    if samples == 1:
        return 1
    return max(1, round(samples * new_rate / rate))
