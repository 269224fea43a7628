"""Fit an INR to (coords, targets): Adam, exponential lr decay, MSE in the transformed domain.

The recipe follows the references (Adam with default betas, lr decayed as
lr·0.1^progress, one decay step per optimizer step). Two CPU-minded additions: random
mini-batches of coordinates (`batch_size`), and stopping on a time budget, a target
quality or a plateau. The best model seen is kept, not only the last one.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


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


Quality = Callable[[torch.Tensor], float]  # full-grid prediction (N, C) -> PSNR in dB


def _full_grid_prediction(model: nn.Module, coords: torch.Tensor, chunk: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(coords[i : i + chunk]) for i in range(0, len(coords), chunk)])


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
    full_batch = config.batch_size <= 0 or config.batch_size >= n
    eval_every = 1 if full_batch else max(1, config.eval_every)
    eval_chunk = max(config.batch_size, 65536)

    best_loss = math.inf
    best_state = copy.deepcopy(model.state_dict())
    last_improvement = 0
    stop_reason = "steps"
    start = time.perf_counter()
    last_report = -math.inf
    done = 0  # optimizer updates applied

    def judge(pred: torch.Tensor) -> None:
        """Record the loss of the current parameters; keep them if they are the best yet."""
        nonlocal best_loss, best_state, last_improvement
        loss = torch.mean((pred - targets) ** 2).item()
        if loss < best_loss:
            best_loss, last_improvement = loss, done
            best_state = copy.deepcopy(model.state_dict())

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

            judged: torch.Tensor | None = None  # full-grid prediction of the current params
            if full_batch:
                pred = model(coords)
                loss = torch.mean((pred - targets) ** 2)
                judged = pred.detach()
            else:
                if done % eval_every == 0:
                    judged = _full_grid_prediction(model, coords, eval_chunk)
                idx = torch.randint(0, n, (config.batch_size,), device=coords.device)
                loss = torch.mean((model(coords[idx]) - targets[idx]) ** 2)

            report_due = on_progress is not None and elapsed - last_report >= report_seconds
            psnr = None
            if judged is not None:
                judge(judged)
                if quality and (report_due or config.target_psnr is not None):
                    psnr = quality(judged)
            if report_due:
                on_progress(Progress(done, config.steps, best_loss, psnr, elapsed))
                last_report = elapsed
            if psnr is not None and config.target_psnr is not None and psnr >= config.target_psnr:
                stop_reason = "target-psnr"
                break
            if config.patience is not None and done - last_improvement >= config.patience:
                stop_reason = "plateau"
                break

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
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
    )
