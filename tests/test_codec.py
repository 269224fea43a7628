"""Encode -> .inr -> decode -> eval through the library, on tiny images."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from inrcodec import container
from inrcodec.codec import decode_file, describe, encode_file, evaluate_file
from inrcodec.coords import grid_coords
from inrcodec.errors import InrcodecError, UsageError
from inrcodec.models import build_model
from inrcodec.options import EncodeOptions
from inrcodec.render import chunk_points, render


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"scale": 0.5}, (16, 16)),
        ({"scale": 1}, (32, 32)),
        ({"scale": 3}, (96, 96)),
        ({"size": "40x24"}, (24, 40)),
    ],
)
def test_decode_shapes(tiny_inr, tmp_path, request_, expected):
    out = tmp_path / "out.png"
    report = decode_file(tiny_inr, out, request_, device="cpu")
    assert tuple(report.shape) == expected
    with Image.open(out) as im:
        assert im.size == (expected[1], expected[0]) and im.mode == "RGB"


def test_scale_one_reproduces_the_training_grid_exactly(tiny_inr, tmp_path):
    inr = container.read(tiny_inr)
    model = inr.build_model()
    from inrcodec.transforms import get_transform

    with torch.no_grad():
        raw = get_transform(inr.transform).inverse(model(grid_coords((32, 32))), inr.scalars)
    expected = np.clip(np.rint(raw.clamp(0, 255).numpy()), 0, 255).astype(np.uint8)
    decode_file(tiny_inr, tmp_path / "x1.png", {"scale": 1}, device="cpu")
    decoded = np.asarray(Image.open(tmp_path / "x1.png"))
    np.testing.assert_array_equal(decoded, expected.reshape(32, 32, 3))


def test_eval_matches_what_encode_reported(tiny_inr):
    reference = tiny_inr.with_name("crop32.png")
    metrics = evaluate_file(tiny_inr, reference, device="cpu")
    facts = describe(tiny_inr)
    assert metrics["psnr"] == pytest.approx(facts["encoder"]["psnr"], abs=1e-3)
    assert metrics["bpp"] == pytest.approx(tiny_inr.stat().st_size * 8 / (32 * 32))
    assert metrics["compression_ratio"] == pytest.approx(32 * 32 * 3 / tiny_inr.stat().st_size)


def test_chunked_render_equals_one_shot_render(tiny_inr):
    inr = container.read(tiny_inr)
    identity = lambda raw: raw  # noqa: E731
    whole = render(inr, (37, 29), identity, np.float32, budget_bytes=1 << 30)
    tiny_chunks = render(inr, (37, 29), identity, np.float32, budget_bytes=1)
    np.testing.assert_array_equal(whole, tiny_chunks)


def test_chunk_size_follows_the_memory_budget(tiny_inr):
    model = container.read(tiny_inr).build_model()
    small, large = chunk_points(model, 1 << 20), chunk_points(model, 1 << 26)
    assert large == 64 * small


def test_decode_memory_is_bounded_by_the_budget(tiny_inr, tmp_path):
    """A 16x upscale allocates about the output itself, not N x width activations."""
    tracemalloc.start()
    decode_file(tiny_inr, tmp_path / "big.png", {"scale": 16}, device="cpu")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    output_bytes = 512 * 512 * 3
    assert peak < 40 * output_bytes  # numpy-side peak; torch activations are chunked too


def test_pixel_cap_refuses_huge_decodes(tiny_inr, tmp_path):
    out = tmp_path / "huge.png"
    with pytest.raises(InrcodecError, match="max-pixels"):
        decode_file(tiny_inr, out, {"scale": 100}, device="cpu", max_pixels=10**6)
    assert not out.exists()


def test_bad_requests(tiny_inr, tmp_path):
    with pytest.raises(UsageError):
        decode_file(tiny_inr, tmp_path / "a.png", {"size": "12by4"}, device="cpu")
    with pytest.raises(UsageError):
        decode_file(tiny_inr, tmp_path / "a.png", {"scale": -1}, device="cpu")
    with pytest.raises(UsageError):
        decode_file(tiny_inr, tmp_path / "a.png", {"scale": 2, "size": "4x4"}, device="cpu")


@pytest.mark.parametrize("transform", ["sym", "minmax", "zscore", "gamma", "boxcox"])
def test_every_transform_encodes_and_decodes(gradient_image, tmp_path, transform):
    options = EncodeOptions(transform=transform, steps=40, lr=5e-3, width=32, depth=2, device="cpu")
    report = encode_file(gradient_image, tmp_path / "g.inr", options)
    assert report.transform == transform
    assert report.metrics["psnr"] > 20
    assert describe(tmp_path / "g.inr")["transform"] == transform


def test_sym_and_minmax_both_fit(gradient_image, tmp_path):
    """Both run on the same image and both fit it (a sanity check, not a ranking)."""
    psnrs = {}
    for transform in ("sym", "minmax"):
        options = EncodeOptions(
            transform=transform, steps=60, lr=5e-3, width=32, depth=2, device="cpu"
        )
        psnrs[transform] = encode_file(gradient_image, tmp_path / f"{transform}.inr", options)
    assert all(r.metrics["psnr"] > 25 for r in psnrs.values())


def test_grayscale_alpha_and_16_bit_images(tmp_path):
    rng = np.random.default_rng(0)
    images = {
        "gray.png": Image.fromarray(rng.integers(0, 255, (12, 10), dtype=np.uint8)),
        "rgba.png": Image.fromarray(rng.integers(0, 255, (12, 10, 4), dtype=np.uint8)),
        "deep.png": Image.fromarray(rng.integers(0, 65535, (12, 10), dtype=np.uint16)),
    }
    for name, image in images.items():
        image.save(tmp_path / name)
        options = EncodeOptions(steps=5, width=8, depth=1, device="cpu")
        encode_file(tmp_path / name, tmp_path / f"{name}.inr", options)
        report = decode_file(tmp_path / f"{name}.inr", tmp_path / f"out-{name}", {}, device="cpu")
        with Image.open(report.output) as decoded, Image.open(tmp_path / name) as source:
            assert decoded.mode == source.mode and decoded.size == source.size
    assert describe(tmp_path / "deep.png.inr")["bit_depth"] == 16
    assert describe(tmp_path / "rgba.png.inr")["channels"] == "RGBA"


def test_tiled_encode_stores_its_tiles_and_decodes_at_any_scale(crop32, tmp_path):
    options = EncodeOptions(
        arch="finer", steps=80, lr=2e-3, width=16, depth=1, tile_size=16, precision="int8"
    )
    report = encode_file(crop32, tmp_path / "t.inr", options)
    inr = container.read(tmp_path / "t.inr")
    assert inr.hparams["tiles"] == [2, 2] and inr.precision == "int8"
    assert report.parameters == 4 * sum(
        p.numel() for p in build_model("finer", 2, 3, width=16, depth=1).parameters()
    )
    metrics = evaluate_file(tmp_path / "t.inr", crop32, device="cpu")
    assert metrics["psnr"] == pytest.approx(report.metrics["psnr"], abs=1e-3)
    decoded = decode_file(tmp_path / "t.inr", tmp_path / "x3.png", {"scale": 3}, device="cpu")
    assert tuple(decoded.shape) == (96, 96)
