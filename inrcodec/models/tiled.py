"""Tiling: one small periodic MLP per tile of the coordinate box, run together with bmm.

A CPU lever, not a method from the papers. A 3×256 network spends ~130k multiply-adds on
every pixel; 24 tiles of 3×64 networks spend ~9k, hold twice the parameters between them,
and so fit far more epochs in the same minutes. Each tile sees its own coordinates
rescaled to [-1, 1], so every tile network is an ordinary SIREN/FINER/SPDER net with the
reference initialisation (they are built by the arch's own builder and stacked).

Points are grouped by tile with a sort, padded to the largest group and pushed through
batched matmuls; the padding is computed and thrown away (about 10 % for random batches).
Tiles meet without overlap, so an upscaled decode can show faint seams at tile borders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from inrcodec.models.siren import PeriodicMLP


class TiledMLP(nn.Module):
    """`tiles[d]` equal tiles along input axis d, each an independent copy of `nets[0]`'s
    layout with its own weights (`nets` holds one freshly initialised net per tile)."""

    def __init__(self, nets: Sequence[PeriodicMLP], tiles: Sequence[int]) -> None:
        super().__init__()
        if not all(isinstance(net, PeriodicMLP) for net in nets):
            raise ValueError("only SIREN-layout nets (siren, finer*, spder) can be tiled")
        if math.prod(tiles) != len(nets):
            raise ValueError("one net per tile is needed")
        layers = [list(net.net) for net in nets]
        self.register_buffer("tiles", torch.tensor(tiles, dtype=torch.long), persistent=False)
        strides = [math.prod(tiles[d + 1 :]) for d in range(len(tiles))]
        self.register_buffer("strides", torch.tensor(strides, dtype=torch.long), persistent=False)
        self.activations = [(layer.activation, layer.omega) for layer in layers[0][:-1]]
        linears = [[getattr(layer, "linear", layer) for layer in net] for net in layers]
        self.layers = nn.ModuleList(
            _TiledLinear([net[i] for net in linears]) for i in range(len(linears[0]))
        )
        self.bytes_per_point = 4 * 5 * max(layer.weight.shape[1] for layer in self.layers)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        x, slot, position, inverse, active = self._route(coords)
        h = x
        for i, layer in enumerate(self.layers):
            w, b = (layer.weight, layer.bias)
            if active is not None:
                w, b = w[active], b[active]
            h = torch.baddbmm(b, h.to(w.dtype), w.transpose(1, 2))
            if i < len(self.activations):
                activation, omega = self.activations[i]
                h = activation(h, omega)
        return h[slot, position][inverse].real

    @torch.compiler.disable
    def _route(self, coords: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Group the points by tile: (padded local coords (tiles, longest, dims), each point's
        slot and position in it, the inverse of the sort, the tiles present or None for all).

        Kept out of torch.compile: its shapes depend on the data. The padded length is
        rounded up so that random batches share a few shapes for the compiled layers.
        """
        scaled = (coords + 1) * (0.5 * self.tiles)
        cell = scaled.floor().clamp_(min=0).minimum(self.tiles - 1)
        local = (scaled - cell) * 2 - 1
        tile = (cell.long() * self.strides).sum(-1)
        order = torch.argsort(tile)
        tile_sorted = tile[order]
        counts = torch.bincount(tile_sorted, minlength=len(self.layers[0].weight))
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


class _TiledLinear(nn.Module):
    """Linear layers of every tile: weight (tiles, out, in) as nn.Linear's per tile, bias
    (tiles, 1, out) to broadcast over the points in baddbmm."""

    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in linears]))
        self.bias = nn.Parameter(torch.stack([lin.bias.detach()[None] for lin in linears]))
