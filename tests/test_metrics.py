"""Metrics against hand computations and reference implementations (scikit-image)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inrcodec import metrics

DEMO = Path(metrics.__file__).parent / "data" / "demo.png"


def demo_image(mode: str = "RGB") -> np.ndarray:
    """A natural photo crop: SSIM on white noise would not exercise the structure term."""
    return np.asarray(Image.open(DEMO).convert(mode), dtype=np.float64)


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(image + rng.normal(0.0, sigma, image.shape)), 0, 255)


def skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1 if a.ndim == 3 else None,
    )


# --- images --------------------------------------------------------------------------


def test_psnr_matches_a_hand_computation() -> None:
    a = np.zeros((4, 4, 3))
    b = np.full((4, 4, 3), 5.0)
    b[0, 0, 0] = 9.0  # mse = (47 * 25 + 81) / 48

    expected = 10 * math.log10(255**2 / ((47 * 25 + 81) / 48))
    assert metrics.psnr(a, b) == pytest.approx(expected, rel=1e-12)
    assert metrics.psnr(a, b, peak=1.0) == pytest.approx(expected - 20 * math.log10(255))


def test_psnr_matches_skimage_and_is_infinite_for_identical_images() -> None:
    image = demo_image().astype(np.uint8)
    decoded = noisy(image, 6.0).astype(np.uint8)

    expected = peak_signal_noise_ratio(image, decoded, data_range=255)
    assert metrics.psnr(image, decoded) == pytest.approx(expected, rel=1e-12)
    assert metrics.psnr(image, image) == math.inf


@pytest.mark.parametrize("sigma", [2.0, 10.0, 40.0])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_ssim_matches_skimage(sigma: float, mode: str) -> None:
    image = demo_image(mode)
    decoded = noisy(image, sigma)

    assert metrics.ssim(image, decoded) == pytest.approx(skimage_ssim(image, decoded), abs=1e-5)


def test_ssim_orders_noise_levels_and_is_one_for_identical_images() -> None:
    image = demo_image()
    scores = [metrics.ssim(image, noisy(image, sigma)) for sigma in (2.0, 10.0, 40.0)]

    assert scores == sorted(scores, reverse=True)
    assert metrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert metrics.ssim(image[:, :, 0], image[:, :, 0]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(7, 5, 3), (2, 2, 1), (1, 6, 3), (1, 1, 1), (3, 40)])
def test_ssim_of_images_smaller_than_the_window_does_not_fail(shape: tuple[int, ...]) -> None:
    image = demo_image()[: shape[0], : shape[1]]
    image = image[:, :, : shape[2]] if len(shape) == 3 else image[:, :, 0]

    assert metrics.ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert -1.0 <= metrics.ssim(image, noisy(image, 30.0)) < 1.0


def reference_ssim(a: np.ndarray, b: np.ndarray, win_size: int) -> float:
    """Textbook SSIM with a win_size-tap Gaussian (sigma 1.5) over the valid region."""
    taps = np.arange(win_size) - win_size // 2
    kernel = np.exp(-(taps**2) / (2 * 1.5**2))
    kernel /= kernel.sum()

    def blur(x: np.ndarray) -> np.ndarray:
        for axis in (0, 1):
            x = np.apply_along_axis(np.convolve, axis, x, kernel, mode="valid")
        return x

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return float(ssim_map.mean(axis=(0, 1)).mean())


@pytest.mark.parametrize(
    ("height", "width", "win_size"), [(7, 9, 7), (10, 12, 9), (2, 5, 1), (1, 6, 1)]
)
def test_small_images_use_the_largest_odd_window_that_fits(
    height: int, width: int, win_size: int
) -> None:
    image = demo_image()[:height, :width]
    decoded = noisy(image, 10.0)

    expected = reference_ssim(image, decoded, win_size)
    assert metrics.ssim(image, decoded) == pytest.approx(expected, abs=1e-5)  # float32 kernel


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape mismatch"):
        metrics.psnr(np.zeros((4, 4, 3)), np.zeros((4, 4, 1)))


def test_rate_metrics() -> None:
    assert metrics.bits_per_pixel(1000, 64 * 64) == pytest.approx(8000 / 4096)
    assert metrics.compression_ratio(1000, 64 * 64 * 3) == pytest.approx(12.288)
    with pytest.raises(ValueError):
        metrics.bits_per_pixel(1000, 0)


# --- audio ---------------------------------------------------------------------------


def tone_pair(n: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    """A sine and a cosine over whole periods: zero-mean, orthogonal, equal energy."""
    t = np.arange(n) / n
    return np.sin(2 * np.pi * 50 * t), np.cos(2 * np.pi * 50 * t)


def test_mse_and_snr_match_hand_computations() -> None:
    ref, _ = tone_pair()

    assert metrics.mse(ref, 0.5 * ref) == pytest.approx(0.25 * np.mean(ref**2))
    assert metrics.snr_db(ref, 0.5 * ref) == pytest.approx(10 * math.log10(4))
    assert metrics.snr_db(ref, ref) == math.inf
    assert metrics.snr_db(np.zeros(10), np.ones(10)) == -math.inf


def test_si_snr_is_gain_invariant_and_snr_is_not() -> None:
    ref, other = tone_pair()
    est = ref + 0.1 * other  # noise energy 1/100 of the signal: 20 dB

    for gain in (1.0, 0.3, 7.0, -2.0):
        assert metrics.si_snr_db(ref, gain * est) == pytest.approx(20.0, abs=1e-9)
    assert metrics.snr_db(ref, 0.3 * est) != pytest.approx(metrics.snr_db(ref, 7.0 * est))


def test_si_snr_removes_the_mean_and_handles_edge_cases() -> None:
    ref, other = tone_pair()

    assert metrics.si_snr_db(ref, ref + 0.1 * other + 5.0) == pytest.approx(20.0, abs=1e-9)
    assert metrics.si_snr_db(ref, ref) > 100.0
    assert metrics.si_snr_db(ref, other) < -100.0  # orthogonal: nothing of ref in est
    assert math.isnan(metrics.si_snr_db(np.full(100, 0.3), np.ones(100)))


def test_si_snr_averages_over_channels() -> None:
    ref, other = tone_pair()
    stereo_ref = np.stack([ref, other], axis=1)
    stereo_est = np.stack([ref + 0.1 * other, 2.0 * other + 0.01 * ref], axis=1)

    assert metrics.si_snr_db(stereo_ref, stereo_est) == pytest.approx((20.0 + 46.0206) / 2, 1e-4)


def speech_like(seconds: float = 1.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Noise amplitude-modulated at a syllable rate (4 Hz), like the envelope of speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return 0.3 * envelope * rng.standard_normal(t.size)


def test_stoi_is_one_for_identical_signals_and_drops_with_noise() -> None:
    ref = speech_like()
    heavy = ref + 3 * ref.std() * np.random.default_rng(1).standard_normal(ref.size)

    assert metrics.stoi(ref, ref, 16000) >= 0.99
    assert metrics.stoi(ref, heavy, 16000) < 0.8


def test_stoi_of_too_short_signals_is_nan() -> None:
    for samples in (100, 2000):  # too short to frame; too few frames (pystoi says 1e-5)
        short = speech_like()[:samples]
        assert math.isnan(metrics.stoi(short, short, 16000))


# --- results document ----------------------------------------------------------------


def test_compressai_json_wraps_scalars_in_lists() -> None:
    document = metrics.compressai_json(
        "inrcodec-siren", "SIREN on Kodak", {"psnr-rgb": 31.5, "bpp": [0.5, 1.0]}
    )

    assert document == {
        "name": "inrcodec-siren",
        "description": "SIREN on Kodak",
        "results": {"psnr-rgb": [31.5], "bpp": [0.5, 1.0]},
    }
    assert json.loads(json.dumps(document)) == document


def test_stoi_of_a_long_signal_goes_by_chunks_close_to_one_pass() -> None:
    """Over 60 s, STOI is the length-weighted mean of 30-s chunks (bounded memory); only
    the windows across chunk borders differ from pystoi's single pass."""
    from pystoi import stoi as one_pass

    ref = speech_like(75, 8000)
    est = ref + ref.std() * np.random.default_rng(1).standard_normal(ref.size)
    chunked = metrics.stoi(ref, est, 8000)
    assert abs(chunked - one_pass(ref, est, 8000)) < 0.005
    assert chunked != one_pass(ref, est, 8000)  # it did go by chunks


def test_ssim_by_bands_of_rows_is_ssim_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large images go by bands (bounded memory); the mean is the same."""
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (61, 40, 3)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    whole = metrics.ssim(a, b)
    monkeypatch.setattr(metrics, "SSIM_BAND_PIXELS", 40 * 7)  # 7 rows a band: 8 bands
    assert metrics.ssim(a, b) == pytest.approx(whole, abs=1e-12)
