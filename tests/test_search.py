"""Size and precision searches for --target-psnr and --target-bpp."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from inrcodec import container
from inrcodec.cli import app
from inrcodec.codec import encode_file
from inrcodec.errors import UsageError
from inrcodec.ladder import LADDER, size_options
from inrcodec.models import build_model, hyper_parameters
from inrcodec.options import EncodeOptions
from inrcodec.search import binary_search_smallest


@pytest.mark.parametrize("threshold", range(0, 11))
def test_binary_search_finds_the_smallest_index_and_asks_few_questions(threshold):
    asked = []

    def reaches(i: int) -> bool:
        asked.append(i)
        return i >= threshold

    found = binary_search_smallest(10, reaches)
    assert found == (threshold if threshold < 10 else None)
    assert len(asked) <= 4 and len(set(asked)) == len(asked)


def test_ladder_runs_from_coin_sized_nets_to_3x256_in_parameter_order():
    counts = []
    for name in LADDER:
        hp = hyper_parameters("finer", size_options(name))
        model = build_model("finer", 2, 3, **hp)
        counts.append(sum(p.numel() for p in model.parameters()))
    assert counts == sorted(counts)
    assert size_options("coin") == {"depth": 8, "width": 28}
    assert list(LADDER)[-1] == "3x256" and counts[-1] == 198_915
    with pytest.raises(UsageError, match="size preset"):
        size_options("huge")


def test_size_preset_sets_width_and_depth_unless_they_are_given():
    options = EncodeOptions(arch="siren", size_preset="coin")
    assert options.hyper_parameters("image")["width"] == 28
    options = EncodeOptions(arch="siren", size_preset="coin", width=40)
    hp = options.hyper_parameters("image")
    assert (hp["width"], hp["depth"]) == (40, 8)


def test_target_bpp_writes_the_best_file_under_the_budget(crop32, tmp_path):
    budget_bpp = 32.0  # 32x32 pixels: 4,096 bytes
    options = EncodeOptions(
        arch="finer", steps=60, lr=2e-3, target_bpp=budget_bpp, size_search=True, precision="fp16"
    )
    report = encode_file(crop32, tmp_path / "x.inr", options)
    fitting = [t for t in report.trials if t["fits"]]
    assert fitting and all(t["file_bytes"] <= 4096 for t in fitting)
    assert report.file_bytes <= 4096 and report.metrics["bpp"] <= budget_bpp
    assert report.metrics["psnr"] == pytest.approx(max(t["quality"] for t in fitting), abs=1e-3)
    # Every precision of the search was tried at the largest size its file allows.
    assert {t["precision"] for t in report.trials} == {"fp16", "int8", "int6", "int4"}
    assert container.read(tmp_path / "x.inr").precision == report.precision


def test_target_bpp_below_the_smallest_file_is_refused(crop32, tmp_path):
    options = EncodeOptions(
        arch="finer", steps=5, target_bpp=0.5, size_search=True, precision="fp16"
    )
    with pytest.raises(UsageError, match="smallest file"):
        encode_file(crop32, tmp_path / "x.inr", options)
    assert not (tmp_path / "x.inr").exists()


def encode_json(src, tmp_path, *extra: str) -> dict:
    args = ["encode", str(src), "-o", str(tmp_path / "x.inr"), "--arch", "finer", "--lr", "2e-3"]
    result = CliRunner().invoke(app, [*args, *extra, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_target_psnr_search_from_the_command_line(crop32, tmp_path):
    report = encode_json(crop32, tmp_path, "--steps", "120", "--target-psnr", "24")
    trials = report["trials"]
    assert 1 <= len(trials) <= 4
    reached = [t for t in trials if t["fits"]]
    assert reached and all(t["quality"] >= 24 and t["metric"] == "psnr" for t in reached)
    names = list(LADDER)
    # The written file is the smallest size that reached the target...
    smallest = min(reached, key=lambda t: names.index(t["size"]))
    assert report["parameters"] == smallest["parameters"]
    assert report["metrics"]["psnr"] >= 24
    # ...and every smaller size it tried missed.
    assert all(
        not t["fits"] for t in trials if names.index(t["size"]) < names.index(smallest["size"])
    )


def test_target_psnr_with_a_fixed_size_only_stops_early(crop32, tmp_path):
    report = encode_json(crop32, tmp_path, "--width", "32", "--steps", "400", "--target-psnr", "20")
    assert report["trials"] == [] and report["stop_reason"] == "target-psnr"
    assert report["steps"] < 400
