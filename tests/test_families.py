"""One pipeline, two model families behind one interface (issue 30): the codec asks the
arch's family, never branches on it, and the latent-grid family serves 1-, 2- and 3-D
signals with the same code."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from inrcodec import codec, container
from inrcodec.families import family_for
from inrcodec.families.latent_grids import LatentGrids
from inrcodec.families.weights import WeightOnly
from inrcodec.media import Signal
from inrcodec.options import EncodeOptions


def test_each_arch_has_its_family() -> None:
    assert isinstance(family_for("grid"), LatentGrids)
    for arch in ("siren", "finer", "finer-gauss", "finer-wavelet", "spder", "sl2a"):
        assert isinstance(family_for(arch), WeightOnly)


def test_the_codec_has_no_family_branch() -> None:
    source = inspect.getsource(codec)
    assert "has_latents" not in source and "is_latent" not in source


def _signal(medium: str, shape: tuple[int, ...], channels: int) -> Signal:
    """A smooth signal with some detail, in the medium's raw units."""
    axes = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    wave = sum(np.sin((3 + 2 * i) * np.pi * a) for i, a in enumerate(axes))
    values = np.stack([wave * (0.5 + 0.25 * c) for c in range(channels)], axis=-1)
    values = values / (np.abs(values).max() or 1)
    if medium == "audio":
        return Signal(medium, values.astype(np.float32), "mono", (-1.0, 1.0), 16, rate=8000.0)
    pixels = (127.5 + 120 * values).astype(np.float32)
    return Signal(medium, pixels, "RGB", (0.0, 255.0), 8, rate=24.0 if medium == "video" else None)


@pytest.mark.parametrize(
    ("medium", "shape", "channels"),
    [("audio", (2048,), 1), ("image", (24, 32), 3), ("video", (4, 12, 16), 3)],
)
def test_the_grid_family_fits_and_decodes_every_dimension(medium, shape, channels) -> None:
    signal = _signal(medium, shape, channels)
    options = EncodeOptions(
        arch="grid",
        transform="minmax",
        steps=60,
        lr=3e-2,
        batch_size=1024,
        device="cpu",
        eval_every=20,
        lam=1e-4,
        compile="off",
        arch_options={"levels": 3},
    )
    job = codec.job_for(signal, options)
    (candidate,) = codec.train(job, options, [container.CODED])
    stored = container.from_bytes(candidate.data)
    assert stored.arch == "grid" and tuple(stored.shape) == shape
    decoded = codec._render(stored, job.handler, shape, "cpu")
    assert decoded.shape == (*shape, channels)
    # What the encoder measured is the decode of the bytes it wrote.
    again = job.handler.metrics(signal, decoded)
    key = job.handler.quality_key
    assert again[key] == pytest.approx(candidate.metrics[key])
    flat = job.quality(job.targets.mean(0).expand_as(job.targets))
    assert candidate.metrics[key] > flat + 5  # it learned the signal (7-11 dB over flat here)
