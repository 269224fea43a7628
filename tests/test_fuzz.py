"""Fuzzing the container reader: any mutated file is read or refused cleanly.

The suite runs a few hundred cases; `benchmarks/fuzz_container.py` runs 10,000+.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from inrcodec import container
from inrcodec.errors import InrcodecError
from tests.inr_mutations import mutated
from tests.test_container import make_inr

VALID = container.to_bytes(make_inr("fp16", width=8))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(VALID))
def test_mutated_files_are_read_or_refused_cleanly(data: bytes):
    try:
        inr = container.from_bytes(data)
    except InrcodecError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert inr.num_parameters > 0  # survived: it must be a complete, consistent model
    inr.build_model()
