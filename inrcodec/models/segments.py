"""Segments: a long signal as consecutive latent-grid models along its first axis (time).

One grid for a whole long file trains badly on a CPU: every Adam step updates every
latent, so a step costs in proportion to the length, and the steps needed grow with it
too (1,000 steps took 84 s on 55.5 s of speech, against 3,000 steps in 46 s on 8.46 s).
Cut into segments of a fixed length, trained one after another as a short file would be,
an encode holds one segment's training state at a time and takes time in proportion to
the length; a decode of a window reads only the segments under it.

Each segment is a whole `LatentGridINR` (its own small synthesis) on its own coordinates
in [-1, 1]. Consecutive segments share `overlap` samples, both trained on them, and the
output crossfades linearly from one to the next across that overlap: it is continuous at
every border (no click, no step), and at each shared sample a convex mix of two fits of
the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

MAX_SEGMENTS = 4096  # a hostile header must not build millions of modules
Keep = Callable[[str], bool]  # parameter name -> whether a decode reads it


def spans(length: int, segment: int, overlap: int) -> list[tuple[int, int]]:
    """(first, last) sample, inclusive, of each segment of a signal of `length` samples:
    ⌈length / segment⌉ segments with borders at round(k·length / count), each reaching
    overlap / 2 samples beyond its borders."""
    if overlap < 2 or overlap % 2 or segment < 2 * overlap:
        raise ValueError("overlap must be even and >= 2, and segment at least twice overlap")
    count = math.ceil(length / segment)
    if count > MAX_SEGMENTS:
        raise ValueError(f"{count} segments of {segment} samples exceed {MAX_SEGMENTS}")
    borders = [round(k * length / count) for k in range(count + 1)]
    half = overlap // 2
    return [
        (max(0, borders[k] - half), min(length - 1, borders[k + 1] - 1 + half))
        for k in range(count)
    ]


def segmented(shape: Sequence[int], segment: int) -> bool:
    """Whether a grid of `shape` with this segment length is cut into segments."""
    return bool(segment and shape and shape[0] > segment)


def window_filter(hparams: dict[str, Any], first: float, last: float) -> Keep | None:
    """Which parameters a decode of positions `first`..`last` of the first axis (in
    training samples, fractional between them) reads: those of the segments under it.
    None (all) for a model that is not segmented."""
    shape, segment = hparams.get("shape") or [], hparams.get("segment")
    if not segmented(shape, segment):
        return None
    wanted = {
        f"parts.{k}."
        for k, (a, b) in enumerate(spans(shape[0], segment, hparams["overlap"]))
        if a <= last and b >= first
    }
    return lambda name: name[: name.find(".", len("parts.")) + 1] in wanted


class SegmentedGrid(nn.Module):
    """`parts[k]` models samples spans[k] of the first axis; the rest of the grid (video's
    rows and columns) is every part's whole."""

    def __init__(self, parts: Sequence[nn.Module], length: int, spans: list[tuple[int, int]]):
        super().__init__()
        if len(parts) != len(spans):
            raise ValueError("one part per segment is needed")
        self.parts = nn.ModuleList(parts)
        self.length = length
        self.spans = spans
        self.bytes_per_point = max(p.bytes_per_point for p in parts) + 64

    def segments(self) -> list[tuple[nn.Module, int, int]]:
        """(model, first sample, samples) of each segment, for training one at a time."""
        return [(part, a, b - a + 1) for part, (a, b) in zip(self.parts, self.spans, strict=True)]

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        u = (coords[:, 0] + 1) * (0.5 * (self.length - 1))  # position in samples
        out = None
        low, high = float(u.min()), float(u.max())
        for k, (part, (a, b)) in enumerate(zip(self.parts, self.spans, strict=True)):
            if b < low or a > high:
                continue
            weight = self._weight(k, u)
            chosen = (weight > 0).nonzero().squeeze(1)
            if len(chosen) == 0:
                continue
            local = coords[chosen].clone()
            local[:, 0] = (u[chosen] - a) * (2 / (b - a)) - 1
            values = part(local)
            if out is None:
                out = values.new_zeros(len(coords), values.shape[-1])
            out.index_add_(0, chosen, values * weight[chosen, None])
        assert out is not None  # every position lies in some segment
        return out

    def _weight(self, k: int, u: torch.Tensor) -> torch.Tensor:
        """Segment k's share at positions `u`: 1 inside it, ramps across the overlaps."""
        a, b = self.spans[k]
        weight = ((u >= a) & (u <= b)).to(u.dtype)
        if k > 0:  # fades in over the overlap with the previous segment
            end = self.spans[k - 1][1]
            weight = weight * ((u - a) / (end - a)).clamp(0, 1)
        if k < len(self.spans) - 1:  # fades out over the overlap with the next
            start = self.spans[k + 1][0]
            weight = weight * ((b - u) / (b - start)).clamp(0, 1)
        return weight

    def macs_per_point(self) -> int:
        """A sample's cost: one part's (two parts' inside an overlap, 0.3 % of the samples
        at the audio recipe's 20-s segments, not counted)."""
        return max(part.macs_per_point() for part in self.parts)
