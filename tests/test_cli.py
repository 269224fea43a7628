"""The command line, end to end: typer's runner for the happy path, `main` for errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inrcodec.cli import app, main

runner = CliRunner()


def run_ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_encode_decode_eval_info(crop32, tmp_path):
    inr = tmp_path / "crop.inr"
    report = json.loads(
        run_ok(
            "encode",
            str(crop32),
            "-o",
            str(inr),
            "--arch",
            "siren",
            "--transform",
            "sym",
            "--steps",
            "150",
            "--width",
            "64",
            "--lr",
            "1e-3",
            "--device",
            "cpu",
            "--json",
        )
    )
    assert report["metrics"]["psnr"] > 28
    assert report["steps"] == 150 and report["device"] == "cpu"
    assert report["file_bytes"] == inr.stat().st_size
    assert report["metrics"]["bpp"] == pytest.approx(inr.stat().st_size * 8 / 32**2)

    decoded = tmp_path / "x2.png"
    run_ok("decode", str(inr), "-o", str(decoded), "--scale", "2", "--device", "cpu")
    from PIL import Image

    assert Image.open(decoded).size == (64, 64)

    doc = json.loads(run_ok("eval", str(inr), str(crop32), "--device", "cpu", "--json"))
    assert set(doc) == {"name", "description", "results"}
    assert doc["results"]["psnr"][0] == pytest.approx(report["metrics"]["psnr"], abs=1e-6)
    assert doc["results"]["ssim"][0] > 0.9

    facts = json.loads(run_ok("info", str(inr), "--json"))
    assert facts["arch"] == "siren" and facts["transform"] == "sym"
    assert set(facts["scalars"]) == {"beta", "lo", "hi"}
    assert facts["shape"] == [32, 32] and facts["precision"] == "auto"
    assert facts["encoder"]["steps"] == 150


def test_human_summary_is_one_line(crop32, tmp_path):
    out = run_ok(
        "encode",
        str(crop32),
        "-o",
        str(tmp_path / "a.inr"),
        "--steps",
        "3",
        "--width",
        "8",
        "--device",
        "cpu",
    )
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1
    assert all(word in lines[0] for word in ("PSNR", "SSIM", "bpp", " B ", " s "))


def test_preset_and_flags_override_it(crop32, tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("description: test\nencode:\n  steps: 4\n  width: 8\n  depth: 1\n")
    report = json.loads(
        run_ok(
            "encode",
            str(crop32),
            "-o",
            str(tmp_path / "p.inr"),
            "--preset",
            str(preset),
            "--steps",
            "2",
            "--device",
            "cpu",
            "--json",
        )
    )
    assert report["steps"] == 2 and report["parameters"] == 2 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3


def test_presets_and_archs_are_listed():
    names = [p["name"] for p in json.loads(run_ok("presets", "--json"))]
    assert "demo" in names and "siren-reference" in names
    assert "siren" in run_ok("archs")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["encode", "missing.png"], 1, "missing.png: no such file"),
        (["encode", "{crop}", "--transform", "nope"], 2, "unknown transform"),
        (["encode", "{crop}", "--arch", "nope"], 2, "unknown arch"),
        (["encode", "{crop}", "--preset", "nope"], 2, "unknown preset"),
        (["encode", "{crop}", "--precision", "fp8"], 2, "precision"),
        (["encode", "{crop}", "--bogus"], 2, "--bogus"),
        (["decode", "{crop}"], 1, "not a .inr file"),
        (["info", "{tmp}"], 1, "is a directory"),
        (["encode", "{crop}", "-o", "{tmp}/no/such/dir/x.inr"], 1, "does not exist"),
    ],
)
def test_errors_are_one_line_with_a_meaningful_exit_code(
    crop32, tmp_path, capsys, args, code, message
):
    argv = [a.format(crop=crop32, tmp=tmp_path) for a in args]
    assert main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_existing_output_is_not_overwritten_without_force(crop32, tmp_path, capsys):
    target = tmp_path / "keep.inr"
    target.write_bytes(b"precious")
    assert main(["encode", str(crop32), "-o", str(target), "--steps", "1", "--width", "8"]) == 1
    assert "--force" in capsys.readouterr().err
    assert target.read_bytes() == b"precious"


def test_help_does_not_import_torch():
    code = (
        "import sys; from inrcodec.cli import main; main(['--help']); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")


def test_eval_prints_a_table_of_its_metrics(tiny_inr, capsys):
    reference = tiny_inr.with_name("crop32.png")
    assert main(["eval", str(tiny_inr), str(reference), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    for metric in ("psnr", "ssim", "bpp"):
        assert metric in printed


def test_progress_states_the_time_budget_from_the_start(tmp_path, capsys) -> None:
    """A time-budgeted encode's first progress line already says how long it will train."""
    src = Path(__file__).parent / "data" / "div2k00_crop48.png"
    flags = ["--arch", "grid", "--time-budget", "3", "--compile", "off", "--device", "cpu"]
    assert main(["encode", str(src), "-o", str(tmp_path / "a.inr"), *flags]) == 0
    first = next(line for line in capsys.readouterr().err.splitlines() if "encode:" in line)
    assert re.search(r"^encode: step 0 .* 0/3 s$", first), first
