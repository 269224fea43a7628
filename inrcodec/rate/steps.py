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


@dataclass(frozen=True)
class Tables:
    """Per tensor, the options worth choosing from; and D with nothing rounded."""

    base: float
    options: dict[str, list[Option]]


def measure(tensors: Mapping[str, np.ndarray], distortion: Distortion) -> Tables:
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
    return Tables(base, tables)


def choose(tables: Tables, lam: float, samples: int) -> dict[str, int]:
    """Per tensor, the exponent minimising D + λ·bits/samples (bits per sample)."""
    return {name: _best(options, lam, samples).exponent for name, options in tables.options.items()}


def _best(options: list[Option], lam: float, samples: int) -> Option:
    return min(options, key=lambda o: o.distortion + lam * o.bits / samples)


def total_bits(tables: Tables, exponents: Mapping[str, int]) -> float:
    return sum(_chosen(options, exponents[name]).bits for name, options in tables.options.items())


def estimated_distortion(tables: Tables, exponents: Mapping[str, int]) -> float:
    """D of the whole choice, adding each tensor's increase over the unrounded D."""
    return tables.base + sum(
        _chosen(options, exponents[name]).distortion - tables.base
        for name, options in tables.options.items()
    )


def _chosen(options: list[Option], exponent: int) -> Option:
    return next(o for o in options if o.exponent == exponent)


def choose_within(tables: Tables, budget_bits: float, samples: int) -> tuple[dict[str, int], float]:
    """(exponents, λ): the smallest λ (best quality) whose estimated bits fit the budget.
    If even the coarsest choice does not fit, it is returned and the caller refuses."""
    _, lam = _boundary(lambda lam: total_bits(tables, choose(tables, lam, samples)) <= budget_bits)
    return choose(tables, lam, samples), lam


def choose_for_distortion(
    tables: Tables, most: float, samples: int
) -> tuple[dict[str, int], float]:
    """(exponents, λ): the largest λ (fewest bits) whose estimated D stays at most `most`
    (`--target-psnr`); the finest choice if none does."""
    lam, _ = _boundary(
        lambda lam: estimated_distortion(tables, choose(tables, lam, samples)) > most
    )
    return choose(tables, lam, samples), lam


def _boundary(holds: Callable[[float], bool]) -> tuple[float, float]:
    """(the largest λ where `holds` is false, the smallest where it is true), bisected on a
    log scale over [1e-12, 1e4], for a `holds` that is false at small λ and true at large
    λ (bits fall and D rises as λ grows)."""
    low, high = 1e-12, 1e4
    if holds(low):
        return low, low
    for _ in range(60):
        middle = math.sqrt(low * high)
        if holds(middle):
            high = middle
        else:
            low = middle
    return low, high
