"""Time to quality of the latent-grid preset at one rate: PSNR after 1, 2 and 5 minutes.

    python benchmarks/grid_time_to_quality.py ../shared/data/kodak --images kodim05,kodim23 \
        --bpp 0.5 --budgets 60,120,300 --out benchmarks/results/rd_grid

Each encode is `inrcodec encode IMG --preset P --target-bpp R --time-budget T` (P `balanced`
unless `--preset` says otherwise: its recipe, cut at each budget) in a
subprocess with 2 threads, one at a time; the file is judged by `inrcodec eval`. Decoding
is timed in this process (after one warm-up decode, the mean of three), without the
interpreter's start-up. Each file is set beside `--anchors` given its bytes (`inrcodec
compare`'s rule: each codec's highest quality that fits). The longest budget's files are
kept, with their `info`, for the rate split, and each one's 2x decode crop is saved to
show any-resolution decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "inrcodec.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"inrcodec {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout) if done.stdout.strip() else {}


def decode_seconds(inr: Path, out: Path) -> float:
    from inrcodec.codec import decode_file

    decode_file(inr, out, {}, force=True, device="cpu")  # warm-up: imports, allocator
    start = time.perf_counter()
    for _ in range(3):
        decode_file(inr, out, {}, force=True, device="cpu")
    return (time.perf_counter() - start) / 3


def rate_split(info: dict) -> dict[str, int]:
    """Bytes per part of the file: latents, synthesis weights, post-filter and context
    weights (where the model has them), header."""
    names = list(info["tensor_names"])
    parts = {"latents": 0, "synthesis": 0, "post": 0, "context": 0}
    for name, size in zip(names, info["tensor_bytes"], strict=True):
        part = name.split(".")[0]
        parts[part] = parts.get(part, 0) + size
    parts["header"] = info["header_bytes"]
    return parts


def anchors_at_bytes(source: Path, inr: Path, codecs: list[str]) -> dict[str, float]:
    """PSNR of each classical codec given the file's bytes (`inrcodec compare`'s rule: the
    highest quality that fits), as `{codec}_psnr` and `{codec}_bpp`."""
    from inrcodec.compare import compare

    rows = compare(source, inr, codecs) if codecs else []
    found = {}
    for row in rows[1:]:
        found[f"{row['codec']}_psnr"] = row["psnr"]
        found[f"{row['codec']}_bpp"] = row["bpp"]
    return found


def crop_2x(inr: Path, folder: Path) -> Path:
    """A 384x256 crop of the 2x decode (192x128 source pixels)."""
    big = folder / f"{inr.stem}_x2.png"
    run("decode", str(inr), "-o", str(big), "--scale", "2", "--force", "--quiet")
    image = Image.open(big)
    crop = image.crop((700, 250, 1084, 506))  # the parrot's eye, at kodim23's 2x
    path = folder / f"{inr.stem}_x2_crop.png"
    crop.save(path)
    big.unlink()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--images", default="kodim05,kodim23")
    parser.add_argument("--bpp", type=float, default=0.5)
    parser.add_argument("--budgets", default="60,120,300")
    parser.add_argument("--preset", default="balanced", help="the recipe, cut at each budget")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/rd_grid")
    parser.add_argument(
        "--anchors", default="jpeg,webp,avif", help="codecs scored at each file's bytes"
    )
    args = parser.parse_args()
    args.anchors = [c for c in args.anchors.split(",") if c]
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    budgets = [float(b) for b in args.budgets.split(",")]
    rows = []
    for name in args.images.split(","):
        source = args.data_dir / f"{name}.png"
        for budget in budgets:
            inr = args.out / f"{name}_{args.bpp}bpp_{int(budget)}s.inr"
            report = run(
                "encode", str(source), "-o", str(inr), "--preset", args.preset, "--force",
                "--target-bpp", str(args.bpp), "--time-budget", str(budget), "--json", "--quiet",
            )  # fmt: skip
            metrics = run("eval", str(inr), str(source), "--json")["results"]
            row = {
                "image": name,
                "budget_s": budget,
                "encode_s": report["seconds"],
                "steps": report["steps"],
                "bpp": metrics["bpp"][0],
                "psnr": metrics["psnr"][0],
                **anchors_at_bytes(source, inr, args.anchors),
            }
            if budget == max(budgets):
                info = run("info", str(inr), "--json")
                row["decode_s"] = decode_seconds(inr, args.out / "decoded.png")
                row["macs_per_pixel"] = info["macs_per_pixel"]
                row["rate_split"] = rate_split(info)
                row["crop_2x"] = crop_2x(inr, args.out).name  # beside the json
                (args.out / "decoded.png").unlink()
            else:
                inr.unlink()
            rows.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "time_to_quality.json").write_text(json.dumps(rows, indent=2) + "\n")
    psnr = {b: np.mean([r["psnr"] for r in rows if r["budget_s"] == b]) for b in budgets}
    print("mean PSNR by budget:", {int(b): round(float(v), 2) for b, v in psnr.items()})


if __name__ == "__main__":
    main()
