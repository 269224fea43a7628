"""Quantization steps chosen by rate–distortion, one power of two per tensor.

As Cool-chic's `nnquant` does for its networks: each tensor (a layer's weight or bias,
the first layer included, with no special case) may take any step 2^e; the choice
minimises D + λ·R, with D the distortion of the decoded signal and R its bits.

`measure` builds, for every tensor, a table of (exponent, estimated bits, distortion
with only that tensor quantized) over the steps worth trying: from one fine enough to
hold ~2^13 levels over the tensor's range down to the coarsest that keeps any nonzero
code, stopping early once the distortion explodes. Distortions are nearly additive
across tensors at these step sizes, so the Lagrangian choice per tensor is then instant
for any λ (`choose`), and a byte budget is met by bisecting λ (`choose_within`). The
caller judges the joint result on the real decoded file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from inrcodec.rate import coding

DEFAULT_LAMBDA = 1e-5  # auto precision without a target (see `choose`)
FINEST_LEVELS = 1 << 13  # the finest step tried still spans ±2^13 codes
# Stop coarsening a tensor once D exceeds this many times the unquantized D, and at least
# this D (normalised MSE 1e-2 is 20 dB): no budget makes a worse choice worth measuring.
EXPLODED = 100.0
EXPLODED_FLOOR = 1e-2


@dataclass(frozen=True)
class Option:
    exponent: int
    bits: float  # estimated entropy-coded size
    distortion: float  # D with only this tensor quantized at 2^exponent


Distortion = Callable[[Mapping[str, np.ndarray]], float]  # replaced tensors -> D


def candidate_exponents(values: np.ndarray) -> range:
    """Exponents from the finest useful step (2^13 levels over max |v|) to the coarsest
    that still leaves a nonzero code."""
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak == 0 or not math.isfinite(peak):
        return range(0, 1)
    finest = max(coding.MIN_EXPONENT, math.floor(math.log2(peak / FINEST_LEVELS)))
    coarsest = min(coding.MAX_EXPONENT, math.floor(math.log2(peak)) + 1)
    return range(finest, coarsest + 1)


def rounded(values: np.ndarray, exponent: int) -> np.ndarray:
    """What the decoder reads back for `values` stored at step 2^exponent."""
    return coding.from_codes(coding.to_codes(values, exponent), exponent)


def measure(tensors: Mapping[str, np.ndarray], distortion: Distortion) -> dict[str, list[Option]]:
    """Per tensor (stored real values): the options worth choosing from."""
    base = distortion({})
    tables = {}
    for name, values in tensors.items():
        options = []
        for exponent in candidate_exponents(values):
            codes = coding.to_codes(values, exponent)
            bits = coding.estimated_bits(codes)
            d = distortion({name: coding.from_codes(codes, exponent).reshape(values.shape)})
            options.append(Option(exponent, bits, d))
            if d > max(EXPLODED * base, EXPLODED_FLOOR):
                break
        tables[name] = options
    return tables


def choose(tables: Mapping[str, list[Option]], lam: float, samples: int) -> dict[str, int]:
    """Per tensor, the exponent minimising D + λ·bits/samples (bits per sample)."""
    return {
        name: min(options, key=lambda o: o.distortion + lam * o.bits / samples).exponent
        for name, options in tables.items()
    }


def total_bits(tables: Mapping[str, list[Option]], exponents: Mapping[str, int]) -> float:
    return sum(
        next(o.bits for o in options if o.exponent == exponents[name])
        for name, options in tables.items()
    )


def choose_within(
    tables: Mapping[str, list[Option]], budget_bits: float, samples: int
) -> tuple[dict[str, int], float]:
    """(exponents, λ): the smallest λ (best quality) whose estimated bits fit the budget.

    Bits fall as λ grows, so λ is bisected on a log scale. If even the coarsest choice
    does not fit, it is returned anyway and the caller refuses the budget."""
    low, high = 1e-12, 1e4
    if total_bits(tables, choose(tables, low, samples)) <= budget_bits:
        return choose(tables, low, samples), low
    for _ in range(60):
        middle = math.sqrt(low * high)
        if total_bits(tables, choose(tables, middle, samples)) <= budget_bits:
            high = middle
        else:
            low = middle
    return choose(tables, high, samples), high
