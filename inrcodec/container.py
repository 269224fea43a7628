"""The `.inr` file: a safetensors container holding everything needed to decode.

Layout (format version 2; version 1 files, which are version 2's fp16/fp32 raw case,
still read):
- one tensor ``w``: every parameter of the network, flattened in `named_parameters()`
  order and concatenated (complex parameters as interleaved real/imag pairs). One tensor
  keeps the safetensors header to a few hundred bytes, which matters at low bitrates; the
  layout is implied by the arch and its hyper-parameters, which are stored.
  - fp16/fp32: the floats themselves (dtype F16/F32), or, when it is smaller, a zlib or
    LZMA stream of their bytes (dtype U8);
  - int8/int6/int4: the integer codes bit-packed (U8), or a zlib/LZMA stream of the codes
    at one byte each, whichever is smallest (see quantize.py).
- ``s`` (int precisions only): the fp32 scales, one per tensor or per output channel.
- ``__metadata__["inrcodec"]``: compact JSON with the format version, medium, arch and
  hyper-parameters, precision, packing and scale layout, the value transform and its
  scalars, the signal's grid shape, channel layout, value range, bit depth and rate, the
  coordinate convention, and encoder facts.

Reading validates the whole header against the schema below before anything is
allocated or built, then loads the tensors with safetensors (no pickle anywhere).
Parameters are always dequantized to fp32, so every device decodes the same numbers.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inrcodec.atomic import atomic_output
from inrcodec.errors import InrcodecError
from inrcodec.quantize import (
    INT_BITS,
    PACKINGS,
    as_stored,
    from_stored,
    load_quantized,
    stored_shape,
)

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
COORDINATES = "linspace(-1,1) per axis, ij order"
MAX_HEADER_BYTES = 64 * 1024
MAX_PARAMETERS = 1 << 28
_FLOATS = {"fp32": ("F32", 4), "fp16": ("F16", 2)}  # precision -> safetensors dtype, bytes
_DTYPE_BYTES = {"F32": 4, "F16": 2, "U8": 1}
PRECISIONS = (*_FLOATS, *INT_BITS)
_MEDIA = {"image": 2, "audio": 1, "video": 3}  # medium -> coordinate dimensions


@dataclass
class InrFile:
    """The decoded contents of a `.inr` file (parameters dequantized to fp32)."""

    medium: str
    arch: str
    hparams: dict[str, Any]
    out_features: int
    transform: str
    scalars: dict[str, float]
    shape: list[int]  # the training grid: (H, W), (T,) or (T, H, W)
    channels: str
    value_range: tuple[float, float]
    bit_depth: int
    precision: str = "fp16"
    packing: str = "raw"  # how `w` is stored: "raw", "zlib" or "lzma" (set when written)
    # int precisions, per parameter: "t" (one scale), "c" (a scale per row) or "h" (fp16)
    scale_layout: str = ""
    rate: float | None = None
    encoder: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # name -> fp32 tensor

    @property
    def in_features(self) -> int:
        return _MEDIA[self.medium]

    @property
    def num_parameters(self) -> int:
        return sum(int(t.numel()) for t in self.state.values())

    def build_model(self):
        """The network with the stored parameters loaded, in eval mode on the CPU."""
        import torch

        model = _skeleton(self)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.state.items():
                params[name].copy_(value)
        return model.eval()


def _skeleton(inr: InrFile, device: str = "cpu"):
    import torch

    from inrcodec.models import build_model

    with torch.device(device):
        return build_model(inr.arch, inr.in_features, inr.out_features, **inr.hparams)


def _metadata(inr: InrFile) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "medium": inr.medium,
        "arch": inr.arch,
        "hp": inr.hparams,
        "out": inr.out_features,
        "precision": inr.precision,
        "pack": inr.packing,
        **({"q": inr.scale_layout} if inr.precision in INT_BITS else {}),
        "transform": inr.transform,
        "scalars": inr.scalars,
        "shape": list(inr.shape),
        "channels": inr.channels,
        "range": list(inr.value_range),
        "bits": inr.bit_depth,
        "rate": inr.rate,
        "coords": COORDINATES,
        "encoder": inr.encoder,
    }


def to_bytes(inr: InrFile, packings: Sequence[str] = PACKINGS) -> bytes:
    """Serialize: quantize or cast the parameters to the file's precision, then pack with
    the smallest of `packings`. Sets `inr.packing` and `inr.scale_layout` to what was written.
    """
    import torch
    from safetensors.torch import save

    from inrcodec.quantize import compress, store_quantized

    model = _skeleton(inr, "meta")
    params = [as_stored(inr.state[name]).float() for name, _ in model.named_parameters()]
    tensors: dict[str, torch.Tensor] = {}
    if inr.precision in INT_BITS:
        names = [name for name, _ in model.named_parameters()]
        stored = store_quantized(params, names, INT_BITS[inr.precision], packings)
        inr.packing, inr.scale_layout = stored.packing, stored.layout
        tensors["s"] = stored.scales.contiguous()
        weights = torch.frombuffer(bytearray(stored.payload), dtype=torch.uint8)
    else:
        dtype = {"fp16": torch.float16, "fp32": torch.float32}[inr.precision]
        flat = torch.cat([p.reshape(-1) for p in params] or [torch.zeros(0)]).to(dtype)
        inr.scale_layout = ""
        inr.packing, payload = compress(flat.numpy().tobytes(), allowed=packings)
        weights = (
            flat
            if inr.packing == "raw"
            else torch.frombuffer(bytearray(payload), dtype=torch.uint8)
        )
    tensors["w"] = weights.contiguous()
    meta = json.dumps(_metadata(inr), separators=(",", ":"), allow_nan=False)
    return save(tensors, metadata={"inrcodec": meta})


def write(path: Path, inr: InrFile, force: bool = False) -> int:
    """Write atomically (temp file + rename); return the file size in bytes."""
    return write_bytes(path, to_bytes(inr), force)


def write_bytes(path: Path, data: bytes, force: bool = False) -> int:
    """Write a serialized container atomically; return its size in bytes."""
    with atomic_output(Path(path), force) as tmp:
        tmp.write_bytes(data)
    return len(data)


def header_bytes(path: Path) -> int:
    """Bytes spent on the header (length prefix + JSON), the rest being weights."""
    with open(path, "rb") as handle:
        return 8 + int.from_bytes(handle.read(8), "little")


def read(path: Path | str) -> InrFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InrcodecError(f"{path}: is a directory, not a .inr file") from None
    except OSError as exc:
        raise InrcodecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return from_bytes(data)
    except InrcodecError as exc:
        raise InrcodecError(f"{path}: {exc}") from None


def from_bytes(data: bytes) -> InrFile:
    """Parse and validate a container; every problem is an InrcodecError."""
    from safetensors.torch import load

    meta = _validated_header(data)
    inr = InrFile(
        medium=meta["medium"],
        arch=meta["arch"],
        hparams=meta["hp"],
        out_features=meta["out"],
        transform=meta["transform"],
        scalars=meta["scalars"],
        shape=meta["shape"],
        channels=meta["channels"],
        value_range=(float(meta["range"][0]), float(meta["range"][1])),
        bit_depth=meta["bits"],
        precision=meta["precision"],
        packing=meta.get("pack", "raw"),
        scale_layout=meta.get("q", ""),
        rate=meta["rate"],
        encoder=meta["encoder"],
    )
    from inrcodec.transforms import get_transform

    if inr.transform not in _transform_names():
        raise InrcodecError(f"unknown value transform {inr.transform!r}")
    expected = set(get_transform(inr.transform).scalars)
    if set(inr.scalars) != expected or not all(_finite_number(v) for v in inr.scalars.values()):
        raise InrcodecError(f"transform scalars {inr.scalars} do not match {sorted(expected)}")
    try:
        model = _skeleton(inr, "meta")
    except InrcodecError as exc:
        raise InrcodecError(f"invalid network description: {exc}") from None
    shapes = [(name, stored_shape(p)) for name, p in model.named_parameters()]
    count = sum(math.prod(shape) for _, shape in shapes)
    if count > MAX_PARAMETERS:
        raise InrcodecError(f"arch {inr.arch!r} with {inr.hparams} has too many parameters")
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise InrcodecError(f"corrupt weights ({exc})") from None
    values = _parameters(inr, tensors, [shape for _, shape in shapes], count)
    for (name, p), value in zip(model.named_parameters(), values, strict=True):
        inr.state[name] = from_stored(value, p)
    return inr


def _parameters(inr: InrFile, tensors: dict, shapes: list, count: int) -> list:
    """The stored parameters as fp32 tensors of `shapes` (complex ones as (..., 2))."""
    import torch

    from inrcodec.quantize import decompress

    stored = tensors["w"]
    if inr.precision in INT_BITS:
        return load_quantized(
            stored.numpy().tobytes(),
            inr.packing,
            tensors["s"],
            inr.scale_layout,
            shapes,
            INT_BITS[inr.precision],
        )
    dtype = {"fp16": torch.float16, "fp32": torch.float32}[inr.precision]
    if inr.packing == "raw":
        flat = stored
    else:
        size = count * _FLOATS[inr.precision][1]
        raw = decompress(inr.packing, stored.numpy().tobytes(), size)
        flat = torch.frombuffer(bytearray(raw), dtype=dtype)
    if len(flat) != count:
        raise InrcodecError(
            f"weights hold {len(flat)} values but arch {inr.arch!r} with {inr.hparams} "
            f"needs {count}"
        )
    flat = flat.to(torch.float32)
    if not torch.isfinite(flat).all():
        raise InrcodecError("weights contain NaN or Inf")
    values, offset = [], 0
    for shape in shapes:
        n = math.prod(shape)
        values.append(flat[offset : offset + n].reshape(shape))
        offset += n
    return values


def _transform_names() -> list[str]:
    from inrcodec.transforms import available

    return available()


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validated_header(data: bytes) -> dict[str, Any]:
    """Check the safetensors header and our metadata; return the metadata."""
    if len(data) < 8:
        raise InrcodecError("truncated file (no safetensors header)")
    size = int.from_bytes(data[:8], "little")
    if size > MAX_HEADER_BYTES or 8 + size > len(data):
        raise InrcodecError(f"not a .inr file or truncated (header length {size})")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InrcodecError("not a .inr file (header is not JSON)") from None
    if not isinstance(header, dict) or set(header) not in (
        {"w", "__metadata__"},
        {"w", "s", "__metadata__"},
    ):
        raise InrcodecError("not a .inr file (unexpected tensors in the header)")
    spans = []
    for name in sorted(set(header) - {"__metadata__"}):
        entry = header[name]
        if not (
            isinstance(entry, dict)
            and _member(entry.get("dtype"), _DTYPE_BYTES)
            and _int_list(entry.get("shape"), 1)
            and _int_list(entry.get("data_offsets"), 2)
        ):
            raise InrcodecError(f"malformed {name!r} entry in the header")
        begin, end = entry["data_offsets"]
        if end - begin != entry["shape"][0] * _DTYPE_BYTES[entry["dtype"]]:
            raise InrcodecError(f"{name!r} offsets disagree with its shape")
        spans.append((begin, end))
    spans.sort()
    if spans[0][0] != 0 or any(a[1] != b[0] for a, b in itertools.pairwise(spans)):
        raise InrcodecError("tensor data offsets are not contiguous")
    if 8 + size + spans[-1][1] != len(data):
        raise InrcodecError(
            f"truncated or padded file ({len(data)} bytes, expected {8 + size + spans[-1][1]})"
        )
    raw = header["__metadata__"]
    if not isinstance(raw, dict) or not isinstance(raw.get("inrcodec"), str):
        raise InrcodecError("not an inrcodec file (no inrcodec metadata)")
    try:
        meta = json.loads(raw["inrcodec"])
    except json.JSONDecodeError:
        raise InrcodecError("invalid metadata (not JSON)") from None
    _validate_metadata(meta)
    quantized = meta["precision"] in INT_BITS
    packing = meta.get("pack", "raw")
    wanted = "U8" if quantized or packing != "raw" else _FLOATS[meta["precision"]][0]
    if header["w"]["dtype"] != wanted:
        raise InrcodecError(
            f"precision {meta['precision']} packed {packing} disagrees with dtype "
            f"{header['w']['dtype']}"
        )
    if quantized != ("s" in header) or (quantized and header["s"]["dtype"] != "F32"):
        raise InrcodecError("scales (fp32 's') are stored exactly for int precisions")
    return meta


def _member_int(v: Any, allowed: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v in allowed


def _member(v: Any, allowed: Any) -> bool:
    """`v in allowed` for untrusted JSON (a list or dict value would be unhashable)."""
    return isinstance(v, str) and v in allowed


def _int_list(v: Any, length: int | None = None) -> bool:
    return (
        isinstance(v, list)
        and (length is None or len(v) == length)
        and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v)
    )


def _validate_metadata(meta: Any) -> None:
    if not isinstance(meta, dict):
        raise InrcodecError("invalid metadata (not an object)")
    version = meta.get("format")
    if not _member_int(version, READABLE_VERSIONS):
        raise InrcodecError(
            f"unsupported format version {version!r} (this inrcodec reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )
    if version == 1 and ("pack" in meta or "q" in meta or meta.get("precision") in INT_BITS):
        raise InrcodecError("format version 1 stores fp16 or fp32 only, unpacked")
    if meta.get("precision") in INT_BITS and not (
        isinstance(meta.get("q"), str) and set(meta["q"]) <= {"t", "c", "h"}
    ):
        raise InrcodecError(f"invalid metadata field 'q': {meta.get('q')!r}")
    if "pack" in meta and not _member(meta["pack"], PACKINGS):
        raise InrcodecError(f"invalid metadata field 'pack': {meta['pack']!r}")
    checks: dict[str, Any] = {
        "medium": lambda v: _member(v, _MEDIA),
        "arch": lambda v: isinstance(v, str),
        "hp": lambda v: (
            isinstance(v, dict)
            and all(isinstance(k, str) and _plain_value(x) for k, x in v.items())
        ),
        "out": lambda v: isinstance(v, int) and 1 <= v <= 64,
        "precision": lambda v: _member(v, PRECISIONS),
        "transform": lambda v: isinstance(v, str),
        "scalars": lambda v: isinstance(v, dict),
        "shape": lambda v: _int_list(v) and 1 <= len(v) <= 3 and all(n >= 1 for n in v),
        "channels": lambda v: isinstance(v, str) and len(v) <= 16,
        "range": lambda v: (
            isinstance(v, list)
            and len(v) == 2
            and all(_finite_number(x) for x in v)
            and v[0] < v[1]
        ),
        "bits": lambda v: isinstance(v, int) and 1 <= v <= 64,
        "rate": lambda v: v is None or (_finite_number(v) and v > 0),
        "coords": lambda v: v == COORDINATES,
        "encoder": lambda v: isinstance(v, dict),
    }
    for key, ok in checks.items():
        if key not in meta or not ok(meta[key]):
            raise InrcodecError(f"invalid metadata field {key!r}: {meta.get(key)!r}")
    if len(meta["shape"]) != _MEDIA[meta["medium"]]:
        raise InrcodecError(f"shape {meta['shape']} does not fit medium {meta['medium']!r}")
    if meta["medium"] != "image" and meta["rate"] is None:
        raise InrcodecError(f"a {meta['medium']} file must store its rate")


def _plain_value(v: Any) -> bool:
    """A hyper-parameter: a number, string, bool or None, or a short list of ints (tiles)."""
    if isinstance(v, list):
        return len(v) <= 3 and _int_list(v)
    return v is None or isinstance(v, (str, bool, int)) or _finite_number(v)
