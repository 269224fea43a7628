"""Seconds per training step: our encoder vs a reference-style loop vs pure GEMM time.

    python benchmarks/train_speed.py [--size 256] [--steps 20] [--archs siren,finer,...]

For each arch at 3x256 on a size x size RGB image (full batch) it times, in one process:
  a) our encoder's step (`inrcodec.fitting.fit`, after its warm-up/compile),
  b) a plain reference-style loop: eager, full batch, a `.item()` every step, LambdaLR,
  c) the same layers' matrix products alone (torch.mm forward + backward shapes).
and prints ratio_vs_reference = b/a and gemm_fraction = c/a. Absolute times on shared
machines are noise; the ratios are measured side by side. Results are appended as a
Markdown table to benchmarks/results/train_speed.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inrcodec.coords import grid_coords
from inrcodec.fitting import FitConfig, fit
from inrcodec.models import build_model

RESULTS = Path(__file__).resolve().parent / "results" / "train_speed.md"


def reference_loop(model: torch.nn.Module, coords, targets, steps: int, lr: float) -> float:
    """The official trainers' loop: eager, full batch, loss.item() every step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.1 ** min(t / steps, 1))
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()  # step 0 pays one-off allocation costs
        loss = torch.mean((model(coords) - targets) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        loss.item()
    return (time.perf_counter() - start) / steps


def our_step(model: torch.nn.Module, coords, targets, steps: int, lr: float, compile_mode: str):
    """Per-step time of `fit` in steady state (compile and warm-up excluded)."""
    marks: list[float] = []
    config = FitConfig(steps=steps + 8, lr=lr, batch_size=0, compile=compile_mode)
    result = fit(
        model,
        coords,
        targets,
        config,
        on_progress=lambda p: marks.append((p.step, time.perf_counter())),
        report_seconds=0,
    )
    steady = [m for m in marks if m[0] >= 8]
    per_step = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
    return per_step, result.compiled


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def gemm_time(model: torch.nn.Module, n: int, steps: int, device: torch.device) -> float:
    """The same matrix products as the model's linear maps, forward and backward, alone."""
    shapes = [
        (m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)
    ]
    shapes += getattr(model, "gemm_shapes", [])
    mats = []
    for i, (fan_in, fan_out) in enumerate(shapes):
        x, w, g = (
            torch.randn(*shape, device=device)
            for shape in ((n, fan_in), (fan_in, fan_out), (n, fan_out))
        )
        mats.append((x, w, g, i > 0))

    def once() -> None:
        for x, w, g, needs_input_grad in mats:
            torch.mm(x, w)  # forward
            torch.mm(x.t(), g)  # weight gradient
            if needs_input_grad:
                torch.mm(g, w.t())  # input gradient

    once()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        once()
    _sync(device)
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--archs", default="siren,finer,spder,sl2a")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    coords = grid_coords((args.size, args.size), device)
    targets = torch.rand(len(coords), 3, device=device) * 2 - 1
    rows = []
    for arch in args.archs.split(","):
        torch.manual_seed(0)
        models = [build_model(arch, 2, 3).to(device) for _ in range(3)]
        b = reference_loop(models[0], coords, targets, args.steps, 1e-4)
        a_eager, _ = our_step(models[1], coords, targets, args.steps, 1e-4, "off")
        a, compiled = our_step(models[2], coords, targets, args.steps, 1e-4, "on")
        c = gemm_time(models[0], len(coords), args.steps, device)
        best = min(a, a_eager)
        row = (arch, b, a_eager, a, compiled, c, b / best, c / best)
        rows.append(row)
        print(
            f"{arch}: reference {b:.3f} s/step, ours eager {a_eager:.3f}, ours compiled {a:.3f}"
            f" ({'compiled' if compiled else 'compile failed, eager'}), gemm {c:.3f}; "
            f"ratio_vs_reference = {b / best:.2f}, gemm_fraction = {c / best:.2f}",
            flush=True,
        )
    write_results(rows, args, argv)
    return 0


def write_results(rows: list, args: argparse.Namespace, argv: list[str] | None) -> None:
    command = "python benchmarks/train_speed.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    lines = [
        f"\n## {time.strftime('%Y-%m-%d %H:%M')} — {args.device}, {args.size}² full batch, "
        f"3x256, {args.steps} timed steps",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}"
        + (f", {torch.cuda.get_device_name()}" if args.device.startswith("cuda") else "")
        + f". Command: `{command}`",
        "",
        "| arch | reference s/step (b) | ours eager | ours compiled | compiled? | GEMM s (c) "
        "| ratio_vs_reference b/a | gemm_fraction c/a |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arch, b, eager, comp, ok, c, ratio, frac in rows:
        lines.append(
            f"| {arch} | {b:.3f} | {eager:.3f} | {comp:.3f} | {'yes' if ok else 'no'} "
            f"| {c:.3f} | {ratio:.2f} | {frac:.2f} |"
        )
    lines.append(
        "\n`a` is the faster of our eager and compiled steps (what `--compile auto` picks "
        "for long runs)."
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
