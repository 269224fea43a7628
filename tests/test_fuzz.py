"""Fuzzing the container reader: any mutated file is read or refused cleanly.

The suite runs a few hundred cases; `benchmarks/fuzz_container.py` runs 10,000+.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings

from inrcodec import container
from inrcodec.errors import InrcodecError
from tests.inr_mutations import field_mutated, mutated, sample_files

SAMPLES = sample_files()
# Byte-level mutations on one file per storage path: floats, bit-packed int codes, zlib and
# LZMA streams, complex and tiled nets.
BYTE_SEEDS = [
    "siren-fp16-raw",
    "siren-int6-raw",
    "siren-int4-zlib",
    "siren-int8-lzma",
    "finer-wavelet-tiled-6x1-int4-raw",
]


@pytest.mark.parametrize("name", BYTE_SEEDS)
def test_mutated_files_are_read_or_refused_cleanly(name: str):
    settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))(
        given(mutated(SAMPLES[name]))(_read_or_refuse)
    )()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_files_with_edited_metadata_fields_are_read_or_refused_cleanly(name: str):
    settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))(
        given(field_mutated(SAMPLES[name]))(_read_or_refuse)
    )()


def _read_or_refuse(data: bytes) -> None:
    try:
        inr = container.from_bytes(data)
    except InrcodecError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert inr.num_parameters > 0  # survived: it must be a complete, consistent model
    out = inr.build_model()(torch.zeros(4, inr.in_features))  # and one that runs
    assert out.shape == (4, inr.out_features)
