"""Fuzzing the container reader: any mutated file is read or refused cleanly.

The suite runs a few hundred cases; `benchmarks/fuzz_container.py` runs 10,000+.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from inrcodec import container
from inrcodec.errors import InrcodecError
from tests.inr_mutations import mutated
from tests.test_container import make_inr

# One valid file per storage path: floats packed as the encoder picks, bit-packed int codes,
# and zlib/LZMA streams of codes.
VALID = {
    "fp16": container.to_bytes(make_inr("fp16", width=8)),
    "int6-raw": container.to_bytes(make_inr("int6", width=8), packings=("raw",)),
    "int4-zlib": container.to_bytes(make_inr("int4", width=8), packings=("zlib",)),
    "int8-lzma": container.to_bytes(make_inr("int8", width=8), packings=("lzma",)),
}


@pytest.mark.parametrize("kind", list(VALID))
def test_mutated_files_are_read_or_refused_cleanly(kind: str):
    settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))(
        given(mutated(VALID[kind]))(_read_or_refuse)
    )()


def _read_or_refuse(data: bytes) -> None:
    try:
        inr = container.from_bytes(data)
    except InrcodecError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert inr.num_parameters > 0  # survived: it must be a complete, consistent model
    inr.build_model()
