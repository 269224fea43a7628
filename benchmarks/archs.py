"""Fit every architecture to the same image crops at matched steps, with two transforms.

Each arch runs at the same width and depth (default 3x64: about 3 parameters per value
of a 64x64 RGB crop, near the references' 3x256 on 512x512; at 3x256 these crops are
memorised, FINER reaching 70+ dB), full batch, for the same number of steps, with its
own reference learning rate and schedule (the `lr` and `lr_final_factor` of
presets/<arch>-reference.yaml). Other hyper-parameters are the builder defaults, which
equal those presets', except SL2A's rank, kept at width/2 as in the reference (128 of
256). Only the value transform changes between `--transform sym` and `minmax`. Weights
are stored in fp32, so the scores measure the fit and not the weight quantization;
PSNR and SSIM are those of the decoded 8-bit file.

With `--preset NAME` (repeatable) it times whole presets instead, as they are, on the
crops (`--crop 0`: the full images).

    .venv/bin/python benchmarks/archs.py /work/shared/data/div2k-test --jobs 2 --threads 1
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shlex
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from inrcodec.codec import encode_file
from inrcodec.options import EncodeOptions
from inrcodec.presets import load_preset

REPO = Path(__file__).resolve().parents[1]
ARCHS = ("siren", "finer", "finer-gauss", "finer-wavelet", "spder", "sl2a")
TRANSFORMS = ("sym", "minmax")


@dataclass
class Row:
    label: str
    transform: str
    options: EncodeOptions


@dataclass
class Result:
    psnr: float
    ssim: float
    bpp: float
    seconds: float
    parameters: int


def arch_rows(
    archs: list[str], transforms: list[str], steps: int, width: int, depth: int, lr: float | None
) -> list[Row]:
    """The matched protocol: one size, full batch, `steps`, each arch's reference lr and
    schedule, or `lr` decayed to 0.1x for every arch."""
    rows = []
    for arch in archs:
        reference = {"lr": lr} if lr else load_preset(f"{arch}-reference").encode
        for transform in transforms:
            options = EncodeOptions(
                arch=arch,
                transform=transform,
                steps=steps,
                lr=reference["lr"],
                lr_final_factor=reference.get("lr_final_factor", 0.1),
                width=width,
                depth=depth,
                arch_options={"rank": max(1, width // 2)} if arch == "sl2a" else {},
                batch_size=0,
                device="cpu",
                precision="fp32",
            )
            rows.append(Row(arch, transform, options))
    return rows


def preset_rows(names: list[str]) -> list[Row]:
    rows = []
    for name in names:
        preset = load_preset(name)
        options = EncodeOptions.from_mapping(preset.encode, name)
        options.device = "cpu"
        rows.append(Row(preset.name, options.transform, options))
    return rows


def centre_crop(src: Path, size: int, dst: Path) -> None:
    with Image.open(src) as image:
        image = image.convert("RGB")
        if size:
            left, top = (image.width - size) // 2, (image.height - size) // 2
            image = image.crop((left, top, left + size, top + size))
        image.save(dst)


def _set_threads(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def fit_one(row: Row, src: Path, dst: Path) -> Result:
    report = encode_file(src, dst, row.options, force=True)
    m = report.metrics
    return Result(m["psnr"], m["ssim"], m["bpp"], report.seconds, report.parameters)


def machine(threads: int, jobs: int) -> str:
    import torch

    cpu = platform.processor() or "unknown CPU"
    names = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln]
    cpu = names[0].split(":", 1)[1].strip() if names else cpu
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{jobs} fit(s) at a time with {threads or torch.get_num_threads()} thread(s) each, "
        f"Python {platform.python_version()}"
    )


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def markdown(rows: list[Row], images: list[str], results: dict, header: list[str]) -> str:
    """Means over the images, the sym − minmax gain, and a per-image PSNR/SSIM table."""
    total = len(rows) * len(images)
    lines = [*header, "", f"Fits done: {len(results)} of {total}.", ""]
    lines += [
        "| arch | transform | params | PSNR (dB) | SSIM | bpp | seconds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        got = [
            results[(row.label, row.transform, i)]
            for i in images
            if (row.label, row.transform, i) in results
        ]
        if got:
            lines.append(
                f"| {row.label} | {row.transform} | {got[0].parameters:,} "
                f"| {mean([r.psnr for r in got]):.2f} | {mean([r.ssim for r in got]):.4f} "
                f"| {mean([r.bpp for r in got]):.1f} | {mean([r.seconds for r in got]):.1f} |"
            )
    labels = dict.fromkeys(row.label for row in rows)
    gains = {}
    for label in labels:
        pairs = [
            (results[(label, "sym", i)].psnr, results[(label, "minmax", i)].psnr)
            for i in images
            if (label, "sym", i) in results and (label, "minmax", i) in results
        ]
        if pairs:
            wins = sum(s > m for s, m in pairs)
            gains[label] = (
                f"| {label} | {mean([s - m for s, m in pairs]):+.2f} | {wins} of {len(pairs)} |"
            )
    if gains:
        lines += [
            "",
            "sym − minmax, PSNR:",
            "",
            "| arch | mean gain (dB) | images where sym wins |",
        ]
        lines += ["|---|---:|---:|", *gains.values()]
    lines += ["", "Per image, PSNR (dB) / SSIM:", ""]
    lines.append("| arch | transform | " + " | ".join(images) + " |")
    lines.append("|---|---|" + "---:|" * len(images))
    for row in rows:
        cells = [results.get((row.label, row.transform, i)) for i in images]
        text = " | ".join(f"{r.psnr:.2f} / {r.ssim:.4f}" if r else "–" for r in cells)
        lines.append(f"| {row.label} | {row.transform} | {text} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="folder of images, e.g. DIV2K-test")
    parser.add_argument("--images", default="00,05,10,15", help="file stems, comma-separated")
    parser.add_argument("--crop", type=int, default=64, help="centre crop side (0: full image)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--lr", type=float, help="one lr for every arch (default: each its own)")
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--transforms", default=",".join(TRANSFORMS))
    parser.add_argument("--preset", action="append", help="time this preset instead")
    parser.add_argument("--jobs", type=int, default=1, help="fits run in parallel processes")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per fit (0: auto)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks/results/archs.md")
    args = parser.parse_args(argv)

    images = args.images.split(",")
    if args.preset:
        rows = preset_rows(args.preset)
        protocol = "each preset as it is (its own arch, transform, steps, lr, batch), device cpu."
    else:
        archs, transforms = args.archs.split(","), args.transforms.split(",")
        rows = arch_rows(archs, transforms, args.steps, args.width, args.depth, args.lr)
        lrs = dict.fromkeys(f"{r.label} {r.options.lr:g}" for r in rows)
        schedule = (
            f"Adam {args.lr:g} decayed to 0.1x for every arch"
            if args.lr
            else f"each arch's reference lr and schedule ({', '.join(lrs)}; decay to 0.1x "
            "except SPDER, constant as in its code)"
        )
        protocol = (
            f"matched: {args.depth}x{args.width} (finer-wavelet: complex, "
            f"{int(args.width / 2**0.5)} wide), full batch, {args.steps} steps, {schedule}, "
            f"builder defaults otherwise (SL2A: K = 256, rank {max(1, args.width // 2)}), "
            "seed 3407, fp32 weights, device cpu."
        )
    command = "python benchmarks/archs.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    _set_threads(args.threads)
    header = [
        f"# {'Presets' if args.preset else 'INR architectures'} on {args.data_dir.name} images",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine(args.threads, args.jobs)}; shared with other work, so the "
        "seconds are indicative",
        f"- Images: {', '.join(images)} from `{args.data_dir}`, "
        + (f"centre {args.crop}x{args.crop} crops" if args.crop else "full size"),
        f"- Protocol: {protocol}",
        "- PSNR (peak 255) and SSIM of the decoded 8-bit file, means over the images; "
        "seconds = training time of one fit.",
    ]
    results: dict[tuple[str, str, str], Result] = {}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ProcessPoolExecutor(
            args.jobs,
            # spawn, not fork: a forked child can hang in an OpenMP pool the parent started.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_set_threads,
            initargs=(args.threads,),
        ) as pool,
    ):
        futures = {}
        for image in images:
            src = Path(tmp) / f"{image}.png"
            centre_crop(args.data_dir / f"{image}.png", args.crop, src)
            for n, row in enumerate(rows):
                dst = Path(tmp) / f"{image}-{n}.inr"
                futures[pool.submit(fit_one, row, src, dst)] = (row.label, row.transform, image)
        for future in as_completed(futures):
            key, result = futures[future], future.result()
            results[key] = result
            print(
                f"{key[2]} {key[0]:14s} {key[1]:7s} PSNR {result.psnr:6.2f} "
                f"SSIM {result.ssim:.4f} {result.seconds:7.1f} s",
                file=sys.stderr,
                flush=True,
            )
            # Rewritten after every fit, so an interrupted run still leaves its results.
            args.output.write_text(markdown(rows, images, results, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
