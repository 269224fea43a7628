"""Rate–distortion of inrcodec on video against x264, x265 and AV1, same frames, one run.

    .venv/bin/python benchmarks/rd_video.py /work/shared/data/video \\
        --curve "default=" --bpp 0.05,0.1,0.2 --out benchmarks/results/rd_video

Every codec is measured here, on the same frames, in the same run:

- the frames: each clip's first `--frames` frames at a longest side of `--max-side`, read
  by inrcodec's own video reader (what `inrcodec encode --frames N --max-side S` fits), as
  8-bit RGB;
- anchors, from the ffmpeg binary of imageio-ffmpeg: x264 and x265 (`-preset medium`,
  a CRF sweep) and SVT-AV1 (`-preset 8`, a CRF sweep) where this ffmpeg has them. The
  frames go in as raw RGB and are converted to YUV 4:2:0 by ffmpeg's default swscale
  conversion (BT.601, limited range, as for any RGB input without tags); the bitstream is
  written raw (Annex B .264/.265, AV1 in .ivf), so no container is counted beyond what
  the codec needs, and decoded back to RGB by the same ffmpeg and conversion;
- each `--curve NAME=FLAGS`, once per `--bpp` value, as a user would run it:
  `inrcodec encode CLIP --frames N --max-side S --target-bpp R FLAGS --json --quiet`, then
  `inrcodec decode X.inr -o FOLDER` (PNG frames, lossless), in subprocesses. A failed
  encode or decode is recorded as failed, and the run goes on.

Rates are real: 8 × (bytes of the whole file) / (frames × height × width). Metrics on
RGB, peak 255, the same way for every codec: PSNR of each frame, averaged over frames;
SSIM (`inrcodec.metrics.ssim`) likewise. Bjøntegaard deltas (`inrcodec.metrics.bd_rate`,
`bd_psnr`) of each inrcodec curve against each anchor, per clip, then their mean over the
clips. Seconds are the wall time of each subprocess, start-up included.

Writes under `--out`: per_point.json (every measurement, so `--replot` rebuilds the rest
without encoding), rd.md and rd.png.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (  # noqa: E402
    cell,
    failure_lines,
    ffmpeg_encoders,
    machine,
    measurements,
    parse_list,
    run_timed,
    subprocess_env,
    today,
)
from inrcodec.metrics import bd_psnr, bd_rate, psnr, ssim  # noqa: E402

# name -> (ffmpeg encoder, raw bitstream suffix, options, CRF sweep)
ANCHORS: dict[str, tuple[str, str, list[str], tuple[int, ...]]] = {
    "x264": ("libx264", ".264", ["-preset", "medium"], (20, 24, 28, 32, 36, 40, 44, 48)),
    "x265": ("libx265", ".265", ["-preset", "medium", "-x265-params", "log-level=error"],
             (20, 24, 28, 32, 36, 40, 44, 48)),
    "av1": ("libsvtav1", ".ivf", ["-preset", "8"], (24, 30, 36, 42, 48, 54, 60)),
}  # fmt: skip


def reference_frames(clip: Path, frames: int, max_side: int) -> tuple[np.ndarray, float]:
    """(T, H, W, 3) uint8 frames and the frame rate, as `inrcodec encode` reads them."""
    from inrcodec.media.video import read_video

    signal = read_video(clip, frames=frames, max_side=max_side)
    return np.clip(np.rint(signal.values), 0, 255).astype(np.uint8), float(signal.rate)


def scores(reference: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """Mean per-frame RGB PSNR and SSIM (peak 255)."""
    if decoded.shape != reference.shape:
        raise ValueError(f"decoded {decoded.shape}, expected {reference.shape}")
    pairs = list(zip(reference, decoded, strict=True))
    return {
        "psnr": float(np.mean([psnr(r, d) for r, d in pairs])),
        "ssim": float(np.mean([ssim(r, d) for r, d in pairs])),
    }


def anchor_point(
    codec: str, crf: int, frames: np.ndarray, fps: float, context: dict[str, Any]
) -> dict[str, Any]:
    """One ffmpeg encode of the raw frames and its decode back to raw RGB."""
    encoder, suffix, options, _ = ANCHORS[codec]
    ffmpeg = context["ffmpeg"]
    height, width = frames.shape[1:3]
    raw_input = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
    with tempfile.TemporaryDirectory() as tmp:
        source, stream = Path(tmp) / "in.rgb", Path(tmp) / f"x{suffix}"
        back = Path(tmp) / "out.rgb"
        source.write_bytes(frames.tobytes())
        encode = [ffmpeg, "-nostdin", "-v", "error", "-y", *raw_input, "-r", f"{fps:g}"]
        encode += ["-i", str(source), "-pix_fmt", "yuv420p", "-c:v", encoder, *options]
        encode += ["-crf", str(crf), str(stream)]
        encoded = run_timed(encode, context["env"], context["timeout"])
        if encoded.error:
            return {"error": f"encode: {encoded.error}", "encode_s": encoded.seconds}
        decode = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(stream)]
        decode += ["-f", "rawvideo", "-pix_fmt", "rgb24", str(back)]
        decoded = run_timed(decode, context["env"], context["timeout"])
        times = {"encode_s": encoded.seconds, "decode_s": decoded.seconds}
        if decoded.error:
            return {"error": f"decode: {decoded.error}", **times}
        pictures = np.frombuffer(back.read_bytes(), dtype=np.uint8)
        if pictures.size != frames.size:  # a codec that drops or adds frames is a failure
            return {"error": f"decode: {pictures.size} values, expected {frames.size}", **times}
        quality = scores(frames, pictures.reshape(frames.shape))
        return {"bytes": stream.stat().st_size, **quality, **times}


def inr_point(
    clip: Path, frames: np.ndarray, flags: str, bpp: float, context: dict[str, Any]
) -> dict[str, Any]:
    """One `inrcodec encode` + `decode` (to PNG frames) round trip in a scratch folder."""
    cli = [sys.executable, "-m", "inrcodec.cli"]
    count, height, width, _ = frames.shape
    with tempfile.TemporaryDirectory() as tmp:
        inr, folder = Path(tmp) / "x.inr", Path(tmp) / "frames"
        encode = [*cli, "encode", str(clip), "-o", str(inr), "--frames", str(count)]
        encode += ["--max-side", str(max(height, width)), "--target-bpp", f"{bpp:g}"]
        encode += [*shlex.split(flags), "--json", "--quiet", "--force"]
        encoded = run_timed(encode, context["env"], context["timeout"])
        if encoded.error:
            return {"error": f"encode: {encoded.error}", "encode_s": encoded.seconds}
        decoded = run_timed([*cli, "decode", str(inr), "-o", str(folder), "--quiet"],
                            context["env"], context["timeout"])  # fmt: skip
        times = {"encode_s": encoded.seconds, "decode_s": decoded.seconds}
        if decoded.error:
            return {"error": f"decode: {decoded.error}", **times}
        paths = sorted(folder.glob("frame_*.png"))
        pictures = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
        return {"bytes": inr.stat().st_size, **scores(frames, pictures), **times}


def measure(clips: list[Path], args: argparse.Namespace) -> tuple[list[dict], dict[str, Any]]:
    """Every clip × codec × setting, one at a time (the timings are per encode)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    context = {
        "ffmpeg": ffmpeg,
        "env": subprocess_env(args.threads),
        "timeout": args.encode_timeout,
    }
    anchors = available_anchors(ffmpeg, args.anchors)
    rows = []
    for clip in clips:
        frames, fps = reference_frames(clip, args.frames, args.max_side)
        pixels = frames.shape[0] * frames.shape[1] * frames.shape[2]
        plan = [(c, "anchor", crf) for c in anchors for crf in ANCHORS[c][3]]
        plan += [(name, "inrcodec", bpp) for name in args.curves for bpp in args.bpp]
        for codec, kind, setting in plan:
            if kind == "anchor":
                point = anchor_point(codec, int(setting), frames, fps, context)
            else:
                point = inr_point(clip, frames, args.curves[codec], setting, context)
            row = {"clip": clip.stem, "codec": codec, "kind": kind, "setting": setting} | point
            if "bytes" in row:
                row["bpp"] = 8 * row["bytes"] / pixels
            rows.append(row)
            print(progress_line(row), file=sys.stderr, flush=True)
    meta = {
        "date": today(),
        "machine": machine(),
        "command": args.command,
        "frames": args.frames,
        "max_side": args.max_side,
        "anchors": anchors,
        "curves": args.curves,
        "ffmpeg": subprocess.run(
            [ffmpeg, "-version"], capture_output=True, text=True, check=False
        ).stdout.split("\n", 1)[0],
    }
    return rows, meta


def available_anchors(ffmpeg: str, wanted: list[str]) -> list[str]:
    """The anchors whose encoder this ffmpeg has; the others are named on stderr."""
    present = ffmpeg_encoders(ffmpeg)
    for codec in (a for a in wanted if ANCHORS[a][0] not in present):
        print(f"{codec}: skipped, {ffmpeg} has no {ANCHORS[codec][0]} encoder", file=sys.stderr)
    return [a for a in wanted if ANCHORS[a][0] in present]


def progress_line(row: dict[str, Any]) -> str:
    where = f"{row['clip']} {row['codec']} {row['setting']:g}"
    if "error" in row:
        return f"{where}: FAILED {row['error']}"
    return f"{where}: {row['bpp']:.4f} bpp {row['psnr']:.2f} dB {row['encode_s']:.1f} s"


def curves(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """clip -> codec -> its successful points by rising bpp."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        points = found.setdefault(row["clip"], {}).setdefault(row["codec"], [])
        if "error" not in row:
            points.append(row)
    for codecs in found.values():
        for points in codecs.values():
            points.sort(key=lambda p: p["bpp"])
    return found


def deltas(by_clip: dict[str, dict[str, list[dict]]], test: str, anchor: str) -> dict:
    """BD-rate (%) and BD-PSNR (dB) of `test` against `anchor`, per clip and their mean."""
    per_clip = {}
    for clip, codecs in by_clip.items():
        a, t = codecs.get(anchor, []), codecs.get(test, [])
        args = ([p["bpp"] for p in a], [p["psnr"] for p in a])
        args += ([p["bpp"] for p in t], [p["psnr"] for p in t])
        per_clip[clip] = (bd_rate(*args), bd_psnr(*args)) if len(a) > 1 and len(t) > 1 else None
    known = [v for v in per_clip.values() if v is not None]
    mean = tuple(float(np.mean(c)) for c in zip(*known, strict=True)) if known else None
    return {"per_clip": per_clip, "mean": mean}


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    by_clip = curves(rows)
    lines = [
        "# Video rate–distortion",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"{meta['date']}, {meta['machine']}. {meta['ffmpeg']}. Each clip's first "
        f"{meta['frames']} frames at a longest side of {meta['max_side']}. Rates: 8 × file "
        "bytes / (frames × H × W); the anchors' raw bitstreams (no container), inrcodec's "
        "whole file. PSNR and SSIM: RGB, peak 255, per frame, then the mean over frames; the "
        "anchors' YUV 4:2:0 output converted back to RGB by ffmpeg's default swscale "
        "conversion (BT.601, limited range), as their input was converted. BD-rate: "
        "negative = inrcodec needs fewer bits for the same PSNR.",
        "",
        "## Bjøntegaard deltas (per clip, and their mean)",
        "",
        "| curve | anchor | " + " | ".join(by_clip) + " | mean BD-rate | mean BD-PSNR |",
        "|---|---|" + "---|" * (len(by_clip) + 2),
    ]
    for test in meta["curves"]:
        for anchor in meta["anchors"]:
            found = deltas(by_clip, test, anchor)
            cells = [
                "–" if v is None else f"{cell(v[0], 1, True)} % ({cell(v[1], 2, True)} dB)"
                for v in found["per_clip"].values()
            ]
            mean = found["mean"] or (float("nan"), float("nan"))
            lines.append(
                f"| {test} | {anchor} | " + " | ".join(cells)
                + f" | {cell(mean[0], 1, True)} % | {cell(mean[1], 2, True)} dB |"
            )  # fmt: skip
    lines += ["", "## Every point", ""]
    lines += ["| clip | codec | setting | bytes | bpp | PSNR | SSIM | encode s | decode s |"]
    lines += ["|---|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if "error" not in r):
        lines.append(
            f"| {r['clip']} | {r['codec']} | {r['setting']:g} | {r['bytes']} | "
            f"{r['bpp']:.4f} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['encode_s']:.1f} | "
            f"{r['decode_s']:.2f} |"
        )
    lines += ["", "## Failures", "", *failure_lines(rows, "clip"), ""]
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> bool:
    """PSNR against bpp, one panel per clip; False when matplotlib (the bench extra) is
    missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    by_clip = curves(rows)
    fig, axes = plt.subplots(1, len(by_clip), figsize=(5.5 * len(by_clip), 4.2), squeeze=False)
    for ax, (clip, codecs) in zip(axes[0], by_clip.items(), strict=True):
        for codec, points in ((c, p) for c, p in codecs.items() if p):
            inr = codec not in ANCHORS
            ax.plot([p["bpp"] for p in points], [p["psnr"] for p in points],
                    "-" if inr else "--", marker="o", label=codec,
                    linewidth=2.2 if inr else 1.0, markersize=4 if inr else 3)  # fmt: skip
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # they overlap
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.set_xlabel("bits per pixel (whole stream, log scale)")
        ax.set_ylabel("RGB PSNR (dB), mean over frames")
        ax.set_title(clip, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, nargs="?", help="folder of .mp4 clips")
    parser.add_argument("--clips", default="realshort,cockatoo", help="stems, comma-separated")
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--max-side", type=int, default=320)
    parser.add_argument("--bpp", default="0.05,0.1,0.2", help="inrcodec's targets")
    parser.add_argument("--anchors", default="x264,x265,av1", help="of " + ",".join(ANCHORS))
    parser.add_argument(
        "--curve",
        dest="curve_list",
        action="append",
        default=[],
        help="NAME=FLAGS: an inrcodec curve, FLAGS added to `inrcodec encode` (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/rd_video")
    parser.add_argument("--threads", type=int, default=2, help="threads per subprocess")
    parser.add_argument("--encode-timeout", type=float, default=3600.0, help="seconds")
    parser.add_argument("--replot", action="store_true", help="rebuild from per_point.json")
    args = parser.parse_args(argv)
    args.bpp = [float(b) for b in parse_list(args.bpp)]
    args.anchors = [a for a in parse_list(args.anchors) if a]
    unknown = [a for a in args.anchors if a not in ANCHORS]
    if unknown:
        parser.error(f"unknown anchors {unknown}; choose from {', '.join(ANCHORS)}")
    args.curves = dict(text.partition("=")[::2] for text in args.curve_list)
    if not args.replot and args.data_dir is None:
        parser.error("DATA is needed unless --replot")
    args.command = "python benchmarks/rd_video.py " + shlex.join(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    args.out.mkdir(parents=True, exist_ok=True)
    clips = [] if args.replot else [args.data_dir / f"{c}.mp4" for c in parse_list(args.clips)]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        print(f"missing clips: {', '.join(missing)}", file=sys.stderr)
        return 2
    rows, meta = measurements(args.out, "per_point.json", args.replot, lambda: measure(clips, args))
    report = markdown(rows, meta)
    if not plot(rows, args.out / "rd.png"):
        report += "\n(matplotlib is missing, so no rd.png: install the `bench` extra.)\n"
    (args.out / "rd.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
