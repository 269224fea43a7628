"""Rate–distortion of inrcodec against JPEG and WebP (Pillow) on centre crops of a folder.

    .venv/bin/python benchmarks/rd.py /work/shared/data/kodak --crop 256 --jobs 2

For each image (centre crop, `--crop 0` for full size):
- JPEG (4:2:0, optimized Huffman tables) and WebP (method 6) at qualities spanning the
  same bpp range;
- inrcodec: one FINER + sym-power fit per ladder size (`--sizes`), each packaged at every
  `--precisions` (int precisions after `--qat-steps` of quantization-aware tuning), as
  `train_candidates` does for `--target-bpp`.

Every rate is 8 × (bytes of the whole file) / pixels: JPEG/WebP headers and our
safetensors header included. PSNR is RGB, peak 255, on the decoded 8-bit image.

Writes, under `--out` (default benchmarks/results/rd): one CompressAI-schema JSON per
codec (each point the mean over images of one quality or one size × precision), `rd.png`
(PSNR against bpp) and `rd.md` (the machine, the command, the tables and PSNR at the
reference rates, interpolated within each curve's range).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

JPEG_QUALITIES = (2, 5, 10, 15, 20, 30, 40, 50, 65, 80, 90)
WEBP_QUALITIES = (0, 5, 10, 20, 30, 45, 60, 75, 85, 95)
REFERENCE_BPP = (0.25, 0.3, 0.5, 1.0)


def centre_crop(path: Path, size: int) -> Image.Image:
    image = Image.open(path).convert("RGB")
    if size <= 0:
        return image
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def pillow_points(image: Image.Image, codec: str) -> list[dict]:
    """(quality, bytes, psnr) of JPEG or WebP through Pillow."""
    reference = np.asarray(image)
    points = []
    for quality in JPEG_QUALITIES if codec == "jpeg" else WEBP_QUALITIES:
        buffer = io.BytesIO()
        if codec == "jpeg":
            image.save(buffer, "JPEG", quality=quality, optimize=True)
        else:
            image.save(buffer, "WEBP", quality=quality, method=6)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        points.append(
            {"config": f"q{quality}", "bytes": buffer.tell(), "psnr": psnr(reference, decoded)}
        )
    return points


def inr_points(crop_path: Path, args: argparse.Namespace) -> list[dict]:
    """One fit per size, packaged at every precision; the real file sizes."""
    from inrcodec import container
    from inrcodec.codec import EncodeOptions, prepare, train_candidates

    points = []
    for size in args.sizes.split(","):
        options = EncodeOptions(
            arch=args.arch,
            transform="sym",
            steps=args.steps,
            lr=args.lr,
            batch_size=args.batch_size,
            size_preset=size,
            qat_steps=args.qat_steps,
            device="cpu",
            compile=args.compile,
        )
        job = prepare(crop_path, options)
        started = time.perf_counter()
        candidates = train_candidates(job, options, args.precisions.split(","))
        seconds = time.perf_counter() - started
        for candidate in candidates:
            unpacked = len(container.to_bytes(candidate.inr, packings=("raw",)))
            points.append(
                {
                    "config": f"{size}-{candidate.inr.precision}",
                    "precision": candidate.inr.precision,
                    "bytes": candidate.file_bytes,
                    "unpacked_bytes": unpacked,
                    "packing": candidate.inr.packing,
                    "psnr": candidate.metrics["psnr"],
                    "seconds": seconds,
                }
            )
    return points


def run_image(path: Path, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    image = centre_crop(path, args.crop)
    with tempfile.TemporaryDirectory() as tmp:
        crop_path = Path(tmp) / f"{path.stem}.png"
        image.save(crop_path)
        inr = inr_points(crop_path, args)
    pixels = image.width * image.height
    result = {
        "image": path.stem,
        "pixels": pixels,
        "jpeg": pillow_points(image, "jpeg"),
        "webp": pillow_points(image, "webp"),
    }
    for point in inr:
        result.setdefault(f"inrcodec-{point['precision']}", []).append(point)
    for points in result.values():
        if isinstance(points, list):
            for point in points:
                point["bpp"] = 8 * point["bytes"] / pixels
    return result


def curves(per_image: list[dict]) -> dict[str, list[dict]]:
    """codec -> points (one per config), each the mean over images, sorted by bpp."""
    codecs = [k for k in per_image[0] if isinstance(per_image[0][k], list)]
    out = {}
    for codec in codecs:
        configs = [p["config"] for p in per_image[0][codec]]
        points = []
        for config in configs:
            rows = [next(p for p in r[codec] if p["config"] == config) for r in per_image]
            point = {"config": config, "n": len(rows)}
            for key in ("bpp", "psnr", "bytes", "unpacked_bytes", "seconds"):
                if key in rows[0]:
                    point[key] = float(np.mean([r[key] for r in rows]))
            points.append(point)
        out[codec] = sorted(points, key=lambda p: p["bpp"])
    inr = [p | {"codec": c} for c, ps in out.items() if c.startswith("inrcodec") for p in ps]
    out["inrcodec-best"] = pareto(inr)
    return out


def pareto(points: list[dict]) -> list[dict]:
    """The points no other point beats on both rate and quality."""
    front, best = [], -np.inf
    for point in sorted(points, key=lambda p: (p["bpp"], -p["psnr"])):
        if point["psnr"] > best:
            front.append(point)
            best = point["psnr"]
    return front


def psnr_at(points: list[dict], bpp: float) -> float | None:
    """Linear interpolation of the curve's upper envelope at `bpp`, None outside its range."""
    front = pareto(points)
    xs, ys = [p["bpp"] for p in front], [p["psnr"] for p in front]
    if not xs or bpp < xs[0] or bpp > xs[-1]:
        return None
    return float(np.interp(bpp, xs, ys))


def plot(all_curves: dict[str, list[dict]], path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    styles = {"jpeg": ("JPEG (Pillow)", "k", "s"), "webp": ("WebP (Pillow)", "tab:gray", "D")}
    for codec, points in all_curves.items():
        label, color, marker = styles.get(codec, (codec, None, "o"))
        line = "-" if codec in styles or codec == "inrcodec-best" else ":"
        width = 2.5 if codec == "inrcodec-best" else 1.2
        ax.plot(
            [p["bpp"] for p in points],
            [p["psnr"] for p in points],
            line,
            marker=marker,
            color=color,
            label=label,
            linewidth=width,
            markersize=3,
        )
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel("PSNR RGB (dB)")
    ax.set_xlim(0, 2.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return True


def encode_all(paths: list[Path], args: argparse.Namespace) -> list[dict]:
    context = multiprocessing.get_context("spawn")
    per_image = []
    with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
        for result in pool.map(run_image, paths, [args] * len(paths)):
            per_image.append(result)
            best = max(result["inrcodec-int8"], key=lambda p: p["psnr"])
            print(
                f"{result['image']}: int8 best {best['psnr']:.2f} dB at {best['bpp']:.2f} bpp",
                flush=True,
            )
    return per_image


def main(argv: list[str] | None = None) -> int:
    from inrcodec.metrics import compressai_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--crop", type=int, default=256, help="centre crop side; 0 = full")
    parser.add_argument("--images", type=int, default=0, help="first N images (0 = all)")
    parser.add_argument("--sizes", default="3x16,3x24,3x32,3x48,3x64")
    parser.add_argument("--precisions", default="fp16,int8,int6,int4")
    parser.add_argument("--arch", default="finer")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--qat-steps", type=int, default=200)
    parser.add_argument("--compile", default="off")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "rd")
    parser.add_argument(
        "--replot",
        action="store_true",
        help="rebuild the JSON, plot and table from OUT/per_image.json without encoding",
    )
    args = parser.parse_args(argv)

    paths = sorted(p for p in args.data_dir.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    if args.images:
        paths = paths[: args.images]
    if not paths:
        parser.error(f"no images in {args.data_dir}")
    started = time.perf_counter()
    if args.replot:
        per_image = json.loads((args.out / "per_image.json").read_text())
        paths = paths[: len(per_image)]
    else:
        per_image = encode_all(paths, args)
    wall = time.perf_counter() - started
    all_curves = curves(per_image)

    args.out.mkdir(parents=True, exist_ok=True)
    crop = f"{args.crop}x{args.crop} centre crops" if args.crop else "full-size images"
    described = f"{len(paths)} images of {args.data_dir.name}, {crop}"
    for codec, points in all_curves.items():
        doc = compressai_json(
            codec,
            described,
            {"psnr-rgb": [p["psnr"] for p in points], "bpp": [p["bpp"] for p in points]},
        )
        doc["configs"] = [p["config"] for p in points]
        (args.out / f"{codec}.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.out / "per_image.json").write_text(json.dumps(per_image) + "\n")
    plotted = plot(all_curves, args.out / "rd.png", f"{described}; {args.arch} + sym-power")

    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--replot"]
    command = "python benchmarks/rd.py " + shlex.join(given)
    timing = (
        "tables rebuilt with `--replot` from that run's per_image.json"
        if args.replot
        else f"{wall / 60:.1f} min"
    )
    lines = [
        f"# Rate–distortion: {described}",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, {args.jobs} jobs × {args.threads} thread(s). "
        f"Command: `{command}` ({timing}).",
        "",
        f"inrcodec: {args.arch} + sym-power, {args.steps} Adam steps (lr {args.lr:g}, "
        f"batch {args.batch_size}), int precisions after {args.qat_steps} QAT steps. Rates "
        "count every byte of each file." + ("" if plotted else " (matplotlib missing: no plot)"),
        "",
        "## PSNR (dB) at reference rates (interpolated on each curve's envelope)",
        "",
        "| codec | " + " | ".join(f"{b:g} bpp" for b in REFERENCE_BPP) + " |",
        "|---|" + "---|" * len(REFERENCE_BPP),
    ]
    inr_curves = [
        ps for c, ps in all_curves.items() if c.startswith("inrcodec-") and c != "inrcodec-best"
    ]
    for codec, points in all_curves.items():
        cells = [psnr_at(points, b) for b in REFERENCE_BPP]
        if codec == "inrcodec-best":  # the best precision at each rate
            cells = [
                max((c for ps in inr_curves if (c := psnr_at(ps, b)) is not None), default=None)
                for b in REFERENCE_BPP
            ]
        lines.append(
            f"| {codec} | " + " | ".join("—" if c is None else f"{c:.2f}" for c in cells) + " |"
        )
    lines += [
        "",
        "## Every point (means over images)",
        "",
        "| codec | config | bpp | PSNR | bytes | unpacked bytes |",
        "|---|---|---|---|---|---|",
    ]
    for codec, points in all_curves.items():
        if codec == "inrcodec-best":
            continue
        for p in points:
            unpacked = f"{p['unpacked_bytes']:.0f}" if "unpacked_bytes" in p else ""
            lines.append(
                f"| {codec} | {p['config']} | {p['bpp']:.3f} | {p['psnr']:.2f} | "
                f"{p['bytes']:.0f} | {unpacked} |"
            )
    (args.out / "rd.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[8 : 10 + len(all_curves) + 2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
