"""The training loop: schedule, best-model tracking, stopping rules, QAT rounding."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from inrcodec import fitting
from inrcodec.coords import axis, grid_coords
from inrcodec.fitting import FitConfig, finetune_rounded, fit
from inrcodec.models import build_model


def problem(n: int = 12):
    coords = grid_coords((n, n))
    targets = torch.stack([torch.sin(3 * coords[:, 0]), coords[:, 1] ** 2], dim=-1)
    torch.manual_seed(0)
    return build_model("siren", 2, 2, width=24, depth=1), coords, targets


class Constant(nn.Module):
    """One learnable value predicted everywhere: every mini-batch sees the full-grid
    gradient, so small Adam steps towards the target improve the loss at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(len(x), 1)


def improving_problem():
    coords = grid_coords((8, 8))
    return Constant(), coords, torch.ones(len(coords), 1)


def spy_on_adam(monkeypatch) -> list[float]:
    """The lr of every optimizer update, in order."""
    lrs: list[float] = []
    original_step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    return lrs


def current(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def loss_of(model, state, coords, targets) -> float:
    model.load_state_dict(state)
    with torch.no_grad():
        return torch.mean((model(coords) - targets) ** 2).item()


def test_grid_follows_the_reference_convention():
    assert torch.equal(axis(5), torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    g = grid_coords((3, 4))
    ref = torch.stack(
        torch.meshgrid(torch.linspace(-1, 1, 3), torch.linspace(-1, 1, 4), indexing="ij"), -1
    )
    assert torch.equal(g, ref.reshape(-1, 2))
    assert torch.equal(grid_coords((3, 4), start=5, stop=9), g[5:9])


def test_training_reduces_the_loss_and_returns_the_best_state():
    model, coords, targets = problem()
    before = loss_of(model, model.state_dict(), coords, targets)
    result = fit(model, coords, targets, FitConfig(steps=60, lr=1e-2, batch_size=0))
    assert result.steps == 60 and result.stop_reason == "steps"
    after = loss_of(model, result.state, coords, targets)
    assert after == pytest.approx(result.best_loss, rel=1e-5)
    assert after < before / 10


def test_a_diverging_run_keeps_its_best_model_not_its_last():
    model, coords, targets = problem()
    seen: list[float] = []
    result = fit(
        model,
        coords,
        targets,
        FitConfig(steps=40, lr=3.0, batch_size=0),
        on_progress=lambda p: seen.append(p.loss),
        report_seconds=0,
    )
    last = loss_of(model, {k: v.clone() for k, v in model.state_dict().items()}, coords, targets)
    best = loss_of(model, result.state, coords, targets)
    assert best == pytest.approx(result.best_loss, rel=1e-5)
    assert best < last  # the final parameters are worse than the kept ones


def test_learning_rate_decays_to_a_tenth(monkeypatch):
    model, coords, targets = problem()
    lrs = spy_on_adam(monkeypatch)
    fit(model, coords, targets, FitConfig(steps=11, lr=1e-3, batch_size=0))
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-3 * 0.1 ** (10 / 11))
    assert all(a > b for a, b in itertools.pairwise(lrs))


def test_target_psnr_stops_early():
    model, coords, targets = problem()
    quality = lambda pred: -10 * math.log10(torch.mean((pred - targets) ** 2).item())  # noqa: E731
    config = FitConfig(steps=500, lr=1e-3, batch_size=0, target_psnr=15)
    result = fit(model, coords, targets, config, quality)
    assert result.stop_reason == "target-psnr" and result.steps < 500


def test_patience_stops_on_a_plateau():
    model, coords, targets = problem()
    result = fit(model, coords, targets, FitConfig(steps=500, lr=0.0, batch_size=0, patience=5))
    assert result.stop_reason == "plateau" and result.steps <= 7


def test_minibatches():
    model, coords, targets = problem(20)
    result = fit(model, coords, targets, FitConfig(steps=50, lr=1e-3, batch_size=64, eval_every=10))
    assert result.steps == 50 and math.isfinite(result.best_loss)


def test_time_budget_stops_the_run_and_drives_the_lr(monkeypatch):
    model, coords, targets = problem()
    lrs = spy_on_adam(monkeypatch)
    config = FitConfig(steps=10**6, lr=1e-3, batch_size=0, time_budget=30.0, compile="off")
    # A fake clock: one second per optimizer update, however often it is read.
    result = fit(model, coords, targets, config, clock=lambda: float(len(lrs)))
    assert result.stop_reason == "time-budget" and result.steps == len(lrs) == 30
    # The budget, not the 10**6 steps, sets the progress of the exponential decay.
    assert lrs == pytest.approx([1e-3 * 0.1 ** (k / 30) for k in range(30)])


def test_a_time_budget_still_judges_the_updates_after_the_last_evaluation(monkeypatch):
    model, coords, targets = improving_problem()
    lrs = spy_on_adam(monkeypatch)
    config = FitConfig(
        steps=10**6, lr=1e-2, batch_size=8, eval_every=10, time_budget=25.0, compile="off"
    )
    result = fit(model, coords, targets, config, clock=lambda: float(len(lrs)))
    # Stopped between the evaluations at steps 20 and 30, after 25 updates.
    assert result.stop_reason == "time-budget" and result.steps == len(lrs) == 25
    last = current(model)  # the run improves at every step, so the last update is the best
    assert torch.equal(result.state["value"], last["value"])
    assert result.best_loss == pytest.approx(loss_of(model, last, coords, targets), rel=1e-6)


@pytest.mark.parametrize("how", ["should_stop", "KeyboardInterrupt"])
def test_an_interrupted_run_judges_its_last_updates(how):
    model, coords, targets = improving_problem()
    polls = itertools.count()

    def should_stop() -> bool:  # polled once per step: true at step 15
        if next(polls) < 15:
            return False
        if how == "KeyboardInterrupt":
            raise KeyboardInterrupt
        return True

    config = FitConfig(steps=100, lr=1e-2, batch_size=8, eval_every=10)
    result = fit(model, coords, targets, config, should_stop=should_stop)
    assert result.stop_reason == "interrupted" and result.steps == 15
    assert torch.equal(result.state["value"], current(model)["value"])


def test_minibatch_patience_is_checked_at_evaluations_only():
    model, coords, targets = improving_problem()
    config = FitConfig(steps=30, lr=1e-2, batch_size=8, eval_every=10, patience=3)
    result = fit(model, coords, targets, config)
    # Improvements show only every 10 steps; a patience of 3 raw steps must not end the run.
    assert result.stop_reason == "steps" and result.steps == 30
    model, coords, targets = improving_problem()
    stalled = fit(model, coords, targets, FitConfig(**{**vars(config), "lr": 0.0}))
    # The first evaluation without a new best: patience rounded up to one interval.
    assert stalled.stop_reason == "plateau" and stalled.steps == 10


class FailingCompiled(nn.Module):
    """Stands for a compiled module whose first call fails."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 2 GiB"),
    ],
)
def test_running_out_of_memory_in_the_compiled_step_is_not_hidden(monkeypatch, error):
    monkeypatch.setattr(fitting, "compile_model", lambda model: FailingCompiled(error))
    model, coords, targets = problem()
    with pytest.raises(type(error), match="memory"):
        fit(model, coords, targets, FitConfig(steps=10, lr=1e-3, batch_size=0, compile="on"))


def test_a_compiled_step_that_fails_otherwise_falls_back_to_eager(monkeypatch):
    error = RuntimeError("inductor: unsupported operator")
    monkeypatch.setattr(fitting, "compile_model", lambda model: FailingCompiled(error))
    model, coords, targets = problem()
    result = fit(model, coords, targets, FitConfig(steps=10, lr=1e-3, batch_size=0, compile="on"))
    assert result.stop_reason == "steps" and result.steps == 10 and not result.compiled


def test_finetune_rounds_only_the_named_parameters(monkeypatch):
    model, coords, targets = problem()
    start = current(model)
    name = "net.1.linear.weight"
    quarters = lambda p: torch.round(p * 4) / 4  # noqa: E731
    seen: list[dict[str, torch.Tensor]] = []  # the parameters every forward pass used
    forward = model.forward

    def spy(x):
        seen.append({n: p.detach().clone() for n, p in model.named_parameters()})
        return forward(x)

    monkeypatch.setattr(model, "forward", spy)
    config = FitConfig(lr=1e-3, lr_final_factor=1.0, batch_size=0)
    state, before, after = finetune_rounded(
        model, coords, targets, config, start, {name: quarters}, steps=3
    )
    assert len(seen) >= 4 and all(torch.equal(s[name], quarters(s[name])) for s in seen)
    first = seen[0]
    assert torch.equal(first[name], quarters(start[name]))
    assert all(torch.equal(first[n], start[n]) for n in first if n != name)
    # Outside the forward passes every parameter holds its full-precision value.
    assert not torch.equal(state[name], quarters(state[name]))
    rounded = {**start, name: quarters(start[name])}
    assert before == pytest.approx(loss_of(model, rounded, coords, targets), rel=1e-6)
    assert after <= before
    with pytest.raises(ValueError, match="no parameter"):
        finetune_rounded(model, coords, targets, config, start, {"net.9.scale": quarters}, 1)
