"""The rate–distortion benchmark's per-image comparison (benchmarks/rd.py)."""

import importlib.util
import math
from pathlib import Path

import pytest

RD = Path(__file__).resolve().parents[1] / "benchmarks" / "rd.py"


@pytest.fixture(scope="module")
def rd():
    spec = importlib.util.spec_from_file_location("rd_benchmark", RD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(image, codec, kind, setting, bpp, psnr):
    return {"image": image, "codec": codec, "kind": kind, "setting": setting, "bpp": bpp,
            "psnr": psnr}  # fmt: skip


def test_each_file_is_compared_with_the_anchor_on_its_own_image_at_its_own_rate(rd):
    rows = [
        row("a", "webp", "anchor", 10, 0.2, 30.0),
        row("a", "webp", "anchor", 20, 0.4, 33.0),
        row("b", "webp", "anchor", 10, 0.2, 20.0),
        row("b", "webp", "anchor", 20, 0.4, 21.0),
        row("a", "grid", "inrcodec", 0.25, math.sqrt(0.2 * 0.4), 32.0),  # webp: 31.5
        row("b", "grid", "inrcodec", 0.25, 0.4, 20.0),  # webp: 21.0
        row("b", "grid", "inrcodec", 1.0, 0.8, 25.0),  # beyond webp's points: not compared
    ]
    meta = {"anchors": ["webp"], "curves": {"grid": "--preset image"}, "rates": [0.25, 1.0]}
    table = rd.gap_table(rows, meta)
    assert "| grid | 0.25 | 2 | -0.25 (-1.00, +0.50) |" in table
    assert "| grid | 1 | 1 | – |" in table
