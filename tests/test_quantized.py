"""Quantized storage through the codec: smaller files, bounded loss, identical decodes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from inrcodec import container
from inrcodec.codec import decode_file, encode_file, evaluate_file
from inrcodec.coords import grid_coords
from inrcodec.fitting import FitConfig, finetune_rounded
from inrcodec.models import build_model
from inrcodec.options import EncodeOptions
from inrcodec.quantize import stored_rounding
from tests.conftest import demo_crop


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, request) -> tuple:
    """A 32x32 crop fitted once in fp32, and its InrFile."""
    folder = tmp_path_factory.mktemp("quantized")
    src = demo_crop(folder)
    options = EncodeOptions(arch="finer", steps=200, lr=3e-3, width=24, depth=2, precision="fp32")
    encode_file(src, folder / "fp32.inr", options)
    return src, container.read(folder / "fp32.inr")


def test_lower_precisions_give_smaller_files_and_bounded_loss(fitted, tmp_path):
    src, inr = fitted
    results = {}
    for precision in ("fp32", "fp16", "int8", "int6", "int4"):
        path = tmp_path / f"{precision}.inr"
        size = container.write(path, dataclasses.replace(inr, precision=precision))
        metrics = evaluate_file(path, src, device="cpu")
        assert metrics["bytes"] == size == path.stat().st_size
        assert metrics["bpp"] == pytest.approx(8 * size / (32 * 32))
        results[precision] = (size, metrics["psnr"])
    sizes = [results[p][0] for p in ("fp32", "fp16", "int8", "int6", "int4")]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 5
    assert results["fp16"][1] == pytest.approx(results["fp32"][1], abs=0.2)
    assert results["int8"][1] > results["fp32"][1] - 0.5
    assert results["int8"][1] > results["int6"][1] > results["int4"][1]


def test_decoding_is_bit_identical_across_runs_and_stored_float_widths(fitted, tmp_path):
    _src, inr = fitted
    # The same fp16-representable weights stored as fp16 and as fp32: decode computes in
    # fp32 either way, so the images must match bit for bit.
    halved = {k: v.half().float() for k, v in inr.state.items()}
    outputs = []
    for precision in ("fp16", "fp32", "fp16"):
        path = tmp_path / f"{precision}-{len(outputs)}.inr"
        container.write(path, dataclasses.replace(inr, precision=precision, state=halved))
        decode_file(path, tmp_path / f"{len(outputs)}.png", {"scale": 2}, device="cpu")
        outputs.append(np.asarray(Image.open(tmp_path / f"{len(outputs)}.png")))
    assert all(np.array_equal(outputs[0], other) for other in outputs[1:])
    # Quantized files dequantize to fp32 and decode identically twice.
    path = tmp_path / "int6.inr"
    container.write(path, dataclasses.replace(inr, precision="int6"))
    model = container.read(path).build_model()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    first, second = (decode_file(path, tmp_path / f"q{i}.png", {}, "cpu") for i in range(2))
    assert first.shape == second.shape
    assert (tmp_path / "q0.png").read_bytes() == (tmp_path / "q1.png").read_bytes()


def test_quantization_aware_steps_lower_the_rounded_loss():
    torch.manual_seed(0)
    coords = grid_coords((24, 24))
    targets = torch.sin(3 * coords[:, :1]) * torch.cos(2 * coords[:, 1:])
    model = build_model("finer", 2, 1, width=32, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(200):
        optimizer.zero_grad()
        torch.mean((model(coords) - targets) ** 2).backward()
        optimizer.step()
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    config = FitConfig(lr=1e-4, lr_final_factor=1.0, batch_size=0, eval_every=5)
    names = [name for name, _ in model.named_parameters()]
    rounding = stored_rounding(names, "int4")
    state, before, after = finetune_rounded(
        model, coords, targets, config, start, rounding, steps=40
    )
    assert after < 0.8 * before
    model.load_state_dict(state)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(rounding[name](p))
        assert torch.mean((model(coords) - targets) ** 2).item() == pytest.approx(after, rel=1e-5)


def test_int_precision_encode_with_qat_records_it(fitted, tmp_path):
    src, _inr = fitted
    options = EncodeOptions(
        arch="finer", steps=40, width=16, depth=1, precision="int4", qat_steps=10
    )
    report = encode_file(src, tmp_path / "q.inr", options)
    stored = container.read(tmp_path / "q.inr")
    assert stored.precision == "int4" and stored.encoder["qat_steps"] == 10
    assert report.file_bytes == (tmp_path / "q.inr").stat().st_size
