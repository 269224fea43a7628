"""Audio through 1-D latent grids (the audio default): round trips, any sample rate, rate
targets in kbit/s, and decoding that repeats exactly."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inrcodec.cli import main
from inrcodec.codec import decode_file, describe, encode_file, evaluate_file
from inrcodec.errors import UsageError
from inrcodec.options import EncodeOptions, resolve_options

RATE = 16000
# The audio recipe at a test's size: the same arch, transform and learning rate.
GRID = EncodeOptions(
    arch="grid",
    transform="minmax",
    lr=3e-2,
    steps=150,
    batch_size=0,
    device="cpu",
    compile="off",
    lam=2e-5,
)


def chirp(seconds: float = 0.5, channels: int = 1) -> np.ndarray:
    """A rising tone (200 Hz to 2 kHz) with a quieter, delayed copy in a second channel:
    (T, C) float32 in [-1, 1]."""
    t = np.arange(round(seconds * RATE)) / RATE
    phase = 2 * np.pi * (200 * t + 1800 * t**2 / (2 * seconds))
    columns = [0.6 * np.sin(phase), 0.3 * np.sin(phase - 0.7)][:channels]
    return np.stack(columns, axis=-1).astype(np.float32)


def wav(path: Path, values: np.ndarray, rate: int = RATE) -> Path:
    sf.write(path, values, rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def mono(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A mono chirp, its grid encode and the encode's report."""
    folder = tmp_path_factory.mktemp("mono")
    src = wav(folder / "chirp.wav", chirp())
    inr = folder / "chirp.inr"
    return src, inr, encode_file(src, inr, GRID).to_dict()


def test_the_audio_default_is_the_grid_codec() -> None:
    options = resolve_options(None, "audio")
    assert options.arch == "grid" and options.precision == "auto"
    assert options.time_per_second and options.time_budget is None
    # A first compile can take a short clip's whole budget: audio trains eagerly.
    assert options.compile == "off"
    assert resolve_options(None, "audio", {"arch": "grid"}) == options


def test_mono_round_trip_compresses(mono: tuple[Path, Path, dict]) -> None:
    src, inr, report = mono
    # 16-bit PCM is 256 kbit/s; the grid file is a fraction of it and still follows the chirp.
    assert report["metrics"]["bps"] < 256_000 / 2
    assert report["metrics"]["snr"] > 12
    assert evaluate_file(inr, src, device="cpu")["snr"] == pytest.approx(
        report["metrics"]["snr"], abs=1e-6
    )


def test_decode_at_other_rates_keeps_the_duration(mono: tuple[Path, Path, dict], tmp_path: Path):
    _, inr, _ = mono
    for rate, frames in ((RATE, 8000), (44100, 22050), (8000, 4000)):
        out = tmp_path / f"at{rate}.wav"
        decode_file(inr, out, {"rate": rate}, device="cpu")
        info = sf.info(out)
        assert (info.samplerate, info.frames) == (rate, frames)


def test_other_rates_interpolate_the_source_rate(mono: tuple[Path, Path, dict], tmp_path: Path):
    """Twice the rate reads the trained lattice at every other sample (up to the 16-bit
    rounding of both outputs), and the points between are between their neighbours."""
    _, inr, _ = mono
    source = decode_file(inr, tmp_path / "a.wav", {}, device="cpu")
    assert source.shape == [8000]
    low = sf.read(tmp_path / "a.wav", dtype="float64")[0]
    decode_file(inr, tmp_path / "b.wav", {"rate": 2 * RATE - 2}, device="cpu")
    high = sf.read(tmp_path / "b.wav", dtype="float64")[0]
    assert len(high) == 2 * len(low) - 1
    assert np.abs(high[::2] - low).max() <= 2 / 32768
    between = high[1::2]
    assert np.all(between >= np.minimum(low[:-1], low[1:]) - 0.02)
    assert np.all(between <= np.maximum(low[:-1], low[1:]) + 0.02)


def test_decoding_repeats_exactly(mono: tuple[Path, Path, dict], tmp_path: Path) -> None:
    _, inr, _ = mono
    decode_file(inr, tmp_path / "1.wav", {}, device="cpu")
    decode_file(inr, tmp_path / "2.wav", {}, device="cpu")
    assert (tmp_path / "1.wav").read_bytes() == (tmp_path / "2.wav").read_bytes()


def test_stereo_round_trip(tmp_path: Path) -> None:
    src = wav(tmp_path / "stereo.wav", chirp(0.25, channels=2))
    report = encode_file(src, tmp_path / "s.inr", GRID)
    assert describe(tmp_path / "s.inr")["channels"] == "2ch"
    assert report.metrics["snr"] > 10
    decoded = decode_file(tmp_path / "s.inr", tmp_path / "s.wav", {}, device="cpu")
    assert decoded.shape == [4000] and sf.info(tmp_path / "s.wav").channels == 2


@pytest.mark.parametrize("kbps", [12.0, 24.0, 48.0])
def test_target_kbps_is_never_exceeded(tmp_path: Path, kbps: float) -> None:
    src = wav(tmp_path / "c.wav", chirp())
    report = encode_file(src, tmp_path / "c.inr", replace(GRID, lam=None, target_kbps=kbps))
    size = (tmp_path / "c.inr").stat().st_size
    assert size * 8 / 0.5 <= kbps * 1000
    assert report.metrics["bps"] == pytest.approx(size * 8 / 0.5)
    # A budget is spent, not left: at least half of it holds the signal.
    assert report.metrics["bps"] > 0.5 * kbps * 1000


def test_target_bpp_on_audio_is_bits_per_sample_of_each_channel(tmp_path: Path) -> None:
    src = wav(tmp_path / "s.wav", chirp(0.25, channels=2))
    report = encode_file(src, tmp_path / "s.inr", replace(GRID, lam=None, target_bpp=1.5))
    assert report.metrics["bits_per_sample"] <= 1.5
    assert report.file_bytes <= 1.5 * 4000 * 2 / 8


def test_rate_targets_are_refused_where_they_cannot_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = wav(tmp_path / "c.wav", chirp(0.1))
    out = tmp_path / "c.inr"
    # 1 kbit/s of 0.1 s is 12 bytes: not even the header fits.
    with pytest.raises(UsageError, match="header alone"):
        encode_file(src, out, replace(GRID, lam=None, target_kbps=1.0))
    assert not out.exists()
    image = Path(__file__).parent / "data" / "div2k00_crop48.png"
    assert main(["encode", str(image), "-o", str(out), "--target-kbps", "64", "--quiet"]) == 2
    assert "--target-kbps needs a duration" in capsys.readouterr().err
    flags = ["--target-kbps", "64", "--target-bpp", "2", "--quiet"]
    assert main(["encode", str(src), "-o", str(out), *flags]) == 2
    assert "not both" in capsys.readouterr().err


def test_cli_json_reports_the_audio_rate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = wav(tmp_path / "c.wav", chirp(0.25))
    out = tmp_path / "c.inr"
    flags = ["--steps", "60", "--device", "cpu", "--compile", "off", "--target-kbps", "32"]
    assert main(["encode", str(src), "-o", str(out), *flags, "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["arch"] == "grid" and report["metrics"]["bps"] <= 32_000


def test_start_and_duration_decode_only_that_part(mono: tuple[Path, Path, dict], tmp_path):
    """A part decodes to exactly the samples of the whole decode there, at any rate."""
    _, inr, _ = mono
    for rate in (RATE, 22050):
        whole = tmp_path / f"whole{rate}.wav"
        decode_file(inr, whole, {"rate": rate}, device="cpu")
        part = tmp_path / f"part{rate}.wav"
        report = decode_file(inr, part, {"rate": rate, "start": 0.1, "duration": 0.2}, device="cpu")
        first, count = round(0.1 * rate), round(0.2 * rate)
        assert report.shape == [count]
        expected = sf.read(whole, dtype="int16")[0][first : first + count]
        assert np.array_equal(sf.read(part, dtype="int16")[0], expected)
    # Past the end, or on an image: one clear refusal.
    with pytest.raises(UsageError, match="past the end"):
        decode_file(inr, tmp_path / "x.wav", {"start": 2.0}, device="cpu")
    assert not (tmp_path / "x.wav").exists()


def test_start_on_an_image_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    golden = Path(__file__).parent / "data" / "golden" / "v8_grid_half.inr"
    assert main(["decode", str(golden), "-o", str(tmp_path / "x.png"), "--start", "1"]) == 2
    assert "--start does not apply to image" in capsys.readouterr().err
