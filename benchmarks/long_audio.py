"""Long audio: encode time, peak memory, rate and SNR against length, segments on and off.

    .venv/bin/python benchmarks/long_audio.py /work/shared/data/librispeech \\
        --minutes 1,2,5,10 --time-per-second 1 --whole-up-to 2 \\
        --out benchmarks/results/long_audio

Each length is a WAV made here by concatenating DATA's clips in name order, over and over
(LibriSpeech's ten clips are 55.5 s: longer files repeat them; no segment or model sees
another's samples, so the repetition gives the codec nothing). Each is encoded with the
audio default (20 s segments), `--time-budget` = `--time-per-second` × its duration (the
default's 11 s per second would take 110 minutes for 10 minutes of audio), and the
files up to `--whole-up-to` minutes also with one whole-file grid (`-O segment=0`) at the
same budget. Every command runs as a user runs it, in a subprocess; its peak RSS is the
child's own (os.wait4). Per file: wall seconds and peak RSS of the encode, of a full
decode and of a 10-s window decoded from the middle (`--start/--duration`), the rate
(8 × file bytes / duration) and its split (latents, networks, header: `inrcodec info`),
and the SNR and STOI that `inrcodec eval` reports.
Writes results.json and results.md under `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import machine, parse_list, subprocess_env, today  # noqa: E402

INRCODEC = [sys.executable, "-m", "inrcodec.cli"]
WINDOW_SECONDS = 10.0


def long_clip(data: Path, seconds: float, path: Path) -> Path:
    """DATA's clips end to end, repeated until `seconds` (16-bit mono at their rate)."""
    clips = [sf.read(p, dtype="float32")[0] for p in sorted(data.glob("*.flac"))]
    rate = sf.info(next(iter(sorted(data.glob("*.flac"))))).samplerate
    need = round(seconds * rate)
    pieces, have = [], 0
    while have < need:
        for clip in clips:
            pieces.append(clip[: need - have])
            have += len(pieces[-1])
            if have >= need:
                break
    sf.write(path, np.concatenate(pieces), rate, subtype="PCM_16")
    return path


def run(args: list[str], threads: int) -> tuple[dict[str, Any] | None, float, float, str]:
    """(its JSON on stdout or None, wall seconds, peak RSS in MB, last stderr line)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(args, stdout=out, stderr=err, env=subprocess_env(threads))
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        text, lines = out.read(), err.read().strip().splitlines()
    report = json.loads(text) if child.returncode == 0 and text.strip() else None
    return report, seconds, usage.ru_maxrss / 1024, lines[-1] if lines else ""


def measure(
    clip: Path, seconds: float, flags: list[str], budget: float, threads: int
) -> dict[str, Any]:
    inr = clip.with_suffix(".inr")
    encode = [*INRCODEC, "encode", str(clip), "-o", str(inr), "--force", "--json", "--quiet"]
    report, enc_s, enc_mb, error = run([*encode, "--time-budget", f"{budget:g}", *flags], threads)
    row: dict[str, Any] = {"seconds": seconds, "flags": " ".join(flags), "budget": budget}
    if report is None:
        return row | {"error": error}
    decode = [*INRCODEC, "decode", str(inr), "--force", "--quiet", "--json"]
    _, dec_s, dec_mb, _ = run([*decode, "-o", str(clip.with_suffix(".out.wav"))], threads)
    middle = max(0.0, seconds / 2 - WINDOW_SECONDS / 2)
    window = ["--start", f"{middle:g}", "--duration", f"{WINDOW_SECONDS:g}"]
    _, win_s, win_mb, _ = run([*decode, "-o", str(clip.with_suffix(".win.wav")), *window], threads)
    scores, _, _, _ = run([*INRCODEC, "eval", str(inr), str(clip), "--json", "--quiet"], threads)
    result = {k: v[0] for k, v in (scores or {}).get("results", {}).items()}  # CompressAI
    info, _, _, _ = run([*INRCODEC, "info", str(inr), "--json"], threads)
    return row | {
        "encode_s": round(enc_s, 1),
        "encode_mb": round(enc_mb),
        "train_s": report["seconds"],
        "steps": report["steps"],
        "bytes": report["file_bytes"],
        "kbps": round(report["file_bytes"] * 8 / seconds / 1000, 2),
        "latent_bytes": (info or {}).get("latent_bytes"),
        "network_bytes": (info or {}).get("network_bytes"),
        "header_bytes": report["header_bytes"],
        "snr": round(result.get("snr", float("nan")), 2),
        "stoi": round(result.get("stoi", float("nan")), 3),
        "decode_s": round(dec_s, 2),
        "decode_mb": round(dec_mb),
        "window_s": round(win_s, 2),
        "window_mb": round(win_mb),
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| minutes | model | budget s | encode s | peak MB | steps | kbit/s | latents / "
        "networks / header B | SNR dB | STOI | decode s (MB) | 10-s window s (MB) |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        model = "whole-file grid" if "segment=0" in r["flags"] else "20 s segments"
        if "error" in r:
            lines.append(f"| {r['seconds'] / 60:g} | {model} | failed: {r['error']} |")
            continue
        lines.append(
            f"| {r['seconds'] / 60:g} | {model} | {r['budget']:g} | {r['encode_s']} | "
            f"{r['encode_mb']} | {r['steps']} | {r['kbps']} | {r['latent_bytes']} / "
            f"{r['network_bytes']} / {r['header_bytes']} | {r['snr']} | {r['stoi']} | "
            f"{r['decode_s']} ({r['decode_mb']}) | {r['window_s']} ({r['window_mb']}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder of .flac speech clips")
    parser.add_argument("--minutes", type=parse_list, default=["1", "2", "5", "10"])
    parser.add_argument("--time-per-second", type=float, default=1.0)
    parser.add_argument("--whole-up-to", type=float, default=2.0, help="minutes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/long_audio"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in map(float, args.minutes):
            seconds = minutes * 60
            clip = long_clip(args.data, seconds, Path(tmp) / f"speech_{minutes:g}min.wav")
            budget = args.time_per_second * seconds
            settings = [[]] + ([["-O", "segment=0"]] if minutes <= args.whole_up_to else [])
            for flags in settings:
                rows.append(measure(clip, seconds, flags, budget, args.threads))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    command = "python benchmarks/long_audio.py " + " ".join(sys.argv[1:])
    text = (
        f"# Long audio\n\n`{command}`\n\n{today()}, {machine()}. Speech: DATA's clips end "
        "to end, repeated to length. Peak MB: the subprocess's peak RSS.\n\n" + table(rows) + "\n"
    )
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
