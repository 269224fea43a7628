"""Mutations of valid `.inr` files, shared by tests/test_fuzz.py and benchmarks/fuzz_container.py.

Two kinds, both hypothesis strategies (so failures shrink to a small example):
- `mutated`: byte level: flip bytes, truncate, splice the safetensors header, set a
  metadata field to an arbitrary JSON value; or a `field_mutated` edit, then byte flips.
- `field_mutated`: structure aware: set one to three metadata fields, or hyper-parameters
  one key at a time, to edge values (huge, zero, negative, wrong type, mismatched with the
  rest of the header) and leave every other byte valid, so that the checks past the JSON
  parse are reached: the parameter count, the limits, the payload size, the skeleton.

The property: reading any mutated file either succeeds or raises `InrcodecError`, never
another exception.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import torch
from hypothesis import strategies as st

from inrcodec import container
from inrcodec.models import available, build_model, hyper_parameters
from inrcodec.transforms import available as transforms
from tests.test_container import make_inr

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

# Edge values, drawn from fixed lists: random integers would almost never hit the limits.
# Sizes are mostly valid-looking, so that the count, limit and payload checks are reached.
EDGE_INTS = st.sampled_from(
    [0, 1, -1, 2, 3, 8, 255, 256, 4096, 1 << 15, 1 << 16, (1 << 16) + 1, 1 << 31, 1 << 63, 10**30]
)
PLAUSIBLE_SIZES = st.sampled_from([1, 2, 3, 7, 8, 64, 256, 1000, 4096, 1 << 14, 1 << 15, 1 << 16])
WRONG_TYPES = st.sampled_from(
    [None, True, False, "3", "", 2.5, -0.0, 1e308, float("nan"), float("inf"), [], [2, 3], {}]
)
EDGE_FLOATS = st.sampled_from([0.0, -1.0, 1e-300, 0.5, 30.0, 44100.0, 1e30]) | st.floats()
_SIZE_VALUES = PLAUSIBLE_SIZES | PLAUSIBLE_SIZES | EDGE_INTS | WRONG_TYPES
_REALS = EDGE_FLOATS | EDGE_INTS | WRONG_TYPES
_TILES = st.lists(st.sampled_from([1, 2, 3, 64, 4096, 0, -1]), max_size=4)
HP_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "width": _SIZE_VALUES,
    "depth": _SIZE_VALUES,
    "degree": _SIZE_VALUES,
    "rank": _SIZE_VALUES,
    "tiles": _TILES | _TILES | WRONG_TYPES,
    "first_omega": _REALS,
    "hidden_omega": _REALS,
    "scale": _REALS,
    "omega_w": _REALS,
    "first_bias_scale": _REALS,
    "damping": st.sampled_from(["sqrt", "arctan", "relu"]) | WRONG_TYPES,
    # Not options of any arch; "name" and "in_features" collide with the builders' arguments.
    "name": _SIZE_VALUES,
    "in_features": _SIZE_VALUES,
}
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "format": st.sampled_from([0, 1, 2, 3, -1, 1 << 64]) | WRONG_TYPES,
    "medium": st.sampled_from(["image", "audio", "video", "text"]) | WRONG_TYPES,
    "arch": st.sampled_from([*available(), "nope", "SIREN"]) | WRONG_TYPES,
    "out": EDGE_INTS | WRONG_TYPES,
    "precision": st.sampled_from([*container.PRECISIONS, "int3", "bf16"]) | WRONG_TYPES,
    "pack": st.sampled_from([*container.PACKINGS, "brotli"]) | WRONG_TYPES,
    "q": st.text(alphabet="tch", max_size=40) | st.text(max_size=4) | WRONG_TYPES,
    "transform": st.sampled_from([*transforms(), "rot13"]) | WRONG_TYPES,
    "scalars": st.dictionaries(st.sampled_from(["lo", "hi", "mean", "std", "x"]), _REALS)
    | WRONG_TYPES,
    "shape": st.lists(EDGE_INTS, max_size=4) | WRONG_TYPES,
    "channels": st.sampled_from(["RGB", "L", "RGBA", "", "x" * 17]) | WRONG_TYPES,
    "range": st.lists(_REALS, max_size=3) | WRONG_TYPES,
    "bits": EDGE_INTS | WRONG_TYPES,
    "rate": _REALS,
    "coords": st.just(container.COORDINATES) | WRONG_TYPES,
    "encoder": st.dictionaries(st.text(max_size=4), EDGE_INTS, max_size=2) | WRONG_TYPES,
}


def sample_files() -> dict[str, bytes]:
    """Small valid files of every arch, complex and tiled nets, audio, and every storage
    path (float and int precisions; raw, zlib and LZMA packing), as fuzzing seeds."""
    files = {
        f"siren-{precision}-{packing}": container.to_bytes(
            make_inr(precision, width=8), packings=(packing,)
        )
        for precision in container.PRECISIONS
        for packing in container.PACKINGS
        if precision != container.CODED or packing == "raw"  # auto has its own coding
    }
    extra = {"sl2a": {"degree": 4, "rank": 2}, "grid": {"shape": [8, 9], "levels": 3}}
    for arch in available():
        hp = {"width": 6, "depth": 1, **extra.get(arch, {})}
        files[f"{arch}-6x1-int6-lzma"] = _sample(arch, hp, "int6", "lzma")
        files[f"{arch}-6x1-auto"] = _sample(arch, hp, container.CODED, "raw")
        if arch == "grid":  # and its context-coded latents
            files["grid-context-auto"] = _sample(
                arch, {**hp, "context": 4}, container.CODED, "raw", latents=True
            )
        if arch not in ("sl2a", "grid"):  # their parameters are not all in Linear layers
            files[f"{arch}-tiled-6x1-int4-raw"] = _sample(
                arch, {**hp, "tiles": [2, 3]}, "int4", "raw"
            )
    files["spder-audio-fp16-zlib"] = _sample(
        "spder", {"width": 6, "depth": 1}, "fp16", "zlib", medium="audio", shape=[72], rate=8e3
    )
    return files


def _sample(arch: str, hp: dict[str, Any], precision: str, packing: str, **fields: Any) -> bytes:
    medium = fields.get("medium", "image")
    full = hyper_parameters(arch, hp, medium)
    torch.manual_seed(0)
    model = build_model(arch, 1 if medium == "audio" else 2, 3, **full)
    state = {k: v.detach().clone() for k, v in model.named_parameters()}
    if fields.pop("latents", False):  # small integers, as a trained grid stores
        for name in state:
            if name.startswith("latents."):
                state[name] = torch.randint(-3, 4, state[name].shape).float()
    if precision == container.CODED and arch == "grid":  # latents at step 1
        fields["exponents"] = [0 if n.startswith("latents.") else -9 for n in state]
    inr = make_inr(precision, arch=arch, hparams=full, state=state, **fields)
    return container.to_bytes(inr, packings=(packing,))


def _flip(data: bytes, position: int, value: int) -> bytes:
    if not data:
        return data
    i = position % len(data)
    return data[:i] + bytes([value]) + data[i + 1 :]


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def _join(header: dict[str, Any], payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def _set_meta(data: bytes, key: str, value: Any) -> bytes:
    header, payload = _split(data)
    meta = container.parse_metadata(header["__metadata__"]["inrcodec"])
    meta[key] = value
    header["__metadata__"]["inrcodec"] = container.pack_metadata(
        json.dumps(meta), meta.get("format")
    )
    return _join(header, payload)


def _set_header_field(data: bytes, tensor: str, field: str, value: Any) -> bytes:
    header, payload = _split(data)
    header.setdefault(tensor, {})[field] = value
    return _join(header, payload)


@st.composite
def _edited_hp(draw: st.DrawFn, hp: dict[str, Any]) -> dict[str, Any]:
    """`hp` with one to three keys set to an edge value or removed (back to the default);
    mostly the arch's own options, sometimes others (refused as unknown)."""
    hp = dict(hp)
    keys = st.sampled_from(sorted(HP_VALUES))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(hp)) | keys if hp else keys)
        if key in hp and draw(st.integers(0, 5)) == 0:
            del hp[key]
        else:
            hp[key] = draw(HP_VALUES.get(key, _SIZE_VALUES))
    return hp


@st.composite
def field_mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid file with one to three metadata fields set to an edge value or removed;
    `hp` (drawn as often as all other fields together) is edited key by key."""
    header, payload = _split(valid)
    meta = container.parse_metadata(header["__metadata__"]["inrcodec"])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(FIELD_VALUES)) | st.just("hp"))
        if key == "hp":
            hp = meta.get("hp")
            meta["hp"] = draw(_edited_hp(hp if isinstance(hp, dict) else {}))
        elif draw(st.integers(0, 9)) == 0:
            meta.pop(key, None)
        else:
            meta[key] = draw(FIELD_VALUES[key])
    header["__metadata__"]["inrcodec"] = container.pack_metadata(
        json.dumps(meta), meta.get("format")
    )
    return _join(header, payload)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """One valid file with a structured edit, then a few random byte-level edits."""
    data = valid
    kind = draw(st.sampled_from(["meta", "hp", "fields", "header", "length", "none"]))
    if kind == "hp":
        names = st.sampled_from(["width", "depth", "first_omega", "hidden_omega", "degree"])
        data = _set_meta(data, "hp", draw(st.dictionaries(names, METADATA_VALUES, max_size=4)))
    elif kind == "meta":
        data = _set_meta(data, draw(METADATA_KEYS), draw(METADATA_VALUES))
    elif kind == "fields":
        data = draw(field_mutated(data))
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
