"""Quality and rate metrics.

Image metrics follow CompressAI: computed on the decoded 8-bit output against the
original, with peak / data range 255. torch is imported inside `ssim` so that importing
this module stays cheap.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64; a shape mismatch is a caller bug, not a user error."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return a, b


def _as_channels(x: np.ndarray) -> np.ndarray:
    """Audio as (samples, channels): 1-D signals are one channel."""
    return x[:, None] if x.ndim == 1 else x.reshape(x.shape[0], -1)


ROW_CHUNK = 1 << 20  # rows per float64 pass of the sums below: 10 minutes of audio in
# whole-signal float64 temporaries held about 460 MB


def _row_pairs(ref: np.ndarray, est: np.ndarray):
    """Both arrays, chunk by chunk of rows, as float64 pairs: memory stays that of the
    inputs, whatever their dtype."""
    if np.shape(ref) != np.shape(est):
        raise ValueError(f"shape mismatch: {np.shape(ref)} vs {np.shape(est)}")
    for start in range(0, max(1, len(ref)), ROW_CHUNK):
        yield _pair(ref[start : start + ROW_CHUNK], est[start : start + ROW_CHUNK])


def _sums(ref: np.ndarray, est: np.ndarray) -> tuple[float, float]:
    """(Σref², Σ(ref−est)²) over every sample."""
    signal = noise = 0.0
    for r, e in _row_pairs(ref, est):
        signal += float(np.sum(r**2))
        noise += float(np.sum((r - e) ** 2))
    return signal, noise


def mse(ref: np.ndarray, est: np.ndarray) -> float:
    return _sums(ref, est)[1] / max(1, np.size(ref))


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; identical inputs give math.inf."""
    error = mse(a, b)
    return math.inf if error == 0.0 else 10.0 * math.log10(peak**2 / error)


SSIM_BAND_PIXELS = 1 << 21  # pixels per pass of SSIM's filter maps (12 MP in one took 6 GB)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM (Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03), mean over channels.

    Inputs are (H, W) or (H, W, C). Matches skimage's `structural_similarity` with
    gaussian_weights=True, use_sample_covariance=False (same valid-region mean). Images
    smaller than 11 pixels on a side use the largest odd window that fits, so tiny
    images get a score instead of an error; below 3 pixels that window is 1 pixel,
    which reduces SSIM to its per-pixel luminance term.
    """
    import torch
    from pytorch_msssim import ssim as torch_ssim

    a, b = _pair(a, b)
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    height, width = a.shape[:2]
    win_size = min(11, min(height, width))
    win_size -= 1 - win_size % 2  # largest odd size that fits
    if win_size == 1:
        # pytorch_msssim squeezes away size-1 spatial dims; a 1-pixel window makes
        # SSIM per-pixel, so doubling every row and column leaves the mean unchanged.
        a, b = (np.repeat(np.repeat(x, 2, axis=0), 2, axis=1) for x in (a, b))
        height, width = a.shape[:2]

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]

    # By bands of rows, each with the window's halo: the valid map's mean per channel is
    # the bands' means weighted by their rows, and the filter maps stay a band's size.
    valid = height - win_size + 1
    rows = max(1, SSIM_BAND_PIXELS // width)
    total = torch.zeros(a.shape[2], dtype=torch.float64)
    for top in range(0, valid, rows):
        count = min(rows, valid - top)
        band = slice(top, top + count + win_size - 1)
        per_channel = torch_ssim(
            to_tensor(a[band]),
            to_tensor(b[band]),
            data_range=data_range,
            win_size=win_size,
            win_sigma=1.5,
            K=(0.01, 0.03),
            size_average=False,
        )[0]
        total += per_channel.double() * count
    return float((total / valid).mean())


def bits_per_pixel(file_bytes: int, num_pixels: int) -> float:
    if num_pixels <= 0:
        raise ValueError(f"num_pixels must be positive, got {num_pixels}")
    return 8.0 * file_bytes / num_pixels


def compression_ratio(file_bytes: int, raw_bytes: int) -> float:
    """Raw size over compressed size: 10.0 means the file is ten times smaller."""
    if file_bytes <= 0:
        raise ValueError(f"file_bytes must be positive, got {file_bytes}")
    return raw_bytes / file_bytes


def _ratio_db(signal_energy: float, noise_energy: float) -> float:
    """10·log10(signal/noise) with the limits spelled out: no noise -> inf, no signal -> -inf."""
    if noise_energy == 0.0:
        return math.inf
    if signal_energy == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_energy / noise_energy)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """SNR over all samples and channels: 10·log10(Σref² / Σ(ref−est)²).

    Identical signals give inf (silent ones included); a silent reference with a
    non-silent estimate gives -inf.
    """
    return _ratio_db(*_sums(ref, est))


def si_snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SNR in dB, averaged over channels (axis 0 is time).

    Both signals are made zero-mean, and the estimate is projected onto the reference:
    s_target = <est, ref> / ||ref||² · ref, e_noise = est − s_target. Any gain on the
    estimate cancels. A constant (after mean removal, silent) reference channel has no
    direction to project on and gives nan.
    """
    ref, est = _as_channels(np.asarray(ref)), _as_channels(np.asarray(est))
    count = max(1, len(ref))
    ref_mean = sum(r.sum(axis=0) for r, _ in _row_pairs(ref, est)) / count
    est_mean = sum(e.sum(axis=0) for _, e in _row_pairs(ref, est)) / count
    ref_energy = cross = 0.0
    for r, e in _row_pairs(ref, est):
        r, e = r - ref_mean, e - est_mean
        ref_energy += np.sum(r * r, axis=0)
        cross += np.sum(e * r, axis=0)
    if np.any(ref_energy == 0.0):
        return math.nan
    gain = cross / ref_energy  # s_target = gain · ref, per channel
    noise = 0.0
    for r, e in _row_pairs(ref, est):
        noise += np.sum((e - est_mean - gain * (r - ref_mean)) ** 2, axis=0)
    target = gain**2 * ref_energy
    return float(
        np.mean([_ratio_db(float(t), float(n)) for t, n in zip(target, noise, strict=True)])
    )


STOI_CHUNK_SECONDS = 30.0  # pystoi holds ~100 bytes per sample: long signals go by chunks


def stoi(ref: np.ndarray, est: np.ndarray, rate: float) -> float:
    """Short-time objective intelligibility (0..1), averaged over channels.

    pystoi takes any whole sample rate (it resamples to 10 kHz itself) and needs at least
    30 non-silent 25.6 ms frames (about 0.4 s of sound); for shorter signals, and for a
    constant (silent) reference channel, which has no speech to be intelligible, this
    returns nan instead of pystoi's placeholders (1e-5, or 0 for silence). Signals longer
    than two chunks are scored chunk by chunk (30 s each, the last one up to 60 s) and the
    scores averaged by length, so memory stays bounded (pystoi on 5 minutes peaked at 500
    MB); only the 384 ms windows across a chunk border differ from one pass.
    """
    if np.shape(ref) != np.shape(est):
        raise ValueError(f"shape mismatch: {np.shape(ref)} vs {np.shape(est)}")
    chunk = round(STOI_CHUNK_SECONDS * rate)
    starts = list(range(0, max(1, len(ref) - chunk), chunk))
    chunks = list(zip(starts, [*starts[1:], len(ref)], strict=True))
    scores = []
    for r, e in zip(_as_channels(ref).T, _as_channels(est).T, strict=True):
        if np.ptp(r) == 0.0:
            return math.nan
        parts = [(_stoi_part(*_pair(r[a:b], e[a:b]), rate), b - a) for a, b in chunks]
        kept = [(s, n) for s, n in parts if not math.isnan(s)]
        if not kept:
            return math.nan
        scores.append(sum(s * n for s, n in kept) / sum(n for _, n in kept))
    return float(np.mean(scores))


def _stoi_part(ref: np.ndarray, est: np.ndarray, rate: float) -> float:
    """pystoi on one channel's part; nan where it has too few frames to score."""
    from pystoi import stoi as pystoi_stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # pystoi's resampler takes a gcd of the rates, which needs integers.
            score = pystoi_stoi(ref, est, round(rate), extended=False)
        except ValueError:  # too short to frame at all
            return math.nan
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return math.nan
    return float(score)


def compressai_json(name: str, description: str, results: dict[str, float | list[float]]) -> dict:
    """A results document in CompressAI's schema: every metric maps to a list of values."""
    return {
        "name": name,
        "description": description,
        "results": {
            metric: [float(v) for v in values]
            if isinstance(values, (list, tuple))
            else [float(values)]
            for metric, values in results.items()
        },
    }


def mean_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each scalar metric over files (CompressAI's aggregate); per-frame series and
    non-finite values (a perfect PSNR) are left out."""
    keys = [k for k in (results[0] if results else {}) if not isinstance(results[0][k], list)]
    means = {}
    for key in keys:
        values = [r[key] for r in results if key in r and math.isfinite(r[key])]
        if values:
            means[key] = sum(values) / len(values)
    return means


def _rd_front(rates: Any, psnrs: Any) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto front of a rate–distortion curve, sorted by rate (and so by PSNR).

    A point beaten by another with no more rate and no less PSNR is dropped: a
    codec would never pick it, and Bjøntegaard's fits of rate against PSNR (and back)
    need a curve that rises in both. Non-positive rates and non-finite values are
    dropped too (no logarithm; a lossless point has no place on the curve).
    """
    rates = np.asarray(rates, dtype=np.float64)
    psnrs = np.asarray(psnrs, dtype=np.float64)
    if rates.shape != psnrs.shape or rates.ndim != 1:
        raise ValueError(f"rates and PSNRs must be 1-D and alike: {rates.shape} vs {psnrs.shape}")
    keep = np.isfinite(rates) & np.isfinite(psnrs) & (rates > 0)
    order = np.lexsort((-psnrs[keep], rates[keep]))  # by rate, the best PSNR first
    front_rates, front_psnrs, best = [], [], -math.inf
    for rate, quality in zip(rates[keep][order], psnrs[keep][order], strict=True):
        if quality > best:
            front_rates.append(rate)
            front_psnrs.append(quality)
            best = quality
    return np.log(np.array(front_rates)), np.array(front_psnrs)


def _bd_mean_gap(
    x_anchor: np.ndarray, y_anchor: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> float:
    """Mean of (test − anchor) over the shared x interval, each y a polynomial fit of x
    of degree min(3, points − 1); nan when the intervals do not overlap."""
    low = max(x_anchor.min(initial=math.inf), x_test.min(initial=math.inf))
    high = min(x_anchor.max(initial=-math.inf), x_test.max(initial=-math.inf))
    if not high > low:
        return math.nan
    areas = []
    for x, y in ((x_anchor, y_anchor), (x_test, y_test)):
        integral = np.polyint(np.polyfit(x, y, min(3, len(x) - 1)))
        areas.append(np.polyval(integral, high) - np.polyval(integral, low))
    return float((areas[1] - areas[0]) / (high - low))


def bd_rate(anchor_rates: Any, anchor_psnrs: Any, test_rates: Any, test_psnrs: Any) -> float:
    """Bjøntegaard delta rate (VCEG-M33), in percent: the mean rate difference of the test
    curve against the anchor at equal PSNR; negative means the test saves bits.

    As in CompressAI and the `bjontegaard` package: log(rate) is fitted as a cubic of PSNR
    for each curve (lower degree below 4 points), both fits are integrated over the PSNR
    interval the curves share, and the mean log-rate gap d gives (exp(d) − 1)·100. Each
    curve is first reduced to its Pareto front (see `_rd_front`). nan when the PSNR
    ranges do not overlap (fewer than 2 points on a curve included).
    """
    log_a, psnr_a = _rd_front(anchor_rates, anchor_psnrs)
    log_t, psnr_t = _rd_front(test_rates, test_psnrs)
    gap = _bd_mean_gap(psnr_a, log_a, psnr_t, log_t)
    return math.nan if math.isnan(gap) else (math.exp(gap) - 1.0) * 100.0


def bd_psnr(anchor_rates: Any, anchor_psnrs: Any, test_rates: Any, test_psnrs: Any) -> float:
    """Bjøntegaard delta PSNR (VCEG-M33), in dB: the mean PSNR gain of the test curve over
    the anchor at equal rate; PSNR is fitted as a cubic of log(rate) over the shared
    log-rate interval. Same fronts, degrees and nan as `bd_rate`."""
    log_a, psnr_a = _rd_front(anchor_rates, anchor_psnrs)
    log_t, psnr_t = _rd_front(test_rates, test_psnrs)
    return _bd_mean_gap(log_a, psnr_a, log_t, psnr_t)
