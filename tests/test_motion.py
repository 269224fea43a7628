"""A video's global motion (models/motion.py): tracking a pan, and grids that follow it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inrcodec.coords import grid_coords
from inrcodec.errors import InrcodecError
from inrcodec.models import build_model
from inrcodec.models.motion import STEPS_PER_PIXEL, check, track, warp


def panning(
    frames: int, height: int, width: int, velocity: tuple[float, float], seed: int = 0
) -> np.ndarray:
    """(T, H, W, 3) frames of a smooth random texture moving by `velocity` pixels a frame,
    shifted exactly (in the Fourier domain) and cropped from its middle."""
    margin = 32
    rng = np.random.default_rng(seed)
    scene = rng.normal(size=(height + 2 * margin, width + 2 * margin))
    u = np.fft.fftfreq(scene.shape[0])[:, None]
    v = np.fft.fftfreq(scene.shape[1])[None, :]
    spectrum = np.fft.fft2(scene) * np.exp(-((u**2 + v**2) * 40))  # blurred: photo-like
    clip = []
    for t in range(frames):
        dy, dx = velocity[0] * t, velocity[1] * t
        moved = np.real(np.fft.ifft2(spectrum * np.exp(-2j * np.pi * (u * dy + v * dx))))
        clip.append(moved[margin : margin + height, margin : margin + width])
    clip = np.stack(clip)
    return np.repeat(((clip - clip.mean()) / clip.std() * 40 + 128)[..., None], 3, axis=-1)


@pytest.mark.parametrize("velocity", [(0.75, -1.5), (-2.0, 0.25), (0.0, 0.0)])
def test_a_pan_is_tracked_to_within_a_pixel_over_the_clip(velocity):
    frames = 8
    offsets = np.array(track(panning(frames, 48, 64, velocity)), dtype=float)
    moved = np.arange(frames)[:, None] * np.array(velocity)  # where frame 0's content went
    want = -moved * STEPS_PER_PIXEL
    want -= want.min(axis=0)
    assert offsets.min(axis=0).tolist() == [0, 0]
    assert np.abs(offsets - want).max() <= 3  # quarter pixels, accumulated over 7 frames


def test_a_cut_to_another_scene_is_not_taken_for_motion():
    """Frames 4-7 show another texture: the tracker moves on from where it was."""
    first = panning(8, 48, 64, (1.0, 0.0))
    cut = np.concatenate([first[:4], panning(4, 48, 64, (1.0, 0.0), seed=1)])
    offsets = np.array(track(cut))
    assert (offsets[4] == offsets[3]).all()
    assert np.abs(np.diff(offsets[:4, 0]) + 4).max() <= 1  # a pixel a frame, rows
    assert np.abs(np.diff(offsets[4:, 0]) + 4).max() <= 1


def test_large_frames_are_tracked_at_a_smaller_size_in_their_own_pixels():
    offsets = np.array(track(panning(3, 600, 1100, (4.0, -6.0))))
    assert np.abs(offsets[-1] - offsets[0] - [-32, 48]).max() <= 4


def test_a_frame_samples_the_grid_at_its_offset_and_between_frames_in_between():
    shape, reach = [3, 9, 5], [2, 0]
    motion = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    coords = grid_coords(tuple(shape), "cpu").double()
    rows = (warp(coords, motion, shape, reach)[:, 1] + 1) / 2 * (9 - 1 + 2)  # grid rows
    frame_rows = rows.reshape(3, 9, 5)[:, :, 0]
    assert torch.allclose(frame_rows[0], torch.arange(9.0, dtype=torch.float64))
    assert torch.allclose(frame_rows[1], torch.arange(9.0, dtype=torch.float64) + 2)
    middle = torch.tensor([[0.5, 0.0, 0.0]], dtype=torch.float64)  # t between frames 1 and 2
    at = (warp(middle, motion, shape, reach)[0, 1] + 1) / 2 * 10
    assert at.item() == pytest.approx(4 + 1.5)  # row 4 plus half of 2 and half of 1
    still = warp(coords, torch.zeros(3, 2, dtype=torch.float64), shape, [0, 0])
    assert torch.allclose(still, coords)


def test_grids_that_follow_a_pan_decode_each_frame_as_the_first_one_shifted():
    """Latents constant in time: frame 1 (offset 2 rows) is frame 0 two rows further on."""
    hp = dict(shape=[2, 12, 10], levels=2, stride=[1, 1, 1], motion=[[0, 0], [8, 0]])
    model = build_model("grid", 3, 3, **hp).double()
    assert list(model.latents[-1].shape) == [2, 14, 10]  # two more rows: the scene the pan shows
    with torch.no_grad():
        for grid in model.latents:
            ramp = torch.randn(grid.shape[1:], generator=torch.Generator().manual_seed(1))
            grid.copy_(ramp.expand_as(grid))
        out = model(grid_coords((2, 12, 10), "cpu").double()).reshape(2, 12, 10, 3)
    assert torch.allclose(out[1, :-2], out[0, 2:], atol=1e-6)  # coords are fp32-exact only


@pytest.mark.parametrize(
    "motion",
    [[[0, 0]], [[0, 0], [0, -1]], [[0, 0], [0, 1, 2]], [[0, 0], [1 << 21, 0]], [[0, 0], [True, 0]]],
)
def test_offsets_that_do_not_fit_the_clip_are_refused_before_any_grid_is_sized(motion):
    with pytest.raises(ValueError, match="motion"):
        check(motion, [2, 8, 8])
    with pytest.raises(InrcodecError, match="motion must give"):
        build_model("grid", 3, 3, shape=[2, 8, 8], levels=2, motion=motion)


def test_motion_is_for_video_only():
    with pytest.raises(InrcodecError, match="for video"):
        build_model("grid", 2, 3, shape=[8, 8], levels=2, motion=[[0, 0]] * 8)
