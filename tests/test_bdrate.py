"""Bjøntegaard deltas (inrcodec.metrics.bd_rate / bd_psnr) on synthetic curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inrcodec.metrics import bd_psnr, bd_rate

RATES = np.array([0.2, 0.4, 0.8, 1.6])


def quality(rates: np.ndarray) -> np.ndarray:
    """A concave, JPEG-like PSNR curve: about 4 dB per doubling of the rate, flattening."""
    x = np.log2(rates)
    return 30.0 + 4.0 * x - 0.3 * x**2


def test_identical_curves_give_zero() -> None:
    assert bd_rate(RATES, quality(RATES), RATES, quality(RATES)) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(RATES, quality(RATES), RATES, quality(RATES)) == pytest.approx(0.0, abs=1e-9)


def test_half_the_rate_is_minus_fifty_percent() -> None:
    assert bd_rate(RATES, quality(RATES), RATES / 2, quality(RATES)) == pytest.approx(-50, abs=0.5)
    assert bd_rate(RATES / 2, quality(RATES), RATES, quality(RATES)) == pytest.approx(100, abs=1)


def test_one_db_up_is_plus_one_db() -> None:
    gain = bd_psnr(RATES, quality(RATES), RATES, quality(RATES) + 1.0)
    assert gain == pytest.approx(1.0, abs=1e-6)
    assert bd_rate(RATES, quality(RATES), RATES, quality(RATES) + 1.0) < 0


def test_no_overlap_is_nan() -> None:
    low, high = quality(RATES), quality(RATES) + 20.0
    assert math.isnan(bd_rate(RATES, low, RATES, high))
    assert math.isnan(bd_psnr(RATES, low, RATES * 100, low))


def test_few_points_use_a_lower_degree() -> None:
    two = RATES[1:3]
    assert bd_rate(RATES, quality(RATES), two / 2, quality(two)) == pytest.approx(-50, abs=0.5)
    assert math.isnan(bd_rate(RATES, quality(RATES), two[:1], quality(two[:1])))


def test_dominated_points_are_dropped() -> None:
    """A point with more rate and less PSNR than another is not on the curve; order is free."""
    rates = np.append(RATES, 1.0)[::-1]
    psnrs = np.append(quality(RATES), quality(np.array([0.4]))[0] - 1.0)[::-1]
    assert bd_rate(RATES, quality(RATES), rates, psnrs) == pytest.approx(0.0, abs=1e-9)
