"""The tiled wrapper (models/tiled.py): any Linear-based net, the stored layout, memory figure."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from inrcodec.coords import grid_coords
from inrcodec.models import build_model
from inrcodec.models.tiled import TiledMLP
from inrcodec.quantize import kept_in_fp16
from inrcodec.render import chunk_points

TILEABLE = ["siren", "finer", "finer-gauss", "finer-wavelet", "spder"]


def tiled_and_nets(name: str, tiles: list[int], **hp) -> tuple[nn.Module, list[nn.Module]]:
    """A tiled net and, drawn from the same seed, the per-tile nets it must equal."""
    torch.manual_seed(0)
    tiled = build_model(name, 2, 3, tiles=tiles, **hp)
    torch.manual_seed(0)
    nets = [build_model(name, 2, 3, **hp) for _ in range(math.prod(tiles))]
    return tiled, nets


def local_coordinates(coords: torch.Tensor, tiles: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(tile index, coordinates rescaled to [-1, 1] within the tile) of each point."""
    counts = torch.tensor(tiles)
    scaled = (coords + 1) * 0.5 * counts
    cell = scaled.floor().clamp(max=counts - 1)
    index = (cell[:, 0] * tiles[1] + cell[:, 1]).long()
    return index, (scaled - cell) * 2 - 1


@pytest.mark.parametrize("name", TILEABLE)
def test_every_tileable_arch_is_one_reference_net_per_tile(name):
    tiled, nets = tiled_and_nets(name, [3, 2], width=8, depth=1)
    coords = torch.rand(300, 2) * 2 - 1
    index, local = local_coordinates(coords, [3, 2])
    expected = torch.stack([nets[int(t)](p[None])[0] for t, p in zip(index, local, strict=True)])
    torch.testing.assert_close(tiled(coords), expected, atol=1e-5, rtol=1e-5)


def test_any_net_of_linear_layers_can_be_tiled():
    """The wrapper knows no layout: a plain Sequential tiles as well as the sine nets."""
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 1)) for _ in range(4)]
    tiled = TiledMLP(nets, [2, 2])
    coords = torch.rand(50, 2) * 2 - 1
    index, local = local_coordinates(coords, [2, 2])
    expected = torch.stack([nets[int(t)](p) for t, p in zip(index, local, strict=True)])
    torch.testing.assert_close(tiled(coords), expected)
    with pytest.raises(ValueError, match="can be tiled"):
        TiledMLP([nn.Sequential(nn.Linear(2, 5), nn.LayerNorm(5))], [1])


def test_gradients_equal_the_per_tile_nets_gradients():
    tiled, nets = tiled_and_nets("finer", [2, 3], width=8, depth=1)
    coords = torch.rand(400, 2) * 2 - 1  # every tile present
    index, local = local_coordinates(coords, [2, 3])
    tiled(coords).square().sum().backward()
    for tile, net in enumerate(nets):
        net(local[index == tile]).square().sum().backward()
    for (name, stacked), *per_tile in zip(
        tiled.named_parameters(), *(net.parameters() for net in nets), strict=True
    ):
        expected = torch.stack([p.grad.reshape(stacked.shape[1:]) for p in per_tile])
        torch.testing.assert_close(stacked.grad, expected, msg=name)


@pytest.mark.parametrize("name", ["finer", "finer-wavelet"])
def test_parameters_keep_the_stored_order_shapes_and_layout(name):
    """Files written before must load bit for bit: layer by layer, weight (tiles, out, in)
    then bias (tiles, 1, out), each tile's values as its own net's."""
    tiled, nets = tiled_and_nets(name, [2, 3], width=16, depth=2)
    stacked = list(tiled.named_parameters())
    per_tile = [list(net.parameters()) for net in nets]
    assert len(stacked) == 2 * 4  # the first layer, two hidden ones and the head
    for i, (_, value) in enumerate(stacked):
        expected = torch.stack([params[i] for params in per_tile])
        if i % 2:  # bias
            expected = expected[:, None]
        assert value.shape == expected.shape and torch.equal(value, expected)


def test_the_same_tensors_stay_fp16_as_with_the_former_names():
    tiled = build_model("finer", 2, 3, width=16, depth=2, tiles=[2, 2])
    names = [name for name, _ in tiled.named_parameters()]
    former = [f"layers.{i}.{kind}" for i in range(4) for kind in ("weight", "bias")]
    assert kept_in_fp16(names) == kept_in_fp16(former)
    assert kept_in_fp16(names) == [True, True, False, True, False, True, False, True]


def test_a_chunk_touching_some_tiles_equals_the_whole_batch():
    tiled = build_model("spder", 2, 3, width=8, depth=1, tiles=[2, 3])
    coords = torch.rand(500, 2) * 2 - 1
    left = coords[:, 1] < -0.5
    torch.testing.assert_close(tiled(coords[left]), tiled(coords)[left])


@pytest.mark.parametrize("name", TILEABLE)
def test_memory_figure_is_at_least_the_inner_nets(name):
    inner = build_model(name, 2, 3, width=64, depth=3)
    tiled = build_model(name, 2, 3, width=64, depth=3, tiles=[4, 6])
    budget = 256 * 2**20
    assert chunk_points(tiled, budget) <= chunk_points(inner, budget)
    if name in ("spder", "finer-wavelet"):  # they declare their own figure
        assert tiled.bytes_per_point >= inner.bytes_per_point


def peak_bytes_per_point(model: nn.Module, coords: torch.Tensor) -> float:
    """Peak bytes held by the allocator during one inference pass, per coordinate."""
    activities = [ProfilerActivity.CPU]
    with torch.inference_mode(), profile(activities=activities, profile_memory=True) as prof:
        model(coords)
    live = peak = 0
    for event in prof.profiler.kineto_results.events():
        if event.name() == "[memory]":
            live += event.nbytes()
            peak = max(peak, live)
    return peak / len(coords)


@pytest.mark.parametrize("name", ["finer", "finer-wavelet", "spder"])
def test_memory_figure_bounds_the_measured_peak_of_a_decode_chunk(name):
    """The worst grid chunk spans one row of tiles and a little of the rows on either side:
    every present tile is padded to a full tile's points, three rows' worth."""
    tiled = build_model(name, 2, 3, width=32, depth=2, tiles=[3, 2])
    shape = (96, 128)
    row_of_tiles = 32 * 128
    worst = grid_coords(shape, "cpu", row_of_tiles - 128, 2 * row_of_tiles + 128)
    measured = peak_bytes_per_point(tiled, worst)
    assert measured <= 1.2 * tiled.bytes_per_point
    assert measured >= 0.5 * tiled.bytes_per_point  # not needlessly small chunks either
    assert peak_bytes_per_point(tiled, torch.rand(4096, 2) * 2 - 1) <= tiled.bytes_per_point


def _decode(model: nn.Module, shape: tuple[int, int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(grid_coords(shape)).reshape(*shape, -1)


def test_blended_tiles_reproduce_the_training_grid_exactly():
    """With its training grid recorded, a tiled net decodes the training samples from the
    tile that was trained on each, bit for bit."""
    torch.manual_seed(0)
    blended = build_model("finer", 2, 3, width=8, depth=1, tiles=[3, 4], tile_grid=[30, 41])
    plain = build_model("finer", 2, 3, width=8, depth=1, tiles=[3, 4])
    plain.load_state_dict(blended.state_dict())
    assert torch.equal(_decode(blended.eval(), (30, 41)), _decode(plain.eval(), (30, 41)))


def test_blended_tiles_show_no_seam_at_twice_the_resolution():
    """Independent nets disagree at their common border; the blend spreads the change over
    the gap between the tiles' samples instead of a jump between two adjacent pixels."""
    torch.manual_seed(1)
    blended = build_model("siren", 2, 1, width=16, depth=1, tiles=[1, 2], tile_grid=[8, 20])
    plain = build_model("siren", 2, 1, width=16, depth=1, tiles=[1, 2])
    plain.load_state_dict(blended.state_dict())
    border = 20  # the tiles meet half-way along the second axis: column 19.5 of 40 at 2x

    def jump(model: nn.Module) -> float:
        row = _decode(model.eval(), (16, 40))[8, :, 0]
        return float((row[border] - row[border - 1]).abs())

    assert jump(plain) > 0.05  # random nets: a real seam
    assert jump(blended) < 0.6 * jump(plain)  # the gap spans two pixels at 2x
