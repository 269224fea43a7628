"""Coordinate grids: the reference convention, linspace(-1, 1, n) per axis, both ends included.

Axes are in (t, y, x) / (row, col) order with 'ij' indexing, so sample i of an axis of
length n sits at -1 + 2i/(n-1). Decoding at another size samples the same [-1, 1] box,
which aligns the corner samples ("align_corners") and needs no other stored fact.
"""

from __future__ import annotations

import math

import torch


def axis(
    n: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Sample positions of one axis; a single sample sits at the centre (0), not at -1."""
    if n == 1:
        return torch.zeros(1, device=device, dtype=dtype)
    return torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype)


def grid_coords(
    shape: tuple[int, ...],
    device: torch.device | str = "cpu",
    start: int = 0,
    stop: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Rows [start, stop) of the flattened (N, len(shape)) coordinate grid (training in
    float32, decoding in float64: render.py).

    Built from the flat indices directly, so a chunk never materialises the whole grid.
    """
    total = math.prod(shape)
    stop = total if stop is None else min(stop, total)
    flat = torch.arange(start, stop, device=device)
    columns = []
    for i, n in enumerate(shape):
        stride = math.prod(shape[i + 1 :])
        columns.append(axis(n, device, dtype)[(flat // stride) % n])
    return torch.stack(columns, dim=-1)
