"""Fit an INR to (coords, targets): Adam, exponential lr decay, MSE in the transformed domain.

The recipe follows the references (Adam with default betas, lr decayed as
lr·0.1^progress, one decay step per optimizer step). CPU-minded additions: random
mini-batches of coordinates (`batch_size`), stopping on a time budget, a target quality
or a plateau, and `torch.compile` of the training step when the run is long enough to
repay its compile time. The best model seen is kept, not only the last one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from inrcodec.render import chunk_points

COMPILE_PAYBACK_SECONDS = 60.0  # compile (~15 s) only when eager training would take longer
WARMUP_STEPS = 3  # eager steps timed before deciding whether to compile


@dataclass
class FitConfig:
    steps: int = 1000
    lr: float = 1e-4
    lr_final_factor: float = 0.1  # lr decays exponentially to lr·factor at the end of the run
    batch_size: int = 0  # coordinates per step; 0 = the full grid every step
    eval_every: int = 50  # mini-batch mode: steps between full-grid evaluations
    seed: int = 3407
    time_budget: float | None = None  # seconds; the lr schedule follows whichever ends first
    target_psnr: float | None = None  # stop as soon as the quality measure reaches this
    patience: int | None = None  # stop after this many steps without a new best loss
    compile: str = "auto"  # "auto": when it pays off; "on"; "off"


@dataclass
class Progress:
    step: int
    total: int
    loss: float
    psnr: float | None
    elapsed: float


@dataclass
class FitResult:
    state: dict[str, torch.Tensor]  # the best model's parameters, on the CPU
    steps: int
    seconds: float
    best_loss: float
    stop_reason: str  # "steps", "time-budget", "target-psnr", "plateau" or "interrupted"
    compiled: bool = False  # whether torch.compile ran the training steps


Quality = Callable[[torch.Tensor], float]  # full-grid prediction (N, C) -> PSNR in dB


def _full_grid_prediction(model: nn.Module, coords: torch.Tensor, chunk: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(coords[i : i + chunk]) for i in range(0, len(coords), chunk)])


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
) -> FitResult:
    """Train `model` so that model(coords) ≈ targets; return the best parameters seen.

    Loss is judged on the full grid: every step in full-batch mode (the forward pass
    before the update, as the references log it), every `eval_every` steps otherwise.
    `should_stop` is polled once per step (the CLI sets it on Ctrl-C); it, or a
    KeyboardInterrupt, ends training with stop_reason "interrupted", and the best model
    so far is still returned.
    """
    torch.manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    n = len(coords)
    full_batch, eval_chunk = _batching(model, config, n)
    eval_every = 1 if full_batch else max(1, config.eval_every)
    train_model: nn.Module = model  # becomes the compiled module when that pays off
    compiled = False

    best_loss = math.inf
    # Preallocated once; improvements (nearly every full-batch step) copy into it in place.
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    last_improvement = 0
    stop_reason = "steps"
    start = time.perf_counter()
    warmup_started = start
    last_report = -math.inf
    done = 0  # optimizer updates applied

    def judge(pred: torch.Tensor) -> None:
        """Record the loss of the current parameters; keep them if they are the best yet."""
        nonlocal best_loss, last_improvement
        loss = torch.mean((pred - targets) ** 2).item()
        if loss < best_loss:
            best_loss, last_improvement = loss, done
            for name, value in model.state_dict().items():
                best_state[name].copy_(value)

    def maybe_compile(elapsed: float) -> None:
        """After the warm-up steps, compile if the eager remainder would exceed the payback."""
        nonlocal train_model, compiled
        per_step = (time.perf_counter() - warmup_started) / max(1, done - 1)
        remaining = (config.steps - done) * per_step
        if config.time_budget:
            remaining = min(remaining, config.time_budget - elapsed)
        if config.compile == "on" or remaining > COMPILE_PAYBACK_SECONDS:
            candidate = compile_model(model)
            if candidate is not None:
                train_model, compiled = candidate, True

    try:
        while done < config.steps:
            if should_stop is not None and should_stop():
                stop_reason = "interrupted"
                break
            elapsed = time.perf_counter() - start
            progress = done / config.steps
            if config.time_budget:
                if elapsed >= config.time_budget:
                    stop_reason = "time-budget"
                    break
                progress = max(progress, elapsed / config.time_budget)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * config.lr_final_factor**progress
            if done == 1:
                warmup_started = time.perf_counter()  # step 0 pays one-off costs
            if done == WARMUP_STEPS and config.compile != "off":
                maybe_compile(elapsed)

            judged: torch.Tensor | None = None  # full-grid prediction of the current params
            batch = None
            if not full_batch:
                batch = torch.randint(0, n, (config.batch_size,), device=coords.device)
            if not full_batch and done % eval_every == 0:
                judged = _full_grid_prediction(model, coords, eval_chunk)
            try:
                pred = _gradients(train_model, optimizer, coords, targets, batch)
            except Exception:
                if train_model is model:
                    raise
                train_model, compiled = model, False  # compilation failed: carry on eagerly
                pred = _gradients(model, optimizer, coords, targets, batch)
            if full_batch:
                judged = pred

            report_due = on_progress is not None and elapsed - last_report >= report_seconds
            psnr = None
            if judged is not None:
                judge(judged)
                # Mini-batch evaluations are sparse, so each one is measured and reported.
                wanted = report_due or config.target_psnr is not None or not full_batch
                if quality and wanted:
                    psnr = quality(judged)
                    report_due = report_due or (on_progress is not None and not full_batch)
            if report_due:
                on_progress(Progress(done, config.steps, best_loss, psnr, elapsed))
                last_report = elapsed
            if psnr is not None and config.target_psnr is not None and psnr >= config.target_psnr:
                stop_reason = "target-psnr"
                break
            if config.patience is not None and done - last_improvement >= config.patience:
                stop_reason = "plateau"
                break

            optimizer.step()
            done += 1
        if stop_reason in ("steps", "interrupted"):
            # The last update has not been judged yet.
            judge(_full_grid_prediction(model, coords, eval_chunk))
    except KeyboardInterrupt:
        stop_reason = "interrupted"

    return FitResult(
        state={k: v.detach().cpu() for k, v in best_state.items()},
        steps=done,
        seconds=time.perf_counter() - start,
        best_loss=best_loss,
        stop_reason=stop_reason,
        compiled=compiled,
    )


def _gradients(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    coords: torch.Tensor,
    targets: torch.Tensor,
    batch: torch.Tensor | None,
) -> torch.Tensor:
    """Backpropagate the MSE on the full grid (batch None) or the sampled rows.

    Returns the (detached) prediction; the optimizer step is left to the caller, which may
    still decide to stop before applying it.
    """
    optimizer.zero_grad(set_to_none=True)
    if batch is None:
        pred = model(coords)
        loss = torch.mean((pred - targets) ** 2)
    else:
        pred = model(coords[batch])
        loss = torch.mean((pred - targets[batch]) ** 2)
    loss.backward()
    return pred.detach()


def finetune_rounded(
    model: nn.Module,
    coords: torch.Tensor,
    targets: torch.Tensor,
    config: FitConfig,
    start: dict[str, torch.Tensor],
    round_weights: Callable[[torch.Tensor], torch.Tensor],
    steps: int,
) -> tuple[dict[str, torch.Tensor], float, float]:
    """Quantization-aware fine-tuning: a few straight-through steps from `start`.

    Each step computes the loss with every parameter replaced by `round_weights(p)` (what
    the file will store) and applies the gradient to the full-precision parameters, at
    the run's final learning rate. Returns the parameters whose rounded version had the
    lowest full-grid loss (`start` if no step beat it) and the rounded loss before and after.
    """
    model.load_state_dict(start)
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=config.lr * config.lr_final_factor)
    n = len(coords)
    full_batch, chunk = _batching(model, config, n)
    generator = torch.Generator(device=coords.device).manual_seed(config.seed)

    def rounded_loss() -> float:
        with _rounded(params, round_weights):
            pred = _full_grid_prediction(model, coords, chunk)
        return torch.mean((pred - targets) ** 2).item()

    before = best = rounded_loss()
    best_state = {k: v.detach().clone() for k, v in start.items()}
    for step in range(1, steps + 1):
        batch = None
        if not full_batch:
            batch = torch.randint(
                0, n, (config.batch_size,), device=coords.device, generator=generator
            )
        with _rounded(params, round_weights):
            _gradients(model, optimizer, coords, targets, batch)
        optimizer.step()
        if step % max(1, config.eval_every) == 0 or step == steps:
            loss = rounded_loss()
            if loss < best:
                best = loss
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {k: v.cpu() for k, v in best_state.items()}, before, best


def _batching(model: nn.Module, config: FitConfig, n: int) -> tuple[bool, int]:
    """(whether every step sees all n points, the chunk size of full-grid evaluations).

    Evaluations are chunked like decoding, within the model's memory budget.
    """
    full_batch = config.batch_size <= 0 or config.batch_size >= n
    return full_batch, min(max(config.batch_size, 65536), chunk_points(model))


@contextmanager
def _rounded(params: list[torch.Tensor], round_weights: Callable[[torch.Tensor], torch.Tensor]):
    """Parameters hold their rounded values inside the block and their own values after."""
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.copy_(round_weights(p))
    try:
        yield
    finally:
        with torch.no_grad():
            for p, value in zip(params, saved, strict=True):
                p.copy_(value)
