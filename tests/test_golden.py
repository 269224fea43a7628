"""Golden files, as CompressAI pins its bitstreams: every format version this inrcodec
reads must still decode to exactly what the inrcodec that wrote it decoded.

The files and md5 sums in tests/data/golden/ were made once by `make_golden.py` from the
code of their format version; a failure here means decoding changed, not the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inrcodec import container
from inrcodec.cli import main

GOLDEN = Path(__file__).parent / "data" / "golden"
MANIFEST = json.loads((GOLDEN / "golden.json").read_text())


def _decoded_md5(path: Path) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.decoded_md5(path)


@pytest.mark.parametrize("name", sorted(MANIFEST))
@pytest.mark.parametrize("scale", ["1", "2"])
def test_golden_file_decodes_bit_for_bit(name: str, scale: str, tmp_path: Path) -> None:
    suffix = ".wav" if "audio" in name else ".png"
    out = tmp_path / f"out{suffix}"
    code = main(["decode", str(GOLDEN / name), "-o", str(out), "--scale", scale, "--quiet"])
    assert code == 0
    assert _decoded_md5(out) == MANIFEST[name][f"scale{scale}"]


def test_every_golden_file_is_pinned() -> None:
    assert sorted(p.name for p in GOLDEN.glob("*.inr")) == sorted(MANIFEST)
    versions = {container.parse_metadata(_meta(p))["format"] for p in GOLDEN.glob("*.inr")}
    assert {1, 2, 3, 4, 5, 6} <= versions


def _meta(path: Path) -> str:
    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size])["__metadata__"]["inrcodec"]
