"""The rate of latent grids: what training minimises and what the file stores.

Two models, both Laplace laws over integer latents:

- **without weights in the file**: the file codes each grid the shorter of two ways: a
  law fitted to the grid with its own integer parameters (`coding.encode`), or predicted
  from its decoded neighbours and its parent under classed laws (`neighbours.py`, no
  weights; files before format 8 may also hold LZMA-coded grids). Training prices each
  latent under a zero-mean Laplace law whose scale is a learned multiple (one per grid)
  of its neighbours' mean magnitude (`NeighbourhoodRate`), because the coders class
  latents by that magnitude: an isolated nonzero among zeros costs them far more than
  one among busy neighbours.
- **context** (`ContextModel`): the mean and scale of each latent come from a tiny MLP
  over latents the decoder already has: the co-located latent of the next coarser grid and
  its axis neighbours, and, in a checkerboard order, the axis neighbours in the same grid.
  Each grid decodes in two parallel passes (anchors, i.e. an even index sum, then the
  rest, whose axis neighbours are all anchors), coarsest grid first: no per-latent loop.

Decoding must give the same integers on every machine and whatever the compute dtype, so
the stored context model runs in fixed-point int64 arithmetic (`_integer_parameters`):
weights at 2^-16, hidden units at 2^-8, the mean rounded to an integer and the scale to
one of `SCALE_STEPS` steps of √2. Each group of latents that share a scale is range-coded
under the integer-built two-sided geometric table of `coding.py`, after subtracting its
rounded mean. Training uses the same features and network in floating point, with a
continuous mean and scale: its bits are an estimate, the written file is the judge.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inrcodec.errors import InrcodecError
from inrcodec.rate import coding, neighbours

MIN_SCALE_LOG2 = -5.0  # the scale ladder: 2^((s − 10) / 2), s = 0 … 31
SCALE_STEPS = 32
# r = round(2^16 · exp(−1 / scale)) of each ladder step, written out so that no platform's
# exp() enters the decoder (tests/test_latents.py recomputes them).
SCALE_DECAYS = (
    0, 0, 0, 1, 22, 229, 1200, 3874, 8869, 15933, 24109, 32314, 39750, 46019, 51039, 54917,
    57835, 59992, 61565, 62703, 63520, 64104, 64520, 64816, 65026, 65175, 65280, 65355,
    65408, 65446, 65472, 65491,
)  # fmt: skip
WEIGHT_BITS, HIDDEN_BITS = 16, 8  # fixed-point fractions of the stored context model
CONTEXT_PREFIX, LATENTS_PREFIX = "context.", "latents."
RATE_SAMPLE = 65536  # latents per grid whose bits a training step measures, at most
MIN_TRAINING_SCALE = 1e-3  # the Laplace scale of the training rate, at least


class ContextModel(nn.Module):
    """(4·d + 2) context features -> `width` ReLU -> (mean, log2 scale)."""

    def __init__(self, dims: int, width: int) -> None:
        super().__init__()
        self.dims = dims
        self.net = nn.Sequential(nn.Linear(4 * dims + 2, width), nn.ReLU(), nn.Linear(width, 2))
        with torch.no_grad():  # start as a factorized law of scale 1
            self.net[2].weight.mul_(0.1)
            self.net[2].bias.zero_()

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(features)
        return out[:, 0], out[:, 1].clamp(MIN_SCALE_LOG2, MIN_SCALE_LOG2 + (SCALE_STEPS - 1) / 2)


def features(
    grid: torch.Tensor, parent: torch.Tensor | None, positions: torch.Tensor
) -> torch.Tensor:
    """Context of the latents of `grid` at `positions` (n, d): the parent latent and its 2d
    axis neighbours (border replicated), the 2d axis neighbours in `grid` (zero outside, and
    zero for anchors, which decode before them), and 1 for an anchor. Works on floats
    (training) and int64 (coding) alike."""
    shape = torch.tensor(grid.shape, device=positions.device)
    anchor = positions.sum(-1) % 2 == 0
    columns = [_parent_column(parent, positions, None, 0)]
    columns += [_parent_column(parent, positions, axis, step) for axis, step in _steps(grid.dim())]
    for axis, step in _steps(grid.dim()):
        moved = positions.clone()
        moved[:, axis] += step
        inside = (moved[:, axis] >= 0) & (moved[:, axis] < shape[axis]) & ~anchor
        moved = torch.minimum(moved.clamp(min=0), shape - 1)
        columns.append(torch.where(inside, _at(grid, moved), 0))
    columns.append(anchor.to(grid.dtype))
    return torch.stack([c.to(grid.dtype) for c in columns], dim=-1)


def _steps(dims: int) -> list[tuple[int, int]]:
    return [(axis, step) for axis in range(dims) for step in (-1, 1)]


def _parent_column(
    parent: torch.Tensor | None, positions: torch.Tensor, axis: int | None, step: int
) -> torch.Tensor:
    if parent is None:  # the coarsest grid has no parent
        return torch.zeros(len(positions), dtype=torch.long, device=positions.device)
    at = positions // 2
    if axis is not None:
        at[:, axis] += step
    limit = torch.tensor(parent.shape, device=positions.device) - 1
    return _at(parent, torch.minimum(at.clamp(min=0), limit))


def _at(grid: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """grid[positions] for (n, d) index rows, positions assumed inside."""
    return grid.reshape(-1)[_flat(positions, grid.shape)]


def _flat(positions: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Row-major flat indices of (n, d) index rows."""
    strides = [math.prod(shape[axis + 1 :]) for axis in range(len(shape))]
    return (positions * torch.tensor(strides, device=positions.device)).sum(-1)


def all_positions(shape: tuple[int, ...], device: torch.device | str = "cpu") -> torch.Tensor:
    axes = [torch.arange(n, device=device) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(shape))


def laplace_bits(values: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """−log2 P(values) under a Laplace law integrated over [v − ½, v + ½]. The bin is
    mirrored onto the law's rising side (it is symmetric), where both edges' tail masses
    are plain exponentials that keep far values' precision: two exponentials a latent, where
    branch-wise formulas of the CDF took three (the training rate's cost, 7.4 → 6.2 ms a
    step on half a million latents, 2 cores)."""
    x = -(values - mean).abs()  # the bin's centre, mirrored to x <= 0
    near = torch.exp(-(x + 0.5).abs() / scale)  # twice the tail mass beyond the edge x + ½
    far = torch.exp((x - 0.5) / scale)  # twice the tail mass beyond the edge x − ½
    holds_mean = x + 0.5 > 0
    mass = torch.where(holds_mean, 1 - 0.5 * (near + far), 0.5 * (near - far))
    return -torch.log2(mass.clamp_min(2**-30))


class NeighbourhoodRate(nn.Module):
    """Training bits of the grids of a model without a context network: each latent under
    a zero-mean Laplace law of scale g · m, with m the mean magnitude of its neighbours
    (`neighbour_magnitude`) and g a learned gain per grid (trained with the
    rest, to the maximum likelihood: it is in no file). The coders that write these grids
    class each latent by its decoded neighbours' magnitude; priced the same way, training
    clusters the nonzeros that the coders then code cheaply. Against one law of the
    maximum-likelihood scale per grid, 8,000 steps towards 1 bpp reached kodim05 29.66 dB
    at 0.973 bpp against 29.33 at 0.969, kodim19 34.38 at 0.977 against 34.12 at 0.977."""

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(levels))

    def forward(self, latents: list[torch.Tensor]) -> torch.Tensor:
        """The bits of all grids."""
        total = latents[0].new_zeros(())
        for grid, log_gain in zip(latents, self.log_gain, strict=True):
            context = neighbour_magnitude(grid).detach()
            scale = (context * torch.exp(log_gain)).clamp_min(MIN_TRAINING_SCALE)
            total = total + laplace_bits(grid, grid.new_zeros(()), scale).sum()
        return total


def neighbour_magnitude(grid: torch.Tensor) -> torch.Tensor:
    """The mean |latent| of the 3^d − 1 neighbours of every latent, the border replicated;
    in a grid of 3 axes, of the 8 in its own slice along the first (video's latent frame),
    as the planar coder that wins on such grids sees them (priced by their 26 neighbours
    instead, a 320x240 clip's 120-s encode at 0.1 bpp lost 2.6 dB). The box sum is separable: three
    shifted adds per axis, where avg_pool took 4x (2-D, 768x512) to 16x (3-D) longer."""
    dims = min(grid.dim(), 2)
    magnitude = grid.abs()
    tail = magnitude.shape[grid.dim() - dims :]  # the axes of the box
    box = F.pad(magnitude.reshape(-1, 1, *tail), (1, 1) * dims, mode="replicate")
    box = box.reshape(*magnitude.shape[: grid.dim() - dims], *(n + 2 for n in tail))
    for axis in range(grid.dim() - dims, grid.dim()):
        inner = box.shape[axis] - 2
        box = box.narrow(axis, 0, inner) + box.narrow(axis, 1, inner) + box.narrow(axis, 2, inner)
    return (box - magnitude) / (3**dims - 1)


def training_bits(
    latents: list[torch.Tensor],
    context: ContextModel,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Estimated bits of all grids (coarsest first) under the context model: grids larger
    than RATE_SAMPLE are measured on a random sample and scaled up, an unbiased estimate
    at a fraction of the cost."""
    total = latents[0].new_zeros(())
    for index, grid in enumerate(latents):
        parent = latents[index - 1] if index else None
        count = grid.numel()
        if count > RATE_SAMPLE:
            flat = torch.randint(0, count, (RATE_SAMPLE,), device=grid.device, generator=generator)
            positions = unravel(flat, grid.shape)
        else:
            positions = all_positions(tuple(grid.shape), grid.device)
        mean, log2_scale = context(features(grid, parent, positions))
        bits = laplace_bits(_at(grid, positions), mean, torch.exp2(log2_scale)).sum()
        total = total + bits * (count / len(positions))
    return total


def stored_bits(
    latents: list[torch.Tensor], context: ContextModel | None, exact: bool = False
) -> float:
    """Bits the file will spend on these integer grids. Factorized: the range coder's own
    estimate per grid (the Laplace density above overestimates sparse grids by ~30 %), or
    with `exact` the bytes `encode_factorized` writes (8–17 % less again on 5-minute Kodak
    files; 0.8 s at 768x512, so measured now and then). With a context model: its
    estimate."""
    if context is not None:
        return float(training_bits(latents, context))
    grids = [grid.detach().cpu().numpy().astype(np.int64) for grid in latents]
    if exact:
        parents = [None, *grids[:-1]]
        coded = [encode_factorized(g, p) for g, p in zip(grids, parents, strict=True)]
        return float(sum(8 * len(c.data) for c in coded))
    return sum(coding.estimated_bits(grid) for grid in grids)


def encode_factorized(codes: np.ndarray, parent: np.ndarray | None) -> coding.Coded:
    """A grid of a model without a context network: the shortest of the geometric law's
    range code and the predictions from decoded neighbours (`neighbours.py`; the interlaced
    scheme is the shortest on most grids, but not on the coarsest). LZMA, which used to
    win on the sparse fine grids before the predictive coders, won no grid of the 16 files
    of 2026-12-01's lab and cost ~0.9 s a 768x512 file, so it is not tried (it decodes).

    The last RECENT_GRIDS grids coded are remembered by content: packaging codes the same
    latents for the budget, for each attempt at it and for the file (2–3 s a pass)."""
    key = _content_key(codes, parent)
    with _RECENT_LOCK:
        coded = _RECENT.get(key)
    if coded is None:
        options = [coding.encode(codes, lzma_too=False)]
        coders = neighbours.encoders(codes.ndim)
        options += [neighbours.encode(codes, parent, coder) for coder in coders]
        coded = min(options, key=lambda option: len(option.data))
    with _RECENT_LOCK:
        _RECENT[key] = coded
        _RECENT.move_to_end(key)
        while len(_RECENT) > RECENT_GRIDS:
            _RECENT.popitem(last=False)
    return coded


RECENT_GRIDS = 16
_RECENT: OrderedDict[bytes, coding.Coded] = OrderedDict()
_RECENT_LOCK = threading.Lock()


def _content_key(codes: np.ndarray, parent: np.ndarray | None) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for values in (codes, parent):
        if values is None:
            digest.update(b"none")
            continue
        values = np.ascontiguousarray(values, dtype=np.int64)
        digest.update(repr(values.shape).encode())
        digest.update(values.tobytes())
    return digest.digest()


def unravel(flat: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    columns = []
    for n in reversed(shape):
        columns.append(flat % n)
        flat = flat // n
    return torch.stack(columns[::-1], dim=-1)


# --- the stored form --------------------------------------------------------------------


def latent_owner(name: str) -> str | None:
    """The module path holding latent grid `name` ("" for a whole-signal model, "parts.3."
    for a segment's, models/segments.py); None for any other parameter. A grid's parent
    (the coarser grid it is coded after) is the previous grid of the same owner."""
    head, sep, level = name.rpartition(LATENTS_PREFIX)
    if not sep or not level.isdigit() or (head and not head.endswith(".")):
        return None
    return head


def is_context_coded(name: str, names: list[str]) -> bool:
    """Latents are context-coded when the model has a context network."""
    return name.startswith(LATENTS_PREFIX) and any(n.startswith(CONTEXT_PREFIX) for n in names)


def _integer_parameters(state: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The context network's stored weights and biases in fixed point (int64 at 2^-16).
    Stored values are integers times powers of two, so this is exact unless a step is
    finer than 2^-16, where it rounds the same way on every machine."""
    names = [f"{CONTEXT_PREFIX}net.{i}.{kind}" for i in (0, 2) for kind in ("weight", "bias")]
    missing = [n for n in names if n not in state]
    if missing:
        raise InrcodecError(f"context-coded latents need {', '.join(missing)}")
    return [torch.round(state[n].double() * 2**WEIGHT_BITS).long() for n in names]


def _integer_laws(
    parameters: list[torch.Tensor], context: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rounded mean, scale step) of each context row (int64), in fixed point."""
    w1, b1, w2, b2 = parameters
    hidden = (context @ w1.T + b1).clamp(min=0) >> (WEIGHT_BITS - HIDDEN_BITS)
    out = hidden @ w2.T + (b2 << HIDDEN_BITS)
    shift = WEIGHT_BITS + HIDDEN_BITS
    half = 1 << (shift - 1)
    mean = (out[:, 0] + half) >> shift
    step = ((2 * out[:, 1] + half) >> shift) - int(2 * MIN_SCALE_LOG2)
    return mean, step.clamp(0, SCALE_STEPS - 1)


def _passes(shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Positions of the anchors, then of the others, in raster order."""
    positions = all_positions(shape)
    anchor = positions.sum(-1) % 2 == 0
    return [positions[anchor], positions[~anchor]]


def encode_grid(
    codes: np.ndarray, parent: np.ndarray | None, state: dict[str, torch.Tensor]
) -> coding.Coded:
    """One grid's integers, range-coded under the context model given the coarser grid."""
    import constriction

    grid = torch.from_numpy(codes.astype(np.int64))
    above = None if parent is None else torch.from_numpy(parent.astype(np.int64))
    parameters = _integer_parameters(state)
    groups = []
    for positions in _passes(tuple(grid.shape)):
        mean, step = _integer_laws(parameters, features(grid, above, positions))
        residual = _at(grid, positions) - mean
        groups += [(s, residual[step == s]) for s in range(SCALE_STEPS)]
    bound = max((int(r.abs().max()) for _, r in groups if r.numel()), default=0)
    if bound > coding.MAX_BOUND:
        raise ValueError(f"latent residuals reach {bound}, beyond ±{coding.MAX_BOUND}")
    encoder = constriction.stream.queue.RangeEncoder()
    for s, residual in groups:
        if residual.numel() and bound:
            model = _model(bound, s)
            encoder.encode((residual + bound).numpy().astype(np.int32), model)
    data = encoder.get_compressed().astype("<u4").tobytes() if bound else b""
    return coding.Coded("ctx", bound, 0, data)


def decode_grid(
    coded: coding.Coded,
    shape: tuple[int, ...],
    parent: np.ndarray | None,
    state: dict[str, torch.Tensor],
) -> np.ndarray:
    """Inverse of `encode_grid`: the grid's integers (int32), two passes, each vectorised."""
    import constriction

    if len(coded.data) % 4:
        raise InrcodecError("range-coded stream is not a whole number of 32-bit words")
    if coded.bound == 0 and coded.data:
        raise InrcodecError("a grid without residuals stores no bytes")
    grid = torch.zeros(shape, dtype=torch.long)
    above = None if parent is None else torch.from_numpy(parent.astype(np.int64))
    parameters = _integer_parameters(state)
    words = np.frombuffer(coded.data, dtype="<u4").astype(np.uint32)
    decoder = constriction.stream.queue.RangeDecoder(words)
    for positions in _passes(tuple(shape)):
        mean, step = _integer_laws(parameters, features(grid, above, positions))
        residual = torch.zeros(len(positions), dtype=torch.long)
        for s in range(SCALE_STEPS):
            chosen = step == s
            count = int(chosen.sum())
            if count and coded.bound:
                try:
                    symbols = decoder.decode(_model(coded.bound, s), count)
                except Exception as exc:  # constriction's own error types
                    raise InrcodecError(f"corrupt latent stream ({exc})") from None
                residual[chosen] = torch.from_numpy(symbols.astype(np.int64)) - coded.bound
        grid.view(-1)[_flat(positions, grid.shape)] = mean + residual
    if grid.numel() and int(grid.abs().max()) >= 1 << 24:
        raise InrcodecError("decoded latents leave the exact range of fp32")
    return grid.numpy().astype(np.int32)


def _model(bound: int, step: int):
    import constriction

    table = coding.geometric_table(bound, SCALE_DECAYS[step])
    return constriction.stream.model.Categorical(table, perfect=False)
