"""The predictive coder of latent grids (rate/neighbours.py): exact round trips in 1, 2 and
3 dimensions, platform-free laws, the rate it saves on structured grids, corrupt streams."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inrcodec.errors import InrcodecError
from inrcodec.models.grid import level_shape
from inrcodec.rate import coding, latents, neighbours


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([(37,), (9, 13), (1, 1), (2, 1), (4, 5, 6), (16, 24)]),
    st.floats(0.0, 12.0),
    st.integers(0, 2**31 - 1),
    st.booleans(),
)
def test_any_grid_round_trips(shape, spread, seed, with_parent):
    rng = np.random.default_rng(seed)
    codes = np.rint(rng.laplace(0, spread, shape)).astype(np.int32)
    parent = None
    if with_parent:
        parent = np.rint(rng.laplace(0, 2, level_shape(list(shape), 1))).astype(np.int32)
    coded = neighbours.encode(codes, parent)
    assert coded.coder == "nbr"
    back = neighbours.decode(coded, shape, parent)
    assert back.dtype == np.int32 and np.array_equal(back, codes)


def test_the_passes_see_decoded_neighbours_on_every_side():
    order = neighbours._pass_of((4, 4))
    assert order.tolist()[:2] == [[0, 2, 0, 2], [2, 1, 2, 1]]
    assert set(np.unique(neighbours._pass_of((3, 4, 5))).tolist()) == {0, 1, 2, 3}


def test_the_ladder_is_the_formula():
    """Decimal arithmetic gives what the formula says (checked here against the float
    library, which only the test may use: no platform's exp() enters the decoder)."""
    formula = [min(65535, round(65536 * math.exp(-(2 ** (6 - s / 16))))) for s in range(256)]
    assert list(neighbours.ladder()) == formula


def test_smooth_and_clustered_grids_cost_less_than_the_factorized_coders():
    rng = np.random.default_rng(3)
    y, x = np.indices((48, 64))
    smooth = 4 * np.sin(x / 5) * np.cos(y / 7) + rng.laplace(0, 0.3, (48, 64))
    smooth = np.rint(smooth).astype(np.int32)
    factorized = len(coding.encode(smooth).data)  # the range coder or LZMA, the shorter
    assert len(neighbours.encode(smooth, None).data) < 0.85 * factorized
    # latents that are zero wherever their parent is: the parent's classes find it
    parent = np.where(rng.random((24, 32)) < 0.1, 3, 0).astype(np.int32)
    under = np.kron(parent, np.ones((2, 2), np.int32)) != 0
    child = np.where(under, np.rint(rng.laplace(0, 2, (48, 64))), 0).astype(np.int32)
    with_parent = len(neighbours.encode(child, parent).data)
    assert with_parent < 0.8 * len(coding.encode(child).data)
    assert with_parent < 0.8 * len(neighbours.encode(child, None).data)


def test_a_file_keeps_the_shortest_stream_of_each_grid():
    rng = np.random.default_rng(4)
    noise = np.rint(rng.laplace(0, 2, (32, 32))).astype(np.int32)  # nothing to predict
    options = [len(coding.encode(noise).data), len(neighbours.encode(noise, None).data)]
    assert len(latents.encode_factorized(noise, None).data) == min(options)


def test_a_corrupt_stream_is_refused_or_bounded():
    rng = np.random.default_rng(5)
    codes = np.rint(rng.laplace(0, 3, (20, 30))).astype(np.int32)
    coded = neighbours.encode(codes, None)
    for cut in (1, 4, len(coded.data) // 2):
        broken = coding.Coded("nbr", coded.bound, 0, coded.data[:-cut])
        try:
            back = neighbours.decode(broken, codes.shape, None)
        except InrcodecError:
            continue
        assert back.shape == codes.shape
    no_laws = coding.Coded("nbr", coded.bound, 0, b"\x00\x00" + coded.data[2:])
    with pytest.raises(InrcodecError, match=r"lacks the law|malformed"):
        neighbours.decode(no_laws, codes.shape, None)
    with pytest.raises(InrcodecError, match="malformed"):
        neighbours.decode(coding.Coded("nbr", 3, 0, b"\xff\xff\x01"), codes.shape, None)
    with pytest.raises(InrcodecError, match="no bytes"):
        neighbours.decode(coding.Coded("nbr", 0, 0, b"\x01"), codes.shape, None)
    with pytest.raises(InrcodecError, match="parent"):
        neighbours.encode(codes, np.zeros((3, 3, 3), np.int32))
