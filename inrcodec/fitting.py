"""Fit an INR to (coords, targets): Adam, exponential lr decay, MSE in the transformed domain.

The recipe follows the references (Adam with default betas, lr decayed as
lr·0.1^progress, one decay step per optimizer step). CPU-minded additions: random
mini-batches of coordinates (`batch_size`), stopping on a time budget, a target quality
or a plateau, and `torch.compile` of the training step when the run is long enough to
repay its compile time. The best model seen is kept, not only the last one, and the
parameters are always judged once more after the last update.

One loop (`_Run`) serves `fit` and `finetune_rounded`, the quantization-aware tuning that
runs it with the parameters rounded, during each forward pass, as the file will store them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace

import torch
from torch import nn

from inrcodec.options import FitConfig
from inrcodec.render import chunk_points

COMPILE_PAYBACK_SECONDS = 60.0  # compile (~15 s) only when eager training would take longer
WARMUP_STEPS = 3  # eager steps timed before deciding whether to compile


@dataclass
class Progress:
    step: int
    total: int
    loss: float
    psnr: float | None
    elapsed: float
    budget: float | None = None  # the encode's training seconds, when a time budget ends it


@dataclass
class FitResult:
    state: dict[str, torch.Tensor]  # the best model's parameters, on the CPU
    steps: int  # optimizer updates applied
    seconds: float
    best_loss: float
    stop_reason: str  # "steps", "time-budget", "target-psnr", "plateau" or "interrupted"
    compiled: bool = False  # whether torch.compile ran the training steps
    lam: float | None = None  # rate–distortion fits: the λ the run ended at
    warnings: tuple[str, ...] = ()  # what the user should know about the result


Quality = Callable[[torch.Tensor], float]  # full-grid prediction (N, C) -> dB (PSNR or SNR)
Rounding = Mapping[str, Callable[[torch.Tensor], torch.Tensor]]  # parameter name -> as decoded


def compile_model(model: nn.Module) -> nn.Module | None:
    """`torch.compile(model)`, or None where this platform cannot compile.

    Compilation itself happens at the first call; `fit` falls back to eager if that fails.
    """
    if not hasattr(torch, "compile"):
        return None
    try:
        return torch.compile(model, dynamic=False)
    except Exception:  # e.g. an unsupported Python version
        return None


def fit(
    model: nn.Module,
    coords: torch.Tensor,
    targets: torch.Tensor,
    config: FitConfig,
    quality: Quality | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    report_seconds: float = 0.5,
    should_stop: Callable[[], bool] | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> FitResult:
    """Train `model` so that model(coords) ≈ targets; return the best parameters seen.

    Loss is judged on the full grid: every step in full-batch mode (the forward pass
    before the update, as the references log it), every `eval_every` steps otherwise,
    and once more after the last update whatever ended the run. `should_stop` is polled
    once per step (the CLI sets it on Ctrl-C); it, or a KeyboardInterrupt, ends training
    with stop_reason "interrupted", and the best model so far is still returned. `model`
    is left with its last parameters, not the best ones. `clock` times the run (tests
    pass a fake one).
    """
    torch.manual_seed(config.seed)
    run = _Run(
        model,
        coords,
        targets,
        config,
        clock=clock,
        quality=quality,
        on_progress=on_progress,
        report_seconds=report_seconds,
        should_stop=should_stop,
    )
    try:
        stop_reason = run.loop()
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    run.finish()
    return FitResult(
        state=run.best_state_on_cpu(),
        steps=run.done,
        seconds=clock() - run.start,
        best_loss=run.best_loss,
        stop_reason=stop_reason,
        compiled=run.compiled,
    )


def finetune_rounded(
    model: nn.Module,
    coords: torch.Tensor,
    targets: torch.Tensor,
    config: FitConfig,
    start: dict[str, torch.Tensor],
    rounding: Rounding,
    steps: int,
) -> tuple[dict[str, torch.Tensor], float, float]:
    """Quantization-aware fine-tuning: a few straight-through steps from `start`.

    In every forward pass, each parameter named in `rounding` (as in `named_parameters()`)
    holds what its function returns, i.e. what the file will decode for that tensor, so
    the caller rounds exactly what the container stores; unnamed parameters keep their
    values. Gradients apply to the full-precision parameters, with Adam at the run's
    final learning rate; batching and evaluations are `fit`'s. Returns the parameters
    whose rounded version had the lowest full-grid loss (`start` if no step beat it) and
    the rounded loss before and after.
    """
    unknown = set(rounding) - {name for name, _ in model.named_parameters()}
    if unknown:
        raise ValueError(f"rounding names no parameter of the model: {sorted(unknown)}")
    model.load_state_dict(start)
    tuning = replace(
        config,
        steps=steps,
        lr=config.lr * config.lr_final_factor,
        lr_final_factor=1.0,
        time_budget=None,
        target_psnr=None,
        patience=None,
        compile="off",
    )
    # A private generator: the batches do not depend on, nor disturb, the global RNG.
    generator = torch.Generator(device=coords.device).manual_seed(config.seed)
    run = _Run(model, coords, targets, tuning, rounding=rounding, generator=generator)
    run.loop()
    run.finish()
    assert run.first_loss is not None  # the starting parameters are always judged
    return run.best_state_on_cpu(), run.first_loss, run.best_loss


def _learning_rate(config: FitConfig, done: int, elapsed: float) -> float:
    """lr·factor^progress; progress is the share of the steps or of the time budget spent,
    whichever is larger, so a budgeted run still ends at the final lr."""
    progress = done / max(1, config.steps)
    if config.time_budget:
        progress = max(progress, elapsed / config.time_budget)
    return config.lr * config.lr_final_factor ** min(progress, 1.0)


def _compile_pays_off(
    config: FitConfig, seconds_per_step: float, done: int, elapsed: float
) -> bool:
    """After the warm-up steps: compile? "on": yes; "off": no; "auto": when the eager rest
    of the run (steps or time budget, whichever ends first) exceeds the compile payback."""
    if config.compile in ("on", "off"):
        return config.compile == "on"
    remaining = (config.steps - done) * seconds_per_step
    if config.time_budget:
        remaining = min(remaining, config.time_budget - elapsed)
    return remaining > COMPILE_PAYBACK_SECONDS


def out_of_memory(error: Exception) -> bool:
    """torch.OutOfMemoryError, or a RuntimeError that says so (older torch, the CPU
    allocator). Eager would need as much memory, so such errors must reach the caller."""
    oom = getattr(torch, "OutOfMemoryError", ())  # isinstance(x, ()) is False
    message = str(error).lower()
    said = "out of memory" in message or "can't allocate memory" in message
    return isinstance(error, oom) or (isinstance(error, RuntimeError) and said)


class _Run:
    """The state of one training loop: optimizer, best state, counters, timing."""

    def __init__(
        self,
        model: nn.Module,
        coords: torch.Tensor,
        targets: torch.Tensor,
        config: FitConfig,
        *,
        clock: Callable[[], float] = time.perf_counter,
        quality: Quality | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        report_seconds: float = 0.5,
        should_stop: Callable[[], bool] | None = None,
        rounding: Rounding | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.model, self.coords, self.targets, self.config = model, coords, targets, config
        self.clock, self.quality = clock, quality
        self.on_progress, self.report_seconds = on_progress, report_seconds
        self.should_stop = should_stop
        self.rounding, self.generator = rounding, generator
        n = len(coords)
        self.full_batch = config.batch_size <= 0 or config.batch_size >= n
        self.eval_every = 1 if self.full_batch else max(1, config.eval_every)
        # Evaluations are chunked like decoding, within the model's memory budget.
        self.chunk = min(max(config.batch_size, 65536), chunk_points(model))
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.train_model = model  # becomes the compiled module when that pays off
        self.compiled = False
        # Preallocated once; improvements (nearly every full-batch step) copy into it in place.
        self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.best_loss = math.inf
        self.first_loss: float | None = None  # the loss of the parameters it started from
        self.improved_at = 0  # `done` at the last evaluation that found a new best
        self.done = 0  # optimizer updates applied
        self.pending = True  # parameters not judged yet (cleared by each evaluation)
        self.start = self.warmup_started = clock()
        self.last_report = -math.inf

    def loop(self) -> str:
        """Train until a stop rule applies; returns its reason."""
        while True:
            elapsed = self.clock() - self.start
            report_due = (
                self.on_progress is not None and elapsed - self.last_report >= self.report_seconds
            )
            judged = self._evaluate_if_due(report_due)
            if report_due or (judged is not None and self.on_progress and not self.full_batch):
                # Mini-batch evaluations are sparse, so each one is reported.
                self._report(elapsed, None if judged is None else judged[1])
            reason = self._stop_reason(elapsed, judged)
            if reason is not None:
                return reason
            self._update(elapsed)

    def finish(self) -> None:
        """Judge the parameters if updates (or an interrupted evaluation) left them unjudged:
        whatever ended the run, the last updates may be the best ones."""
        if self.pending:
            self.evaluate(self._full_grid_prediction(), measure=False)

    def evaluate(self, pred: torch.Tensor, measure: bool) -> tuple[float, float | None]:
        """(loss, quality in dB or None if not `measure`d) of the current parameters, given
        their full-grid prediction; keeps the parameters if they are the best yet."""
        loss = torch.mean((pred - self.targets) ** 2).item()
        if loss < self.best_loss:
            for name, value in self.model.state_dict().items():
                self.best_state[name].copy_(value)
            self.best_loss, self.improved_at = loss, self.done
        if self.first_loss is None:
            self.first_loss = loss
        self.pending = False
        return loss, (self.quality(pred) if self.quality is not None and measure else None)

    def best_state_on_cpu(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.best_state.items()}

    def _evaluate_if_due(self, report_due: bool) -> tuple[float, float | None] | None:
        """Judge the current parameters when due: every step in full-batch mode, where the
        training forward pass doubles as the evaluation, else every `eval_every` steps."""
        if self.full_batch and self.done < self.config.steps:
            pred = self._backward(None)
        elif self.done % self.eval_every == 0:
            pred = self._full_grid_prediction()
        else:
            return None
        # Measured for every sparse mini-batch evaluation; in full-batch mode when needed.
        measure = report_due or self.config.target_psnr is not None or not self.full_batch
        return self.evaluate(pred, measure)

    def _stop_reason(self, elapsed: float, judged: tuple[float, float | None] | None) -> str | None:
        """The stop rule that applies now, if any. Target and patience are checked only right
        after an evaluation: between evaluations nothing new is known about the loss."""
        config = self.config
        if self.should_stop is not None and self.should_stop():
            return "interrupted"
        if judged is not None:
            quality = judged[1]
            target = config.target_psnr
            if target is not None and quality is not None and quality >= target:
                return "target-psnr"
            if config.patience is not None and self.done - self.improved_at >= config.patience:
                return "plateau"
        if config.time_budget and elapsed >= config.time_budget:
            return "time-budget"
        if self.done >= config.steps:
            return "steps"
        return None

    def _update(self, elapsed: float) -> None:
        """One optimizer step at the scheduled lr (gradients: see `_evaluate_if_due`)."""
        self._consider_compiling(elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = _learning_rate(self.config, self.done, elapsed)
        if not self.full_batch:
            n, size = len(self.coords), self.config.batch_size
            device = self.coords.device
            self._backward(torch.randint(0, n, (size,), device=device, generator=self.generator))
        self.pending = True
        self.optimizer.step()
        self.done += 1

    def _consider_compiling(self, elapsed: float) -> None:
        """Time the warm-up steps (step 0 pays one-off costs), then apply the policy."""
        if self.done == 1:
            self.warmup_started = self.clock()
        elif self.done == WARMUP_STEPS and self.config.compile != "off":
            per_step = (self.clock() - self.warmup_started) / (WARMUP_STEPS - 1)
            if _compile_pays_off(self.config, per_step, self.done, elapsed):
                candidate = compile_model(self.model)
                if candidate is not None:
                    self.train_model, self.compiled = candidate, True

    def _backward(self, batch: torch.Tensor | None) -> torch.Tensor:
        """Gradients at the current parameters; a failing compiled module falls back to eager,
        unless it ran out of memory."""
        with self._forward_context():
            try:
                return self._gradients(self.train_model, batch)
            except Exception as error:
                if self.train_model is self.model or out_of_memory(error):
                    raise
            self.train_model, self.compiled = self.model, False  # carry on eagerly
            return self._gradients(self.model, batch)

    def _gradients(self, module: nn.Module, batch: torch.Tensor | None) -> torch.Tensor:
        """Backpropagate the MSE on the full grid (batch None) or the sampled rows.

        Returns the (detached) prediction; the optimizer step is left to `_update`, as the
        run may still stop before applying it.
        """
        self.optimizer.zero_grad(set_to_none=True)
        coords, targets = self.coords, self.targets
        if batch is not None:
            coords, targets = coords[batch], targets[batch]
        pred = module(coords)
        loss = torch.mean((pred - targets) ** 2)
        if self.config.l1:  # rate-aware: smaller weights cost fewer entropy-coded bits
            loss = loss + self.config.l1 * sum(p.abs().sum() for p in self.model.parameters())
        loss.backward()
        return pred.detach()

    def _full_grid_prediction(self) -> torch.Tensor:
        with torch.no_grad(), self._forward_context():
            chunks = range(0, len(self.coords), self.chunk)
            return torch.cat([self.model(self.coords[i : i + self.chunk]) for i in chunks])

    def _forward_context(self) -> AbstractContextManager[None]:
        return (
            nullcontext()
            if self.rounding is None
            else rounded_parameters(self.model, self.rounding)
        )

    def _report(self, elapsed: float, quality: float | None) -> None:
        assert self.on_progress is not None
        self.on_progress(
            Progress(
                self.done,
                self.config.steps,
                self.best_loss,
                quality,
                elapsed,
                self.config.time_budget,
            )
        )
        self.last_report = elapsed


@contextmanager
def rounded_parameters(model: nn.Module, rounding: Rounding) -> Iterator[None]:
    """The parameters named in `rounding` hold their rounded values inside the block (the
    gradient computed there is the straight-through one) and their own values after it."""
    params = [(p, rounding[name]) for name, p in model.named_parameters() if name in rounding]
    saved = [p.detach().clone() for p, _ in params]
    with torch.no_grad():
        for p, round_tensor in params:
            p.copy_(round_tensor(p))
    try:
        yield
    finally:
        with torch.no_grad():
            for (p, _), value in zip(params, saved, strict=True):
                p.copy_(value)
