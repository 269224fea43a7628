"""Rate–distortion of inrcodec on audio against MP3, Opus and AAC, same clips, one run.

    .venv/bin/python benchmarks/rd_audio.py /work/shared/data/librispeech --music \\
        --curve "siren=--arch siren --time-budget 60"

Every codec is measured here, on the same clips, in the same run, so that the comparison
does not lean on figures from another machine or another day:

- anchors, all from the ffmpeg binary of imageio-ffmpeg: MP3 (libmp3lame, `-b:a K`, in
  .mp3), Opus (libopus, its defaults: VBR, complexity 10, in .opus) and AAC-LC (ffmpeg's
  native `aac`, in .m4a), at each `--kbps` bitrate K, each decoded back by the same ffmpeg
  to 16-bit WAV at the source's sample rate and channel count (the depth inrcodec writes
  for these sources). A codec this ffmpeg lacks is skipped, with a message on stderr;
- each `--curve NAME=FLAGS`, once per bitrate, as the user would run it:
  `inrcodec encode CLIP -o X.inr --target-kbps K FLAGS --json --quiet --force`, then
  `inrcodec decode X.inr -o X.wav --force --quiet`, in subprocesses. `--rate-flag` replaces
  the `--target-kbps {kbps}` template; empty, FLAGS alone set the rate and each curve is
  encoded once per clip (setting 0). A curve whose encode or decode fails is recorded as
  failed, and the run goes on;
- `--music` adds a clip made here (`synth_music`: 10 s of SYNTHETIC stereo music at
  44.1 kHz, 16-bit, written to the output folder), measured at `--music-kbps` and
  aggregated apart from DATA's clips.

Rates are real: 8 × (bytes of the whole file, container included) / duration of the
source clip. The bitrate asked for is only the setting: libmp3lame, for one, rounds it to
one its MPEG version allows (the stream's stated bitrate is kept too).

Metrics, computed here on the decoded WAV against the source, in float64:
- lag: codecs delay and pad the signal (encoder priming, frame padding) and a sample's
  offset would otherwise dominate the error. The lag is the integer in [-2048, 2048]
  samples maximising the cross-correlation of the two mono mixes, computed as one product
  of zero-padded FFTs (so linear, not circular); the decoded signal is shifted by it and
  both are cut to their overlap, over which every metric below is taken;
- SNR (dB) per channel, then averaged over channels;
- STOI (`inrcodec.metrics.stoi`, averaged over channels);
- PESQ wide-band (ITU-T P.862.2, the `pesq` package of the bench extra) on the mono mixes
  resampled to 16 kHz; the column is left out, with a note, when `pesq` does not import.
  STOI and PESQ model speech: on the music clip they are reported but mean little;
- wall seconds of each encode and each decode subprocess, process start-up included.

Aggregation as in CompressAI: per clip set, codec and setting (the bitrate asked for),
the mean kbit/s and the mean of each metric over the clips; Bjøntegaard deltas
(`inrcodec.metrics.bd_rate`, `bd_psnr`) of each inrcodec curve against each anchor on
those means, on SNR and on PESQ.

Writes under `--out`: per_clip.json (every measurement, so `--replot` rebuilds the rest
without encoding), one CompressAI-schema JSON per codec and clip set, rd.png and rd.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import scipy
import soundfile as sf
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import resample_poly

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
from inrcodec.metrics import bd_psnr, bd_rate, compressai_json, snr_db, stoi  # noqa: E402

MAX_LAG = 2048
PESQ_RATE = 16000
MUSIC_SET = "music"
MUSIC_STEM = "synth_music"
# codec -> (ffmpeg encoder, container suffix)
ANCHORS: dict[str, tuple[str, str]] = {
    "mp3": ("libmp3lame", ".mp3"),
    "opus": ("libopus", ".opus"),
    "aac": ("aac", ".m4a"),
}
ANCHOR_DESCRIPTIONS = {
    "mp3": "MP3 (ffmpeg libmp3lame, -b:a K, CBR, .mp3)",
    "opus": "Opus (ffmpeg libopus, -b:a K, its default VBR and complexity 10, .opus)",
    "aac": "AAC-LC (ffmpeg's native aac encoder, -b:a K, .m4a)",
}
HAVE_PESQ = importlib.util.find_spec("pesq") is not None


# ---------------------------------------------------------------- the music clip


def midi_hz(note: int) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def tone(freq: float, seconds: float, rate: int, partials: int, decay: float) -> np.ndarray:
    """A plucked-like note: harmonics falling as 1/k, an exponential decay, a 5 ms attack
    (so that no click eases the codecs' job or spoils it)."""
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, partials + 1))
    return wave * np.exp(-t / decay) * np.minimum(1.0, t / 0.005)


def place(track: np.ndarray, sound: np.ndarray, start: float, rate: int) -> None:
    first = int(start * rate)
    end = min(len(track), first + len(sound))
    track[first:end] += sound[: end - first]


def synth_music(path: Path, seconds: float = 10.0, rate: int = 44100, seed: int = 0) -> None:
    """Write a deterministic, SYNTHETIC stereo music clip (16-bit WAV): LibriSpeech is
    speech only, and the codecs are tuned differently for music. Four chords (C, Am, F, G)
    held and arpeggiated, a bass line on the beat, kick, snare and hi-hat from seeded
    noise, at 120 bpm; left and right get different mixes and the arpeggio is 12 ms later
    on the right, so that the channels are correlated but not equal."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    chords, bass, arpeggio, drums_l, drums_r = (np.zeros(n) for _ in range(5))
    beat = 0.5
    progression = [(60, 64, 67), (57, 60, 64), (53, 57, 60), (55, 59, 62)]
    bar = seconds / len(progression)
    for i, chord in enumerate(progression):
        for note in chord:
            place(chords, tone(midi_hz(note), bar, rate, 6, 1.2), i * bar, rate)
        for b in range(round(bar / beat)):
            start = i * bar + b * beat
            place(bass, tone(midi_hz(chord[0] - 24), beat, rate, 4, 0.3), start, rate)
            for half in (0.0, beat / 2):
                note = int(rng.choice(chord)) + 12 * int(rng.integers(0, 2))
                place(arpeggio, tone(midi_hz(note), beat, rate, 8, 0.15), start + half, rate)
    kick_t = np.arange(int(0.25 * rate)) / rate
    kick = np.sin(2 * np.pi * (50 * kick_t + 70 * 0.04 * (1 - np.exp(-kick_t / 0.04))))
    kick *= np.exp(-kick_t / 0.08)
    for b in range(int(seconds / beat)):
        noise = rng.standard_normal(int(0.15 * rate))
        decay = np.exp(-np.arange(len(noise)) / rate / (0.06 if b % 2 else 0.015))
        if b % 2:  # snare on the off beats, more on the left
            place(drums_l, 0.5 * noise * decay, b * beat, rate)
            place(drums_r, 0.3 * noise * decay, b * beat, rate)
        else:
            place(drums_l, kick, b * beat, rate)
            place(drums_r, kick, b * beat, rate)
        hat = np.diff(rng.standard_normal(int(0.05 * rate)), prepend=0.0)  # high-passed
        hat *= np.exp(-np.arange(len(hat)) / rate / 0.01)
        place(drums_r, 0.2 * hat, b * beat + beat / 2, rate)
        place(drums_l, 0.1 * hat, b * beat + beat / 2, rate)
    late = np.concatenate([np.zeros(int(0.012 * rate)), arpeggio])[:n]
    left = 0.25 * chords + 0.5 * bass + 0.4 * arpeggio + drums_l
    right = 0.35 * chords + 0.5 * bass + 0.25 * late + drums_r
    mix = np.stack([left, right], axis=1)
    sf.write(str(path), 0.9 * mix / np.abs(mix).max(), rate, subtype="PCM_16")


# ---------------------------------------------------------------- measuring


def load(path: Path) -> tuple[np.ndarray, int]:
    """(samples, channels) float64 in [-1, 1], and the sample rate."""
    values, rate = sf.read(str(path), dtype="float64", always_2d=True)
    return values, int(rate)


def best_lag(ref: np.ndarray, dec: np.ndarray) -> int:
    """The lag L in [-MAX_LAG, MAX_LAG] maximising Σ ref[n]·dec[n + L] on the mono mixes
    (positive: the decoded signal is late), from one FFT product zero-padded past both
    lengths, so that the correlation is linear."""
    a, b = ref.mean(axis=1), dec.mean(axis=1)
    size = next_fast_len(len(a) + len(b) - 1, real=True)
    corr = irfft(np.conj(rfft(a, size)) * rfft(b, size), size)
    lags = np.arange(max(-MAX_LAG, 1 - len(a)), min(MAX_LAG, len(b) - 1) + 1)
    return int(lags[np.argmax(corr[lags % size])])


def align(ref: np.ndarray, dec: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Both signals over their overlap once the decoded one is shifted back by `lag`."""
    ref, dec = (ref, dec[lag:]) if lag >= 0 else (ref[-lag:], dec)
    length = min(len(ref), len(dec))
    return ref[:length], dec[:length]


def pesq_wb(ref: np.ndarray, dec: np.ndarray, rate: int) -> float:
    """Wide-band PESQ of the mono mixes at 16 kHz; nan where PESQ finds no speech."""
    from pesq import PesqError, pesq

    g = math.gcd(PESQ_RATE, rate)
    a, b = (resample_poly(x.mean(axis=1), PESQ_RATE // g, rate // g) for x in (ref, dec))
    try:
        return float(pesq(PESQ_RATE, a, b, "wb"))
    except PesqError:
        return math.nan


def quality(ref: np.ndarray, dec: np.ndarray, rate: int) -> dict[str, Any]:
    """Every quality metric of one decoded signal, after lag alignment."""
    if dec.shape[1] != ref.shape[1]:
        raise ValueError(f"decoded has {dec.shape[1]} channels, source {ref.shape[1]}")
    lag = best_lag(ref, dec)
    a, b = align(ref, dec, lag)
    scores = {
        "lag": lag,
        "overlap": len(a) / len(ref),  # share of the source that is compared
        "snr": float(np.mean([snr_db(a[:, c], b[:, c]) for c in range(a.shape[1])])),
        "stoi": stoi(a, b, rate),
    }
    if HAVE_PESQ:
        scores["pesq"] = pesq_wb(a, b, rate)
    return scores


def decoded_point(
    wav: Path, encoded: Path, ref: np.ndarray, rate: int, times: dict[str, float]
) -> dict[str, Any]:
    """The measurements of one finished round trip, or {"error": ...} if the WAV is unusable."""
    try:
        dec, dec_rate = load(wav)
        if dec_rate != rate:
            raise ValueError(f"decoded at {dec_rate} Hz, source {rate} Hz")
        scores = quality(ref, dec, rate)
    except (OSError, ValueError, RuntimeError) as exc:
        return {"error": f"compare: {exc}", **times}
    return {"bytes": encoded.stat().st_size, **scores, **times}


def anchor_point(
    source: Path, ref: np.ndarray, rate: int, codec: str, kbps: float, context: dict[str, Any]
) -> dict[str, Any]:
    """One ffmpeg encode and decode in a scratch folder; the decoder's report of the input
    stream gives the bitrate the encoder settled on."""
    encoder, suffix = ANCHORS[codec]
    ffmpeg, env, timeout = context["ffmpeg"], context["env"], context["timeout"]
    with tempfile.TemporaryDirectory() as tmp:
        encoded, wav = Path(tmp) / f"x{suffix}", Path(tmp) / "x.wav"
        encode = [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source), "-vn"]
        encode += ["-c:a", encoder, "-b:a", f"{kbps:g}k", str(encoded)]
        encoded_run = run_timed(encode, env, timeout)
        if encoded_run.error:
            return {"error": f"encode: {encoded_run.error}", "encode_s": encoded_run.seconds}
        decode = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y", "-i", str(encoded)]
        decode += ["-ar", str(rate), "-ac", str(ref.shape[1]), "-c:a", "pcm_s16le", str(wav)]
        decoded = run_timed(decode, env, timeout)
        times = {"encode_s": encoded_run.seconds, "decode_s": decoded.seconds}
        if decoded.error:
            return {"error": f"decode: {decoded.error}", **times}
        source_report = decoded.stderr.split("Stream mapping")[0]  # the input's, not the WAV's
        stated = re.search(r"Stream #0:0.*Audio: .*?(\d+) kb/s", source_report)
        point = decoded_point(wav, encoded, ref, rate, times)
        return point | {"stated_kbps": float(stated[1]) if stated else None}


def inr_point(
    source: Path, ref: np.ndarray, rate: int, flags: str, kbps: float, context: dict[str, Any]
) -> dict[str, Any]:
    """One `inrcodec encode` + `decode` round trip in a scratch folder; a failure at either
    stage is returned as {"error": ...} so that one bad flag or crash does not end the run."""
    cli = [sys.executable, "-m", "inrcodec.cli"]
    env, timeout = context["env"], context["timeout"]
    with tempfile.TemporaryDirectory() as tmp:
        inr, wav = Path(tmp) / "x.inr", Path(tmp) / "x.wav"
        target = shlex.split(context["rate_flag"].format(kbps=f"{kbps:g}"))
        encode = [*cli, "encode", str(source), "-o", str(inr), *target, *shlex.split(flags)]
        encoded = run_timed([*encode, "--json", "--quiet", "--force"], env, timeout)
        if encoded.error:
            return {"error": f"encode: {encoded.error}", "encode_s": encoded.seconds}
        decode = [*cli, "decode", str(inr), "-o", str(wav), "--force", "--quiet"]
        decoded = run_timed(decode, env, timeout)
        times = {"encode_s": encoded.seconds, "decode_s": decoded.seconds}
        if decoded.error:
            return {"error": f"decode: {decoded.error}", **times}
        return decoded_point(wav, inr, ref, rate, times)


def plan(args: argparse.Namespace, rates: list[float]) -> list[tuple[str, str, float]]:
    """(codec, kind, setting) of every measurement on one clip; a curve whose rate is in
    its FLAGS (no {kbps} in --rate-flag) runs once, at setting 0."""
    anchors = [(c, "anchor", k) for c in args.anchors for k in rates]
    inr_rates = rates if "{kbps}" in args.rate_flag else [0.0]
    return anchors + [(n, "inrcodec", k) for n in args.curves for k in inr_rates]


def measure(clips: list[tuple[str, Path]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every codec × setting × clip, one at a time (the timings are per encode)."""
    context = {
        "ffmpeg": args.ffmpeg,
        "env": subprocess_env(args.threads),
        "timeout": args.encode_timeout,
        "rate_flag": args.rate_flag,
    }
    rows = []
    for clip_set, path in clips:
        ref, rate = load(path)
        rates = args.music_kbps if clip_set == MUSIC_SET else args.kbps
        for codec, kind, setting in plan(args, rates):
            row = {"set": clip_set, "clip": path.stem, "codec": codec, "kind": kind}
            row |= {"setting": setting, "seconds": len(ref) / rate, "rate": rate}
            if kind == "anchor":
                row |= anchor_point(path, ref, rate, codec, setting, context)
            else:
                row |= inr_point(path, ref, rate, args.curves[codec], setting, context)
            if "bytes" in row:
                row["kbps"] = 8 * row["bytes"] / row["seconds"] / 1000
            rows.append(row)
            print(progress_line(row), flush=True)
    return rows


def progress_line(row: dict[str, Any]) -> str:
    where = f"{row['clip']} {row['codec']} {row['setting']:g}"
    if "error" in row:
        return f"{where}: FAILED {row['error']}"
    extra = f" PESQ {row['pesq']:.2f}" if "pesq" in row else ""
    return (
        f"{where}: {row['kbps']:.1f} kbit/s {row['snr']:.2f} dB (lag {row['lag']}) "
        f"STOI {row['stoi']:.3f}{extra} {row['encode_s']:.1f} s"
    )


# ---------------------------------------------------------------- aggregating

MEANS = ("kbps", "bytes", "snr", "stoi", "pesq", "encode_s", "decode_s")


def aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """set -> codec -> one point per setting: CompressAI's mean over the set's clips, by
    rising kbit/s. A setting that failed on any clip gets no point (a mean over fewer clips
    would sit on an easier subset); the failures are listed in the report instead."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    clips: dict[str, set[str]] = {}
    for row in rows:
        groups.setdefault((row["set"], row["codec"], row["setting"]), []).append(row)
        clips.setdefault(row["set"], set()).add(row["clip"])
    result: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (clip_set, codec, setting), group in groups.items():
        points = result.setdefault(clip_set, {}).setdefault(codec, [])
        if len(group) != len(clips[clip_set]) or any("error" in r for r in group):
            continue
        point = {"setting": setting, "kind": group[0]["kind"], "n": len(group)}
        point |= {k: float(np.mean([r[k] for r in group])) for k in MEANS if k in group[0]}
        point |= {"lag_min": min(r["lag"] for r in group), "lag_max": max(r["lag"] for r in group)}
        points.append(point)
    return {
        s: {c: sorted(ps, key=lambda p: p["kbps"]) for c, ps in codecs.items()}
        for s, codecs in result.items()
    }


def bd(anchor: list[dict[str, Any]], test: list[dict[str, Any]], key: str, delta: Any) -> float:
    """One Bjøntegaard delta of `test` against `anchor` on metric `key` (nan without overlap)."""
    return delta(
        [p["kbps"] for p in anchor],
        [p[key] for p in anchor],
        [p["kbps"] for p in test],
        [p[key] for p in test],
    )


# ---------------------------------------------------------------- reporting


def mean_table(codecs: dict[str, list[dict[str, Any]]], pesq: bool) -> list[str]:
    pesq_head, pesq_rule = (" PESQ-WB |", "---|") if pesq else ("", "")
    lines = [
        f"| codec | asked kbit/s | kbit/s | SNR dB | STOI |{pesq_head} lag (samples) "
        "| encode s | decode s |",
        f"|---|---|---|---|---|{pesq_rule}---|---|---|",
    ]
    for codec, points in codecs.items():
        for p in points:
            pesq_cell = f" {cell(p.get('pesq'))} |" if pesq else ""
            lag = f"{p['lag_min']}" + (f"…{p['lag_max']}" if p["lag_max"] != p["lag_min"] else "")
            lines.append(
                f"| {codec} | {p['setting']:g} | {p['kbps']:.2f} | {cell(p['snr'])} | "
                f"{cell(p['stoi'], 3)} |{pesq_cell} {lag} | {p['encode_s']:.2f} | "
                f"{p['decode_s']:.2f} |"
            )
    return lines


def bd_table(codecs: dict[str, list[dict[str, Any]]], meta: dict[str, Any]) -> list[str]:
    anchors = [a for a in meta["anchors"] if codecs.get(a)]
    tests = [c for c in meta["curves"] if codecs.get(c)]
    if not anchors or not tests:
        return ["None: this needs an anchor and an inrcodec curve, each with points."]
    heads = ["BD-rate SNR %", "BD-SNR dB"] + (["BD-rate PESQ %"] if meta["pesq"] else [])
    lines = [
        "| curve | anchor | " + " | ".join(heads) + " |",
        "|---|---|" + "---|" * len(heads),
    ]
    for test in tests:
        for a in anchors:
            cells = [
                cell(bd(codecs[a], codecs[test], "snr", bd_rate), 1, True),
                cell(bd(codecs[a], codecs[test], "snr", bd_psnr), 2, True),
            ]
            if meta["pesq"]:
                cells.append(cell(bd(codecs[a], codecs[test], "pesq", bd_rate), 1, True))
            lines.append(f"| {test} | {a} | " + " | ".join(cells) + " |")
    return lines


def clip_table(rows: list[dict[str, Any]], pesq: bool) -> list[str]:
    pesq_head, pesq_rule = (" PESQ-WB |", "---|") if pesq else ("", "")
    lines = [
        "| clip | codec | asked kbit/s | stated kb/s | bytes | kbit/s | SNR dB | STOI |"
        f"{pesq_head} lag | compared | encode s | decode s |",
        f"|---|---|---|---|---|---|---|---|{pesq_rule}---|---|---|---|",
    ]
    for r in rows:
        start = f"| {r['clip']} | {r['codec']} | {r['setting']:g} |"
        if "error" in r:
            lines.append(f"{start} failed |" + " |" * (9 if pesq else 8))
            continue
        pesq_cell = f" {cell(r.get('pesq'))} |" if pesq else ""
        lines.append(
            f"{start} {cell(r.get('stated_kbps'), 0)} | {r['bytes']} | {r['kbps']:.2f} | "
            f"{cell(r['snr'])} | {cell(r['stoi'], 3)} |{pesq_cell} {r['lag']} | "
            f"{100 * r['overlap']:.1f} % | {r['encode_s']:.2f} | {r['decode_s']:.2f} |"
        )
    return lines


def header_lines(meta: dict[str, Any]) -> list[str]:
    wall = f"{meta['wall_s'] / 60:.1f} min of wall time"
    rebuilt = f" Tables rebuilt with `--replot` on {today()}." if meta.get("replotted") else ""
    curves = "; ".join(f"`{n}` = `{f}`" for n, f in meta["curves"].items()) or "none"
    anchors = [f"- {a}: {ANCHOR_DESCRIPTIONS[a]}." for a in meta["anchors"]]
    skipped = [f"- {a}: skipped, not in this ffmpeg." for a in meta["skipped"]]
    music = (
        f" Music: `{MUSIC_STEM}`, SYNTHETIC (10 s, 44.1 kHz stereo, made by the script's "
        f"`synth_music`), at {', '.join(f'{k:g}' for k in meta['music_kbps'])} kbit/s."
        if MUSIC_SET in meta["sets"]
        else ""
    )
    encode = ["inrcodec encode CLIP", meta["rate_flag"], "FLAGS"]
    pesq = (
        "PESQ wide-band (P.862.2, `pesq` package) on the mono mixes resampled to 16 kHz"
        if meta["pesq"]
        else "no PESQ: the `pesq` package (bench extra) did not import, so STOI is plotted"
    )
    return [
        f"# Audio rate–distortion: {', '.join(meta['sets'])}",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"{meta['date']}, {wall}. Machine: {meta['machine']}. {meta['threads']} thread(s) "
        f"per inrcodec encode and decode; one measurement at a time.{rebuilt}",
        "",
        f"Clips of {meta['data']}: {', '.join(meta['clips'])}, at "
        f"{', '.join(f'{k:g}' for k in meta['kbps'])} kbit/s.{music}",
        "",
        f"Software: {meta['versions']}.",
        "",
        *anchors,
        *skipped,
        f"- inrcodec curves (`{' '.join(filter(None, encode))}`): {curves}.",
        "",
        "Every rate is 8 × (bytes of the whole file, container included) / duration of the "
        "source clip; 'asked' is the setting, 'stated' the bitrate the decoder reports for "
        "the stream. Metrics, computed by this script in float64 on the decoded WAV: the "
        f"decoded signal is first shifted by the lag in [-{MAX_LAG}, {MAX_LAG}] samples "
        "that maximises the cross-correlation of the mono mixes (positive: decoded late), "
        "and both are cut to their overlap; SNR per channel then averaged; STOI; "
        f"{pesq}. Aggregation as in CompressAI: per clip set, codec and asked bitrate, the "
        "mean kbit/s and the mean of each metric over the clips; a setting that failed on "
        "any clip has no point. Seconds are the wall time of each subprocess, start-up "
        "included.",
    ]


def markdown(
    curves: dict[str, dict[str, list[dict[str, Any]]]],
    rows: list[dict[str, Any]],
    meta: dict[str, Any],
) -> str:
    lines = header_lines(meta)
    for clip_set in meta["sets"]:
        codecs = curves.get(clip_set, {})
        clips = sorted({r["clip"] for r in rows if r["set"] == clip_set})
        lines += [
            "",
            f"## {clip_set}: mean over {len(clips)} clip(s)",
            "",
            *mean_table(codecs, meta["pesq"]),
            "",
            f"### {clip_set}: Bjøntegaard deltas of each inrcodec curve",
            "",
            "VCEG-M33 on the mean curves' Pareto fronts (cubic fits, lower degree below 4 "
            "points, over the shared range). BD-rate: negative = inrcodec needs fewer bits "
            "for the same SNR (or PESQ); BD-SNR: positive = inrcodec is better at equal rate.",
            "",
            *bd_table(codecs, meta),
        ]
    lines += [
        "",
        "## Per clip",
        "",
        *clip_table(rows, meta["pesq"]),
        "",
        "## Failures",
        "",
        *failure_lines(rows, "clip"),
    ]
    return "\n".join(lines) + "\n"


def codec_description(codec: str, clip_set: str, meta: dict[str, Any]) -> str:
    clips = f"mean over the {clip_set} clips (see rd.md)"
    if codec in ANCHOR_DESCRIPTIONS:
        return f"{ANCHOR_DESCRIPTIONS[codec]}; {clips}"
    return f"inrcodec encode {meta['rate_flag']} {meta['curves'][codec]}; {clips}"


def write_codec_json(
    out: Path, codec: str, clip_set: str, points: list[dict], meta: dict[str, Any]
) -> None:
    """One CompressAI-schema document per codec and clip set (DATA's set keeps the bare
    codec name); `settings` names each point's asked bitrate."""
    keys = [k for k in ("kbps", "snr", "stoi", "pesq") if all(k in p for p in points)]
    results = {k: [p[k] for p in points] for k in keys}
    results["encoding_time"] = [p["encode_s"] for p in points]
    results["decoding_time"] = [p["decode_s"] for p in points]
    doc = compressai_json(codec, codec_description(codec, clip_set, meta), results)
    doc["settings"] = [p["setting"] for p in points]
    name = codec if clip_set == meta["data"] else f"{codec}_{clip_set}"
    (out / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")


def plot(
    curves: dict[str, dict[str, list[dict[str, Any]]]], path: Path, meta: dict[str, Any]
) -> bool:
    """SNR and PESQ (else STOI) against kbit/s, one row of panels per clip set; False when
    matplotlib (the bench extra) is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import ScalarFormatter
    except ImportError:
        return False
    second = "pesq" if meta["pesq"] else "stoi"
    labels = {"snr": "SNR (dB, aligned)", "pesq": "PESQ wide-band", "stoi": "STOI"}
    anchor_style = {"mp3": ("k", "s"), "opus": ("tab:gray", "D"), "aac": ("tab:brown", "^")}
    sets = meta["sets"]
    fig, axes = plt.subplots(len(sets), 2, figsize=(11, 4.2 * len(sets)), dpi=110, squeeze=False)
    for row, clip_set in zip(axes, sets, strict=True):
        for ax, key in zip(row, ("snr", second), strict=True):
            for codec, points in ((c, ps) for c, ps in curves.get(clip_set, {}).items() if ps):
                color, marker = anchor_style.get(codec, (None, "o"))
                inr = codec not in anchor_style
                ax.plot(
                    [p["kbps"] for p in points],
                    [p[key] for p in points],
                    "-" if inr else "--",
                    marker=marker,
                    color=color,
                    label=codec,
                    linewidth=2.2 if inr else 1.0,
                    markersize=4 if inr else 3,
                )
            ax.set_xscale("log")  # the rates span decades, and BD fits are in log rate
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.set_xlabel("kbit/s (whole file, log scale)")
            ax.set_ylabel(f"{labels[key]}, mean over clips")
            ax.set_title(f"{clip_set}, {meta['date']}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_outputs(out: Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Every file but per_clip.json, from the measurements alone (so --replot can)."""
    curves = aggregate(rows)
    for clip_set, codecs in curves.items():
        for codec, points in codecs.items():
            write_codec_json(out, codec, clip_set, points, meta)
    report = markdown(curves, rows, meta)
    if not plot(curves, out / "rd.png", meta):
        report += "\n(matplotlib is missing, so no rd.png: install the `bench` extra.)\n"
    (out / "rd.md").write_text(report)
    return report


# ---------------------------------------------------------------- command line


def versions(ffmpeg: str) -> str:
    ffmpeg_line = subprocess.run(
        [ffmpeg, "-version"], capture_output=True, text=True, check=False
    ).stdout.split("\n", 1)[0]
    found = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    found += [f"scipy {scipy.__version__}", ffmpeg_line.split(" Copyright")[0]]
    for package in ("pystoi", "pesq"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(found)


def available_anchors(ffmpeg: str, wanted: list[str]) -> tuple[list[str], list[str]]:
    """(usable, skipped): an anchor whose encoder this ffmpeg lacks is skipped, said on stderr."""
    present = ffmpeg_encoders(ffmpeg)
    skipped = [a for a in wanted if ANCHORS[a][0] not in present]
    for codec in skipped:
        print(f"{codec}: skipped, {ffmpeg} has no {ANCHORS[codec][0]} encoder", file=sys.stderr)
    return [a for a in wanted if a not in skipped], skipped


def parse_curve(text: str) -> tuple[str, str]:
    """NAME=FLAGS; NAME names a file, so it is kept to letters, digits, '.', '_', '-'."""
    name, sep, flags = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name in ANCHORS:
        raise argparse.ArgumentTypeError(f"expected NAME=FLAGS with a new file-safe NAME: {text}")
    return name, flags


def parse_rates(text: str) -> list[float]:
    return [float(k) for k in parse_list(text)]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, nargs="?", help="folder of .flac/.wav clips")
    parser.add_argument("--clips", default="all", help="stems, comma-separated, or all")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/rd_audio")
    parser.add_argument("--music", action="store_true", help="add the synthetic music clip")
    parser.add_argument("--kbps", type=parse_rates, default="16,24,32,48,64", help="DATA's")
    parser.add_argument("--music-kbps", type=parse_rates, default="96,128,160", help="music's")
    parser.add_argument(
        "--curve",
        dest="curve_list",
        action="append",
        type=parse_curve,
        default=[],
        help="NAME=FLAGS: an inrcodec curve, FLAGS added to `inrcodec encode` (repeatable)",
    )
    parser.add_argument(
        "--rate-flag",
        default="--target-kbps {kbps}",
        help="how a curve is given each bitrate; without {kbps}, FLAGS set it (one run)",
    )
    parser.add_argument(
        "--codecs",
        dest="anchors",
        metavar="CODECS",
        type=lambda t: parse_list(t, ANCHORS),
        default="mp3,opus,aac",
        help="anchors, of mp3, opus, aac",
    )
    parser.add_argument("--threads", type=int, default=2, help="threads per inrcodec process")
    parser.add_argument("--encode-timeout", type=float, default=3600.0, help="seconds")
    parser.add_argument("--replot", action="store_true", help="rebuild from per_clip.json")
    args = parser.parse_args(argv)
    args.curves = dict(args.curve_list)
    if not args.replot and args.data_dir is None:
        parser.error("DATA_DIR is needed unless --replot")
    return args


def select_clips(data_dir: Path, spec: str) -> list[Path]:
    """`all`: every .flac and .wav of the folder; else the named stems."""
    found = {p.stem: p for p in sorted(data_dir.iterdir()) if p.suffix in (".flac", ".wav")}
    if spec == "all":
        return list(found.values())
    missing = [n for n in parse_list(spec) if n not in found]
    if missing:
        raise SystemExit(f"no .flac/.wav in {data_dir} for: {', '.join(missing)}")
    return [found[n] for n in parse_list(spec)]


def run(args: argparse.Namespace, command: str) -> tuple[list[dict], dict[str, Any]]:
    args.ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    args.anchors, skipped = available_anchors(args.ffmpeg, args.anchors)
    paths = select_clips(args.data_dir, args.clips)
    clips = [(args.data_dir.name, p) for p in paths]
    if args.music:
        synth_music(args.out / f"{MUSIC_STEM}.wav")
        clips.append((MUSIC_SET, args.out / f"{MUSIC_STEM}.wav"))
    if not clips:
        raise SystemExit(f"no .flac/.wav clips in {args.data_dir}")
    if not HAVE_PESQ:
        print("pesq does not import: no PESQ column (install the bench extra)", file=sys.stderr)
    started = time.perf_counter()
    rows = measure(clips, args)
    meta = {
        "command": command,
        "date": today(),
        "wall_s": time.perf_counter() - started,
        "machine": machine(),
        "threads": args.threads,
        "data": args.data_dir.name,
        "sets": list(dict.fromkeys(s for s, _ in clips)),
        "clips": [p.stem for p in paths],
        "kbps": args.kbps,
        "music_kbps": args.music_kbps,
        "anchors": args.anchors,
        "skipped": skipped,
        "curves": args.curves,
        "rate_flag": args.rate_flag,
        "pesq": HAVE_PESQ,
        "versions": versions(args.ffmpeg),
    }
    return rows, meta


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/rd_audio.py " + shlex.join(argv)
    rows, meta = measurements(args.out, "per_clip.json", args.replot, lambda: run(args, command))
    report = write_outputs(args.out, rows, meta)
    print(report.split("## Per clip")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
