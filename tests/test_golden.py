"""Golden files, as CompressAI pins its bitstreams: every format version this inrcodec
reads must still decode to exactly what the inrcodec that wrote it decoded.

The files and md5 sums in tests/data/golden/ were made once by `make_golden.py` from the
code of their format version; a failure here means decoding changed, not the files.

The parameters decode to the same numbers everywhere, but fp32 products add in an order
that depends on the CPU and its BLAS, so a sample whose value lies within ~1e-5 of a
rounding boundary can come out one level apart on another machine (seen: one of 27,648
values of v4_grid_context at scale 2, 27.49999 here, rounded up where the sums were made).
A decode that differs from its sum is therefore accepted only if giving at most two such
samples their other rounding reproduces the sum exactly.
"""

from __future__ import annotations

import itertools
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
NEAR = 2e-6  # relative distance to a rounding boundary that fp32 sums may cross
MAX_CROSSED = 2  # such samples a decode may round the other way


@pytest.mark.parametrize("name", sorted(MANIFEST))
@pytest.mark.parametrize("scale", ["1", "2"])
def test_golden_file_decodes_bit_for_bit(name: str, scale: str, tmp_path: Path) -> None:
    suffix = ".wav" if "audio" in name else ".png"
    out = tmp_path / f"out{suffix}"
    code = main(["decode", str(GOLDEN / name), "-o", str(out), "--scale", scale, "--quiet"])
    assert code == 0
    expected = MANIFEST[name][f"scale{scale}"]
    if MAKE_GOLDEN.decoded_md5(out) != expected:
        crossed = _rounding_that_reproduces(GOLDEN / name, float(scale), expected, tmp_path)
        assert crossed is not None, "decoding changed"


def _rounding_that_reproduces(path: Path, scale: float, md5: str, folder: Path):
    """The samples (at most MAX_CROSSED, each within NEAR of a rounding boundary) whose
    other rounding makes the decode hash to `md5`, or None if no such choice does."""
    from inrcodec.media import OutputFormat, handler_for_medium
    from inrcodec.render import render

    inr = container.read(path)
    handler = handler_for_medium(inr.medium)
    shape, rate = handler.output_shape(tuple(inr.shape), inr.rate, {"scale": scale})
    raw = render(inr, shape, lambda values: values.astype(np.float64), np.dtype(np.float64))
    out = folder / f"rounded{handler.output_suffix}"

    def written(values: np.ndarray) -> np.ndarray:  # the samples as `decode` writes them
        output = handler.to_output(values, inr.bit_depth).reshape(values.shape)
        handler.write(out, output, OutputFormat(inr.channels, inr.bit_depth, rate), force=True)
        return MAKE_GOLDEN.samples(out).reshape(-1)

    low, mid, high = (written(raw * (1 + f)) for f in (-NEAR, 0.0, NEAR))
    near = np.flatnonzero(low != high)
    for count in range(1, MAX_CROSSED + 1):
        for chosen in itertools.combinations(near.tolist(), count):
            flipped = mid.copy()
            for i in chosen:
                flipped[i] = high[i] if mid[i] == low[i] else low[i]
            if MAKE_GOLDEN.md5(flipped) == md5:
                return chosen
    return None


def test_only_a_sample_at_a_rounding_boundary_may_round_the_other_way(tmp_path: Path) -> None:
    """The sample nearest a boundary, rounded the other way, is recognised as such; the
    same change to the sample farthest from one is a changed decode."""
    from inrcodec.render import render

    path = GOLDEN / "v4_grid_context.inr"
    raw = render(container.read(path), (96, 96), lambda v: v.astype(np.float64), np.float64)
    raw = raw.reshape(-1)
    distance = np.abs(raw - np.floor(raw) - 0.5) / np.maximum(raw, 1.0)
    rounded = np.rint(raw).astype(np.uint8)
    for index, recognised in ((int(np.argmin(distance)), True), (int(np.argmax(distance)), False)):
        changed = rounded.copy()
        changed[index] = (
            np.floor(raw[index]) if changed[index] > raw[index] else np.ceil(raw[index])
        )
        found = _rounding_that_reproduces(path, 2.0, MAKE_GOLDEN.md5(changed), tmp_path)
        assert found == ((index,) if recognised else None)


def test_every_golden_file_is_pinned() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.inr")) == sorted(MANIFEST)
    versions = {container.parse_metadata(_meta(p))["format"] for p in GOLDEN.glob("*.inr")}
    assert set(container.READABLE_VERSIONS) <= versions


def _meta(path: Path) -> str:
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size])["__metadata__"]["inrcodec"]
