"""Mutations of valid `.inr` files, shared by tests/test_fuzz.py and benchmarks/fuzz_container.py.

A mutation is a list of edits (flip bytes, truncate, splice the header, change a metadata
field); hypothesis generates and shrinks them. The property: reading any mutated file
either succeeds or raises `InrcodecError` — never another exception.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import strategies as st

METADATA_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-5, max_value=10**10), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(-3, 300), max_size=3),
)
METADATA_KEYS = st.sampled_from(
    [
        "format",
        "medium",
        "arch",
        "hp",
        "out",
        "precision",
        "pack",
        "q",
        "transform",
        "scalars",
        "shape",
        "channels",
        "range",
        "bits",
        "rate",
        "coords",
        "encoder",
        "extra",
    ]
)


def _flip(data: bytes, position: int, value: int) -> bytes:
    if not data:
        return data
    i = position % len(data)
    return data[:i] + bytes([value]) + data[i + 1 :]


def _set_meta(data: bytes, key: str, value: Any) -> bytes:
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["inrcodec"])
    meta[key] = value
    header["__metadata__"]["inrcodec"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + size :]


def _set_header_field(data: bytes, tensor: str, field: str, value: Any) -> bytes:
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    header.setdefault(tensor, {})[field] = value
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + size :]


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """One valid file with a structured edit, then a few random byte-level edits."""
    data = valid
    kind = draw(st.sampled_from(["meta", "hp", "header", "length", "none"]))
    if kind == "hp":
        names = st.sampled_from(["width", "depth", "first_omega", "hidden_omega", "degree"])
        data = _set_meta(data, "hp", draw(st.dictionaries(names, METADATA_VALUES, max_size=4)))
    elif kind == "meta":
        data = _set_meta(data, draw(METADATA_KEYS), draw(METADATA_VALUES))
    elif kind == "header":
        data = _set_header_field(
            data,
            draw(st.sampled_from(["w", "s"])),
            draw(st.sampled_from(["dtype", "shape", "data_offsets"])),
            draw(st.one_of(st.text(max_size=4), st.lists(st.integers(-2, 2**40), max_size=3))),
        )
    elif kind == "length":
        data = struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + data[8:]
    for _ in range(draw(st.integers(0, 3))):
        data = _flip(data, draw(st.integers(0, 2**32)), draw(st.integers(0, 255)))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return data
