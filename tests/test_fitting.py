"""The training loop: schedule, best-model tracking, stopping rules."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from inrcodec.coords import axis, grid_coords
from inrcodec.fitting import FitConfig, fit
from inrcodec.models import build_model


def problem(n: int = 12):
    coords = grid_coords((n, n))
    targets = torch.stack([torch.sin(3 * coords[:, 0]), coords[:, 1] ** 2], dim=-1)
    torch.manual_seed(0)
    return build_model("siren", 2, 2, width=24, depth=1), coords, targets


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
    result = fit(model, coords, targets, FitConfig(steps=60, lr=1e-2))
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
        FitConfig(steps=40, lr=3.0),
        on_progress=lambda p: seen.append(p.loss),
        report_seconds=0,
    )
    last = loss_of(model, {k: v.clone() for k, v in model.state_dict().items()}, coords, targets)
    best = loss_of(model, result.state, coords, targets)
    assert best == pytest.approx(result.best_loss, rel=1e-5)
    assert best < last  # the final parameters are worse than the kept ones


def test_learning_rate_decays_to_a_tenth():
    model, coords, targets = problem()
    lrs: list[float] = []
    original_step = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        fit(model, coords, targets, FitConfig(steps=11, lr=1e-3))
    finally:
        torch.optim.Adam.step = original_step
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-3 * 0.1 ** (10 / 11))
    assert all(a > b for a, b in itertools.pairwise(lrs))


def test_target_psnr_stops_early():
    model, coords, targets = problem()
    quality = lambda pred: -10 * math.log10(torch.mean((pred - targets) ** 2).item())  # noqa: E731
    result = fit(model, coords, targets, FitConfig(steps=500, lr=1e-3, target_psnr=15), quality)
    assert result.stop_reason == "target-psnr" and result.steps < 500


def test_patience_stops_on_a_plateau():
    model, coords, targets = problem()
    result = fit(model, coords, targets, FitConfig(steps=500, lr=0.0, patience=5))
    assert result.stop_reason == "plateau" and result.steps <= 7


def test_minibatches_and_time_budget():
    model, coords, targets = problem(20)
    result = fit(model, coords, targets, FitConfig(steps=50, lr=1e-3, batch_size=64, eval_every=10))
    assert result.steps == 50 and math.isfinite(result.best_loss)
    result = fit(model, coords, targets, FitConfig(steps=10**6, lr=1e-3, time_budget=0.3))
    assert result.stop_reason == "time-budget"
