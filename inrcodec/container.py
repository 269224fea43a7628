"""The `.inr` file: a safetensors container holding everything needed to decode.

Layout (format version 1):
- one tensor ``w``: every parameter of the network, flattened in `named_parameters()`
  order and concatenated (complex parameters as interleaved real/imag pairs), stored
  as fp16 or fp32. One tensor keeps the safetensors header to a few hundred bytes,
  which matters at low bitrates; the layout is implied by the arch and its
  hyper-parameters, which are stored.
- ``__metadata__["inrcodec"]``: compact JSON with the format version, medium, arch and
  hyper-parameters, the value transform and its scalars, the signal's grid shape,
  channel layout, value range, bit depth and rate, the coordinate convention, and
  encoder facts.

Reading validates the whole header against the schema below before anything is
allocated or built, then loads the tensor with safetensors (no pickle anywhere).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inrcodec.atomic import atomic_output
from inrcodec.errors import InrcodecError

FORMAT_VERSION = 1
COORDINATES = "linspace(-1,1) per axis, ij order"
MAX_HEADER_BYTES = 64 * 1024
MAX_PARAMETERS = 1 << 28
_DTYPES = {"fp16": ("F16", 2), "fp32": ("F32", 4)}
PRECISIONS = tuple(_DTYPES)
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


def to_bytes(inr: InrFile) -> bytes:
    """Serialize (the parameters are cast to the file's precision here)."""
    import torch
    from safetensors.torch import save

    dtype = {"fp16": torch.float16, "fp32": torch.float32}[inr.precision]
    model = _skeleton(inr, "meta")
    flat = [_as_real(inr.state[name]).reshape(-1) for name, _ in model.named_parameters()]
    weights = torch.cat(flat).to(dtype) if flat else torch.zeros(0, dtype=dtype)
    meta = json.dumps(_metadata(inr), separators=(",", ":"), allow_nan=False)
    return save({"w": weights.contiguous()}, metadata={"inrcodec": meta})


def write(path: Path, inr: InrFile, force: bool = False) -> int:
    """Write atomically (temp file + rename); return the file size in bytes."""
    data = to_bytes(inr)
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
    import torch
    from safetensors.torch import load

    header, meta = _validated_header(data)
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
    shapes = [(name, p) for name, p in model.named_parameters()]
    expected_count = sum(_real_numel(p) for _, p in shapes)
    if expected_count > MAX_PARAMETERS or expected_count != header["w"]["shape"][0]:
        raise InrcodecError(
            f"weights hold {header['w']['shape'][0]} values but arch {inr.arch!r} "
            f"with {inr.hparams} needs {expected_count}"
        )
    try:
        flat = load(data)["w"].to(torch.float32)
    except Exception as exc:  # safetensors raises its own error types
        raise InrcodecError(f"corrupt weights ({exc})") from None
    if not torch.isfinite(flat).all():
        raise InrcodecError("weights contain NaN or Inf")
    offset = 0
    for name, p in shapes:
        count = _real_numel(p)
        chunk = flat[offset : offset + count]
        if p.is_complex():
            # clone(): a slice at an odd offset cannot be viewed as complex in place.
            chunk = torch.view_as_complex(chunk.reshape(*p.shape, 2).clone())
        inr.state[name] = chunk.reshape(p.shape)
        offset += count
    return inr


def _as_real(t):
    import torch

    return torch.view_as_real(t) if t.is_complex() else t


def _real_numel(p) -> int:
    return int(p.numel()) * (2 if p.is_complex() else 1)


def _transform_names() -> list[str]:
    from inrcodec.transforms import available

    return available()


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validated_header(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the safetensors header and our metadata; return (header, metadata)."""
    if len(data) < 8:
        raise InrcodecError("truncated file (no safetensors header)")
    size = int.from_bytes(data[:8], "little")
    if size > MAX_HEADER_BYTES or 8 + size > len(data):
        raise InrcodecError(f"not a .inr file or truncated (header length {size})")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InrcodecError("not a .inr file (header is not JSON)") from None
    if not isinstance(header, dict) or set(header) != {"w", "__metadata__"}:
        raise InrcodecError("not a .inr file (unexpected tensors in the header)")
    entry = header["w"]
    dtypes = {code: size for code, size in _DTYPES.values()}
    if not (
        isinstance(entry, dict)
        and _member(entry.get("dtype"), dtypes)
        and _int_list(entry.get("shape"), 1)
        and _int_list(entry.get("data_offsets"), 2)
    ):
        raise InrcodecError("malformed weight entry in the header")
    begin, end = entry["data_offsets"]
    if begin != 0 or end != entry["shape"][0] * dtypes[entry["dtype"]]:
        raise InrcodecError("weight offsets disagree with their shape")
    if 8 + size + end != len(data):
        raise InrcodecError(
            f"truncated or padded file ({len(data)} bytes, expected {8 + size + end})"
        )
    raw = header["__metadata__"]
    if not isinstance(raw, dict) or not isinstance(raw.get("inrcodec"), str):
        raise InrcodecError("not an inrcodec file (no inrcodec metadata)")
    try:
        meta = json.loads(raw["inrcodec"])
    except json.JSONDecodeError:
        raise InrcodecError("invalid metadata (not JSON)") from None
    _validate_metadata(meta)
    if _DTYPES[meta["precision"]][0] != entry["dtype"]:
        raise InrcodecError(f"precision {meta['precision']} disagrees with dtype {entry['dtype']}")
    return header, meta


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
    if version != FORMAT_VERSION:
        raise InrcodecError(
            f"unsupported format version {version!r} (this inrcodec reads version {FORMAT_VERSION})"
        )
    checks: dict[str, Any] = {
        "medium": lambda v: _member(v, _MEDIA),
        "arch": lambda v: isinstance(v, str),
        "hp": lambda v: (
            isinstance(v, dict)
            and all(isinstance(k, str) and _plain_value(x) for k, x in v.items())
        ),
        "out": lambda v: isinstance(v, int) and 1 <= v <= 64,
        "precision": lambda v: _member(v, _DTYPES),
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
    return v is None or isinstance(v, (str, bool, int)) or _finite_number(v)
