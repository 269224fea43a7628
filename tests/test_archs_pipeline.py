"""Every architecture through the whole pipeline: encode, container, decode, eval, per medium."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from inrcodec import container
from inrcodec.codec import decode_file, describe, encode_file, evaluate_file
from inrcodec.coords import grid_coords
from inrcodec.models import build_model, hyper_parameters
from inrcodec.options import EncodeOptions
from tests.conftest import demo_crop
from tests.test_audio import tone, wav
from tests.test_container import make_inr
from tests.test_video import gif, pattern

# Small but real: each arch keeps its own activation and init, only narrower.
TINY = {
    "siren": {},
    "finer": {"first_bias_scale": 2.0},
    "finer-gauss": {},
    "finer-wavelet": {},
    "spder": {},
    "sl2a": {"degree": 16, "rank": 4},
}


def tiny_options(arch: str, steps: int) -> EncodeOptions:
    """16 wide, one hidden layer, full batch, fp32 weights (so round trips are exact)."""
    return EncodeOptions(
        arch=arch,
        steps=steps,
        lr=1e-3,
        width=16,
        depth=1,
        batch_size=0,
        arch_options=TINY[arch],
        device="cpu",
        precision="fp32",
    )


@pytest.fixture(scope="module")
def crop16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_crop(tmp_path_factory.mktemp("archs"), 16)


@pytest.mark.parametrize("arch", list(TINY))
def test_encode_container_decode_eval(arch, crop16, tmp_path):
    inr_path = tmp_path / "crop.inr"
    report = encode_file(crop16, inr_path, tiny_options(arch, steps=8))
    assert report.arch == arch and report.steps == 8

    # The file re-serializes to the same bytes, and the stored network is the one described.
    inr = container.read(inr_path)
    assert container.to_bytes(inr) == inr_path.read_bytes()
    assert describe(inr_path)["hyper_parameters"] == hyper_parameters(
        arch, {**TINY[arch], "width": 16, "depth": 1}, "image"
    )

    decoded = decode_file(inr_path, tmp_path / "x2.png", {"scale": 2}, device="cpu")
    assert decoded.shape == [32, 32]
    with Image.open(tmp_path / "x2.png") as image:
        assert image.size == (32, 32) and image.mode == "RGB"

    metrics = evaluate_file(inr_path, crop16, device="cpu")
    assert metrics["psnr"] == pytest.approx(report.metrics["psnr"], abs=1e-3)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 50 ms tone and a 4-frame 8x8 clip."""
    folder = tmp_path_factory.mktemp("media")
    return {
        "audio": wav(folder / "tone.wav", tone(0.05)),
        "video": gif(folder / "clip.gif", pattern(4, 8, 8)),
    }


@pytest.mark.parametrize("medium", ["audio", "video"])
@pytest.mark.parametrize("arch", list(TINY))
def test_audio_and_video_through_the_pipeline(arch, medium, media, tmp_path):
    """1-D and 3-D coordinates, and the medium's builder defaults land in the file."""
    inr_path = tmp_path / "m.inr"
    assert encode_file(media[medium], inr_path, tiny_options(arch, steps=3)).medium == medium
    inr = container.read(inr_path)
    assert inr.hparams == hyper_parameters(arch, {**TINY[arch], "width": 16, "depth": 1}, medium)
    assert container.to_bytes(inr) == inr_path.read_bytes()
    output = tmp_path / ("x2.wav" if medium == "audio" else "x2.mp4")
    decoded = decode_file(inr_path, output, {"scale": 2}, device="cpu")
    assert decoded.shape == ([1600] if medium == "audio" else [4, 16, 16])


@pytest.mark.parametrize("arch", list(TINY))
def test_fp32_container_round_trip_is_bit_exact(arch):
    # Width 16: the wavelet's complex layers (11 wide) then start at an odd real offset.
    hp = hyper_parameters(arch, {**TINY[arch], "width": 16, "depth": 2})
    torch.manual_seed(1)
    model = build_model(arch, 2, 3, **hp)
    state = {k: v.detach().clone() for k, v in model.named_parameters()}
    inr = make_inr("fp32", arch=arch, hparams=hp, state=state)
    back = container.from_bytes(container.to_bytes(inr))
    for name, value in inr.state.items():
        assert back.state[name].dtype == value.dtype, name  # complex stays complex
        assert torch.equal(back.state[name], value), name
    coords = grid_coords((5, 7))
    with torch.no_grad():
        assert torch.equal(back.build_model()(coords), model.eval()(coords))
