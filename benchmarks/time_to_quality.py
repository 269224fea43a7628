"""PSNR after 1, 2 and 5 minutes of encoding on full-size Kodak images (CPU presets).

    python benchmarks/time_to_quality.py DATA_DIR [--preset balanced] [--budget 300]
        [--images kodim05,kodim13,kodim15,kodim23]

Each image is encoded once with `--time-budget BUDGET` (the lr schedule spans the budget);
the PSNR of the best model so far is read at the 60, 120 and BUDGET second marks from the
encoder's full-grid evaluations, and the final figure is the decoded file's PSNR. Results go
to benchmarks/results/time_to_quality.md with the machine and the command.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inrcodec.codec import encode_file
from inrcodec.options import resolve_options

RESULTS = Path(__file__).resolve().parent / "results" / "time_to_quality.md"
MARKS = (60.0, 120.0)


def run_one(path: Path, preset: str, budget: float, extra: dict) -> tuple[list[float], dict]:
    """PSNR at each mark (best seen so far) and the final report."""
    seen: list[tuple[float, float]] = []

    def on_progress(p) -> None:
        if p.psnr is not None:
            seen.append((p.elapsed, p.psnr))

    options = resolve_options(preset, "image", {"time_budget": budget, "steps": 10**7, **extra})
    with tempfile.TemporaryDirectory() as tmp:
        report = encode_file(path, Path(tmp) / "x.inr", options, on_progress=on_progress)
    marks = [max((q for t, q in seen if t <= mark), default=float("nan")) for mark in MARKS]
    return [*marks, report.metrics["psnr"]], report.to_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--images", default="kodim05,kodim13,kodim15,kodim23")
    # Overrides of the preset, for exploring (each recorded in the results heading).
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--arch", default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--tile-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--precision", default=None)
    parser.add_argument("--compile", default=None)
    args = parser.parse_args(argv)
    names = ("lr", "arch", "width", "tile_size", "batch_size", "precision", "compile")
    extra = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    rows = []
    for name in args.images.split(","):
        psnrs, report = run_one(args.data_dir / f"{name}.png", args.preset, args.budget, extra)
        rows.append((name, psnrs, report))
        print(
            f"{name}: " + ", ".join(f"{p:.2f}" for p in psnrs) + f" dB ({report['steps']} "
            f"steps, {report['seconds']:.0f} s)",
            flush=True,
        )
    means = [sum(r[1][i] for r in rows) / len(rows) for i in range(3)]
    print("mean: " + ", ".join(f"{m:.2f}" for m in means))
    command = "python benchmarks/time_to_quality.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    lines = [
        f"\n## {time.strftime('%Y-%m-%d %H:%M')} — preset `{args.preset}` {extra or ''}",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch "
        f"{torch.__version__}. Command: `{command}`. One encode per image with "
        f"`--time-budget {args.budget:g}`; the 1 and 2 minute columns are the best PSNR the "
        "encoder had measured by then, the last is the written file's PSNR.",
        "",
        f"| image | 1 min | 2 min | {args.budget / 60:g} min | steps | arch | compiled | bpp |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, psnrs, report in rows:
        lines.append(
            f"| {name} | "
            + " | ".join(f"{p:.2f}" for p in psnrs)
            + f" | {report['steps']} | {report['arch']} | {report['compiled']} "
            f"| {report['metrics']['bpp']:.2f} |"
        )
    lines.append("| **mean** | " + " | ".join(f"**{m:.2f}**" for m in means) + " | | | | |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
