"""Peak memory of a large decode: a 512² model rendered at --scale 8 (4096²).

    python benchmarks/decode_memory.py DATA_DIR [--scale 8] [--budget-mb 256]

Encodes a 512² centre crop of the first image in DATA_DIR for a few steps (quality does
not matter here), then runs `inrcodec decode --scale 8` in a child process and reports its
peak RSS and seconds. Target: peak RSS <= 2 GB. The chunk size comes from the memory
budget (`inrcodec.render.chunk_points`), not a fixed number.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
RESULTS = Path(__file__).resolve().parent / "results" / "decode_memory.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--scale", type=float, default=8)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args(argv)
    source = sorted(p for p in args.data_dir.iterdir() if p.suffix.lower() == ".png")[0]
    inrcodec = [sys.executable, "-m", "inrcodec"]
    with tempfile.TemporaryDirectory() as tmp:
        crop = Path(tmp) / "crop.png"
        image = Image.open(source).convert("RGB")
        left, top = (image.width - args.size) // 2, (image.height - args.size) // 2
        image.crop((left, top, left + args.size, top + args.size)).save(crop)
        subprocess.run(
            [*inrcodec, "encode", str(crop), "-o", f"{tmp}/m.inr", "--steps", "5", "--quiet"],
            check=True,
        )
        decode = [*inrcodec, "decode", f"{tmp}/m.inr", "-o", f"{tmp}/big.png"]
        decode += ["--scale", str(args.scale), "--device", "cpu", "--quiet"]
        # A fresh wrapper whose only child is the decode, so the peak RSS is the decode's
        # alone (RUSAGE_CHILDREN reports the largest child, the encode included otherwise).
        start = time.perf_counter()
        measured = subprocess.run(
            [sys.executable, "-c", MEASURE, *decode], check=True, capture_output=True, text=True
        )
        seconds = time.perf_counter() - start
        peak_mb = int(measured.stdout) / 1024  # ru_maxrss is in KiB on Linux
        with Image.open(f"{tmp}/big.png") as big:
            size = big.size
    line = (
        f"| {time.strftime('%Y-%m-%d')} | {source.name} {args.size}² x{args.scale:g} "
        f"-> {size[0]}x{size[1]} | {peak_mb:.0f} MB | {seconds:.1f} s | "
        f"{'yes' if peak_mb <= 2048 else 'NO'} |"
    )
    print(line)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Decode peak memory\n\n"
            f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; command: "
            "`python benchmarks/decode_memory.py DATA_DIR`. Peak RSS is the decode process's "
            "own (measured by a wrapper whose only child it is).\n\n"
            "| date | decode | peak RSS | time | <= 2 GB |\n|---|---|---|---|---|\n"
        )
    with RESULTS.open("a") as handle:
        handle.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
