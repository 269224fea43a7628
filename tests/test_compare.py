"""inrcodec against JPEG/WebP/AVIF at the same bytes: the budget search, the comparison
rows, the side-by-side picture and the `compare` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features
from typer.testing import CliRunner

from inrcodec.cli import app, main
from inrcodec.compare import (
    PANEL_GAP,
    QUALITY_RANGE,
    _encode,
    _highest_fitting,
    compare,
    comparison_panels,
    parse_codecs,
    read_rgb,
    same_bytes,
    side_by_side,
)
from inrcodec.errors import InrcodecError, UsageError

REPO = Path(__file__).resolve().parents[1]
CROP48 = REPO / "tests" / "data" / "div2k00_crop48.png"
PARROTS = REPO / "inrcodec" / "data" / "parrots.png"
CODECS = ["jpeg", "webp"] + (["avif"] if features.check("avif") else [])


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 96x64 crop of the committed photo: real texture, quick to encode many times."""
    image = np.asarray(Image.open(PARROTS).convert("RGB"))
    return np.ascontiguousarray(image[96:160, 144:240])


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few steps of a small network on the 48x48 crop: a real .inr, of any quality."""
    from inrcodec.codec import encode_file
    from inrcodec.options import EncodeOptions

    path = tmp_path_factory.mktemp("compare") / "crop48.inr"
    encode_file(CROP48, path, EncodeOptions(steps=30, width=16, depth=2, device="cpu"))
    return path


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("budget", [500, 1200, 3000])
def test_same_bytes_never_exceeds_the_budget(photo, codec, budget):
    encoded = same_bytes(photo, budget, codec)
    assert not encoded.over_budget
    assert encoded.num_bytes == len(encoded.data) <= budget
    assert encoded.decoded.shape == photo.shape and encoded.decoded.dtype == np.uint8
    # The highest setting: the next one up (as the search measured it) does not fit.
    if encoded.quality < QUALITY_RANGE[codec][1]:
        assert _encode(photo, codec, encoded.quality + 1).num_bytes > budget


@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_more_bytes_never_look_worse(photo, codec):
    from inrcodec.metrics import psnr

    scores = [psnr(photo, same_bytes(photo, b, codec).decoded) for b in (600, 1500, 4000)]
    assert scores == sorted(scores)
    assert scores[-1] > scores[0]


@pytest.mark.parametrize("codec", ["jpeg", "webp"])
def test_a_budget_below_the_lowest_quality_is_flagged(photo, codec):
    encoded = same_bytes(photo, 50, codec)
    assert encoded.over_budget
    assert encoded.quality == QUALITY_RANGE[codec][0]
    assert encoded.num_bytes > 50


def test_the_search_looks_past_a_non_monotone_bump(photo, monkeypatch):
    from inrcodec import compare as comparing

    sizes = {q: 10 * q for q in range(101)}
    sizes[50] = 9999  # a bump the binary search trips on: it settles on 49

    def fake(reference, codec, quality):
        return comparing.Encoded(codec, b"x" * sizes[quality], reference, quality)

    monkeypatch.setattr(comparing, "_encode", fake)
    encoded = same_bytes(photo, 520, "webp")
    assert encoded.quality == 52 and encoded.num_bytes == 520 and not encoded.over_budget
    assert _highest_fitting(0, 100, lambda q: False) is None


def test_codec_names_are_checked():
    assert parse_codecs("JPEG, webp,jpeg") == ["jpeg", "webp"]
    for text in ("jpeg,png", "", ","):
        with pytest.raises(UsageError):
            parse_codecs(text)


def test_compare_scores_every_codec_at_the_model_size(model):
    from inrcodec.codec import evaluate_file

    rows = compare(CROP48, model, ("jpeg", "webp"))
    budget = model.stat().st_size
    assert [r["codec"] for r in rows] == ["inrcodec", "jpeg", "webp"]
    assert rows[0]["bytes"] == budget and rows[0]["quality"] is None
    expected = evaluate_file(model, CROP48, "cpu")
    assert rows[0]["psnr"] == pytest.approx(expected["psnr"])
    assert rows[0]["ssim"] == pytest.approx(expected["ssim"])
    for row in rows:
        assert row["decoded"].shape == (48, 48, 3) and row["decoded"].dtype == np.uint8
        assert row["bpp"] == pytest.approx(8 * row["bytes"] / 48**2)
        assert row["bytes"] <= budget or row["over_budget"]
    assert all(isinstance(r["quality"], int) for r in rows[1:])


def test_side_by_side_lays_panels_out_and_refuses_to_overwrite(model, tmp_path):
    rows = compare(CROP48, model, ("jpeg",))
    panels = comparison_panels(read_rgb(CROP48), rows)
    target = tmp_path / "compare.png"
    side_by_side(panels, target)
    with Image.open(target) as image:
        assert image.width == 3 * 48 + 2 * PANEL_GAP and image.height > 48
        pixels = np.asarray(image.convert("RGB"))
    assert np.array_equal(pixels[-48:, :48], read_rgb(CROP48))  # the original, untouched
    with pytest.raises(InrcodecError, match="--force"):
        side_by_side(panels, target)
    side_by_side(panels, target, force=True)
    with pytest.raises(UsageError, match="PNG"):
        side_by_side(panels, tmp_path / "compare.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png"]  # no temp files


def test_compare_command_json_and_side_by_side(model, tmp_path):
    picture = tmp_path / "sbs.png"
    args = ["compare", str(CROP48), str(model), "--codecs", "jpeg,webp"]
    args += ["--side-by-side", str(picture), "--device", "cpu", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["budget_bytes"] == model.stat().st_size
    assert [r["codec"] for r in document["results"]] == ["inrcodec", "jpeg", "webp"]
    assert {"bytes", "bpp", "psnr", "ssim", "quality"} <= set(document["results"][1])
    assert Image.open(picture).width == 4 * 48 + 3 * PANEL_GAP


def test_compare_command_prints_a_table(model, capsys):
    assert main(["compare", str(CROP48), str(model), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert all(word in printed for word in ("inrcodec", "jpeg", "webp", "PSNR"))


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--codecs", "jpeg,gif"], 2, "unknown codec"),
        (["--side-by-side", "nowhere/out.png"], 1, "does not exist"),
        (["--side-by-side", "out.jpg"], 2, "PNG"),
    ],
)
def test_compare_command_usage_errors(model, tmp_path, monkeypatch, capsys, extra, code, message):
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(CROP48), str(model), *extra]) == code
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_compare_command_bad_paths_are_one_line_errors(model, tmp_path, capsys):
    for args in ([str(tmp_path / "missing.png"), str(model)], [str(CROP48), str(CROP48)]):
        assert main(["compare", *args, "--device", "cpu"]) != 0
        error = capsys.readouterr().err
        assert error.startswith("inrcodec: error:") and len(error.strip().splitlines()) == 1
        assert "Traceback" not in error


def test_compare_command_refuses_to_overwrite_without_force(model, tmp_path, capsys):
    picture = tmp_path / "sbs.png"
    picture.write_bytes(b"keep me")
    args = ["compare", str(CROP48), str(model), "--side-by-side", str(picture)]
    assert main([*args, "--device", "cpu"]) == 1
    assert "--force" in capsys.readouterr().err and picture.read_bytes() == b"keep me"
    assert main([*args, "--device", "cpu", "--force"]) == 0
    assert Image.open(picture).format == "PNG"
