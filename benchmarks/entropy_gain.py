"""Bytes saved by entropy coding, per tensor kind, on real `--precision auto` files.

For every tensor of each file, the same integer codes (at the step the encoder chose) are
stored three ways: fixed-length bit-packing at the fewest bits that hold them, LZMA of
that packing, and what the file holds (range-coded or LZMA, per tensor the smaller). The
"before" column is the better of the first two: how format 2 stored int codes.

    python benchmarks/entropy_gain.py FILE.inr [...] > benchmarks/results/entropy_gain.md
"""

from __future__ import annotations

import argparse
import lzma
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from inrcodec import container
from inrcodec.quantize import as_stored, pack_bits
from inrcodec.rate import coding

FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


def kind(index: int, count: int, name: str) -> str:
    """first layer / hidden / head, weight or bias (parameters come two per layer)."""
    layer = "first layer" if index < 2 else "head" if index >= count - 2 else "hidden"
    return f"{layer} {'bias' if name.endswith('bias') else 'weight'}"


def fixed_length_bytes(codes: np.ndarray) -> int:
    """Format 2's way: bit-packed at a fixed width, or LZMA of that, whichever is smaller."""
    bound = int(np.abs(codes).max()) if codes.size else 0
    bits = max(1, math.ceil(math.log2(2 * bound + 1)))
    wide = bits > 8  # two bytes a code
    packed = codes.astype("<i2").tobytes() if wide else pack_bits(codes.astype(np.int16), bits)
    return min(len(packed), len(lzma.compress(packed, lzma.FORMAT_RAW, filters=FILTERS)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # values, before, after
    for path in args.files:
        inr = container.read(path)
        if inr.precision != container.CODED:
            continue
        names = list(inr.state)
        for i, name in enumerate(names):
            codes = coding.to_codes(as_stored(inr.state[name]).numpy(), inr.exponents[i])
            row = totals[kind(i, len(names), name)]
            row[0] += codes.size
            row[1] += fixed_length_bytes(codes.reshape(-1))
            row[2] += inr.coding["n"][i]
    print(f"{len(args.files)} files: {', '.join(p.name for p in args.files)}\n")
    print("| tensor kind | values | fixed-length + LZMA (B) | entropy-coded (B) | saved |")
    print("|---|---|---|---|---|")
    for name in sorted(totals):
        values, before, after = totals[name]
        print(f"| {name} | {values:,} | {before:,} | {after:,} | {1 - after / before:.1%} |")
    values, before, after = (sum(r[i] for r in totals.values()) for i in range(3))
    print(f"| **all** | {values:,} | {before:,} | {after:,} | {1 - after / before:.1%} |")


if __name__ == "__main__":
    main()
