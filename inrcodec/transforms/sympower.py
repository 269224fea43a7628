"""Symmetric power transform (AAAI 2025, arXiv 2412.09213) and the fixed-exponent gamma baseline.

Reference-exact port of the official code as described in
``shared/reference/sym-power-transform.md`` §1–§2 and §9: the median-based exponent, the
deviation-aware calibration and the additive soft boundary in raw units. The statistics are
computed as the reference computes them (float32, CPU, ``torch.histc``), so the fitted values
follow its binning exactly; the guards for the inputs that crash the reference are marked
DEVIATION below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from inrcodec.errors import UsageError
from inrcodec.transforms.base import Scalars, ValueTransform, register
from inrcodec.transforms.simple import CONSTANT_PAD, global_range

BINS = 256
MEDIAN_CDF = 0.5  # pn_cum
TAU = 0.05  # pn_beta: calibration divisor ...
TAIL_BINS = int(TAU * BINS)  # ... and tail width, 12 bins
EDGE_BINS = int(0.01 * BINS)  # pn_alpha: the soft boundary looks at the 2 extreme bins
KAPPA = 256.0  # pn_k: soft-boundary gain, in raw units per unit of probability mass
BETA_LIMIT = 5.0  # gamma_boundary: beta is kept in [1/5, 5]
_HISTC_CHUNK = 1 << 24  # histc counts in float32; below 2**24 per call every count is exact


@dataclass(frozen=True)
class SymPowerStats:
    """Everything `fit` derives from a signal, exposed for tests and diagnostics.

    `k` is the median bin actually used, `beta0` the median-based exponent, `beta` the
    exponent after calibration and clamping; `L` and `R` are the soft-boundary shifts in raw
    units, `m` and `M` the signal's min and max. A constant signal reports k = 128 and
    beta0 = 1, as if its median sat mid-range.
    """

    k: int
    beta0: float
    beta: float
    L: float
    R: float
    m: float
    M: float

    @property
    def lo(self) -> float:
        return self.m - self.L

    @property
    def hi(self) -> float:
        return self.M + self.R


def _bin_mass(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """`histc(x, 256, lo, hi) / N` as float32, like the reference.

    The counts are taken in chunks and summed in float64, because a single float32 histc
    stops counting at 2**24 samples per bin (long videos); the bin of each sample is the
    same as one histc call would give.
    """
    flat = x.reshape(-1)
    counts = torch.zeros(BINS, dtype=torch.float64)
    for chunk in flat.split(_HISTC_CHUNK):
        counts += torch.histc(chunk, BINS, lo, hi)
    return counts.float() / flat.numel()


def sym_power_stats(x: torch.Tensor) -> SymPowerStats:
    """Fit the sym-power exponent and soft boundary to `x` (raw values, any shape)."""
    # Like the reference: float32 on the CPU, whatever device the signal lives on.
    x = x.detach().to("cpu", torch.float32)
    m, M = global_range(x)
    if m == M:
        # DEVIATION: the reference crashes on a constant signal (histc over an empty range).
        # beta = 1 with one raw unit on each side maps the constant to exactly 0 and back.
        return SymPowerStats(BINS // 2, 1.0, 1.0, CONSTANT_PAD, CONSTANT_PAD, m, M)

    f = _bin_mass(x, m, M)
    k = int(torch.searchsorted(torch.cumsum(f, 0), MEDIAN_CDF))
    # DEVIATION: with the median in bin 0 the reference takes ln(0) and ends at beta = 0.2
    # by way of beta0 = 0; we use the next bin edge, Q = 1/256, and go on normally.
    k = max(k, 1)
    # Same float32 arithmetic as the reference's np.log(0.5) / torch-tensor division.
    beta0 = math.log(0.5) / torch.log(torch.tensor(k / BINS, dtype=torch.float32))

    # Deviation-aware calibration: move beta toward 1 by the share of tail mass it gains.
    # With a finite range (checked above) and 1 <= k <= 255, beta0 is finite and positive and
    # ys spans exactly [0, 1] (0**beta0 and 1**beta0), so its histogram is well defined. r is
    # at most 1, so the 1/beta update below never divides by less than 1: no NaN, no inf.
    ys = ((x - m) / (M - m)) ** beta0
    tail = slice(0, TAIL_BINS) if beta0 > 1 else slice(BINS - TAIL_BINS, BINS)
    gained = _bin_mass(ys, ys.min().item(), ys.max().item())[tail].sum() - f[tail].sum()
    r = min((gained / TAU).item(), 1.0)  # no lower clamp, as in the reference
    # beta0 >= 1 moves beta toward 1 by the fraction r; beta0 < 1 does the same on 1/beta.
    beta1 = 1 / (1 / beta0 - (1 / beta0 - 1) * r) if beta0 < 1 else beta0 - (beta0 - 1) * r
    beta = min(BETA_LIMIT, beta1.item()) if beta1 > 1 else max(1 / BETA_LIMIT, beta1.item())

    left = KAPPA * f[:EDGE_BINS].sum().item()
    right = KAPPA * f[BINS - EDGE_BINS :].sum().item()
    return SymPowerStats(k, beta0.item(), beta, left, right, m, M)


class _PowerTransform(ValueTransform):
    """y = 2·((x − lo)/(hi − lo))^β − 1 and its clipped inverse, shared by sym-power and gamma."""

    scalars = ("beta", "lo", "hi")

    def forward(self, x: torch.Tensor, s: Scalars) -> torch.Tensor:
        return 2 * ((x - s["lo"]) / (s["hi"] - s["lo"])) ** s["beta"] - 1

    def inverse(self, y: torch.Tensor, s: Scalars) -> torch.Tensor:
        # The clip keeps the output inside [lo, hi] whatever the network predicts.
        z = (y / 2 + 0.5).clamp(0, 1)
        return z ** (1 / s["beta"]) * (s["hi"] - s["lo"]) + s["lo"]


@register
class SymPowerTransform(_PowerTransform):
    """Median-based exponent with calibration and the adaptive soft boundary (reference-exact)."""

    name = "sym"

    def fit(self, x: torch.Tensor) -> Scalars:
        st = sym_power_stats(x)
        return {"beta": st.beta, "lo": st.lo, "hi": st.hi}


@register
class GammaTransform(_PowerTransform):
    """Fixed exponent, no boundary: the paper's "gamma 0.5 / 2.0" baselines."""

    name = "gamma"

    def __init__(self, beta: float = 0.5) -> None:
        if not (math.isfinite(beta) and beta > 0):
            raise UsageError(f"gamma exponent must be a positive number, got {beta}")
        self.beta = beta

    def fit(self, x: torch.Tensor) -> Scalars:
        m, M = global_range(x)
        if m == M:
            # DEVIATION (as for sym-power): a constant signal maps to exactly 0.
            return {"beta": 1.0, "lo": m - CONSTANT_PAD, "hi": M + CONSTANT_PAD}
        return {"beta": self.beta, "lo": m, "hi": M}
