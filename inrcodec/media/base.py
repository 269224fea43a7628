"""What the codec knows about a medium: `Signal`, `OutputFormat` and the `MediumHandler` ABC.

Kept apart from the registry and the handlers so that every module can import it without
loading Pillow, soundfile or ffmpeg.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

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

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[:-1])

    @property
    def num_channels(self) -> int:
        return int(self.values.shape[-1])


@dataclass(frozen=True)
class OutputFormat:
    """What the file to write needs beyond the array: the facts the model records.

    One value for every medium, so that `MediumHandler.write` has one signature; each
    handler reads the fields its format needs (images: channels and bit_depth; audio:
    bit_depth and rate; video: rate).
    """

    channels: str
    bit_depth: int
    rate: float | None = None


class MediumHandler(ABC):
    """What the codec needs to know about one medium; one instance per medium module,
    registered with `inrcodec.media.register_medium`."""

    medium: ClassVar[Medium]
    extensions: ClassVar[frozenset[str]]  # lower-case input suffixes, with the dot
    output_suffix: ClassVar[str]  # default decode output suffix
    # The `metrics` key in dB that searches maximise and `--target-psnr` aims at.
    quality_key: ClassVar[str] = "psnr"

    @abstractmethod
    def read(self, path: Path, **selection: Any) -> Signal:
        """Read the file; `selection` (start, duration, frames, max_side) picks a part of it.
        A reader refuses selection options that make no sense for its medium."""

    @abstractmethod
    def output_shape(
        self, shape: tuple[int, ...], rate: float | None, request: dict
    ) -> tuple[tuple[int, ...], float | None]:
        """Decode grid and rate for a request such as {"scale": 2} or {"size": (W, H)}."""

    def read_reference(
        self, path: Path, shape: tuple[int, ...], rate: float | None, selection: dict
    ) -> Signal:
        """`path` read as the reference for `eval` of a model fitted on the grid `shape`
        at `rate`, from the part `selection` (the encode's start, duration, frames,
        max_side) of its source. Images: the file as it is, and eval renders the model at
        the reference's size."""
        return self.read(path)

    @abstractmethod
    def output_dtype(self, bit_depth: int) -> np.dtype:
        """The dtype `to_output` returns, so that decoding can allocate the output first."""

    @abstractmethod
    def to_output(self, raw: np.ndarray, bit_depth: int) -> np.ndarray:
        """Raw values (clamped floats) -> what is written and compared (e.g. uint8)."""

    @abstractmethod
    def write(
        self, path: Path, values: np.ndarray, output_format: OutputFormat, *, force: bool
    ) -> None:
        """Write `values` (from `to_output`) atomically; an existing `path` only with
        `force`. The file format follows the suffix."""

    def output_window(self, length: int, rate: float | None, request: dict) -> tuple[int, int]:
        """(first, count) along the output's first axis (time) that `decode --start/--duration`
        asks for, in seconds at the output's `rate`; the whole axis when neither is given.
        Media without time (images) refuse them."""
        from inrcodec.media.helpers import refuse_options, time_window

        if rate is None:
            refuse_options(request, set(), self.medium)
            return 0, length
        return time_window(length, rate, request.get("start"), request.get("duration"))

    def reference_power(self, signal: Signal) -> float:
        """The numerator of the quality in dB that `metrics` reports as `quality_key`, so
        that training measures the same quantity: 10·log10(reference_power / MSE). For a
        PSNR it is the squared peak (the value-range span)."""
        low, high = signal.value_range
        return (high - low) ** 2

    @abstractmethod
    def metrics(self, reference: Signal, decoded: np.ndarray) -> dict[str, float | list[float]]:
        """Quality of `decoded` (output dtype) against the reference signal.

        Scalars are summaries; a list is a per-frame series (key ending in `_per_frame`)."""

    @abstractmethod
    def rate_metrics(
        self, file_bytes: int, shape: tuple[int, ...], channels: int, rate: float | None
    ) -> dict[str, float]:
        """Rate from the real file size: bpp for images and video, bits/s for audio."""
