"""Media I/O: files on disk <-> `Signal`, a regular grid of float samples in raw units."""

from __future__ import annotations

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


def handler_for_medium(medium: str) -> MediumHandler:
    from inrcodec.media import image

    handlers = {h.medium: h for h in (image.HANDLER,)}
    return handlers[medium]


def handler_for_path(path: Path) -> MediumHandler:
    """Pick the medium from the file extension."""
    from inrcodec.errors import InrcodecError
    from inrcodec.media import image

    suffix = path.suffix.lower()
    for handler in (image.HANDLER,):
        if suffix in handler.extensions:
            return handler
    raise InrcodecError(f"{path}: unsupported file type {suffix or '(no extension)'!r}")


def supported_extensions() -> set[str]:
    """Every input suffix some medium reads (for picking files out of directories)."""
    found: set[str] = set()
    for medium in ("image", "audio", "video"):
        try:
            found |= handler_for_medium(medium).extensions
        except KeyError:  # a medium without a handler yet
            continue
    return found
