"""Regression tests for the foundations issue: each fails on the code before its fix.

Bugs 4 and 5 (patience, time budget) are in test_fitting.py, 6 (size check before
building) in test_container.py, 7 (tiled decode memory) with the tiled tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inrcodec import container
from inrcodec.cli import main
from inrcodec.codec import encode_file, evaluate_file, prepare
from inrcodec.errors import UsageError
from inrcodec.metrics import snr_db
from inrcodec.options import EncodeOptions, resolve_options


def run_json(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


# Bug 1: batch decode reads every model in the parent to name its output, so one bad
# file stopped the whole batch before anything was decoded.
def test_batch_decode_survives_a_truncated_file(tiny_inr, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_inr, folder / "good.inr")
    (folder / "bad.inr").write_bytes(tiny_inr.read_bytes()[:300])
    out = tmp_path / "out"
    code, doc = run_json(capsys, "decode", str(folder), "-o", str(out), "--quiet")
    assert code == 1
    status = {Path(f["input"]).name: f["status"] for f in doc["files"]}
    assert status == {"good.inr": "ok", "bad.inr": "failed"}
    assert [p.name for p in out.iterdir()] == ["good.decoded.png"]
    bad = next(f for f in doc["files"] if f["status"] == "failed")
    assert "truncated" in bad["error"] or "not a .inr" in bad["error"]


# Bug 2: quantization-aware tuning rounded the fp16-kept tensors (first layer, biases) to
# ints too, optimising against an error the decoder never makes.
def test_qat_raises_the_decoded_psnr_of_the_written_int_file(crop32, tmp_path):
    common = dict(arch="siren", width=24, depth=2, steps=150, lr=3e-3, batch_size=0, device="cpu")
    psnr = {}
    for qat in (0, 60):
        options = EncodeOptions(**common, precision="int4", qat_steps=qat, compile="off")
        path = tmp_path / f"qat{qat}.inr"
        encode_file(crop32, path, options)
        psnr[qat] = evaluate_file(path, crop32, device="cpu")["psnr"]
    assert psnr[60] > psnr[0] + 0.3, psnr


def test_qat_rounds_exactly_what_the_container_stores():
    import torch

    from inrcodec.models import build_model
    from inrcodec.quantize import stored_rounding

    torch.manual_seed(0)
    model = build_model("finer", 2, 3, width=16, depth=2)
    names = [n for n, _ in model.named_parameters()]
    state = {n: p.detach().clone() for n, p in model.named_parameters()}
    for precision in ("fp16", "int8", "int6", "int4"):
        inr = container.InrFile(
            medium="image", arch="finer", hparams={"width": 16, "depth": 2}, out_features=3,
            transform="minmax", scalars={"lo": 0.0, "hi": 255.0}, shape=[4, 4],
            channels="RGB", value_range=(0.0, 255.0), bit_depth=8, precision=precision,
            state=state,
        )  # fmt: skip
        decoded = container.from_bytes(container.to_bytes(inr)).state
        rounding = stored_rounding(names, precision)
        for name in names:
            assert torch.equal(rounding[name](state[name]), decoded[name]), (precision, name)


# Bug 3: audio searches read metrics["psnr"] (KeyError); the training target must be what
# eval reports for audio, the SNR, not a PSNR with peak 2.
@pytest.fixture
def tone_wav(tmp_path: Path) -> Path:
    t = np.arange(1600) / 8000
    path = tmp_path / "tone.wav"
    sf.write(path, (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 8000)
    return path


def test_audio_training_quality_is_the_snr_that_eval_reports(tone_wav):
    import torch

    job = prepare(tone_wav, EncodeOptions(device="cpu"))
    raw = torch.from_numpy(job.signal.values).reshape(-1, 1)
    noisy = raw + 0.01 * torch.randn_like(raw)
    predicted = job.transform.forward(noisy, job.scalars)
    assert job.quality(predicted) == pytest.approx(snr_db(raw.numpy(), noisy.numpy()), abs=0.01)


@pytest.mark.parametrize("target", [["--target-psnr", "15"], ["--target-bpp", "24"]])
def test_audio_searches_use_the_snr(tone_wav, tmp_path, capsys, target):
    args = ["encode", str(tone_wav), "-o", str(tmp_path / "t.inr"), "--steps", "30"]
    args += ["--arch", "siren"]  # a weight-only arch: its target searches sizes
    code, report = run_json(capsys, *args, "--batch-size", "0", "--device", "cpu", *target)
    assert code == 0
    assert report["trials"] and all(t["metric"] == "snr" for t in report["trials"])
    assert "snr" in report["metrics"] and "psnr" not in report["metrics"]


# Bug 8: values that used to be accepted (or fail deep inside) are refused up front.
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--patience", "0"], "--patience must be at least 1"),
        (["--time-budget", "-5"], "--time-budget must be a positive number"),
        (["--time-budget", "0"], "--time-budget must be a positive number"),
    ],
)
def test_bad_stop_rules_are_usage_errors(crop32, tmp_path, capsys, flags, message):
    out = tmp_path / "x.inr"
    assert main(["encode", str(crop32), "-o", str(out), *flags]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and len(stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_preset_for_another_medium_is_refused(tone_wav, tmp_path, capsys):
    out = tmp_path / "t.inr"
    assert main(["encode", str(tone_wav), "-o", str(out), "--preset", "balanced"]) == 2
    stderr = capsys.readouterr().err
    assert "made for image, not audio" in stderr and len(stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_preset_for_another_arch_is_refused_not_carried_over():
    with pytest.raises(UsageError, match="recipe for --arch spder, not siren"):
        resolve_options("spder-reference", "image", {"arch": "siren"})
    kept = resolve_options("spder-reference", "image", {"steps": 5})
    assert (
        kept.arch == "spder"
        and kept.arch_options == resolve_options("spder-reference", "image").arch_options
    )


def test_arch_option_key_value_reaches_the_file(gradient_image, tmp_path, capsys):
    out = tmp_path / "g.inr"
    flags = [
        "--arch",
        "finer",
        "--lambda",
        "1e-5",
        "-O",
        "first_bias_scale=2.5",
        "-O",
        "hidden-omega=20",
    ]
    code, report = run_json(
        capsys, "encode", str(gradient_image), "-o", str(out), "--steps", "3", *flags
    )
    assert code == 0 and report["arch"] == "finer"
    hp = container.read(out).hparams
    assert hp["first_bias_scale"] == 2.5 and hp["hidden_omega"] == 20


def test_a_target_frees_the_size_unless_a_flag_fixes_it():
    assert resolve_options(None, "image", {"target_psnr": 30}).size_search
    assert not resolve_options(None, "image", {"target_psnr": 30, "width": 32}).size_search
    assert not resolve_options(None, "image", {"steps": 10}).size_search
