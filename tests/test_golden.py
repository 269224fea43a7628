"""Golden files, as CompressAI pins its bitstreams: every format version this inrcodec
reads must still decode to what it decoded to when it was recorded, on any x86-64 CPU.

What is promised (docs/design.md, "Decoding across machines"):
- the decoded parameters, the entropy-decoded integers included, are identical everywhere:
  their sha256 must match exactly;
- the reconstruction is computed in float64, so a CPU whose BLAS adds in another order
  (AVX2 against AVX-512) moves a sample by ~1e-13 of its value: the decoded samples match
  the recorded ones exactly, or differ by at most one level in at most one sample in
  10,000 (one sample in a file of fewer).

The files in tests/data/golden/ were made once by `make_golden.py` from the code of their
format version; the recorded decodes in decoded/ were made by its `record`. A failure here
means decoding changed, not the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inrcodec import container
from inrcodec.cli import main

GOLDEN = Path(__file__).parent / "data" / "golden"
MANIFEST = json.loads((GOLDEN / "golden.json").read_text())


def _make_golden():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE_GOLDEN = _make_golden()
SAMPLES_PER_DIFFERENCE = 10_000  # at most one sample in this many may be one level off


def decode_differences(decoded: np.ndarray, recorded: np.ndarray) -> str | None:
    """Why `decoded` breaks the cross-machine promise against `recorded`, or None."""
    if decoded.shape != recorded.shape:
        return f"shape {decoded.shape} against {recorded.shape}"
    gap = np.abs(decoded.astype(np.int64) - recorded.astype(np.int64))
    if gap.max(initial=0) > 1:
        return f"a sample {int(gap.max())} levels off"
    allowed = max(1, decoded.size // SAMPLES_PER_DIFFERENCE)
    off = int(np.count_nonzero(gap))
    return None if off <= allowed else f"{off} samples one level off, at most {allowed} may be"


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_golden_parameters_decode_exactly(name: str) -> None:
    assert MAKE_GOLDEN.parameters_sha256(GOLDEN / name) == MANIFEST[name]["parameters"]


@pytest.mark.parametrize("name", sorted(MANIFEST))
@pytest.mark.parametrize("scale", MAKE_GOLDEN.SCALES)
def test_golden_file_decodes_as_recorded(name: str, scale: str, tmp_path: Path) -> None:
    recorded = MAKE_GOLDEN.reference_path(GOLDEN, name, scale)
    out = tmp_path / f"out{recorded.suffix}"
    code = main(["decode", str(GOLDEN / name), "-o", str(out), "--scale", scale, "--quiet"])
    assert code == 0
    problem = decode_differences(MAKE_GOLDEN.samples(out), MAKE_GOLDEN.samples(recorded))
    assert problem is None, f"decoding changed: {problem}"


def test_the_promise_refuses_what_it_does_not_allow() -> None:
    recorded = np.full(20_000, 100, dtype=np.uint8)
    one_off = recorded.copy()
    one_off[:2] += 1  # two in 20,000: allowed
    assert decode_differences(one_off, recorded) is None
    one_off[2] -= 1  # three: one too many
    assert "3 samples" in decode_differences(one_off, recorded)
    two_off = recorded.copy()
    two_off[0] += 2
    assert "2 levels" in decode_differences(two_off, recorded)
    assert decode_differences(recorded[:10], recorded) is not None


def test_every_golden_file_is_pinned() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.inr")) == sorted(MANIFEST)
    versions = {container.parse_metadata(_meta(p))["format"] for p in GOLDEN.glob("*.inr")}
    assert set(container.READABLE_VERSIONS) <= versions
    for name in MANIFEST:
        for scale in MAKE_GOLDEN.SCALES:
            assert MAKE_GOLDEN.reference_path(GOLDEN, name, scale).exists()


def _meta(path: Path) -> str:
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size])["__metadata__"]["inrcodec"]
