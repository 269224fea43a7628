"""The predictive coders of latent grids (rate/neighbours.py): exact round trips in 1, 2 and
3 dimensions for every scheme, platform-free laws, the rate they save on structured grids,
corrupt streams."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inrcodec.errors import InrcodecError
from inrcodec.models.grid import level_shape
from inrcodec.rate import coding, latents, neighbours

SCHEMES = sorted(neighbours.SCHEMES)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([(37,), (9, 13), (1, 1), (2, 1), (1, 6), (4, 5, 6), (16, 24)]),
    st.floats(0.0, 12.0),
    st.integers(0, 2**31 - 1),
    st.booleans(),
    st.sampled_from(SCHEMES),
)
def test_any_grid_round_trips(shape, spread, seed, with_parent, coder):
    rng = np.random.default_rng(seed)
    codes = np.rint(rng.laplace(0, spread, shape)).astype(np.int32)
    parent = None
    if with_parent:
        parent = np.rint(rng.laplace(0, 2, level_shape(list(shape), 1))).astype(np.int32)
    coded = neighbours.encode(codes, parent, coder)
    assert coded.coder == coder
    back = neighbours.decode(coded, shape, parent)
    assert back.dtype == np.int32 and np.array_equal(back, codes)


def test_the_passes_see_decoded_neighbours_on_every_side():
    order = neighbours._pass_of((4, 4))
    assert order.tolist()[:2] == [[0, 2, 0, 2], [2, 1, 2, 1]]
    assert set(np.unique(neighbours._pass_of((3, 4, 5))).tolist()) == {0, 1, 2, 3}


def test_the_interlaced_schedule_visits_every_latent_once_coarsest_first():
    for shape in [(5,), (6, 9), (1, 7), (3, 4, 5)]:
        seen = np.zeros(shape, dtype=int)
        schedule = neighbours._schedule(shape, neighbours.SCHEMES["ilv"])
        assert schedule[0][1] == 0 and all(k > 0 for _, k in schedule[1:])
        levels = [level for level, _ in schedule]
        assert levels == sorted(levels, reverse=True)
        for level, k in schedule:
            view, order = neighbours._level(seen, level)
            view[order == k] += 1
        assert (seen == 1).all(), shape


def test_the_median_is_kept_exactly_and_each_scheme_centres_its_law_on_it():
    """A latent of pass 1 in 2-D sees its four diagonal neighbours: the median of
    (1, 2, 4, 9) is 3, of (1, 2, 3, 9) 2.5, of (−3, −2, −1, 5) −1.5. `ilv` rounds half up
    (3, 3, −1); `ilh` keeps the half: its law is centred on base + ½ (2 + ½, −2 + ½)."""
    cases = [((1, 2, 4, 9), 6, 3, (3, False)), ((1, 2, 3, 9), 5, 3, (2, True))]
    cases.append(((-3, -2, -1, 5), -3, -1, (-2, True)))
    for corners, twice, rounded, (base, half) in cases:
        grid = np.zeros((3, 3), dtype=np.int64)
        grid[0, 0], grid[0, 2], grid[2, 0], grid[2, 2] = corners
        order = neighbours._pass_of(grid.shape)
        for coder, expected in (("ilv", (rounded, False)), ("ilh", (base, half))):
            scheme = neighbours.SCHEMES[coder]
            doubled, _ = neighbours._contexts(grid, order, 1, np.zeros_like(grid), scheme)
            assert doubled.tolist() == [twice]  # the one latent of pass 1, at (1, 1)
            centre = neighbours._centres(doubled, scheme)
            assert (int(centre[0][0]), bool(centre[1][0])) == expected


def test_keeping_the_half_codes_a_smooth_grid_shorter():
    """On a smooth grid half the medians lie between two integers; `ilv` rounds them up,
    so its residuals lean negative, and `ilh`'s law centred on the half codes them shorter
    (9 % here; 2.9 % of a trained 1-bpp Kodak file's latents)."""
    rng = np.random.default_rng(3)
    y, x = np.indices((96, 128))
    smooth = np.rint(4 * np.sin(x / 5) * np.cos(y / 7) + rng.laplace(0, 0.3, (96, 128)))
    codes = smooth.astype(np.int32)
    ilv, ilh = (len(neighbours.encode(codes, None, c).data) for c in ("ilv", "ilh"))
    assert ilh < 0.95 * ilv


def test_the_half_centred_law_is_the_geometric_law_moved_by_half_a_step():
    from inrcodec.rate.coding import geometric_table, half_centred_table

    whole, half = geometric_table(6, 40000), half_centred_table(6, 40000)
    assert len(half) == len(whole) + 1 and half.sum() == pytest.approx(1)
    assert half[6] == half[7] and np.allclose(half[::-1], half)  # −0 and +1 from ½
    assert np.allclose(half[7:] / half[7], whole[6:] / whole[6])  # the same decay


def test_the_ladder_is_the_formula():
    """Decimal arithmetic gives what the formula says (checked here against the float
    library, which only the test may use: no platform's exp() enters the decoder)."""
    formula = [min(65535, round(65536 * math.exp(-(2 ** (6 - s / 16))))) for s in range(256)]
    assert list(neighbours.ladder()) == formula


@pytest.mark.parametrize(
    ("coder", "vs_factorized", "vs_no_parent"),
    [("nbr", 0.8, 0.8), ("ilv", 0.95, 1.0), ("ilh", 0.95, 1.0)],
)
def test_smooth_and_clustered_grids_cost_less_than_the_factorized_coders(
    coder, vs_factorized, vs_no_parent
):
    """`ilv` classes by the parent's 3x3 neighbourhood (better on trained grids), so a child
    that is nonzero exactly under its nonzero parents gains less from the parent than
    with `nbr`, which classes by the parent itself."""
    rng = np.random.default_rng(3)
    y, x = np.indices((48, 64))
    smooth = 4 * np.sin(x / 5) * np.cos(y / 7) + rng.laplace(0, 0.3, (48, 64))
    smooth = np.rint(smooth).astype(np.int32)
    factorized = len(coding.encode(smooth).data)  # the range coder or LZMA, the shorter
    assert len(neighbours.encode(smooth, None, coder).data) < 0.85 * factorized
    parent = np.where(rng.random((24, 32)) < 0.1, 3, 0).astype(np.int32)
    under = np.kron(parent, np.ones((2, 2), np.int32)) != 0
    child = np.where(under, np.rint(rng.laplace(0, 2, (48, 64))), 0).astype(np.int32)
    with_parent = len(neighbours.encode(child, parent, coder).data)
    assert with_parent < vs_factorized * len(coding.encode(child).data)
    assert with_parent < vs_no_parent * len(neighbours.encode(child, None, coder).data)


def test_interlacing_codes_a_smooth_grid_shorter():
    """Format 5's pass 0 (a quarter of the latents) is coded without neighbours; the
    interlaced scheme predicts it from the coarser interlaced levels."""
    rng = np.random.default_rng(6)
    y, x = np.indices((64, 96))
    smooth = np.rint(6 * np.sin(x / 9 + y / 13) + rng.laplace(0, 0.3, (64, 96)))
    smooth = smooth.astype(np.int32)
    nbr, ilv = (len(neighbours.encode(smooth, None, c).data) for c in ("nbr", "ilv"))
    assert ilv < 0.9 * nbr


def test_the_planar_scheme_codes_a_3d_grid_slice_by_slice():
    """`ilp` is `ilh` on a grid of 1 or 2 axes; on 3 axes it codes each slice along the
    first from its own neighbours and the coarser grid's co-located slice. Where the
    slices move (video's latent frames under motion), the slices before and after mislead
    the 3-D median, and the planar stream is shorter (on a trained 320x240 clip's grids,
    16.5 % shorter: docs/experiments.md)."""
    rng = np.random.default_rng(8)
    flat = np.rint(rng.laplace(0, 3, (24, 40))).astype(np.int32)
    assert neighbours.encode(flat, None, "ilp").data == neighbours.encode(flat, None, "ilh").data
    y, x = np.mgrid[0:48, 0:64]
    moving = np.stack([np.rint(6 * np.sin((x - 5 * t) / 4 + y / 6)) for t in range(6)])
    moving = (moving + np.rint(rng.laplace(0, 0.4, moving.shape))).astype(np.int32)
    parent = moving[::2, ::2, ::2] // 2
    planar, spatial = (len(neighbours.encode(moving, parent, c).data) for c in ("ilp", "ilh"))
    assert planar < 0.9 * spatial
    assert latents.encode_factorized(moving, parent).coder == "ilp"
    assert neighbours.encoders(3) == (*neighbours.ENCODERS, "ilp")
    assert neighbours.encoders(2) == neighbours.ENCODERS


def test_a_file_keeps_the_shortest_stream_of_each_grid():
    rng = np.random.default_rng(4)
    noise = np.rint(rng.laplace(0, 2, (32, 32))).astype(np.int32)  # nothing to predict
    options = [len(coding.encode(noise, lzma_too=False).data)]
    options += [len(neighbours.encode(noise, None, c).data) for c in neighbours.ENCODERS]
    assert len(latents.encode_factorized(noise, None).data) == min(options)


def test_a_grid_coded_again_is_not_coded_twice(monkeypatch):
    """Packaging codes the same latents several times (budget, attempts, file): the
    stream is remembered by the grid's content, and any change is coded afresh."""
    rng = np.random.default_rng(9)
    grid = np.rint(rng.laplace(0, 2, (24, 40))).astype(np.int32)
    parent = np.rint(rng.laplace(0, 2, (12, 20))).astype(np.int32)
    calls = []
    real = neighbours.encode
    monkeypatch.setattr(neighbours, "encode", lambda *a: calls.append(1) or real(*a))
    first = latents.encode_factorized(grid, parent)
    assert latents.encode_factorized(grid.copy(), parent.copy()) == first
    assert len(calls) == len(neighbours.ENCODERS)
    changed = grid.copy()
    changed[3, 5] += 1
    latents.encode_factorized(changed, parent)
    latents.encode_factorized(grid, None)  # another parent: another context
    assert len(calls) == 3 * len(neighbours.ENCODERS)


@pytest.mark.parametrize("coder", SCHEMES)
def test_a_corrupt_stream_is_refused_or_bounded(coder):
    rng = np.random.default_rng(5)
    codes = np.rint(rng.laplace(0, 3, (20, 30))).astype(np.int32)
    coded = neighbours.encode(codes, None, coder)
    mask = neighbours.SCHEMES[coder].mask_bytes
    for cut in (1, 4, len(coded.data) // 2):
        broken = coding.Coded(coder, coded.bound, 0, coded.data[:-cut])
        try:
            back = neighbours.decode(broken, codes.shape, None)
        except InrcodecError:
            continue
        assert back.shape == codes.shape
    no_laws = coding.Coded(coder, coded.bound, 0, bytes(mask) + coded.data[mask:])
    with pytest.raises(InrcodecError, match=r"lacks the law|malformed"):
        neighbours.decode(no_laws, codes.shape, None)
    with pytest.raises(InrcodecError, match="malformed"):
        neighbours.decode(coding.Coded(coder, 3, 0, b"\xff" * mask + b"\x01"), codes.shape, None)
    with pytest.raises(InrcodecError, match="no bytes"):
        neighbours.decode(coding.Coded(coder, 0, 0, b"\x01"), codes.shape, None)
    with pytest.raises(InrcodecError, match="parent"):
        neighbours.encode(codes, np.zeros((3, 3, 3), np.int32), coder)
