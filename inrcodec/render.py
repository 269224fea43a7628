"""Decode: evaluate the INR on any grid, chunk by chunk, into the output's final dtype.

Peak memory is bounded by a budget, not by the output size: coordinates are built per
chunk, activations live only for one chunk, and each chunk is inverse-transformed,
clamped and converted before the next one starts.

Decoding computes in float64 on every device (MPS, which has none, decodes on the CPU):
the stored parameters and latents are exact integers times powers of two, so only the
order in which a CPU's BLAS adds products can differ between machines, and in float64
that moves a sample by ~1e-13 of its value instead of float32's ~1e-6. A sample then
rounds to another level on another machine only if it lies that close to a rounding
boundary (docs/design.md, "Decoding across machines"; tests/test_golden.py checks it).
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


def decoder(model):
    """`model` in float64 (complex layers in complex128), for decoding."""
    import torch

    def widen(t):
        if t.is_complex():
            return t.to(torch.complex128)
        return t.to(torch.float64) if t.is_floating_point() else t

    return model._apply(widen)


def decode_device(device: str) -> str:
    """Where decoding runs: `device`, unless it has no float64 (MPS)."""
    return "cpu" if device == "mps" else device


def render(
    inr: InrFile,
    shape: tuple[int, ...],
    convert: Callable[[np.ndarray], np.ndarray],
    out_dtype: np.dtype,
    device: str = "cpu",
    budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    window: tuple[int, int] | None = None,
) -> np.ndarray:
    """Evaluate on the `shape` grid, or on `window` = (first, count) of its first axis
    (a part in time); returns that shape + (channels,) in `out_dtype`.

    `convert` maps a chunk of raw values (float64, already clamped to the value range)
    to the output dtype, e.g. rounding to 8 bits.
    """
    import torch

    from inrcodec.coords import grid_coords
    from inrcodec.transforms import get_transform

    device = decode_device(device)
    model = decoder(inr.build_model().to(device))
    transform = get_transform(inr.transform)
    lo, hi = inr.value_range
    first, count = window or (0, shape[0])
    stride = math.prod(shape[1:])
    begin, end = first * stride, (first + count) * stride
    out = np.empty((end - begin, inr.out_features), dtype=out_dtype)
    step = chunk_points(model, budget_bytes // 2)  # float64: twice float32's bytes
    with torch.inference_mode():
        for start in range(begin, end, step):
            coords = grid_coords(shape, device, start, min(start + step, end), torch.float64)
            raw = transform.inverse(model(coords), inr.scalars).clamp_(lo, hi)
            out[start - begin : start - begin + len(coords)] = convert(raw.double().cpu().numpy())
    return out.reshape(count, *shape[1:], inr.out_features)
