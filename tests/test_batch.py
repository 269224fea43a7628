"""Folders and scripts: batch encode/decode/eval, failures isolated, resumable, Ctrl-C safe."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from inrcodec.cli import main
from tests.conftest import DEMO_IMAGE

TINY = ["--steps", "3", "--width", "8", "--depth", "1", "--device", "cpu"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Three good images (one in a subfolder) and two corrupt ones."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    image = Image.open(DEMO_IMAGE).convert("RGB")
    for i, name in enumerate(["a.png", "b.jpg", "sub/c.png"]):
        image.crop((i * 8, 0, i * 8 + 12, 12)).save(root / name)
    (root / "broken.png").write_bytes(b"not an image")
    (root / "cut.png").write_bytes((root / "a.png").read_bytes()[:60])
    return root


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_one_failure_does_not_stop_the_others(folder, tmp_path, capsys):
    code, doc = run_json(
        capsys, "encode", str(folder), "-o", str(tmp_path / "out"), *TINY, "--json"
    )
    assert code == 1
    status = {Path(f["input"]).name: f["status"] for f in doc["files"]}
    assert status == {"a.png": "ok", "b.jpg": "ok", "broken.png": "failed", "cut.png": "failed"}
    assert doc["summary"] == {"ok": 2, "failed": 2, "skipped": 0, "interrupted": 0}
    failed = [f for f in doc["files"] if f["status"] == "failed"]
    assert all(Path(f["input"]).name in f["error"] for f in failed)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.inr", "b.inr"]


def test_recursive_parallel_and_resume(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, doc = run_json(
        capsys, "encode", str(folder), "-r", "-o", str(out), "--jobs", "2", *TINY, "--json"
    )
    assert code == 1 and doc["summary"]["ok"] == 3
    assert (out / "sub" / "c.inr").is_file()
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.inr")}
    code, doc = run_json(
        capsys, "encode", str(folder), "-r", "-o", str(out), "--skip-existing", *TINY, "--json"
    )
    assert doc["summary"]["skipped"] == 3 and doc["summary"]["ok"] == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*.inr")}


def test_eval_over_a_folder_gives_aggregate_and_per_file_results(folder, tmp_path, capsys):
    out = tmp_path / "out"
    main(["encode", str(folder), "-r", "-o", str(out), *TINY, "--quiet"])
    capsys.readouterr()
    code, doc = run_json(capsys, "eval", str(out), str(folder), "-r", "--device", "cpu", "--json")
    assert code == 0
    assert set(doc) == {"name", "description", "results", "files"}
    per_file = [f["metrics"]["psnr"] for f in doc["files"]]
    assert len(per_file) == 3
    assert doc["results"]["psnr"][0] == pytest.approx(sum(per_file) / 3)


def test_decode_a_folder(folder, tmp_path, capsys):
    out = tmp_path / "out"
    main(["encode", str(folder), "-o", str(out), *TINY, "--quiet"])
    code = main(["decode", str(out), "-o", str(tmp_path / "dec"), "--scale", "2", "--quiet"])
    assert code == 0
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "dec").iterdir()}
    assert sizes == {"a.decoded.png": (24, 24), "b.decoded.png": (24, 24)}


def _encode_in_background(tmp_path: Path) -> subprocess.Popen:
    """A full-batch encode of a million steps, so that Ctrl-C lands mid-run,
    returned once training has begun: its first progress line is on stderr."""
    src = tmp_path / "in.png"
    Image.open(DEMO_IMAGE).resize((160, 160)).save(src)
    code = "import sys; from inrcodec.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [
        sys.executable,
        "-c",
        code,
        "encode",
        str(src),
        "-o",
        str(tmp_path / "out.inr"),
        "--steps",
        "1000000",
        "--batch-size",
        "0",
        "--device",
        "cpu",
        "--compile",
        "off",
    ]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    assert first.startswith("encode: step 0 "), first
    return proc


def test_ctrl_c_writes_the_best_model_so_far_marked_partial(tmp_path, capsys):
    proc = _encode_in_background(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    _code, facts = run_json(capsys, "info", str(tmp_path / "out.inr"), "--json")
    assert facts["partial"] is True and facts["encoder"]["stop"] == "interrupted"


def test_second_ctrl_c_aborts_without_output(tmp_path):
    proc = _encode_in_background(tmp_path)
    proc.send_signal(signal.SIGINT)
    # Signals that arrive during one long tensor op coalesce, as for a person pressing
    # twice within milliseconds; a second press is one made after the first took effect.
    assert "stopping" in proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert "aborted" in stderr
    assert [p.name for p in tmp_path.iterdir()] == ["in.png"]
