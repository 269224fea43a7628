"""Rate–distortion of inrcodec against JPEG, WebP and AVIF, full-size images, one run.

    .venv/bin/python benchmarks/rd.py /work/shared/data/kodak \\
        --curve "finer-tiles=--arch finer --tile-size 128 --time-budget 240"

Every codec is measured here, on the same images, in the same run, so that the
comparison does not lean on figures from another machine or another day:

- anchors, through Pillow: JPEG (4:2:0, optimized Huffman tables), WebP (method 6) and
  AVIF (speed 4, libaom), each over a quality sweep dense at low rates;
- each `--curve NAME=FLAGS`, once per `--rates` value, as the user would run it:
  `inrcodec encode IMG -o X.inr --target-bpp R FLAGS --json --quiet`, then
  `inrcodec decode X.inr -o X.png`, in subprocesses. A curve whose encode or decode
  fails (an unknown flag included) is recorded as failed, and the run goes on.

Rates are 8 × (bytes of the whole file) / pixels, headers included. PSNR is computed
here, RGB, peak 255, over every pixel and channel of the decoded 8-bit image against
the original; no encoder's own report is used. Points are aggregated as CompressAI
does: per codec and setting (quality, or target rate), the mean bpp and mean PSNR over
the images.

Writes under `--out`: per_image.json (every measurement, so `--replot` rebuilds the rest
without encoding), one CompressAI-schema JSON per codec, rd.png and rd.md.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import AvifImagePlugin, Image, features

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (  # noqa: E402
    cell,
    failure_lines,
    machine,
    measurements,
    parse_list,
    run_timed,
    subprocess_env,
    today,
)
from inrcodec.metrics import bd_psnr, bd_rate, compressai_json  # noqa: E402

DEFAULT_IMAGES = "kodim01,kodim05,kodim13,kodim15,kodim19,kodim23"
REFERENCE_BPP = (0.25, 0.5, 1.0)
PLOT_MAX_BPP = 2.0
# Dense at low rates, so that every anchor's mean curve reaches down to 0.25 bpp where
# the codec can (JPEG's coarsest tables saturate at quality 2 on hard images).
QUALITIES: dict[str, tuple[int, ...]] = {
    "jpeg": (2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95),
    "webp": (0, 2, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95),
    "avif": (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90),
}
SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "jpeg": {"format": "JPEG", "optimize": True, "subsampling": "4:2:0"},
    "webp": {"format": "WEBP", "method": 6},
    "avif": {"format": "AVIF", "speed": 4, "subsampling": "4:2:0"},
}
ANCHOR_DESCRIPTIONS = {
    "jpeg": "JPEG (Pillow, libjpeg {jpg}), 4:2:0, optimized Huffman tables, quality sweep",
    "webp": "WebP (Pillow, libwebp {webp}), method 6, quality sweep",
    "avif": "AVIF (Pillow, libavif {avif}, libaom), speed 4, 4:2:0, quality sweep",
}


# ---------------------------------------------------------------- measuring


def load_rgb(path: Path) -> np.ndarray:
    """The image as (H, W, 3) uint8: the reference every decoded image is compared with."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def psnr_rgb(reference: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR (dB, peak 255) over all pixels and channels, computed here rather than taken
    from any codec, so that every codec is scored by the same code."""
    if reference.shape != decoded.shape:
        raise ValueError(f"decoded shape {decoded.shape} != original {reference.shape}")
    error = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


def anchor_point(reference: np.ndarray, codec: str, quality: int, threads: int) -> dict[str, Any]:
    """Encode and decode once in memory; the size is the whole encoded file. AVIF (the
    one multi-threaded anchor) gets the same thread count as inrcodec."""
    options = SAVE_OPTIONS[codec] | ({"max_threads": threads} if codec == "avif" else {})
    image = Image.fromarray(reference)
    buffer = io.BytesIO()
    started = time.perf_counter()
    image.save(buffer, quality=quality, **options)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    with Image.open(io.BytesIO(buffer.getvalue())) as encoded:
        decoded = np.asarray(encoded.convert("RGB"))
    decode_s = time.perf_counter() - started
    return {
        "bytes": len(buffer.getvalue()),
        "psnr": psnr_rgb(reference, decoded),
        "encode_s": encode_s,
        "decode_s": decode_s,
    }


def reported(stdout: str) -> dict[str, Any]:
    """The encoder's own PSNR, kept only as a cross-check of the one measured here; its
    training steps: a slower machine makes fewer in the same budget, so results measured
    on different machines compare only with their steps beside them; and its warnings,
    so that a file whose rate collapsed says so beside its PSNR."""
    try:
        report = json.loads(stdout)
        values = {"reported_psnr": report["metrics"]["psnr"], "steps": report["steps"]}
        warnings = [str(warning) for warning in report.get("warnings") or []]
    except (ValueError, KeyError, TypeError, AttributeError):
        return {"reported_psnr": None, "steps": None, "warnings": []}
    numbers = {k: float(v) if isinstance(v, (int, float)) else None for k, v in values.items()}
    return {**numbers, "warnings": warnings}


def inr_point(
    image: Path, reference: np.ndarray, flags: str, rate: float, context: dict[str, Any]
) -> dict[str, Any]:
    """One `inrcodec encode` + `decode` round trip in a scratch folder; a failure at either
    stage is returned as {"error": ...} so that one bad flag or crash does not end the run."""
    cli = [sys.executable, "-m", "inrcodec.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        inr, png = Path(tmp) / "x.inr", Path(tmp) / "x.png"
        encode = [*cli, "encode", str(image), "-o", str(inr), "--target-bpp", f"{rate:g}"]
        encode += [*shlex.split(flags), "--json", "--quiet"]
        encoded = run_timed(encode, context["env"], context["timeout"])
        spent = {"encode_s": encoded.seconds, "encode_mb": encoded.peak_mb}
        if encoded.error:
            return {"error": f"encode: {encoded.error}", **spent}
        decode = [*cli, "decode", str(inr), "-o", str(png), "--force", "--quiet"]
        decoded = run_timed(decode, context["env"], context["timeout"])
        spent.update(decode_s=decoded.seconds, decode_mb=decoded.peak_mb)
        if decoded.error:
            return {"error": f"decode: {decoded.error}", **spent}
        try:
            quality = psnr_rgb(reference, load_rgb(png))
        except (OSError, ValueError) as exc:
            return {"error": f"compare: {exc}", **spent}
        return {
            "bytes": os.path.getsize(inr),
            "psnr": quality,
            **spent,
            **reported(encoded.stdout),
        }


def plan(args: argparse.Namespace) -> list[tuple[str, str, float]]:
    """(codec, kind, setting) of every measurement to make on each image."""
    anchors = [(c, "anchor", q) for c in args.anchors for q in QUALITIES[c]]
    return anchors + [(n, "inrcodec", r) for n in args.curves for r in args.rates]


def measure(paths: list[Path], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every codec × setting × image, one at a time (the timings are per encode)."""
    AvifImagePlugin.DEFAULT_MAX_THREADS = args.threads  # Pillow's knob for AVIF decoding
    context = {"env": subprocess_env(args.threads), "timeout": args.encode_timeout}
    rows = []
    for path in paths:
        reference = load_rgb(path)
        pixels = reference.shape[0] * reference.shape[1]
        for codec, kind, setting in plan(args):
            row = {"image": path.stem, "codec": codec, "kind": kind, "setting": setting}
            if kind == "anchor":
                row |= anchor_point(reference, codec, int(setting), args.threads)
            else:
                row |= inr_point(path, reference, args.curves[codec], setting, context)
            row["pixels"] = pixels
            if "bytes" in row:
                row["bpp"] = 8 * row["bytes"] / pixels
            rows.append(row)
            if kind == "inrcodec" or setting == QUALITIES[codec][-1]:
                print(progress_line(row), flush=True)
    return rows


def progress_line(row: dict[str, Any]) -> str:
    where = f"{row['image']} {row['codec']} {row['setting']:g}"
    if "error" in row:
        return f"{where}: FAILED {row['error']}"
    return f"{where}: {row['bpp']:.3f} bpp {row['psnr']:.2f} dB {row['encode_s']:.1f} s"


# ---------------------------------------------------------------- aggregating


def aggregate(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """codec -> one point per setting: CompressAI's mean over images, sorted by bpp.

    A setting with a failure on any image gets no point (a mean over fewer images would
    sit on an easier subset); the failures are listed in the report instead."""
    images = sorted({r["image"] for r in rows})
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["codec"], row["setting"]), []).append(row)
    curves: dict[str, list[dict[str, Any]]] = {}
    for (codec, setting), group in groups.items():
        curves.setdefault(codec, [])
        if len(group) != len(images) or any("error" in r for r in group):
            continue
        point = {"setting": setting, "kind": group[0]["kind"], "n": len(group)}
        for key in ("bpp", "psnr", "bytes", "encode_s", "decode_s"):
            point[key] = float(np.mean([r[key] for r in group]))
        curves[codec].append(point)
    return {codec: sorted(points, key=lambda p: p["bpp"]) for codec, points in curves.items()}


def pareto(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points that no other point beats on both rate and PSNR, by rising bpp."""
    front: list[dict[str, Any]] = []
    for point in sorted(points, key=lambda p: (p["bpp"], -p["psnr"])):
        if not front or point["psnr"] > front[-1]["psnr"]:
            front.append(point)
    return front


def psnr_at(points: list[dict[str, Any]], bpp: float) -> float | None:
    """PSNR of the curve's front at `bpp`, linear in log(bpp); None outside its range."""
    front = pareto(points)
    if not front or not front[0]["bpp"] <= bpp <= front[-1]["bpp"]:
        return None
    rates = np.log([p["bpp"] for p in front])
    return float(np.interp(np.log(bpp), rates, [p["psnr"] for p in front]))


def anchor_window(anchor: list[dict[str, Any]], test: list[dict[str, Any]]) -> list[dict]:
    """The anchor points over the test curve's rate or PSNR span, plus one on each side.

    A cubic through a 20-point sweep from 0.1 to 4 bpp bends to fit its ends; Bjøntegaard's
    fit is meant over the tested range, as four anchor points chosen for it would be."""
    front = pareto(anchor)
    if not test:
        return front
    lo_bpp, hi_bpp = min(p["bpp"] for p in test), max(p["bpp"] for p in test)
    lo_db, hi_db = min(p["psnr"] for p in test), max(p["psnr"] for p in test)
    inside = [
        i
        for i, p in enumerate(front)
        if lo_bpp <= p["bpp"] <= hi_bpp or lo_db <= p["psnr"] <= hi_db
    ]
    if not inside:
        return front
    return front[max(inside[0] - 1, 0) : inside[-1] + 2]


def bd_pair(anchor: list[dict[str, Any]], test: list[dict[str, Any]]) -> tuple[float, float]:
    """(BD-rate %, BD-PSNR dB) of `test` against `anchor`'s window (nan without overlap)."""
    window = anchor_window(anchor, test)
    curves = (
        [p["bpp"] for p in window],
        [p["psnr"] for p in window],
        [p["bpp"] for p in test],
        [p["psnr"] for p in test],
    )
    return bd_rate(*curves), bd_psnr(*curves)


# ---------------------------------------------------------------- reporting


def psnr_table(curves: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [
        "| codec | points | " + " | ".join(f"{b:g} bpp" for b in REFERENCE_BPP) + " |",
        "|---|---|" + "---|" * len(REFERENCE_BPP),
    ]
    for codec, points in curves.items():
        cells = [cell(psnr_at(points, b)) for b in REFERENCE_BPP]
        lines.append(f"| {codec} | {len(points)} | " + " | ".join(cells) + " |")
    return lines


def bd_table(curves: dict[str, list[dict[str, Any]]], meta: dict[str, Any]) -> list[str]:
    anchors = [a for a in meta["anchors"] if curves.get(a)]
    tests = [c for c in meta["curves"] if curves.get(c)]
    if not anchors or not tests:
        return ["None: this needs an anchor and an inrcodec curve, each with points."]
    head = " | ".join(f"vs {a}: BD-rate % | vs {a}: BD-PSNR dB" for a in anchors)
    lines = [f"| curve | {head} |", "|---|" + "---|---|" * len(anchors)]
    for test in tests:
        pairs = [bd_pair(curves[a], curves[test]) for a in anchors]
        cells = [f"{cell(r, 1, True)} | {cell(d, 2, True)}" for r, d in pairs]
        lines.append(f"| {test} | " + " | ".join(cells) + " |")
    return lines


def gap_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """Per image, inrcodec's PSNR minus each anchor's at the same bpp (the anchor's front on
    that image, linear in log bpp); the mean, worst and best over images per target rate.
    Stricter than comparing mean curves, where averaging PSNR over images at one anchor
    quality mixes rates."""
    anchors = [a for a in meta["anchors"] if any(r["codec"] == a for r in rows)]
    head = " | ".join(f"vs {a}: mean (worst, best) dB" for a in anchors)
    lines = [f"| curve | target bpp | images | {head} |", "|---|---|---|" + "---|" * len(anchors)]
    ok = [r for r in rows if "error" not in r]
    for codec in meta["curves"]:
        for rate in meta["rates"]:
            points = [r for r in ok if r["codec"] == codec and r["setting"] == rate]
            cells = []
            for a in anchors:
                gaps = []
                for p in points:
                    at = psnr_at(
                        [r for r in ok if r["codec"] == a and r["image"] == p["image"]], p["bpp"]
                    )
                    if at is not None:
                        gaps.append(p["psnr"] - at)
                cells.append(
                    f"{np.mean(gaps):+.2f} ({min(gaps):+.2f}, {max(gaps):+.2f})" if gaps else "–"
                )
            lines.append(f"| {codec} | {rate:g} | {len(points)} | " + " | ".join(cells) + " |")
    return lines


def per_image_bd_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> list[str]:
    """BD-rate of each inrcodec curve against each anchor on each image's own points, then
    the mean, worst and best over images (why: the report's "Per image: BD-rate"); an
    image without overlap is left out."""
    anchors = [a for a in meta["anchors"] if any(r["codec"] == a for r in rows)]
    head = " | ".join(f"vs {a}: mean (worst, best) %" for a in anchors)
    lines = [f"| curve | images | {head} |", "|---|---|" + "---|" * len(anchors)]
    ok = [r for r in rows if "error" not in r]
    for codec in meta["curves"]:
        images = sorted({r["image"] for r in ok if r["codec"] == codec})
        cells = []
        for a in anchors:
            rates = []
            for image in images:
                mine = [r for r in ok if r["image"] == image]
                bd, _ = bd_pair(
                    [r for r in mine if r["codec"] == a], [r for r in mine if r["codec"] == codec]
                )
                if not math.isnan(bd):
                    rates.append(bd)
            cells.append(
                f"{np.mean(rates):+.1f} ({max(rates):+.1f}, {min(rates):+.1f}) over {len(rates)}"
                if rates
                else "–"
            )
        lines.append(f"| {codec} | {len(images)} | " + " | ".join(cells) + " |")
    return lines


def timing_table(rows: list[dict[str, Any]], codecs: Iterable[str]) -> list[str]:
    lines = ["| codec | encodes ok | encode s | decode s |", "|---|---|---|---|"]
    for codec in codecs:
        done = [r for r in rows if r["codec"] == codec and "error" not in r]
        total = sum(r["codec"] == codec for r in rows)
        enc = float(np.mean([r["encode_s"] for r in done])) if done else None
        dec = float(np.mean([r["decode_s"] for r in done])) if done else None
        lines.append(f"| {codec} | {len(done)}/{total} | {cell(enc, 3)} | {cell(dec, 3)} |")
    return lines


def inr_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| curve | image | target bpp | bytes | bpp | PSNR | steps | encode s (peak MB) "
        "| decode s (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r["kind"] == "inrcodec"):
        start = f"| {r['codec']} | {r['image']} | {r['setting']:g} |"
        if "error" in r:
            lines.append(f"{start} failed | | | | | {cell(r.get('encode_s'), 1)} | |")
            continue
        lines.append(
            f"{start} {r['bytes']} | {r['bpp']:.3f} | {r['psnr']:.2f} | {cell(r.get('steps'), 0)} "
            f"| {r['encode_s']:.1f} ({_mb(r)}) | {r['decode_s']:.2f} ({_mb(r, 'decode')}) |"
        )
    warned = [r for r in rows if r["kind"] == "inrcodec" and r.get("warnings")]
    if warned:
        lines += ["", "The encoder's warnings:", ""]
        lines += [
            f"- {r['codec']}, {r['image']} at {r['setting']:g} bpp: {'; '.join(r['warnings'])}"
            for r in warned
        ]
    return lines


def _mb(row: dict[str, Any], step: str = "encode") -> str:
    """Peak RSS in MB, or – for runs from before it was recorded."""
    return cell(row.get(f"{step}_mb"), 0)


def anchor_lines(meta: dict[str, Any]) -> list[str]:
    """What each anchor ran with: its settings and qualities, for anyone re-running it."""
    lines = []
    for codec in meta["anchors"]:
        described = ANCHOR_DESCRIPTIONS[codec].format(**meta["library_versions"])
        qualities = ", ".join(str(q) for q in meta["qualities"][codec])
        lines.append(f"- {codec}: {described}; qualities {qualities}.")
    return [*lines, ""] if lines else []


def header_lines(meta: dict[str, Any]) -> list[str]:
    wall = f"{meta['wall_s'] / 60:.1f} min of wall time"
    rebuilt = f" Tables rebuilt with `--replot` on {today()}." if meta.get("replotted") else ""
    curves = "; ".join(f"`{n}` = `{f}`" for n, f in meta["curves"].items()) or "none"
    return [
        f"# Rate–distortion: {len(meta['images'])} full-size image(s) of {meta['data']}",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"{meta['date']}, {wall}. Machine: {meta['machine']}. {meta['threads']} thread(s) "
        f"per encode and decode; one measurement at a time.{rebuilt}",
        "",
        f"Images: {', '.join(meta['images'])}. Software: {meta['versions']}.",
        "",
        *anchor_lines(meta),
        f"inrcodec curves (`inrcodec encode IMG --target-bpp R FLAGS`, "
        f"R in {', '.join(f'{r:g}' for r in meta['rates'])}): {curves}.",
        "",
        "Every rate is 8 × (bytes of the whole file) / pixels, headers included. PSNR is RGB, "
        "peak 255, over all pixels and channels of the decoded 8-bit image, computed by this "
        "script. Aggregation as in CompressAI: for each codec and setting (quality for the "
        "anchors, target rate for inrcodec), the mean bpp and the mean PSNR over the images; "
        "a setting that failed on any image has no point.",
    ]


def markdown(
    curves: dict[str, list[dict[str, Any]]], rows: list[dict[str, Any]], meta: dict[str, Any]
) -> str:
    lines = [
        *header_lines(meta),
        "",
        "## Mean PSNR (dB) at reference rates",
        "",
        "Interpolated on each mean curve's Pareto front, linearly in log(bpp); – where the "
        "curve does not reach the rate (never extrapolated).",
        "",
        *psnr_table(curves),
        "",
        "## Bjøntegaard deltas of each inrcodec curve",
        "",
        "VCEG-M33 as in CompressAI: cubic fits (lower degree below 4 points) over the "
        "shared range, on the mean curves' Pareto fronts; the anchor is fitted on its points "
        "over the curve's span plus one on each side. BD-rate: negative = inrcodec needs "
        "fewer bits for the same PSNR; BD-PSNR: positive = inrcodec is better at equal rate.",
        "",
        *bd_table(curves, meta),
        "",
        "## Per image: PSNR difference at the same bpp",
        "",
        "Each inrcodec file against each anchor on the same image at that file's bpp "
        "(interpolated on the anchor's Pareto front for that image, linearly in log bpp; "
        "no extrapolation). Positive = inrcodec better.",
        "",
        *gap_table(rows, meta),
        "",
        "## Per image: BD-rate",
        "",
        "Each inrcodec curve against each anchor on each image's own points (same fits and "
        "windows as above), then averaged over the images. The mean curves above pool "
        "rates: at one anchor quality the images' rates differ and PSNR is concave in rate, "
        "so the anchor's mean curve sits lower than its images' curves at the mean rate, "
        "while inrcodec's target rates land close on every image. This view has no such "
        "pooling.",
        "",
        *per_image_bd_table(rows, meta),
        "",
        "## Mean seconds per image (each encode or decode, every setting)",
        "",
        *timing_table(rows, curves),
        "",
        "## inrcodec points per image",
        "",
        *inr_table(rows),
        "",
        "## Failures",
        "",
        *failure_lines(rows, "image"),
    ]
    return "\n".join(lines) + "\n"


def codec_description(codec: str, meta: dict[str, Any]) -> str:
    images = f"mean over {len(meta['images'])} full-size images of {meta['data']}"
    if codec in ANCHOR_DESCRIPTIONS:
        return f"{ANCHOR_DESCRIPTIONS[codec].format(**meta['library_versions'])}; {images}"
    return f"inrcodec encode --target-bpp R {meta['curves'][codec]}; {images}"


def write_codec_json(out: Path, codec: str, points: list[dict], meta: dict[str, Any]) -> None:
    """One CompressAI-schema document; `settings` names each point's quality or rate."""
    results = {
        "psnr-rgb": [p["psnr"] for p in points],
        "bpp": [p["bpp"] for p in points],
        "encoding_time": [p["encode_s"] for p in points],
        "decoding_time": [p["decode_s"] for p in points],
    }
    doc = compressai_json(codec, codec_description(codec, meta), results)
    doc["settings"] = [p["setting"] for p in points]
    (out / f"{codec}.json").write_text(json.dumps(doc, indent=2) + "\n")


def plot(curves: dict[str, list[dict[str, Any]]], path: Path, title: str) -> bool:
    """PSNR against bpp up to PLOT_MAX_BPP; False when matplotlib (the bench extra) is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    anchor_style = {"jpeg": ("k", "s"), "webp": ("tab:gray", "D"), "avif": ("tab:brown", "^")}
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    shown = []
    for codec, points in ((c, ps) for c, ps in curves.items() if ps):
        color, marker = anchor_style.get(codec, (None, "o"))
        inr = codec not in anchor_style
        ax.plot(
            [p["bpp"] for p in points],
            [p["psnr"] for p in points],
            "-" if inr else "--",
            marker=marker,
            color=color,
            label=codec,
            linewidth=2.2 if inr else 1.0,
            markersize=4 if inr else 3,
        )
        shown += [p["psnr"] for p in points if p["bpp"] <= PLOT_MAX_BPP]
    ax.set_xlim(0, PLOT_MAX_BPP)
    if shown:
        ax.set_ylim(min(shown) - 1, max(shown) + 1)
    ax.set_xlabel("bits per pixel (whole file)")
    ax.set_ylabel("PSNR RGB (dB), mean over images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_outputs(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Every file but per_image.json, from the measurements alone (so --replot can)."""
    curves = aggregate(rows)
    for codec, points in curves.items():
        write_codec_json(out, codec, points, meta)
    title = f"{len(meta['images'])} full-size images of {meta['data']}, {meta['date']}"
    report = markdown(curves, rows, meta)
    if not plot(curves, out / "rd.png", title):
        report += "\n(matplotlib is missing, so no rd.png: install the `bench` extra.)\n"
    (out / "rd.md").write_text(report)
    return report


# ---------------------------------------------------------------- command line


def library_versions() -> dict[str, str]:
    return {name: features.version(name) or "?" for name in ("jpg", "webp", "avif")}


def parse_curve(text: str) -> tuple[str, str]:
    """NAME=FLAGS; NAME names a file, so it is kept to letters, digits, '.', '_', '-'."""
    name, sep, flags = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in QUALITIES:
        raise argparse.ArgumentTypeError(f"expected NAME=FLAGS with a new file-safe NAME: {text}")
    return name, flags


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, nargs="?", help="folder of images")
    parser.add_argument("--images", default=DEFAULT_IMAGES, help="names (no suffix), or all")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/rd_kodak")
    parser.add_argument(
        "--curve",
        dest="curve_list",
        action="append",
        type=parse_curve,
        default=[],
        help="NAME=FLAGS: an inrcodec curve, FLAGS added to `inrcodec encode` (repeatable)",
    )
    parser.add_argument(
        "--rates", type=lambda t: [float(r) for r in parse_list(t)], default="0.25,0.5,1.0"
    )
    parser.add_argument(
        "--anchors", type=lambda t: parse_list(t, QUALITIES), default=",".join(QUALITIES)
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per encode/decode")
    parser.add_argument("--encode-timeout", type=float, default=3600.0, help="seconds")
    parser.add_argument("--replot", action="store_true", help="rebuild from per_image.json")
    args = parser.parse_args(argv)
    args.curves = dict(args.curve_list)
    if not args.replot and args.data_dir is None:
        parser.error("DATA_DIR is needed unless --replot")
    return args


def select_images(data_dir: Path, spec: str) -> list[Path]:
    """`all`: every PNG of the folder; else the named images (with or without .png)."""
    if spec == "all":
        return sorted(data_dir.glob("*.png"))
    paths = [data_dir / (n if n.endswith(".png") else f"{n}.png") for n in parse_list(spec)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"missing images: {', '.join(missing)}")
    return paths


def run(args: argparse.Namespace, command: str) -> tuple[list[dict], dict[str, Any]]:
    paths = select_images(args.data_dir, args.images)
    if not paths:
        raise SystemExit(f"no PNG images in {args.data_dir}")
    started = time.perf_counter()
    rows = measure(paths, args)
    meta = {
        "command": command,
        "date": today(),
        "wall_s": time.perf_counter() - started,
        "machine": machine(),
        "threads": args.threads,
        "data": args.data_dir.name,
        "images": [p.stem for p in paths],
        "anchors": args.anchors,
        "qualities": {a: QUALITIES[a] for a in args.anchors},
        "rates": args.rates,
        "curves": args.curves,
        "library_versions": library_versions(),
        "versions": f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"Pillow {Image.__version__}",
    }
    return rows, meta


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/rd.py " + shlex.join(argv)
    rows, meta = measurements(args.out, "per_image.json", args.replot, lambda: run(args, command))
    report = write_outputs(args.out, rows, meta)
    print(report.split("## Mean seconds")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
