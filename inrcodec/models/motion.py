"""A clip's global motion: one translation per frame, which video's latent grids follow.

A camera that pans moves the whole picture between frames, so a grid indexed by pixel
position must store each piece of the scene again at every latent frame, a little
shifted, and its interpolation in time blends two shifted copies. Indexed by scene
position instead (the pixel plus the frame's offset), panned content stays where it is
in the grid. The offsets are found once, before training, by phase correlation between
consecutive frames, and stored in the header as whole quarter pixels per frame; between
frames they are interpolated linearly, so the warp is continuous in time and any `--fps`
decodes. Measured on a hand-held 320x240 clip at 120 s towards 0.1 bpp: 29.88 dB against
28.98 without (docs/experiments.md, "global motion").
"""

from __future__ import annotations

import math

import numpy as np
import torch

STEPS_PER_PIXEL = 4  # offsets are stored in quarter pixels
MAX_OFFSET = 1 << 20  # in quarter pixels: a hostile header must not size a vast grid
ANALYSIS_SIDE = 512  # frames are analysed at most this large (block means)
REFINE = 8  # the shift between two frames is found to 1/REFINE of a pixel
# A correlation peak counts as motion only above this many times the highest peak noise
# alone reaches (√(2 ln N / N) for N pixels): 0.043 at 320x240, where a scene cut peaked
# at 0.033 and the weakest true match of two real clips' consecutive frames at 0.067.
CONFIDENT = 2.5


def track(frames: np.ndarray) -> list[list[int]]:
    """Per-frame offsets [rows, columns] in quarter pixels (each axis's smallest 0) of the
    scene point that pixel (0, 0) of each frame shows: frames (T, H, W, C), any range. Two
    frames' spectra are held at a time, whatever the clip's length."""
    height, width = frames.shape[1:3]
    factor = max(1, math.ceil(max(height, width) / ANALYSIS_SIDE))
    rows, cols = height // factor, width // factor
    window = np.outer(np.hanning(rows), np.hanning(cols))
    moved = np.zeros((len(frames), 2))
    before = None
    for t, frame in enumerate(frames):
        luma = np.asarray(frame[: rows * factor, : cols * factor], np.float64).mean(axis=-1)
        luma = luma.reshape(rows, factor, cols, factor).mean(axis=(1, 3))
        after = np.fft.fft2((luma - luma.mean()) * window)
        if before is not None:
            moved[t] = moved[t - 1] + _shift(before, after) * factor
        before = after
    offsets = np.round(-moved * STEPS_PER_PIXEL).astype(np.int64)
    return (offsets - offsets.min(axis=0)).tolist()


def _shift(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(dy, dx) by which the picture moved from one frame to the next, given their 2-D
    spectra: the peak of the phase correlation, then its surface evaluated every
    1/REFINE pixel within a pixel of that peak (Guizar-Sicairos' matrix-product DFT: no
    bias towards whole pixels, as a parabola through the peak has)."""
    cross = after * np.conj(before)
    whitened = cross / (np.abs(cross) + 1e-12)
    surface = np.real(np.fft.ifft2(whitened))
    peak = np.unravel_index(int(np.argmax(surface)), surface.shape)
    if surface[peak] < CONFIDENT * math.sqrt(2 * math.log(surface.size) / surface.size):
        return np.zeros(2)  # a peak that noise alone could reach: a cut, not a move
    centres = [p - n if p > n / 2 else p for p, n in zip(peak, surface.shape, strict=True)]
    near = np.linspace(-1, 1, 2 * REFINE + 1)
    along_rows, along_cols = (
        np.exp(2j * np.pi * np.outer(c + near, np.fft.fftfreq(n)))
        for c, n in zip(centres, surface.shape, strict=True)
    )
    fine = np.real(along_rows @ whitened @ along_cols.T)
    row, col = np.unravel_index(int(np.argmax(fine)), fine.shape)
    return np.array([centres[0] + near[row], centres[1] + near[col]])


def span(motion: list[list[int]]) -> list[int]:
    """Whole pixels the offsets reach beyond a frame along rows and columns: how much
    larger than a frame the grids must be to hold the scene the clip shows."""
    if not motion:
        return [0, 0]
    return [
        math.ceil((max(m[a] for m in motion) - min(m[a] for m in motion)) / STEPS_PER_PIXEL)
        for a in (0, 1)
    ]


def check(motion: object, shape: list[int]) -> None:
    """Refuse offsets (perhaps a header's, so of any type) that are not one pair of whole
    numbers of 0..MAX_OFFSET per frame of a video, before any grid is sized by them."""
    if len(shape) != 3:
        raise ValueError("global motion is for video: a grid of (frames, rows, columns)")
    pair = lambda m: (  # noqa: E731
        isinstance(m, list)
        and len(m) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_OFFSET for v in m)
    )
    if not (isinstance(motion, list) and len(motion) == shape[0] and all(map(pair, motion))):
        raise ValueError(
            f"motion must give two offsets of 0..{MAX_OFFSET} for each of {shape[0]} frames"
        )


def warp(
    coords: torch.Tensor, motion: torch.Tensor, shape: list[int], reach: list[int]
) -> torch.Tensor:
    """(t, y, x) in [-1, 1] over a clip of `shape` -> the same point in [-1, 1] over the
    grids, which span each frame plus `reach` pixels: the frame's offset (pixels, (T, 2),
    linear between frames) added to its row and column."""
    frames, rows, cols = shape
    t = (coords[:, 0] + 1) * (0.5 * (frames - 1))
    first = t.floor().clamp(0, max(0, frames - 2)).long()
    share = (t - first).clamp(0, 1)[:, None]
    offset = motion[first] * (1 - share) + motion[(first + 1).clamp(max=frames - 1)] * share
    out = [coords[:, 0]]
    for axis, (n, extra) in enumerate(zip((rows, cols), reach, strict=True)):
        pixel = (coords[:, axis + 1] + 1) * (0.5 * (n - 1)) + offset[:, axis]
        out.append(pixel * (2 / max(1, n - 1 + extra)) - 1)
    return torch.stack(out, dim=-1)
