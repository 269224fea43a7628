"""The CUDA path (skipped without a GPU): encode, decode and eval on the GPU agree with the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inrcodec.codec import decode_file, encode_file, evaluate_file, pick_device
from inrcodec.options import EncodeOptions

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_picks_cuda():
    assert pick_device("auto") == "cuda"


@pytest.mark.parametrize(
    "arch", ["siren", "finer", "finer-gauss", "finer-wavelet", "spder", "sl2a"]
)
def test_encode_on_cuda_and_decode_on_both(crop32, tmp_path, arch):
    options = EncodeOptions(
        arch=arch, steps=100, width=64, depth=2, lr=1e-3, device="cuda", precision="fp32"
    )
    report = encode_file(crop32, tmp_path / "m.inr", options)
    assert report.device == "cuda" and report.metrics["psnr"] > 20
    decode_file(tmp_path / "m.inr", tmp_path / "gpu.png", {"scale": 2}, device="cuda")
    decode_file(tmp_path / "m.inr", tmp_path / "cpu.png", {"scale": 2}, device="cpu")
    gpu = np.asarray(Image.open(tmp_path / "gpu.png"), dtype=np.int16)
    cpu = np.asarray(Image.open(tmp_path / "cpu.png"), dtype=np.int16)
    assert np.abs(gpu - cpu).max() <= 1  # float rounding may flip a value across .5
    assert evaluate_file(tmp_path / "m.inr", crop32, device="cuda")["psnr"] == pytest.approx(
        report.metrics["psnr"], abs=0.05
    )


def test_compiled_training_on_cuda(crop32, tmp_path):
    options = EncodeOptions(steps=40, width=32, depth=2, lr=1e-3, device="cuda", compile="on")
    report = encode_file(crop32, tmp_path / "m.inr", options)
    assert report.compiled and report.metrics["psnr"] > 15


@pytest.mark.parametrize(("tile_size", "precision"), [(16, "int8"), (0, "int6")])
def test_tiled_and_quantized_encode_on_cuda_decode_on_cpu(crop32, tmp_path, tile_size, precision):
    options = EncodeOptions(
        arch="finer",
        steps=100,
        width=32,
        depth=2,
        lr=1e-3,
        device="cuda",
        tile_size=tile_size,
        precision=precision,
        qat_steps=10,
        compile="on",
    )
    report = encode_file(crop32, tmp_path / "m.inr", options)
    assert report.device == "cuda" and report.metrics["psnr"] > 20
    # Dequantized to fp32 on either device: the CPU decode measures what the GPU reported.
    assert evaluate_file(tmp_path / "m.inr", crop32, device="cpu")["psnr"] == pytest.approx(
        report.metrics["psnr"], abs=0.05
    )
