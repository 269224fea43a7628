"""Long signals as segments of latent grids along time (models/segments.py): where the
segments lie, no step at their borders, exact storage, and decodes of a window that read
only the segments under it."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from inrcodec import container
from inrcodec.codec import decode_file, encode_file
from inrcodec.coords import grid_coords
from inrcodec.models import build_model
from inrcodec.models.segments import SegmentedGrid, spans, window_filter
from inrcodec.options import resolve_options
from tests.test_audio_grid import GRID as AUDIO_GRID

RATE = 8000
SEGMENT, OVERLAP = 4000, 256  # 0.5 s segments at 8 kHz
GRID = replace(AUDIO_GRID, arch_options={"segment": SEGMENT, "overlap": OVERLAP})


def sweep(seconds: float) -> np.ndarray:
    """A sine sweep from 100 Hz to 1.5 kHz, (T, 1) float32."""
    t = np.arange(round(seconds * RATE)) / RATE
    phase = 2 * np.pi * (100 * t + 1400 * t**2 / (2 * seconds))
    return (0.6 * np.sin(phase))[:, None].astype(np.float32)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """1.5 s of sweep in three segments, encoded, and the encode's report."""
    folder = tmp_path_factory.mktemp("segments")
    src = folder / "sweep.wav"
    sf.write(src, sweep(1.5), RATE, subtype="PCM_16")
    inr = folder / "sweep.inr"
    return src, inr, encode_file(src, inr, GRID).to_dict()


def test_spans_cover_the_signal_with_overlaps() -> None:
    cuts = spans(10_001, 3000, 64)
    assert len(cuts) == 4 and cuts[0][0] == 0 and cuts[-1][1] == 10_000
    for (_, last), (first, _) in itertools.pairwise(cuts):
        assert last - first + 1 == 64  # each border is shared by `overlap` samples
    with pytest.raises(ValueError, match="overlap"):
        spans(10_000, 3000, 3)
    with pytest.raises(ValueError, match="exceed"):
        spans(10**8, 2048, 2)


def test_a_long_signal_builds_segments_and_a_short_one_one_grid() -> None:
    long = build_model("grid", 1, 1, shape=[9000], segment=SEGMENT, overlap=OVERLAP)
    short = build_model("grid", 1, 1, shape=[3000], segment=SEGMENT, overlap=OVERLAP)
    assert isinstance(long, SegmentedGrid) and len(long.parts) == 3
    assert not isinstance(short, SegmentedGrid)
    assert [count for _, _, count in long.segments()] == [b - a + 1 for a, b in long.spans]


def test_segments_meet_without_a_step() -> None:
    """Parts with unrelated random latents: each alone differs from the other at the
    border, the crossfade between them is continuous (a hard switch would step by it)."""
    torch.manual_seed(0)
    model = build_model("grid", 1, 1, shape=[9000], segment=SEGMENT, overlap=OVERLAP).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".latents." in name and int(name.rsplit(".", 1)[1]) < 4:  # one per 8+ samples
                p.copy_(torch.randn_like(p) * 3)
        out = model(grid_coords((90_001,), dtype=torch.float64))[:, 0]  # ten points a sample
        middle = (model.spans[1][0] + model.spans[0][1]) / 2  # of the first overlap
        alone = []
        for part, (a, b) in zip(model.parts, model.spans[:2], strict=False):
            local = torch.tensor([[(middle - a) * 2 / (b - a) - 1]], dtype=torch.float64)
            alone.append(part(local).item())
    steps = out.diff().abs()
    assert abs(alone[0] - alone[1]) > 20 * steps.max().item()


def test_the_source_rate_reads_each_segment_where_it_was_trained() -> None:
    torch.manual_seed(1)
    model = build_model("grid", 1, 1, shape=[9000], segment=SEGMENT, overlap=OVERLAP).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
        out = model(grid_coords((9000,), dtype=torch.float64))
        part, first, count = model.segments()[1]
        own = part(grid_coords((count,), dtype=torch.float64))
    inner = slice(OVERLAP, count - OVERLAP)  # away from the crossfades
    assert torch.allclose(out[first:][inner], own[inner], atol=1e-9)


def test_segmented_encode_round_trips(encoded: tuple[Path, Path, dict], tmp_path: Path) -> None:
    src, inr, report = encoded
    stored = container.read(inr)
    assert stored.hparams["segment"] == SEGMENT
    assert len({n.split(".")[1] for n in stored.state if n.startswith("parts.")}) == 3
    assert report["steps"] == 3 * GRID.steps
    whole = encode_file(src, tmp_path / "whole.inr", replace(GRID, arch_options={})).to_dict()
    # As good as one grid given the same steps per sample (each segment its own 150).
    assert report["metrics"]["snr"] > whole["metrics"]["snr"] - 0.5 > 10
    out = decode_file(inr, tmp_path / "out.wav", {})
    assert out.shape == [12000]


def test_a_sweep_across_borders_has_no_step(encoded: tuple[Path, Path, dict], tmp_path: Path):
    """The decoded error changes no faster at the borders than anywhere else."""
    src, inr, _ = encoded
    decode_file(inr, tmp_path / "out.wav", {})
    error = sf.read(tmp_path / "out.wav")[0] - sf.read(src)[0]
    change = np.abs(np.diff(error))
    borders = [first + OVERLAP // 2 for first, _ in spans(12000, SEGMENT, OVERLAP)[1:]]
    near = np.zeros(len(change), bool)
    for b in borders:
        near[b - OVERLAP : b + OVERLAP] = True
    assert change[near].max() <= 1.5 * change[~near].max()


def test_a_window_decodes_only_its_segments(encoded: tuple[Path, Path, dict], tmp_path: Path):
    _, inr, _ = encoded
    full = decode_file(inr, tmp_path / "full.wav", {})
    part = decode_file(inr, tmp_path / "part.wav", {"start": 0.2, "duration": 0.1})
    whole, window = sf.read(tmp_path / "full.wav")[0], sf.read(tmp_path / "part.wav")[0]
    assert full.shape == [12000] and part.shape == [800]
    assert np.abs(window - whole[1600:2400]).max() <= 1 / 32768  # one level at most
    keep = window_filter(container.read(inr).hparams, 1600, 2399)
    read = container.read(inr, lambda _: keep)
    assert keep("parts.0.latents.3") and not keep("parts.1.latents.3")
    assert not read.state["parts.2.latents.6"].any()  # never entropy-decoded
    assert read.state["parts.0.latents.6"].any()


def test_target_kbps_holds_over_segments(tmp_path: Path) -> None:
    src = tmp_path / "sweep.wav"
    sf.write(src, sweep(1.5), RATE, subtype="PCM_16")
    report = encode_file(src, tmp_path / "a.inr", replace(GRID, target_kbps=48.0)).to_dict()
    assert report["file_bytes"] * 8 / 1.5 <= 48000
    assert report["metrics"]["snr"] > 5


def test_the_audio_recipe_segments_long_files() -> None:
    options = resolve_options(None, "audio")
    assert options.segment_seconds
    hparams = options.hyper_parameters("audio", (16000 * 600,), 16000.0)
    assert hparams["segment"] == round(options.segment_seconds * 16000)
