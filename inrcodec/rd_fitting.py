"""Fit a latent-grid model on D + λ·R: distortion plus the entropy model's bits.

The recipe of the overfitted codecs (Cool-chic 3, C3), sized for a CPU:
- random point batches with the grids interpolated at the sampled points (a full-image
  pass costs ~20x more per update on 2 cores), drawn by random reshuffling (`Batches`);
- latents quantized by additive uniform noise for the first `NOISE_SHARE` of the run, then
  rounded and frozen while the synthesis tunes on exactly the integers the file stores.
  (Straight-through rounding of the latents themselves, C3's and Cool-chic 3's end
  phase, lost 1.5 dB here: with a few thousand sparse-batch steps the rate term flips
  latents across the rounding boundary faster than the distortion pulls them back);
- Adam with a cosine learning-rate decay over the steps or the time budget;
- a post-filter (`post=k`) trains with the synthesis once the latents are frozen, on random
  patches with a halo: patches from the start cost the latents more than the filter gives
  (16x16 patches alone −0.80 dB against random pixels at 8,000 steps on kodim05), and
  after the freeze the filter still gains 0.2 dB at 1 bpp (README, "Latent grids");
- D is the MSE over the squared peak of the transformed domain ([-1, 1], peak 2) and R
  bits per sample, so λ means what `--lambda` means for the weights' step choice; R
  prices each latent by its neighbours' magnitude, as the file's coders do
  (`rate.latents.NeighbourhoodRate`), its gains trained with the model;
- a target (`--target-bpp`, `--target-psnr`) steers λ at each evaluation (a
  multiplicative controller, warm-started at the given or default λ): one training run
  lands near the target instead of a bisection of full trainings. Where it has not
  settled by the freeze (too few evaluations), a dead zone in the rounding keeps the
  byte budget (`_freeze`).

Nothing in a training step waits for the device: losses reach the host only at evaluations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from inrcodec.fitting import FitResult, Progress, Quality, compile_model, out_of_memory
from inrcodec.options import FitConfig
from inrcodec.rate.latents import NeighbourhoodRate, stored_bits, training_bits
from inrcodec.render import chunk_points

NOISE_SHARE = 0.85  # share of the run with noisy latents; then they are rounded, frozen
PEAK_SQUARED = 4.0  # the transformed domain spans [-1, 1]
MAX_LAMBDA_STEP = 2.0  # the controller changes λ by at most this factor per evaluation …
MAX_LAMBDA_CUT = 8.0  # … but divides it by up to this while the bits fall under their aim
LOOKAHEAD = 3  # evaluations ahead the controller extrapolates the bits along their trend
PATIENCE = 8  # … and how long falling bits may take to reach their aim before λ rises again
EXACT_SECONDS = 15.0  # how often the controller measures the file's latent bytes exactly …
EXACT_SHARE = 0.05  # … at most: a slower machine measures less often, at this share of the time
DECODE_SHARE = 0.05  # progress decodes the whole signal at most at this share of the time
PATCH_SIDE = {1: 256, 2: 16, 3: 6}  # a post-filter's training patch, per dimension count


@dataclass
class Target:
    """What the λ controller steers to: file bits of the latents, or a quality in dB; and
    the bits the latents must not exceed when they freeze (a byte budget's share)."""

    bits: float | None = None
    quality: float | None = None
    limit: float | None = None

    def factor(self, bits: float, trend: float, quality: float) -> float:
        """How much to multiply λ by after an evaluation that measured `quality`, and
        `bits` that changed by `trend` since the last. The bits are judged LOOKAHEAD
        evaluations ahead (latents keep filling in after λ falls). λ does not rise while
        they fall fast enough to reach their aim within PATIENCE evaluations, and falls up
        to MAX_LAMBDA_CUT-fold once they are under it and still falling: towards low rates
        the bits lag λ, then collapse (docs/design.md, "The λ controller")."""
        if self.bits is None:
            ratio = 1.0 if self.quality is None else 2 ** (quality - self.quality)
            return min(MAX_LAMBDA_STEP, max(1 / MAX_LAMBDA_STEP, ratio))
        ratio = (max(0.0, bits + LOOKAHEAD * trend) / self.bits) ** 2
        if ratio > 1 and bits + PATIENCE * trend <= self.bits:
            ratio = 1.0
        cut = MAX_LAMBDA_CUT if trend < 0 and bits < self.bits else MAX_LAMBDA_STEP
        return min(MAX_LAMBDA_STEP, max(1 / cut, ratio))


class NoiseSource:
    """Uniform noise in [−½, ½) for every latent, read at a random offset of one buffer drawn
    at the start: drawing ~half a million fresh numbers a step costs a tenth of the step on
    a CPU. Within a step the latents get distinct draws, i.e. independent noise; the
    expected loss only depends on that, so its gradient is unchanged."""

    SPARE = 1 << 20  # offsets to choose from

    def __init__(self, latents: list[torch.Tensor], seed: int) -> None:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        count = sum(grid.numel() for grid in latents)
        self.buffer = (torch.rand(count + self.SPARE, generator=generator) - 0.5).to(
            latents[0].device
        )

    def __call__(self, latents: list[torch.Tensor]) -> list[torch.Tensor]:
        at = int(torch.randint(0, self.SPARE, ()))
        noisy = []
        for grid in latents:
            noisy.append(grid + self.buffer[at : at + grid.numel()].view_as(grid))
            at += grid.numel()
        return noisy


class Batches:
    """Random reshuffling: each pass over the signal visits every point once, in a fresh
    random order, `size` points a step (the points a pass cannot fill a batch with wait for
    the next pass). Against batches drawn with replacement, which leave a third of the
    points unseen for a pass's worth of steps, a finest-grid latent (read by its own pixel
    alone at scale 1) hears from the distortion at every pass. 8,000 steps towards 1 bpp
    on four Kodak images: +0.07 and +0.13 dB on two, the same PSNR on the others (one
    of them in 0.6 % fewer bytes), at no cost per step; in 5-minute runs on six, no change
    beyond the machine's noise (mean ±0.02 dB).

    Each pass gathers the points and their values into its order once, and a batch is a
    slice of that copy: gathering 16,384 random rows per step cost 0.9 ms of a 15-ms
    step (kodim23, 2 cores), a whole pass's gather a twentieth of that per step."""

    def __init__(self, coords: torch.Tensor, targets: torch.Tensor, size: int) -> None:
        self.all_coords, self.all_targets, self.size = coords, targets, size
        self.order = torch.empty(0, dtype=torch.long, device=coords.device)
        self.coords, self.targets = coords[:0], targets[:0]
        self.at = 0

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next batch's points, their values and their flat lattice indices."""
        if self.at + self.size > len(self.order):
            self.order = torch.randperm(len(self.all_coords), device=self.all_coords.device)
            self.coords = self.all_coords.index_select(0, self.order)
            self.targets = self.all_targets.index_select(0, self.order)
            self.at = 0
        self.at += self.size
        batch = slice(self.at - self.size, self.at)
        return self.coords[batch], self.targets[batch], self.order[batch]


class Patches:
    """Random patches of the lattice `shape` with a halo of `halo` points on every side,
    clamped at the borders (the replicate padding of the whole lattice): about `size`
    filtered points a step. Returns the halo's and the patch's flat indices."""

    def __init__(
        self,
        shape: list[int],
        size: int,
        halo: int,
        device: torch.device,
        generator: torch.Generator | None = None,
    ) -> None:
        self.shape, self.halo, self.device, self.generator = shape, halo, device, generator
        self.side = min(PATCH_SIDE[len(shape)], *shape)
        self.count = max(1, size // self.side ** len(shape))

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        dims, side, halo = len(self.shape), self.side, self.halo
        padded = torch.arange(-halo, side + halo, device=self.device)
        inner = torch.arange(side, device=self.device)
        flat_padded = flat_inner = torch.zeros((), dtype=torch.long, device=self.device)
        for axis, n in enumerate(self.shape):
            start = torch.randint(
                0, n - side + 1, (self.count,), device=self.device, generator=self.generator
            )
            view = [self.count] + [1] * dims
            view[axis + 1] = -1
            stride = math.prod(self.shape[axis + 1 :])
            at = (start[:, None] + padded).clamp(0, n - 1)
            flat_padded = flat_padded + (at * stride).view(view)
            flat_inner = flat_inner + ((start[:, None] + inner) * stride).view(view)
        return flat_padded.reshape(-1), flat_inner.reshape(-1)


def _freeze(model, target: Target | None) -> float:
    """Round the latents in place to the integers the file will store, and stop their
    gradients: from here on only the networks train. Should those integers exceed the
    target's limit (its λ controller had too few evaluations to settle: a smooth image
    towards 1 bpp in 2 minutes froze 11 % above its aim, 8 % above the limit), round with a
    dead zone instead, |x| < ½ + t to zero, t the smallest found (by bisection) that brings
    them to the target: the file then keeps its budget, and the synthesis its remaining
    steps to adapt to the zeros. Returns the rounded integers' bits over the limit (0
    without a limit)."""
    with torch.no_grad():
        grids = [grid.detach().clone() for grid in model.latents]
        limit = None if target is None else target.limit
        over = 0.0 if limit is None else _bits(model, grids, 0.0) / limit
        if over <= 1:
            width = 0.0
        else:
            low, width = 0.0, float(max(grid.abs().max() for grid in grids))
            for _ in range(DEAD_ZONE_SEARCH):
                middle = (low + width) / 2
                if _bits(model, grids, middle) <= target.bits:
                    width = middle
                else:
                    low = middle
        for grid, values in zip(model.latents, grids, strict=True):
            grid.copy_(_dead_zoned(values, width)).requires_grad_(False)
    return over


# Latents frozen at this multiple of their budget or more lose much of what they hold to the
# dead zone: kodim05 towards 0.25 bpp froze at 3.2x in 20 s (16.4 dB) and 2.2x in 40 s (18.8
# dB), against 23.1 dB in the default's 120 s (docs/experiments.md, ninth session).
UNSETTLED_OVER = 1.5


def _unsettled(over: float) -> str:
    """The warning for latents that froze `over` times their budget."""
    return (
        f"the rate had not settled when the latents froze ({over:.1f}x their share of the "
        "target); zeroing enough of them to meet it cost quality: give the encode more "
        "time or aim at a higher rate"
    )


def _bits(model, grids: list[torch.Tensor], width: float) -> float:
    latents = [_dead_zoned(grid, width) for grid in grids]
    return stored_bits(latents, model.context, exact=True)


def _dead_zoned(values: torch.Tensor, width: float) -> torch.Tensor:
    """`values` rounded, those within ½ + `width` of zero to zero."""
    return torch.where(values.abs() < 0.5 + width, 0.0, torch.round(values))


DEAD_ZONE_SEARCH = 10  # bisection steps: the dead zone to 1/1024 of the largest latent


def fit_rd(
    model,
    coords: torch.Tensor,
    targets: torch.Tensor,
    config: FitConfig,
    lam: float,
    quality: Quality | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    target: Target | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> FitResult:
    """Train `model` (a LatentGridINR) and return its parameters with the latents rounded,
    and the λ that shaped them. Stops on the steps, the time budget or `should_stop`."""
    torch.manual_seed(config.seed)
    rate, rate_parameters = _rate_function(model, config)
    optimizer = _adam([*model.parameters(), *rate_parameters], config.lr, config.adam_beta2)
    distortion = _distortion_function(model, config)
    parts = _Parts(
        rate,
        distortion,
        NoiseSource(list(model.latents), config.seed),
        Batches(coords, targets, config.batch_size),
        post_patches(model, config.batch_size or math.prod(model.shape), coords.device),
    )
    monitor = _Monitor(
        model, coords, targets, quality, target or Target(), on_progress, config, clock=clock
    )
    start, done, reason, frozen, warnings = clock(), 0, "steps", False, ()
    try:
        while True:
            elapsed = clock() - start
            progress = _progress(config, done, elapsed)
            if not frozen and progress >= NOISE_SHARE:
                over = _freeze(model, target)
                warnings = (_unsettled(over),) if over >= UNSETTLED_OVER else ()
                frozen = True
            if done % config.eval_every == 0:
                lam = monitor.evaluate(done, elapsed, lam, steering=progress < NOISE_SHARE)
            if should_stop is not None and should_stop():
                reason = "interrupted"
                break
            if progress >= 1:
                reason = "time-budget" if done < config.steps else "steps"
                break
            _step(model, optimizer, coords, targets, config, lam, progress, parts)
            done += 1
    except KeyboardInterrupt:
        reason = "interrupted"
    with torch.no_grad():
        for grid in model.latents:
            grid.copy_(torch.round(grid)).requires_grad_(False)  # final: the stored integers
    _bits, _score, mse = _evaluate(model, coords, targets, None)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    compiled = distortion.ran_compiled  # the steps' synthesis and loss
    return FitResult(
        state, done, clock() - start, mse, reason, compiled, lam=lam, warnings=warnings
    )


@dataclass
class _Monitor:
    """The evaluations of a run: progress reports, and the λ controller's measurements."""

    model: torch.nn.Module
    coords: torch.Tensor
    targets: torch.Tensor
    quality: Quality | None
    target: Target
    on_progress: Callable[[Progress], None] | None
    config: FitConfig
    last_report: float = -math.inf
    ratio: float = 1.0  # the file's bytes over the coder's quick estimate, measured …
    last_exact: float = -math.inf  # … at this time, and again after `exact_interval`
    exact_interval: float = EXACT_SECONDS
    last_estimate: float | None = None  # the quick estimate at the last steering evaluation
    decoded: tuple[float, float] = (math.nan, math.nan)  # quality and MSE at the last decode …
    next_decode: float = -math.inf  # … and when progress may decode again
    clock: Callable[[], float] = time.perf_counter

    def evaluate(self, done: int, elapsed: float, lam: float, steering: bool) -> float:
        """Judge the rounded latents; report; return λ steered towards the target (kept
        once the latents are frozen: then λ is final and the exact bytes need no measure).
        The bits' trend is taken on the quick estimate, so a new exact ratio does not read
        as a change."""
        report = self.on_progress is not None and elapsed - self.last_report >= 0.5
        steer_quality = self.target.quality is not None
        judged = steer_quality or (report and elapsed >= self.next_decode)  # else bits alone
        started = self.clock()
        bits, score, mse = _evaluate(
            self.model, self.coords, self.targets, self.quality, values=judged
        )
        if judged:  # a report between decodes shows the last one's quality
            self.decoded = score, mse
            self.next_decode = elapsed + (self.clock() - started) / DECODE_SHARE
        score, mse = self.decoded
        measure = steering and self.model.context is None and bits > 0
        if measure and elapsed - self.last_exact >= self.exact_interval:
            latents = [torch.round(grid) for grid in self.model.latents]
            started = self.clock()
            self.ratio = stored_bits(latents, None, exact=True) / bits
            took = self.clock() - started
            self.exact_interval = max(EXACT_SECONDS, took / EXACT_SHARE)
            self.last_exact = elapsed
        if report:
            loss = mse / PEAK_SQUARED + lam * bits * self.ratio / len(self.coords)  # D + λR
            budget = self.config.time_budget
            self.on_progress(Progress(done, self.config.steps, loss, score, elapsed, budget))
            self.last_report = elapsed
        if not (done and steering):  # untrained, or λ final
            return lam
        trend = 0.0 if self.last_estimate is None else bits - self.last_estimate
        self.last_estimate = bits
        return lam * self.target.factor(bits * self.ratio, trend * self.ratio, score)


def _progress(config: FitConfig, done: int, elapsed: float) -> float:
    progress = done / max(1, config.steps)
    if config.time_budget:
        progress = max(progress, elapsed / config.time_budget)
    return progress


def _adam(parameters: list[torch.nn.Parameter], lr: float, beta2: float) -> torch.optim.Optimizer:
    """Adam, fused into one kernel per step where this torch can (7 % of a step here).
    `beta2` 0.99 (the image presets) gained 3.7 % BD-rate at 2 minutes on six Kodak images;
    likely because a finest-grid latent hears from the distortion once a pass and from the
    refreshed rate in between, so its gradients' scale swings (docs/design.md, "Training")."""
    betas = (0.9, beta2)
    try:
        return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):  # a torch or device without the fused kernel
        return torch.optim.Adam(parameters, lr=lr, betas=betas)


class _MaybeCompiled:
    """`function`, compiled when the run is long enough to repay the minute a first compile
    takes (by its steps and by its time budget: it ends at whichever comes first); a platform
    that cannot compile carries on eagerly. Running out of memory is not such a failure:
    eager needs as much, so it reaches the caller."""

    def __init__(self, function: Callable, config: FitConfig) -> None:
        budget = config.time_budget
        long_run = config.steps >= COMPILE_STEPS and (budget is None or budget >= COMPILE_SECONDS)
        wanted = config.compile == "on" or (config.compile == "auto" and long_run)
        self.function = function
        self.compiled = compile_model(function) if wanted else None
        self.ran_compiled = False  # until a compiled call succeeds; again False after a fallback

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                result = self.compiled(*args)
            except Exception as error:
                if out_of_memory(error):
                    raise
                self.compiled, self.ran_compiled = None, False
            else:
                self.ran_compiled = True
                return result
        return self.function(*args)


# A first compile (an empty inductor cache: a fresh machine, a reboot) costs about a minute:
# kodim05 at the default's 120 s made 2,114 steps (26.56 dB) where eager made 4,441
# (30.44 dB) and a warm cache 5,328 (30.53 dB). Compiled steps are 1.2x eager's, so only a
# budget of about 10 minutes repays a cold compile; shorter ones train eagerly.
COMPILE_STEPS, COMPILE_SECONDS = 3000, 600.0


def _rate_function(model, config: FitConfig) -> tuple[RefreshedRate, list[torch.nn.Parameter]]:
    """The latents' training rate, and the parameters of the rate model that only training
    has: under the model's context network (fresh every step; its weights are the
    model's own), or the neighbourhood law, whose gains are in no file and whose
    elementwise work compiles into a few loops."""
    if model.context is not None:
        bits = lambda latents: training_bits(latents, model.context)  # noqa: E731
        return RefreshedRate(bits, [*model.latents, *model.context.parameters()], 1), []
    law = NeighbourhoodRate(len(model.latents)).to(model.latents[0].device)
    gains = list(law.parameters())
    rate = _MaybeCompiled(law, config)
    return RefreshedRate(rate, [*model.latents, *gains], config.rate_every), gains


class RefreshedRate:
    """The rate term's gradient, computed afresh every `every` steps and added, scaled by
    the step's λ/N, to the gradients of the steps in between. The rate of half a million
    latents cost as much as a batch's distortion (17.5 against 16.5 ms, kodim05, 2 cores);
    the latents move little in a few steps, so a gradient a few steps old prices them
    nearly as well. Unlike a rate priced on a random share at a larger weight (tried and
    withdrawn: docs/experiments.md), every step sees the same size of gradient, so
    Adam's per-latent normalisation is not thrown by rare large ones."""

    def __init__(
        self, bits: Callable[[list[torch.Tensor]], torch.Tensor], parameters: list, every: int
    ) -> None:
        if every < 1:
            raise ValueError(f"rate_every must be at least 1, not {every}")
        self.bits, self.parameters, self.every = bits, parameters, every
        self.steps = 0
        self.gradients: tuple[torch.Tensor | None, ...] = ()

    def add_gradients(self, noisy: list[torch.Tensor], weight: float) -> None:
        """Add `weight` × the rate's gradient to every parameter's, refreshing it first when
        due (`noisy`: the step's quantization stand-ins, built from the latents)."""
        if self.steps % self.every == 0:
            self.gradients = torch.autograd.grad(
                self.bits(noisy), self.parameters, allow_unused=True
            )
        self.steps += 1
        for parameter, gradient in zip(self.parameters, self.gradients, strict=True):
            if gradient is None:
                continue
            if parameter.grad is None:
                parameter.grad = gradient * weight
            else:
                parameter.grad.add_(gradient, alpha=weight)


def _distortion_function(model, config: FitConfig) -> _MaybeCompiled:
    """D of a batch: the synthesis and its loss compile into fewer, fused loops (−10 %)."""

    def distortion(latents, coords, targets, nodes):
        values = model.synthesize(coords, latents, nodes)
        return torch.mean((values - targets) ** 2) / PEAK_SQUARED

    return _MaybeCompiled(distortion, config)


class _Parts(NamedTuple):
    """What a training step calls besides the model."""

    rate: RefreshedRate
    distortion: _MaybeCompiled
    noise: NoiseSource
    batches: Batches
    patches: Patches | None  # the post-filter's, when the model has one


def _step(model, optimizer, coords, targets, config: FitConfig, lam, progress: float, parts):
    """One Adam update on D + λR at the cosine-scheduled lr, on a batch of points (all of
    them for a small signal or `--batch-size 0`)."""
    rate, distortion, noise, batches, patches = parts
    for group in optimizer.param_groups:
        group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    n = len(coords)
    frozen = progress >= NOISE_SHARE  # the latents are final (`_freeze`): the networks adapt
    if frozen and patches is not None:
        loss = _patch_distortion(model, coords, targets, patches)
    else:
        nodes = None  # the whole lattice, in order
        if 0 < config.batch_size < n:
            coords, targets, nodes = batches()
        latents = list(model.latents) if frozen else noise(list(model.latents))
        loss = distortion(latents, coords, targets, nodes)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if not frozen:
        rate.add_gradients(latents, lam / n)
    optimizer.step()


def post_patches(
    model, size: int, device: torch.device, generator: torch.Generator | None = None
) -> Patches | None:
    """Lattice patches of about `size` points with the post-filter's halo, or None for a
    model without a filter: what training and the weights' step choice judge it on."""
    if model.post is None:
        return None
    return Patches(list(model.shape), size, model.post.halo, device, generator)


def _patch_distortion(model, coords, targets, patches: Patches) -> torch.Tensor:
    """D of a batch of post-filtered patches: the synthesis on each patch and its halo,
    then the filter's valid convolution."""
    padded, inner = patches()
    points = coords.index_select(0, padded)
    pred = model.filtered_patches(points, patches.count, list(model.latents))
    return torch.mean((pred - targets.index_select(0, inner)) ** 2) / PEAK_SQUARED


def _evaluate(
    model,
    coords: torch.Tensor,
    targets: torch.Tensor,
    quality: Quality | None,
    values: bool = True,
) -> tuple[float, float, float]:
    """(the latents' bits as the file will store them, quality in dB, MSE), rounded. Without
    `values`, the bits alone (quality and MSE NaN): decoding the whole signal costs an
    evaluation more than its bits (~3 % of a 768x512 run, evaluating every 250 steps)."""
    with torch.no_grad():
        latents = [torch.round(grid) for grid in model.latents]
        bits = stored_bits(latents, model.context)
        if not values:
            return bits, math.nan, math.nan
        chunk = chunk_points(model)
        pred = torch.cat(
            [model.synthesize(coords[i : i + chunk], latents) for i in range(0, len(coords), chunk)]
        )
        pred = model.lattice_values(pred)  # `coords` is the whole lattice
        mse = torch.mean((pred - targets) ** 2).item()
    return bits, (quality(pred) if quality is not None else math.nan), mse
