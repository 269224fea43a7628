"""Hierarchical latent grids and a small synthesis network (Cool-chic, C3), at any resolution.

L grids of features at 1, 1/2, …, 1/2^(L−1) of the signal's resolution hold most of the
information; each is interpolated at the query points (real-valued positions, so any output
size works) and the features go through a small MLP per point. The grids are what the file
mostly stores: trained for integer rounding (step 1) and entropy-coded under a Laplace
model (`inrcodec.rate.latents`), while the MLP is a few hundred weights.

Grids use the coordinate convention of `coords.py` (`align_corners`): the finest grid has
one node per sample, so `--scale 1` reads every finest node exactly where it was trained.
Signals of 1, 2 or 3 dimensions share the code (`grid_sample` on a 4-D or 5-D tensor);
bicubic interpolation exists for 1-D and 2-D signals, 3-D ones fall back to trilinear.
The finest grid may be coarser than the signal (`stride`: samples per latent along each
axis; every coarser grid halves all axes, as C3's do). Video's finest grid holds one
latent per 2x2x2 pixels: at 120 s on a 320x240 clip towards 0.1 bpp, 29.0 dB where one per
pixel (C3's) reached 22.7, its steps 6.5x as costly and its finest grid nearly all zeros
at that rate (docs/experiments.md, "video in 3-D latent grids").
Deliberate deviation from Cool-chic: its upsampling is a learned filter on the integer
lattice, which cannot be evaluated between lattice points; ours is a fixed continuous kernel.

An optional post-filter (`post=k`, Cool-chic's convolutional synthesis in its simplest
form) is a residual k^d convolution on the output channels at the signal's own lattice:
the synthesis is decoded there, filtered, and the filter's correction is interpolated
(bilinearly) at the query points, so `--scale 1` is exactly the trained filter and any
other size stays continuous. It is trained after the latents freeze (`rd_fitting`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from inrcodec.coords import grid_coords
from inrcodec.models import motion as global_motion
from inrcodec.models.finer import finer
from inrcodec.models.registry import register
from inrcodec.models.segments import SegmentedGrid, segmented, spans
from inrcodec.models.siren import PeriodicMLP, sine
from inrcodec.rate.latents import ContextModel

INTERPOLATIONS = ("bicubic", "bilinear")
ACTIVATIONS = ("relu", "gelu", "sine", "finer")
MAX_LATENTS = 1 << 26  # the reader builds the grids before it can judge a file's payload
MAX_POST = 15  # the post-filter's largest kernel
MAX_STRIDE = 64  # the finest grid's coarsest step, in samples
LATTICE_CHUNK = 1 << 16  # points per synthesis call when decoding the whole lattice
POST_BAND_POINTS = 1 << 18  # lattice points per pass of the post-filter's convolution


def level_shape(shape: list[int], level: int, stride: list[int] | None = None) -> list[int]:
    """Nodes per axis of grid `level` (level 0: one per `stride` samples, one per sample
    by default)."""
    stride = stride or [1] * len(shape)
    return [max(1, -(-n // (s * 2**level))) for n, s in zip(shape, stride, strict=True)]


def _level_shapes(shape: list[int], levels: int, stride: list[int] | None) -> list[list[int]]:
    """The grids' shapes, coarsest first (storage order)."""
    return [level_shape(shape, level, stride) for level in reversed(range(levels))]


class LatentGridINR(nn.Module):
    """Grids `latents[0]` (coarsest) … `latents[L−1]` (finest), then `synthesis`.

    `forward(coords)` uses the latents as they are: the stored (integer) values after
    decoding. Training passes quantized stand-ins to `synthesize` (rate/latents.py).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        shape: list[int],
        levels: int,
        width: int,
        depth: int,
        activation: str,
        interpolation: str,
        coordinates: bool,
        context: int,
        post: int = 0,
        stride: list[int] | None = None,
        motion: list[list[int]] | None = None,
    ) -> None:
        super().__init__()
        if len(shape) != in_features or any(n < 1 for n in shape):
            raise ValueError(f"shape {shape} is not a grid of {in_features} dimensions")
        if not 1 <= levels <= 16 or activation not in ACTIVATIONS:
            raise ValueError(f"levels must be 1..16 and activation one of {ACTIVATIONS}")
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}")
        if post and not (post % 2 and 3 <= post <= MAX_POST):
            raise ValueError(f"post must be 0 or an odd kernel size from 3 to {MAX_POST}")
        _check_stride(stride, in_features)
        shapes = _level_shapes(_extent(shape, motion), levels, stride)
        if sum(math.prod(s) for s in shapes) > MAX_LATENTS:
            raise ValueError(f"grids of {shape} hold more than {MAX_LATENTS} latents")
        self.coordinates = coordinates
        self.shape = list(shape)  # the signal's lattice, which the finest grid may not be
        self.reach = global_motion.span(motion or [])
        self.motion = _offsets(motion)  # pixels per frame, or None: no global motion
        self.mode = "bilinear" if in_features == 3 else interpolation
        inputs = levels + (in_features if coordinates else 0)
        # Registration order is storage order: the context model decodes before the grids,
        # and each grid after the coarser one its context reads.
        self.synthesis = _synthesis(inputs, out_features, width, depth, activation)
        self.post = PostFilter(in_features, out_features, post) if post else None
        self.context = ContextModel(in_features, context) if context else None
        self.latents = nn.ParameterList(nn.Parameter(torch.zeros(s)) for s in shapes)
        self.bytes_per_point = 4 * (inputs + 3 * width) * 4
        self._correction_key: tuple | None = None  # what `_correction` was computed for
        self._correction: torch.Tensor | None = None

    def synthesize(
        self, coords: torch.Tensor, latents: list[torch.Tensor], nodes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Values at `coords` (N, d) in [-1, 1], from the given grids. Training (gradients
        on) takes the features as rows (`_PlainMLP.from_rows`); decoding keeps the plain
        layout, so files decode as before, bit for bit. `nodes`, the flat lattice indices of
        `coords` where they are lattice points (training's batches), lets a finest grid with
        a node per sample be read by index: its interpolation there is the node itself, and
        `grid_sample`'s four taps and their backward cost more (about 0.5 ms of a 15-ms step
        at 768x512)."""
        points = self._points(coords)
        by_node = nodes is not None and self.motion is None and self._node_per_sample(latents)
        grids = latents[:-1] if by_node else latents
        features = [self._sample(grid, points) for grid in grids]
        if by_node:
            features.append(latents[-1].reshape(1, -1).index_select(1, nodes))
        if self.coordinates:
            features.append(coords.t())
        if torch.is_grad_enabled() and isinstance(self.synthesis, _PlainMLP):
            return self.synthesis.from_rows(features)
        return self.synthesis(torch.cat([row.t() for row in features], dim=-1))

    def _node_per_sample(self, latents: list[torch.Tensor]) -> bool:
        return list(latents[-1].shape) == self.shape

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        values = self.synthesize(coords, list(self.latents))
        if self.post is None:
            return values
        correction = self._lattice_correction(coords.dtype)
        points = self._points(coords)
        return values + torch.cat([self._sample(c, points).t() for c in correction], dim=-1)

    def lattice_values(self, values: torch.Tensor) -> torch.Tensor:
        """The synthesis's `values` at every lattice point (raster order), filtered (not while
        the filter is still zero: until the latents freeze, in training)."""
        if self.post is None or not any(p.detach().any() for p in self.post.parameters()):
            return values
        field = self._field(values)
        return (field + self.post(field))[0].movedim(0, -1).reshape(values.shape)

    def filtered_patches(
        self, points: torch.Tensor, count: int, latents: list[torch.Tensor]
    ) -> torch.Tensor:
        """The values at the inner points of `count` lattice patches, given all their points
        with the filter's halo (patch by patch, each in raster order): the synthesis there,
        then the post-filter's valid convolution. With the halo clamped at the borders (the
        decoder's replicate padding), exactly what decoding gives at those points."""
        dims = self.latents[0].dim()
        values = self.synthesize(points, latents)
        side = round((len(points) // count) ** (1 / dims))
        field = values.reshape(count, *[side] * dims, -1).movedim(-1, 1)
        return self.post.valid(field).movedim(1, -1).reshape(-1, values.shape[-1])

    def _field(self, values: torch.Tensor) -> torch.Tensor:
        """Values at every lattice point, (N, C) in raster order -> (1, C, *shape)."""
        return values.reshape(*self.shape, -1).movedim(-1, 0)[None]

    def _lattice_correction(self, dtype: torch.dtype) -> torch.Tensor:
        """The post-filter's correction on the lattice, (C, *shape): computed once for the
        weights as they are (a weight changed in place bumps its version, a move to another
        device changes the key: recomputed)."""
        latents = list(self.latents)
        key = (dtype, latents[-1].device, tuple((id(p), p._version) for p in self.parameters()))
        if self._correction_key != key:
            points = grid_coords(tuple(self.shape), latents[-1].device).to(dtype)
            with torch.no_grad():
                values = torch.cat(
                    [self.synthesize(c, latents) for c in points.split(LATTICE_CHUNK)]
                )
                self._correction = self.post(self._field(values))[0]
            self._correction_key = key
        return self._correction

    def _points(self, coords: torch.Tensor) -> torch.Tensor:
        """`coords` (N, d) as grid_sample reads them, once for all grids: (x, y, z) order,
        with a batch axis and a row axis; a 1-D signal is a 2-D grid of one row."""
        if self.motion is not None:
            motion = self.motion.to(coords)
            coords = global_motion.warp(coords, motion, self.shape, self.reach)
        points = coords.flip(-1)
        if self.latents[0].dim() == 1:
            points = torch.cat([points, torch.zeros_like(points)], dim=-1)
        lead = (1,) * max(2, self.latents[0].dim())
        return points.reshape(*lead, -1, points.shape[-1])

    def _sample(self, grid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """One grid interpolated at `points` (from `_points`): a row, (1, N)."""
        if grid.dim() == 1:
            grid = grid[None]
        values = F.grid_sample(
            grid[None, None].to(points.dtype),
            points,
            mode=self.mode,
            padding_mode="border",
            align_corners=True,
        )
        return values.reshape(1, -1)

    def segments(self) -> list[tuple[nn.Module, int, int]]:
        """One segment, the whole signal (SegmentedGrid has several): (model, first, count)."""
        return [(self, 0, self.shape[0])]

    def macs_per_point(self) -> int:
        """Multiply-adds per decoded sample at the training grid: interpolation taps, the
        synthesis layers, and the context model's share (it runs once per stored latent)."""
        taps = {"bicubic": 4, "bilinear": 2}[self.mode] ** self.latents[0].dim()
        per_point = taps * len(self.latents) + _linear_macs(self.synthesis)
        if self.post is not None:  # the filter, and reading its correction at the point
            per_point += self.post.conv.weight.numel() + 2 ** self.latents[0].dim() * len(
                self.post.conv.weight
            )
        if self.context is not None:
            per_latent = _linear_macs(self.context)
            stored = sum(grid.numel() for grid in self.latents)
            per_point += math.ceil(per_latent * stored / math.prod(self.shape))
        return per_point


class PostFilter(nn.Module):
    """x + conv(x): a residual k^d convolution over the output channels of a lattice field
    (1, C, *shape), replicate-padded so that borders need no special case. It starts at
    zero: until trained, the model is the synthesis alone."""

    def __init__(self, dims: int, channels: int, kernel: int) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        self.conv = conv(channels, channels, kernel)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    @property
    def halo(self) -> int:
        """How far beyond a point the filter reads, in lattice steps."""
        return self.conv.kernel_size[0] // 2

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        """The correction (not the filtered field) of `field`, the same shape. Large fields go
        by bands of their first axis, each with the filter's halo: a convolution unfolds k^d
        copies of its input (a 7x7 filter on a 12-megapixel lattice in float64: 16 GB)."""
        pad = self.halo
        padded = F.pad(field, (pad,) * (2 * (field.dim() - 2)), mode="replicate")
        length = field.shape[2]
        rows = max(1, POST_BAND_POINTS // math.prod(field.shape[3:]))
        if length <= rows:
            return self.conv(padded)
        bands = [
            self.conv(padded[:, :, top : min(top + rows, length) + 2 * pad])
            for top in range(0, length, rows)
        ]
        return torch.cat(bands, dim=2)

    def valid(self, patches: torch.Tensor) -> torch.Tensor:
        """Patches (P, C, *side + 2·halo) already holding their halo -> filtered (P, C, *side)."""
        pad = self.halo
        inner = (slice(None), slice(None)) + (slice(pad, -pad),) * (patches.dim() - 2)
        return patches[inner] + self.conv(patches)


def _check_stride(stride: object, dims: int) -> None:
    """Refuse a stride (perhaps a header's, so of any type) that is not one whole number of
    1..MAX_STRIDE per axis, before any grid is sized by it."""
    whole = lambda s: isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_STRIDE  # noqa: E731
    if stride and not (
        isinstance(stride, list) and len(stride) == dims and all(map(whole, stride))
    ):
        raise ValueError(f"stride must give 1..{MAX_STRIDE} samples per latent for each axis")


def _extent(shape: list[int], motion: list[list[int]] | None) -> list[int]:
    """The lattice the grids cover: the signal's, widened by how far a video's global
    motion reaches beyond a frame."""
    if not motion:
        return list(shape)
    global_motion.check(motion, shape)
    rows, cols = global_motion.span(motion)
    return [shape[0], shape[1] + rows, shape[2] + cols]


def _offsets(motion: list[list[int]] | None) -> torch.Tensor | None:
    """Offsets in pixels (T, 2) float64, the smallest 0 on each axis (a segment's share
    of a clip's offsets starts wherever the clip's reached)."""
    if not motion:
        return None
    steps = torch.tensor(motion, dtype=torch.float64, device="cpu")
    return (steps - steps.min(dim=0).values) / global_motion.STEPS_PER_PIXEL


def _linear_macs(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


class _PlainMLP(nn.Sequential):
    """in -> (1 + depth) layers of `width` with ReLU or GELU -> linear out (Cool-chic's)."""

    def __init__(self, inputs: int, outputs: int, width: int, depth: int, activation: str):
        act = {"relu": nn.ReLU, "gelu": nn.GELU}[activation]
        layers: list[nn.Module] = [nn.Linear(inputs, width), act()]
        for _ in range(depth):
            layers += [nn.Linear(width, width), act()]
        super().__init__(*layers, nn.Linear(width, outputs))

    def from_rows(self, rows: list[torch.Tensor]) -> torch.Tensor:
        """The MLP on features given as rows (1, N) each, for training: see `_RowsLinear`."""
        first = self[0]
        padding = -len(rows) % ROW_ALIGNMENT
        if padding:
            rows = [*rows, rows[0].new_zeros(padding, rows[0].shape[1])]
        weight = F.pad(first.weight, (0, padding))
        hidden = _RowsLinear.apply(torch.cat(rows), weight, first.bias)
        for layer in list(self)[1:]:
            hidden = layer(hidden)
        return hidden


# Feature rows are padded to a multiple of this for the first layer's products: with 7
# features the CPU GEMM of its backward took 3x as long as with 8 (2 cores, AVX-512).
ROW_ALIGNMENT = 8


class _RowsLinear(torch.autograd.Function):
    """x·Wᵀ + b, x given as feature rows (F, N). The same products as nn.Linear, laid out
    so that a CPU GEMM is fast at them: with a few features (F = 7 or 8) and N = 16,384
    points, nn.Linear's backward computes the N×F input gradient and the F-wide weight
    gradient in slow shapes (0.5–0.9 ms each on 2 cores), where Wᵀ·gᵀ and x·g take 0.15–
    0.25 ms; its input gradient also comes back as the rows that `grid_sample`'s backward
    reads. The whole first layer with its features' concatenation went 2.9 → 1.3 ms a
    training step (a 16,384-point batch, 2 cores, AVX-512)."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        ctx.save_for_backward(rows, weight)
        return torch.addmm(bias, rows.t(), weight.t())

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, weight = ctx.saved_tensors
        grad_rows = weight.t().mm(grad.t()) if ctx.needs_input_grad[0] else None
        return grad_rows, rows.mm(grad).t(), grad.sum(0)


def _synthesis(inputs: int, outputs: int, width: int, depth: int, activation: str) -> nn.Module:
    if width < 1 or depth < 0:
        raise ValueError("width must be >= 1 and depth >= 0")
    if activation in ("relu", "gelu"):
        return _PlainMLP(inputs, outputs, width, depth, activation)
    # The mission's periodic families, with their own init (SIREN's ω0 = 30 would make
    # latents of a few units wrap many times, so ω0 = 1 on the features).
    return PeriodicMLP(
        inputs, outputs, width, depth, 1.0, 1.0, sine if activation == "sine" else finer
    )


# Images, audio (1-D grids, presets/audio.yaml) and video (3-D grids coarser in time than
# in space, presets/video.yaml).
@register("grid", "latent grids at 1..1/2^(L-1) resolution + a small synthesis MLP (Cool-chic)")
def build(
    in_features: int,
    out_features: int,
    *,
    shape: list[int] = [],  # noqa: B006 - the signal's grid, set by the encoder
    levels: int = 7,
    width: int = 32,
    depth: int = 1,
    activation: str = "gelu",
    interpolation: str = "bilinear",
    coordinates: bool = False,
    context: int = 0,
    post: int = 0,
    segment: int = 0,
    overlap: int = 1024,
    stride: list[int] = [],  # noqa: B006 - per axis; [] for one latent per sample
    motion: list[list[int]] = [],  # noqa: B006 - video: per frame, set by the encoder
) -> nn.Module:
    """`segment` > 0: a signal longer than that many samples along its first axis is cut
    into segments of about that length, one grid model each (segments.py). `stride`: samples
    per latent of the finest grid along each axis. `motion`: a video's global translation,
    [rows, columns] in quarter pixels per frame (motion.py)."""
    _check_stride(stride, in_features)
    if motion:
        global_motion.check(motion, list(shape))
    settings = (
        levels,
        width,
        depth,
        activation,
        interpolation,
        coordinates,
        context,
        post,
        list(stride),
    )
    shape = list(shape)
    if not segmented(shape, segment):
        return LatentGridINR(in_features, out_features, shape, *settings, motion)
    if context or post:
        raise ValueError("segments take no context model or post-filter")
    cuts = spans(shape[0], segment, overlap)
    shares = [motion[a : b + 1] if motion else None for a, b in cuts]
    extents = [
        _extent([b - a + 1, *shape[1:]], share) for (a, b), share in zip(cuts, shares, strict=True)
    ]
    stored = sum(
        sum(math.prod(s) for s in _level_shapes(extent, levels, list(stride))) for extent in extents
    )
    if stored > MAX_LATENTS:
        raise ValueError(f"grids of {shape} hold more than {MAX_LATENTS} latents")
    parts = [
        LatentGridINR(in_features, out_features, [b - a + 1, *shape[1:]], *settings, share)
        for (a, b), share in zip(cuts, shares, strict=True)
    ]
    return SegmentedGrid(parts, shape[0], cuts)
