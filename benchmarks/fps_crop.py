"""A frame-rate decode's in-between frame beside the frames around it and their cross-fade.

    inrcodec decode clip.inr -o slow            # PNG frames at the stored rate
    inrcodec decode clip.inr -o fast --fps 60   # PNG frames at the new rate
    .venv/bin/python benchmarks/fps_crop.py fast slow crop.png

Both decodes sample the same time span, first frame to last, so the new rate's frame j lies
at j·(n_slow − 1)/(n_fast − 1) of the stored frames. The script picks the frame nearest the
clip's middle that lies nearest halfway between two stored frames, and writes a crop, 2x,
of: stored frame k | the in-between frame | the linear cross-fade of frames k and k + 1 at
its position | stored frame k + 1. Ghosting would show as a double image in the second
tile beyond the third's. It prints the mean difference between the in-between frame and
the cross-fade, beside the mean difference between the two stored frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fast", type=Path, help="folder of PNG frames at the new rate")
    parser.add_argument("slow", type=Path, help="folder of PNG frames at the stored rate")
    parser.add_argument("out", type=Path, help="the crop, PNG")
    parser.add_argument("--box", default="60,120,96,128", help="top,left,height,width")
    args = parser.parse_args()
    fast, slow = sorted(args.fast.iterdir()), sorted(args.slow.iterdir())
    positions = [j * (len(slow) - 1) / (len(fast) - 1) for j in range(len(fast))]
    middle = len(slow) / 2

    def badness(j: int) -> float:
        return abs(positions[j] % 1 - 0.5) + abs(positions[j] - middle) / len(slow)

    j = min(range(len(fast)), key=badness)
    k, w = int(positions[j]), positions[j] % 1
    before, after, between = load(slow[k]), load(slow[k + 1]), load(fast[j])
    fade = (1 - w) * before + w * after
    print(f"frame {j} of {len(fast)} lies between stored frames {k} and {k + 1} (w = {w:.3f})")
    print(
        f"mean |in-between − cross-fade| {np.abs(between - fade).mean():.2f} levels; "
        f"mean |frame {k} − frame {k + 1}| {np.abs(before - after).mean():.2f}"
    )
    top, left, height, width = (int(v) for v in args.box.split(","))
    tiles = [im[top : top + height, left : left + width] for im in (before, between, fade, after)]
    strip = np.concatenate(tiles, 1).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(strip)
    image.resize((image.width * 2, image.height * 2), Image.NEAREST).save(args.out)


if __name__ == "__main__":
    main()
