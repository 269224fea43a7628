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


def test_the_per_image_bd_rate_fits_each_image_on_its_own_points_then_averages(rd):
    """One image where inrcodec needs 10 % fewer bits than the anchor at every PSNR, one
    where it needs 20 % more: the mean is +5 %, the worst +20 %, the best −10 %."""
    rows = []
    for image, factor in (("a", 0.9), ("b", 1.2)):
        for quality, bpp in enumerate((0.1, 0.2, 0.4, 0.8, 1.6)):
            rows.append(row(image, "webp", "anchor", quality, bpp, 30 + 3 * math.log2(bpp)))
        for target in (0.25, 0.5, 1.0):
            psnr = 30 + 3 * math.log2(target)
            rows.append(row(image, "grid", "inrcodec", target, target * factor, psnr))
    meta = {"anchors": ["webp"], "curves": {"grid": ""}, "rates": [0.25, 0.5, 1.0]}
    assert rd.per_image_bd_table(rows, meta)[-1] == "| grid | 2 | +5.0 (+20.0, -10.0) over 2 |"


def test_each_encode_keeps_its_steps_beside_its_psnr(rd):
    """Machines differ in speed, so a result keeps the steps its time budget bought."""
    report = '{"steps": 6496, "metrics": {"psnr": 29.55}, "warnings": ["the rate had not settled"]}'
    assert rd.reported(report) == {
        "reported_psnr": 29.55,
        "steps": 6496.0,
        "warnings": ["the rate had not settled"],
    }
    quiet = rd.reported('{"steps": 10, "metrics": {"psnr": 30.0}, "warnings": []}')
    assert quiet["warnings"] == []
    assert rd.reported("not json") == {"reported_psnr": None, "steps": None, "warnings": []}


def test_a_warned_encode_is_listed_under_the_points(rd):
    """A file whose rate collapsed must say so in the report, not only read low."""
    timing = {"bytes": 100, "steps": 10.0, "encode_s": 1.0, "decode_s": 0.5}
    quiet = row("a", "grid", "inrcodec", 0.5, 0.5, 30.0) | timing | {"warnings": []}
    warned = row("b", "grid", "inrcodec", 0.25, 0.24, 20.0) | timing
    warned["warnings"] = ["the rate had not settled when the latents froze"]
    table = rd.inr_table([quiet, warned])
    assert table[-1] == "- grid, b at 0.25 bpp: the rate had not settled when the latents froze"
    assert sum(line.startswith("- ") for line in table) == 1
    assert rd.inr_table([quiet])[-1].startswith("| grid | a | 0.5 |")
