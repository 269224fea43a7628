"""Each arch's default encode of a photo, beside JPEG, WebP and AVIF at the same bytes.

    .venv/bin/python benchmarks/arch_defaults.py /work/shared/data/kodak \\
        --images kodim05,kodim23 --size 451x300 --out benchmarks/results/arch_defaults

What a user gets from `inrcodec encode photo.png --arch X --transform sym` and nothing
else (X's own recipe, presets/X.yaml), run as the user runs it, in a subprocess, then
`inrcodec compare photo.png photo.inr --codecs jpeg,webp,avif --json`: each classical
codec gets the highest quality whose whole file fits in the .inr's bytes, and every
picture is scored by the same code against the same photo. Photos are resized (Lanczos)
to `--size` when given, so that the issue's 451x300 case can be measured on the shared
data. Writes results.json and results.md under `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
INRCODEC = [sys.executable, "-m", "inrcodec.cli"]
DEFAULT_ARCHS = "siren,finer,spder,sl2a"
CODECS = ("jpeg", "webp", "avif")


def prepared(source: Path, size: str | None, folder: Path) -> Path:
    """The photo as the benchmark encodes it: resized to `size` (WxH) if given."""
    if size is None:
        return source
    width, height = (int(v) for v in size.lower().split("x"))
    out = folder / f"{source.stem}_{width}x{height}.png"
    with Image.open(source) as image:
        image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS).save(out)
    return out


def run_json(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return json.loads(done.stdout)


def measure(photo: Path, arch: str, flags: list[str], folder: Path) -> dict[str, Any]:
    """One default encode of `photo` with `--arch arch`, compared at its bytes."""
    inr = folder / f"{photo.stem}_{arch}.inr"
    start = time.perf_counter()
    encode = [*INRCODEC, "encode", str(photo), "-o", str(inr), "--arch", arch, *flags]
    report = run_json([*encode, "--json", "--quiet", "--force"])
    seconds = time.perf_counter() - start
    rows = run_json(
        [*INRCODEC, "compare", str(photo), str(inr), "--codecs", ",".join(CODECS), "--json"]
    )["results"]
    by_codec = {row["codec"]: row for row in rows}
    ours = by_codec.pop("inrcodec")
    return {
        "image": photo.stem,
        "arch": arch,
        "encode_seconds": round(seconds, 1),
        "steps": report["steps"],
        "parameters": report["parameters"],
        "bytes": ours["bytes"],
        "bpp": round(ours["bpp"], 4),
        "psnr": round(ours["psnr"], 2),
        **{f"{c}_psnr": round(by_codec[c]["psnr"], 2) for c in CODECS if c in by_codec},
        **{f"{c}_bytes": by_codec[c]["bytes"] for c in CODECS if c in by_codec},
    }


def table(results: list[dict[str, Any]]) -> str:
    head = "| image | arch | encode s | steps | bytes | bpp | PSNR | JPEG | WebP | AVIF |"
    lines = [head, "|" + "---|" * 10]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['image']} | {r['arch']} | failed: {r['error']} |")
            continue
        deltas = [f"{r[f'{c}_psnr']:.2f} ({r['psnr'] - r[f'{c}_psnr']:+.2f})" for c in CODECS]
        lines.append(
            f"| {r['image']} | {r['arch']} | {r['encode_seconds']:.1f} | {r['steps']} | "
            f"{r['bytes']} | {r['bpp']:.3f} | {r['psnr']:.2f} | " + " | ".join(deltas) + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of PNG photos")
    parser.add_argument("--images", default="kodim05,kodim23")
    parser.add_argument("--archs", default=DEFAULT_ARCHS)
    parser.add_argument("--size", default=None, help="resize to WxH first (e.g. 451x300)")
    parser.add_argument("--flags", default="--transform sym", help="encode flags besides --arch")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/arch_defaults")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    flags = shlex.split(args.flags)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.images.split(","):
            photo = prepared(args.data / f"{name}.png", args.size, Path(tmp))
            for arch in args.archs.split(","):
                try:
                    row = measure(photo, arch, flags, Path(tmp))
                except RuntimeError as exc:
                    row = {"image": photo.stem, "arch": arch, "error": str(exc)}
                results.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                (args.out / "results.json").write_text(json.dumps(results, indent=1))
    command = "python benchmarks/arch_defaults.py " + " ".join(map(shlex.quote, sys.argv[1:]))
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    text = f"# Default encode per arch\n\n`{command}`\n\nMachine: {machine}. "
    text += "PSNR in dB; each classical codec at the most bytes that fit the .inr's "
    text += "(delta: inrcodec minus it).\n\n" + table(results) + "\n"
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
