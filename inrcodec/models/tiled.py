"""Tiling: one small network per tile of the coordinate box, all tiles run at once.

An engineering lever for the CPU, not a method from the papers. A 3×256 network spends
~130k multiply-adds on every pixel; 24 tiles of 3×64 networks spend ~9k, hold twice the
parameters between them, and so fit far more epochs in the same minutes. Each tile sees
its own coordinates rescaled to [-1, 1] and has its own net, built by the arch's builder
with the reference initialisation.

The wrapper does not know the inner layout. It needs only that every parameter of the
inner net sits in an `nn.Linear` with a bias and that its forward otherwise applies only
elementwise or last-axis operations (true of SIREN, FINER, FINER++ and SPDER; SL2A is
refused). The tiles' Linear weights are stacked, and a copy of the first net runs its own
forward with each Linear swapped for a batched one, on (tiles, points, features) tensors.
Its memory per point is the inner net's, times the padding. (`torch.vmap` over
`functional_call` would need no Linear, but cannot run SPDER's custom autograd function,
which has no `setup_context`, and trained ~8 % slower in eager mode.)

Points are grouped by tile with a sort, padded to the largest group and pushed through
batched matmuls; the padding is computed and thrown away (about 10 % for random batches).

Tiles meet without overlap. Between the last training sample of one tile and the first of
the next, an upscaled decode used to switch nets abruptly, a visible seam at `--scale 2`.
Files that record their training grid (`tile_grid`) decode such points as a blend of both
tiles' nets, linear in the position across that one-sample gap (bilinear at corners): at
the training samples the blend is the tile that was trained there, so `--scale 1`
reproduces the training grid exactly, and in between the output is continuous.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

# Worst case of padded over real points in a decode chunk: a chunk that just spans one row
# of tiles along the first axis, plus a few points in the rows on either side, computes
# three full rows. Random training batches pad far less.
DECODE_PADDING = 3
# Routing tensors (local coordinates, sort order, slots, inverse), bytes per real point
# (measured ~100 with 1-wide layers).
ROUTING_BYTES = 128


class TiledMLP(nn.Module):
    """`tiles[d]` equal tiles along input axis d; `nets` holds one freshly built net per tile,
    all of one layout.

    Parameters keep the inner net's names and order; a weight is stacked to
    (tiles, out, in), a bias to (tiles, 1, out).
    """

    def __init__(
        self,
        nets: Sequence[nn.Module],
        tiles: Sequence[int],
        grid: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if math.prod(tiles) != len(nets):
            raise ValueError("one net per tile is needed")
        inner = nets[0]
        for name, module in inner.named_modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                continue
            if next(module.parameters(recurse=False), None) is not None:
                raise ValueError(
                    "only nets whose parameters all sit in nn.Linear layers with a bias can be "
                    f"tiled (siren, finer*, spder); {type(module).__name__} {name!r} has others"
                )
        self.net = copy.deepcopy(inner)
        for name, module in inner.named_modules():
            if isinstance(module, nn.Linear):
                parent, _, child = name.rpartition(".")
                stacked = _TiledLinear([net.get_submodule(name) for net in nets])
                setattr(self.net.get_submodule(parent), child, stacked)
        self.tile_count = len(nets)
        self.register_buffer("tiles", torch.tensor(tiles, dtype=torch.long), persistent=False)
        strides = [math.prod(tiles[d + 1 :]) for d in range(len(tiles))]
        self.register_buffer("strides", torch.tensor(strides, dtype=torch.long), persistent=False)
        self.bytes_per_point = DECODE_PADDING * _inner_bytes_per_point(inner) + ROUTING_BYTES
        self.grid = None if grid is None else list(grid)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        if self.grid is None or self.training or torch.is_grad_enabled():
            return self._run(coords, self._cells(coords))
        return self._blended(coords)

    def _cells(self, coords: torch.Tensor) -> torch.Tensor:
        """Each point's tile per axis, as training routes it."""
        scaled = (coords + 1) * (0.5 * self.tiles)
        return scaled.floor().clamp_(min=0).minimum(self.tiles - 1)

    def _blended(self, coords: torch.Tensor) -> torch.Tensor:
        """Decode: each point from its own tile, blended with a neighbour tile inside the
        one-sample gap between two tiles' training samples (see the module docstring)."""
        cells = self._cells(coords)
        offsets, weights = self._neighbours(coords, cells)
        out = None
        for combo in itertools.product((False, True), repeat=coords.shape[-1]):
            weight = torch.ones_like(coords[:, 0])
            shift = torch.zeros_like(cells)
            for axis, use in enumerate(combo):
                weight = weight * (weights[:, axis] if use else 1 - weights[:, axis])
                if use:
                    shift[:, axis] = offsets[:, axis]
            chosen = (weight > 0).nonzero().squeeze(1)
            if len(chosen) == 0:
                continue
            part = self._run(coords[chosen], cells[chosen] + shift[chosen])
            if out is None:
                out = part.new_zeros(len(coords), part.shape[-1])
            out.index_add_(0, chosen, part * weight[chosen, None])
        assert out is not None  # the own-tile combination always carries weight
        return out

    def _neighbours(
        self, coords: torch.Tensor, cells: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per point and axis: the neighbour tile's offset (−1, 0 or +1) and its weight.

        In sample units u = (x + 1)/2·(n − 1), tile c's samples start at ⌈c(n − 1)/T⌉; a
        point between the last sample of one tile and the first of the next gets weight
        (distance from its own tile's sample) for the other tile. Points at a sample
        (within 1e-4) keep weight 0: the training grid decodes as it was trained."""
        size = torch.tensor(self.grid, device=coords.device, dtype=coords.dtype)
        u = (coords + 1) * 0.5 * (size - 1)
        span = (size - 1) / self.tiles
        first = torch.ceil(cells * span - 1e-4)  # first sample of the own tile
        last = torch.ceil((cells + 1) * span - 1e-4) - 1  # its last sample
        below = (cells > 0) & (u < first)
        above = (cells < self.tiles - 1) & (u > last)
        weight = torch.where(below, first - u, torch.where(above, u - last, 0))
        weight = torch.where((u - u.round()).abs() < 1e-4, 0, weight).clamp(0, 1)
        offsets = below.long() * -1 + above.long()
        return offsets, weight

    def _run(self, coords: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """The nets of `cells` (one per point) at the points' coordinates local to them."""
        x, slot, position, inverse, active = self._route(coords, cells)
        if active is None:
            h = self.net(x)
        else:  # a decode chunk touches a few tiles: run only theirs
            present = {name: p[active] for name, p in self.net.named_parameters()}
            h = functional_call(self.net, present, (x,))
        return h[slot, position][inverse]

    @torch.compiler.disable
    def _route(self, coords: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Group the points by tile: (padded local coords (tiles, longest, dims), each point's
        slot and position in it, the inverse of the sort, the tiles present or None for all).

        Kept out of torch.compile: its shapes depend on the data. The padded length is
        rounded up so that random batches share a few shapes for the compiled layers.
        """
        scaled = (coords + 1) * (0.5 * self.tiles)
        local = (scaled - cell) * 2 - 1  # beyond [-1, 1] for a neighbour's blend
        tile = (cell.long() * self.strides).sum(-1)
        order = torch.argsort(tile)
        tile_sorted = tile[order]
        counts = torch.bincount(tile_sorted, minlength=self.tile_count)
        active = counts.nonzero().squeeze(1)
        slot_of_tile = torch.full_like(counts, -1)
        slot_of_tile[active] = torch.arange(len(active), device=coords.device)
        starts = counts.cumsum(0) - counts
        slot = slot_of_tile[tile_sorted]
        position = torch.arange(len(order), device=coords.device) - starts[tile_sorted]
        longest = -(-int(counts.max()) // 128) * 128
        x = local.new_zeros(len(active), longest, local.shape[-1])
        x[slot, position] = local[order]
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=coords.device)
        return x, slot, position, inverse, None if len(active) == len(counts) else active


def _inner_bytes_per_point(net: nn.Module) -> int:
    """The net's own activation bytes per point: its `bytes_per_point`, else render.py's
    default for it (four fp32 activations of its widest layer)."""
    declared = getattr(net, "bytes_per_point", None)
    if declared is not None:
        return declared
    return 4 * 4 * max(p.shape[0] for p in net.parameters() if p.dim() == 2)


class _TiledLinear(nn.Module):
    """The Linear layers of every tile: weight (tiles, out, in) as nn.Linear's per tile, bias
    (tiles, 1, out) to broadcast over the points in baddbmm."""

    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in linears]))
        self.bias = nn.Parameter(torch.stack([lin.bias.detach()[None] for lin in linears]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight.transpose(1, 2))
