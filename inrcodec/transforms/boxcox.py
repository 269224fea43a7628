"""Box-Cox baseline from the sym-power paper (``shared/reference/sym-power-transform.md`` §3).

Shift by 25.6 raw units, Box-Cox with the maximum-likelihood λ, then min-max to [-1, 1].
Everything runs in float64, as scipy does in the reference; tensors come back as float32.
"""

from __future__ import annotations

import math
import warnings

import torch

from inrcodec.errors import InrcodecError
from inrcodec.transforms.base import Scalars, ValueTransform, register
from inrcodec.transforms.simple import CONSTANT_PAD, global_range

SHIFT = 0.1 * 256  # box_shift · 256 = 25.6 raw units, so 0-valued pixels stay positive
# The transformed range must span at least this share of its magnitude: float64 then keeps
# 2**33 steps across it, 512 times finer than a float32 network target can resolve.
MIN_REL_SPAN = 2.0**-20


def _boxcox(v: torch.Tensor, lam: float) -> torch.Tensor:
    """(v^λ − 1)/λ, or ln v for λ = 0; expm1 keeps it accurate for small |λ|."""
    log_v = torch.log(v)
    return log_v if lam == 0 else torch.expm1(lam * log_v) / lam


def _range(v: torch.Tensor, lam: float) -> tuple[float, float]:
    b = _boxcox(v, lam)
    return b.min().item(), b.max().item()


def _constant(b: float) -> Scalars:
    """A signal constant after the shift (scipy refuses it): λ = 1 (b = v − 1), with one raw
    unit on each side, maps it to exactly 0."""
    return {"lambda": 1.0, "lo": b - CONSTANT_PAD, "hi": b + CONSTANT_PAD}


@register
class BoxCoxTransform(ValueTransform):
    """Box-Cox with λ fitted by scipy's MLE on the whole signal."""

    name = "boxcox"
    scalars = ("lambda", "lo", "hi")

    def fit(self, x: torch.Tensor) -> Scalars:
        from scipy import stats

        m, _ = global_range(x)
        if not m + SHIFT > 0:
            raise InrcodecError(
                f"the boxcox transform needs values above {-SHIFT} (the minimum here is "
                f"{m:g}); choose another transform for this signal"
            )
        v = x.detach().to("cpu", torch.float64).reshape(-1) + SHIFT
        v_min, v_max = v.min().item(), v.max().item()
        if v_min == v_max:
            return _constant(v_min - 1)
        with warnings.catch_warnings():
            # Degenerate data only makes scipy warn that λ hit its bound; the range
            # check below handles that case, and a library must not print.
            warnings.simplefilter("ignore")
            try:
                _, lam = stats.boxcox(v.numpy())
            except (ValueError, RuntimeError):
                # Two values a float32 ulp apart: scipy's λ search finds no bracket
                # (BracketError is a RuntimeError). The same degenerate case as below.
                lam = math.nan
        lam = float(lam)
        lo, hi = _range(v, lam) if math.isfinite(lam) else (math.nan, math.nan)
        if not (
            math.isfinite(lo)
            and math.isfinite(hi)
            and hi - lo > MIN_REL_SPAN * max(abs(lo), abs(hi))
            and min(1 + lam * lo, 1 + lam * hi) > MIN_REL_SPAN  # v^λ, whose root `inverse` takes
        ):
            # DEVIATION: on (nearly) two-valued data the MLE λ runs off to ±hundreds or more
            # and the transformed range collapses or overflows, or (a few large values among
            # zeros) v^λ underflows against 1; the reference would divide by zero or return
            # inf. λ = 1 (a shifted identity, i.e. plain min-max) keeps the signal invertible.
            lam = 1.0
            lo, hi = _range(v, lam)
            if not hi > lo:  # values closer than float64 resolves after the shift
                return _constant(lo)
        return {"lambda": lam, "lo": lo, "hi": hi}

    def forward(self, x: torch.Tensor, s: Scalars) -> torch.Tensor:
        b = _boxcox(x.double() + SHIFT, s["lambda"])
        return ((b - s["lo"]) / (s["hi"] - s["lo"]) * 2 - 1).float()

    def inverse(self, y: torch.Tensor, s: Scalars) -> torch.Tensor:
        z = (y.double() / 2 + 0.5).clamp(0, 1)
        b = z * (s["hi"] - s["lo"]) + s["lo"]
        lam = s["lambda"]
        v = torch.exp(b) if lam == 0 else torch.exp(torch.log1p(lam * b) / lam)
        return (v - SHIFT).float()
