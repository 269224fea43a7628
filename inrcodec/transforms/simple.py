"""Linear baselines from the sym-power paper: min-max to [-1, 1] and z-score.

Like the reference (``shared/reference/sym-power-transform.md`` §3), the statistics are global
over the whole tensor and computed in float32.
"""

from __future__ import annotations

import torch

from inrcodec.errors import InrcodecError
from inrcodec.transforms.base import Scalars, ValueTransform, register

ZSCORE_EPS = 1e-5  # added to the std, as in the reference, so a constant signal divides by it
CONSTANT_PAD = 1.0  # raw units put on each side of a constant signal, so it maps to exactly 0


def global_range(x: torch.Tensor) -> tuple[float, float]:
    """The signal's (min, max), refusing values that no float32 transform can handle.

    NaN or infinite samples, or a range wider than float32 can hold, would otherwise turn
    into NaN scalars in the container or crash inside torch.histc.
    """
    x_min, x_max = x.min(), x.max()
    if not torch.isfinite(x_max.float() - x_min.float()):
        raise InrcodecError(
            f"signal values must be finite with a range that fits in float32 "
            f"(min {x_min.item():g}, max {x_max.item():g})"
        )
    return x_min.item(), x_max.item()


@register
class MinMaxTransform(ValueTransform):
    """Map [min, max] linearly onto [-1, 1] (the paper's "scale ×1.0")."""

    name = "minmax"
    scalars = ("lo", "hi")

    def fit(self, x: torch.Tensor) -> Scalars:
        m, M = global_range(x)
        if m == M:
            return {"lo": m - CONSTANT_PAD, "hi": M + CONSTANT_PAD}
        return {"lo": m, "hi": M}

    def forward(self, x: torch.Tensor, s: Scalars) -> torch.Tensor:
        return (x - s["lo"]) / (s["hi"] - s["lo"]) * 2 - 1

    def inverse(self, y: torch.Tensor, s: Scalars) -> torch.Tensor:
        # No clip: the reference only clamps to the medium's range afterwards.
        return (y + 1) / 2 * (s["hi"] - s["lo"]) + s["lo"]


@register
class ZScoreTransform(ValueTransform):
    """Standardize with the global mean and torch's unbiased std."""

    name = "zscore"
    scalars = ("mean", "std")

    def fit(self, x: torch.Tensor) -> Scalars:
        global_range(x)  # refuse NaN/inf before they reach the container
        x = x.detach().to("cpu", torch.float32)
        # The unbiased std of a single sample is NaN; call it 0 like any constant signal.
        std = x.std().item() if x.numel() > 1 else 0.0
        return {"mean": x.mean().item(), "std": std}

    def forward(self, x: torch.Tensor, s: Scalars) -> torch.Tensor:
        return (x - s["mean"]) / (s["std"] + ZSCORE_EPS)

    def inverse(self, y: torch.Tensor, s: Scalars) -> torch.Tensor:
        return y * (s["std"] + ZSCORE_EPS) + s["mean"]
