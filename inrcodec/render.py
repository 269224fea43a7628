"""Decode: evaluate the INR on any grid, chunk by chunk, into the output's final dtype.

Peak memory is bounded by a budget, not by the output size: coordinates are built per
chunk, activations live only for one chunk, and each chunk is inverse-transformed,
clamped and converted before the next one starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from inrcodec.container import InrFile

DEFAULT_MEMORY_BUDGET = 256 * 2**20  # bytes of activations per chunk


def chunk_points(model, budget_bytes: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Coordinates per chunk so that one forward pass stays within `budget_bytes`.

    A model may declare `bytes_per_point` (SL2A's Chebyshev block does); otherwise
    we assume a few fp32 activations of the widest layer are alive at once.
    """
    per_point = getattr(model, "bytes_per_point", None)
    if per_point is None:
        widest = max((p.shape[0] for p in model.parameters() if p.dim() == 2), default=1)
        per_point = 4 * 4 * widest
    return max(1024, int(budget_bytes // per_point))


def render(
    inr: InrFile,
    shape: tuple[int, ...],
    convert: Callable[[np.ndarray], np.ndarray],
    out_dtype: np.dtype,
    device: str = "cpu",
    budget_bytes: int = DEFAULT_MEMORY_BUDGET,
) -> np.ndarray:
    """Evaluate on the `shape` grid; returns shape + (channels,) in `out_dtype`.

    `convert` maps a chunk of raw values (float32, already clamped to the value range)
    to the output dtype, e.g. rounding to 8 bits.
    """
    import torch

    from inrcodec.coords import grid_coords
    from inrcodec.transforms import get_transform

    model = inr.build_model().to(device)
    transform = get_transform(inr.transform)
    lo, hi = inr.value_range
    total = math.prod(shape)
    out = np.empty((total, inr.out_features), dtype=out_dtype)
    step = chunk_points(model, budget_bytes)
    with torch.inference_mode():
        for start in range(0, total, step):
            coords = grid_coords(shape, device, start, start + step)
            raw = transform.inverse(model(coords), inr.scalars).clamp_(lo, hi)
            out[start : start + len(coords)] = convert(raw.float().cpu().numpy())
    return out.reshape(*shape, inr.out_features)
