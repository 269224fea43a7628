"""Audio: reading and writing through soundfile, decode at any rate, metrics, round trips."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inrcodec.cli import main
from inrcodec.codec import decode_file, describe, encode_file, evaluate_file
from inrcodec.errors import InrcodecError, UsageError
from inrcodec.media import OutputFormat, handler_for_medium, handler_for_path
from inrcodec.media.audio import audio_to_output, read_audio
from inrcodec.metrics import si_snr_db
from inrcodec.options import EncodeOptions
from tests.conftest import SHARED_DATA

HANDLER = handler_for_medium("audio")

RATE = 16000
LIBRISPEECH = SHARED_DATA / "librispeech" / "121-121726-00.flac"
TINY = EncodeOptions(steps=40, lr=1e-3, width=32, depth=2, batch_size=0, device="cpu")


def tone(seconds: float = 0.25, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A 220 Hz tone plus a little noise, (T, C) float in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    noise = 0.02 * rng.standard_normal((len(t), channels))
    return (0.5 * np.sin(2 * np.pi * 220 * t)[:, None] + noise).astype(np.float32)


def wav(path: Path, values: np.ndarray, subtype: str = "PCM_16", rate: int = RATE) -> Path:
    sf.write(path, values, rate, subtype=subtype)
    return path


@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    return wav(tmp_path / "tone.wav", tone())


def assert_user_error(path: Path, match: str, **selection) -> None:
    """Reading `path` fails with a one-line InrcodecError that names the file."""
    with pytest.raises(InrcodecError, match=match) as info:
        read_audio(path, **selection)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# --- reading -------------------------------------------------------------------------


def test_read_mono_pcm16(tone_wav: Path) -> None:
    signal = HANDLER.read(tone_wav)
    assert handler_for_path(tone_wav) is HANDLER
    assert signal.medium == "audio" and signal.values.shape == (4000, 1)
    assert signal.values.dtype == np.float32
    assert (signal.channels, signal.bit_depth, signal.rate) == ("mono", 16, RATE)
    assert signal.value_range == (-1.0, 1.0)
    np.testing.assert_array_equal(signal.values, sf.read(tone_wav, dtype="float32")[0][:, None])


def test_start_and_duration_pick_a_part(tone_wav: Path) -> None:
    whole = HANDLER.read(tone_wav).values
    part = HANDLER.read(tone_wav, start=0.05, duration=0.1)
    np.testing.assert_array_equal(part.values, whole[800:2400])
    assert HANDLER.read(tone_wav, start=0.2, duration=10).values.shape == (800, 1)  # clipped
    with pytest.raises(UsageError, match="past the end"):
        HANDLER.read(tone_wav, start=0.25)
    with pytest.raises(UsageError, match="--start"):
        HANDLER.read(tone_wav, start=-1)
    with pytest.raises(UsageError, match="--duration"):
        HANDLER.read(tone_wav, duration=0)
    with pytest.raises(UsageError, match="--frames, --max-side do not apply to audio"):
        HANDLER.read(tone_wav, frames=3, max_side=8)


def test_24_bit_8_channel_float_and_ogg_files(tmp_path: Path) -> None:
    deep = wav(tmp_path / "deep.wav", tone(0.05, channels=8), "PCM_24")
    signal = read_audio(deep)
    assert (signal.channels, signal.bit_depth, signal.num_channels) == ("8ch", 24, 8)
    encode_file(deep, tmp_path / "deep.inr", replace(TINY, steps=2))
    for suffix in (".wav", ".flac"):
        decode_file(tmp_path / "deep.inr", tmp_path / f"out{suffix}", {}, device="cpu")
        info = sf.info(tmp_path / f"out{suffix}")
        assert (info.channels, info.frames, info.subtype) == (8, 800, "PCM_24")

    signal = read_audio(wav(tmp_path / "loud.wav", 3 * tone(0.05), "FLOAT"))
    peak = np.abs(signal.values).max()
    assert signal.bit_depth == 32 and peak > 1 and signal.value_range == (-peak, peak)

    ogg = tmp_path / "v.ogg"
    sf.write(ogg, tone(0.1), RATE, format="OGG", subtype="VORBIS")
    assert (read_audio(ogg).bit_depth, read_audio(ogg).values.shape) == (16, (1600, 1))


@pytest.mark.parametrize(("bits", "subtype"), [(8, "PCM_U8"), (16, "PCM_16"), (24, "PCM_24")])
def test_pcm_output_round_trip_is_exact(tmp_path: Path, bits: int, subtype: str) -> None:
    signal = read_audio(wav(tmp_path / "in.wav", tone(0.05), subtype))
    out = tmp_path / "out.wav"
    output_format = OutputFormat("mono", bits, RATE)
    HANDLER.write(out, audio_to_output(signal.values, bits), output_format, force=False)
    assert sf.info(out).subtype == subtype
    np.testing.assert_array_equal(read_audio(out).values, signal.values)


def test_output_format_follows_the_suffix(tmp_path: Path) -> None:
    values = audio_to_output(tone(0.05), 32)
    mono_float = OutputFormat("mono", 32, RATE)
    HANDLER.write(tmp_path / "f.wav", values, mono_float, force=False)
    HANDLER.write(tmp_path / "f.flac", values, mono_float, force=False)
    assert sf.info(tmp_path / "f.wav").subtype == "FLOAT"
    assert sf.info(tmp_path / "f.flac").subtype == "PCM_24"  # FLAC has no float samples
    with pytest.raises(InrcodecError, match=r"use \.wav or \.flac"):
        HANDLER.write(tmp_path / "f.mp3", values, mono_float, force=False)
    with pytest.raises(InrcodecError, match="--force"):
        HANDLER.write(tmp_path / "f.wav", values, mono_float, force=False)


def bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    data = wav(tmp / "good.flac", tone()).read_bytes()
    samples = tone(0.05)
    samples[10] = np.nan
    nan = wav(tmp / "nan.wav", samples, "FLOAT")
    files = {
        "empty.wav": (b"", "empty file"),
        "text.wav": (b"just text\n" * 20, "not a readable audio file"),
        "header.wav": (data[:30], "not a readable audio file"),
        "cut.flac": (data[: len(data) // 2], "not a readable audio file"),
    }
    found = {}
    for name, (content, message) in files.items():
        (tmp / name).write_bytes(content)
        found[name] = (tmp / name, message)
    found["nan.wav"] = (nan, "NaN")
    found["missing.wav"] = (tmp / "missing.wav", "no such file")
    return found


def test_bad_files_give_one_line_errors(tmp_path: Path) -> None:
    for path, message in bad_files(tmp_path).values():
        assert_user_error(path, message)


def test_bad_files_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for path, message in bad_files(tmp_path).values():
        assert main(["encode", str(path), "-o", str(tmp_path / "x.inr"), "--quiet"]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]
        assert not (tmp_path / "x.inr").exists()


# --- decode grid ---------------------------------------------------------------------


def test_output_shape_keeps_the_duration() -> None:
    assert HANDLER.output_shape((4000,), RATE, {}) == ((4000,), RATE)
    assert HANDLER.output_shape((4000,), RATE, {"rate": 48000}) == ((12000,), 48000)
    assert HANDLER.output_shape((4000,), RATE, {"rate": 44100}) == ((11025,), 44100)
    assert HANDLER.output_shape((4000,), RATE, {"scale": 0.5}) == ((2000,), 8000)
    assert HANDLER.output_shape((1,), RATE, {"rate": 48000}) == ((1,), 48000)
    for request, match in [
        ({"rate": 44100.5}, "whole number"),
        ({"rate": -1}, "positive"),
        ({"rate": 8000, "scale": 2}, "not both"),
        ({"size": "4x4"}, "--size does not apply to audio"),
        ({"fps": 30}, "--fps does not apply to audio"),
    ]:
        with pytest.raises(UsageError, match=match):
            HANDLER.output_shape((4000,), RATE, request)


# --- metrics -------------------------------------------------------------------------


def test_metrics_of_a_perfect_decode(tmp_path: Path) -> None:
    """STOI of a signal against itself is 1; SNR is infinite; SI-SNR ignores gain."""
    signal = read_audio(wav(tmp_path / "second.wav", tone(1.0, seed=1)))
    metrics = HANDLER.metrics(signal, audio_to_output(signal.values, 16))
    assert metrics["stoi"] == pytest.approx(1.0)
    assert metrics["snr"] == math.inf and metrics["mse"] == 0.0
    noisy = signal.values + 0.01 * np.random.default_rng(2).standard_normal(signal.values.shape)
    assert si_snr_db(signal.values, 3 * noisy) == pytest.approx(si_snr_db(signal.values, noisy))
    rate = HANDLER.rate_metrics(2000, (RATE,), 1, RATE)
    assert rate["bps"] == 16000 and rate["bits_per_sample"] == 1.0


def test_short_or_silent_clips_give_nan_stoi(tmp_path: Path) -> None:
    silent = wav(tmp_path / "silent.wav", np.zeros((2000, 1), np.float32))
    report = encode_file(
        silent, tmp_path / "s.inr", EncodeOptions(steps=2, width=8, depth=1, device="cpu")
    )
    assert math.isnan(report.metrics["stoi"]) and math.isnan(report.metrics["si_snr"])
    decode_file(tmp_path / "s.inr", tmp_path / "s.wav", {}, device="cpu")
    assert sf.info(tmp_path / "s.wav").frames == 2000


# --- round trips ---------------------------------------------------------------------


def test_codec_round_trip(tone_wav: Path, tmp_path: Path) -> None:
    inr = tmp_path / "tone.inr"
    report = encode_file(tone_wav, inr, TINY)
    assert report.medium == "audio" and report.metrics["snr"] > 5
    facts = describe(inr)
    assert facts["shape"] == [4000] and facts["rate"] == RATE and facts["channels"] == "mono"

    decoded = decode_file(inr, tmp_path / "x3.flac", {"rate": 48000}, device="cpu")
    info = sf.info(tmp_path / "x3.flac")
    assert (info.samplerate, info.frames, info.subtype) == (48000, 12000, "PCM_16")
    assert decoded.shape == [12000] and info.duration == pytest.approx(0.25)

    metrics = evaluate_file(inr, tone_wav, device="cpu")
    assert metrics["snr"] == pytest.approx(report.metrics["snr"], abs=1e-4)
    assert metrics["bps"] == pytest.approx(inr.stat().st_size * 8 / 0.25)


def test_eval_reads_the_part_that_was_encoded(tone_wav: Path, tmp_path: Path) -> None:
    options = replace(TINY, start=0.05, duration=0.1)
    report = encode_file(tone_wav, tmp_path / "part.inr", options)
    metrics = evaluate_file(tmp_path / "part.inr", tone_wav, device="cpu")
    assert metrics["snr"] == pytest.approx(report.metrics["snr"], abs=1e-4)

    other = wav(tmp_path / "other.wav", tone(0.2), rate=8000)
    with pytest.raises(InrcodecError, match="8000 Hz audio; the model holds 16000 Hz"):
        HANDLER.read_reference(other, (1600,), RATE, {})
    with pytest.raises(InrcodecError, match="holds 4,000 samples"):
        HANDLER.read_reference(tone_wav, (1600,), RATE, {})


def test_cli_round_trip(tone_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inr, wav = tmp_path / "t.inr", tmp_path / "t.wav"
    flags = ["--steps", "20", "--width", "16", "--depth", "1", "--device", "cpu"]
    assert main(["encode", str(tone_wav), "-o", str(inr), *flags, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["medium"] == "audio" and {"snr", "si_snr", "stoi", "bps"} <= set(
        report["metrics"]
    )

    assert main(["decode", str(inr), "-o", str(wav), "--scale", "0.5", "--device", "cpu"]) == 0
    assert sf.info(wav).samplerate == 8000 and sf.info(wav).frames == 2000
    capsys.readouterr()
    assert main(["eval", str(inr), str(tone_wav), "--device", "cpu", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert results["snr"][0] == pytest.approx(report["metrics"]["snr"], abs=1e-4)
    assert main(["decode", str(inr), "-o", str(wav), "--fps", "30"]) == 2


def test_siren_on_audio_is_the_reference_network() -> None:
    from inrcodec.options import resolve_options

    options = resolve_options(None, "audio", {"arch": "siren"})
    hparams = options.hyper_parameters("audio")
    assert (options.lr, options.width, options.depth) == (1e-4, 256, 3)
    assert hparams["first_omega"] == hparams["hidden_omega"] == 100.0


# --- real data -----------------------------------------------------------------------


@pytest.mark.skipif(not LIBRISPEECH.exists(), reason="needs ../shared/data/librispeech")
def test_librispeech_slice(tmp_path: Path) -> None:
    signal = read_audio(LIBRISPEECH, start=1.0, duration=0.2)
    assert signal.values.shape == (3200, 1) and signal.rate == RATE and signal.bit_depth == 16
    options = EncodeOptions(steps=3, width=16, depth=1, start=1.0, duration=0.2, device="cpu")
    report = encode_file(LIBRISPEECH, tmp_path / "ls.inr", options)
    assert report.metrics["bps"] > 0
    assert evaluate_file(tmp_path / "ls.inr", LIBRISPEECH, device="cpu")["mse"] == pytest.approx(
        report.metrics["mse"]
    )
