"""Large stand-in photos for the per-size benchmarks: mosaics of same-size images.

    python benchmarks/mosaic.py ../shared/data/kodak --out /tmp/mosaic/mosaic4x4.png
    python benchmarks/mosaic.py ../shared/data/kodak --size 4000x3000 --images all --out m12.png

The shared data holds no photo above 768x512, so larger sizes are tiled from Kodak images,
row by row, in the order of `--images` (repeated when the size needs more tiles than named),
and the last row and column are cut to the size. The defaults are the images of the runs on
record: 3072x2048 is kodim01, 02, 03, 05 | 06, 07, 08, 11 | 12, 13, 14, 15 | 16, 20, 21, 22
(`benchmarks/results/rd_mosaic_3072/`), 1536x1024 is kodim01, 02 | 06, 07; `--images all`
takes every image of the folder in name order, portrait ones transposed (the 12-megapixel
runs of docs/experiments.md, 4000x3000). A mosaic has seams a real photo lacks and
no content larger than a tile, so its figures are reported as a stand-in's.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from PIL import Image

RECORDED = ",".join(  # 3072x2048: four rows of four
    f"kodim{n:02d}" for n in (1, 2, 3, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 20, 21, 22)
)
RECORDED_2X2 = "kodim01,kodim02,kodim06,kodim07"


def mosaic(paths: list[Path], width: int, height: int) -> Image.Image:
    """`paths`' images (one size, portrait ones transposed) tiled row by row into `width` x
    `height`."""
    tiles = [_landscape(Image.open(path).convert("RGB")) for path in paths]
    tile_w, tile_h = tiles[0].size
    if any(tile.size != (tile_w, tile_h) for tile in tiles):
        raise SystemExit("the images must have one size once portrait ones are transposed")
    columns = math.ceil(width / tile_w)
    canvas = Image.new("RGB", (width, height))
    for index in range(columns * math.ceil(height / tile_h)):
        row, column = divmod(index, columns)
        canvas.paste(tiles[index % len(tiles)], (column * tile_w, row * tile_h))
    return canvas


def _landscape(image: Image.Image) -> Image.Image:
    return image.transpose(Image.Transpose.TRANSPOSE) if image.height > image.width else image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--size", default="3072x2048", help="WIDTHxHEIGHT")
    parser.add_argument(
        "--images", help="names without suffix, row by row, or all (default: above)"
    )
    parser.add_argument("--out", type=Path, required=True, help="a .png path")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.lower().split("x"))
    names = args.images or (RECORDED_2X2 if (width, height) == (1536, 1024) else RECORDED)
    if names == "all":
        paths = sorted(args.data_dir.glob("*.png"))
    else:
        paths = [args.data_dir / f"{name}.png" for name in names.split(",")]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing or not paths:
        raise SystemExit(f"no such image: {missing[0]}" if missing else "no PNG images there")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    mosaic(paths, width, height).save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
