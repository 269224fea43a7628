"""The `.inr` file: a safetensors container holding everything needed to decode.

Layout (format version 10; versions 1 to 9 still read: version 1 is version 2's fp16/fp32
raw case, version 3 is version 2 plus the `auto` precision, version 4 is version 3 plus
the context coder `x` of latent grids, version 5 is version 4 plus their predictive
coder `p` and packed metadata, version 6 is version 5 plus the interlaced predictive
coder `q`, version 7 is version 6 plus the grid's post-filter, version 8 is version 7
plus the coder `r`, `q` with half-integer medians kept, and version 9 is version 8 plus
segmented grids, `parts.K.` models along time, each segment's grids coded among
themselves, and version 10 is version 9 plus grids coarser than the signal, hp `stride`,
as video's 3-D grids are in time):
- one tensor ``w``: every parameter of the network, flattened in `named_parameters()`
  order and concatenated (complex parameters as interleaved real/imag pairs). One tensor
  keeps the safetensors header to a few hundred bytes, which matters at low bitrates; the
  layout is implied by the arch and its hyper-parameters, which are stored.
  - fp16/fp32: the floats themselves (dtype F16/F32), or, when it is smaller, a zlib or
    LZMA stream of their bytes (dtype U8);
  - int8/int6/int4: the integer codes bit-packed (U8), or a zlib/LZMA stream of the codes
    at one byte each, whichever is smallest (see quantize.py);
  - auto (version 3): each parameter tensor as integer codes at its own power-of-two step,
    chosen by rate–distortion, entropy-coded one after the other (U8; see rate/). The
    header's `rq` lists per tensor the step exponent `e`, the coder `c` (g: range-coded
    two-sided geometric, l: LZMA, x (version 4): a latent grid under the file's context
    model, see rate/latents.py, p (version 5), q (version 6) and r (version 8): a latent
    grid predicted from its decoded neighbours and the coarser grid, see
    rate/neighbours.py), its integer parameters `k` (max |code|, for x, p, q and r the
    largest residual) and `m` (the geometric decay, /2^16; 0 for x, p, q and r), and the
    stream's byte length `n`. Context-coded grids
    follow the context model's tensors and the coarser grid.
- ``s`` (int precisions only): the fp32 scales, one per tensor or per output channel.
- ``__metadata__["inrcodec"]``: the metadata, compact JSON (packed from version 5: see
  `metadata_text`) with the format version, medium, arch and
  hyper-parameters, precision, packing and scale layout, the value transform and its
  scalars, the signal's grid shape, channel layout, value range, bit depth and rate, the
  coordinate convention, and encoder facts.

Reading validates the whole header against the schema below, then sizes the network from
its hyper-parameters alone and refuses one above MAX_PARAMETERS or MAX_LAYERS, or one that
the stored weights cannot hold, before anything is allocated or built; only then does it
load the tensors with safetensors (no pickle anywhere) and build the network's skeleton.
Parameters are always dequantized to fp32, so every device decodes the same numbers.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import torch

FORMAT_VERSION = 11
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
COORDINATES = "linspace(-1,1) per axis, ij order"
MAX_HEADER_BYTES = 64 * 1024
MAX_PARAMETERS = 1 << 28
# Linear layers in all nets together (each net has depth + 2): building a skeleton costs about
# 0.15 ms a layer, and a zlib/LZMA stream of zeros can make the weights of a million layers
# fit in a few kilobytes, so the parameter count alone does not bound the reader's work.
MAX_LAYERS = 1 << 15
# The most bytes one byte of a zlib or LZMA stream can expand to: deflate's limit is 1032 (a
# 258-byte match in 2 bits), LZMA's about 7,100 (a 273-byte repeat takes 14 binary decisions
# of at least 0.022 bits each); zeros measure 1029 and 6841. Rounded up, so that no real
# stream is refused, yet a 1 KB file cannot claim more than 8 MB of weights.
_MAX_EXPANSION = {"zlib": 1 << 11, "lzma": 1 << 13}
# The values an auto-precision file may describe whatever its bytes: all-zero latents cost
# no bytes, and a 12-megapixel photo's grids after a short training are 16 million values
# in 279 bytes. 2^25 values (128 MB as fp32) is what a near-empty file can make us build.
_CODED_FREE = 1 << 25
_FLOATS = {"fp32": ("F32", 4), "fp16": ("F16", 2)}  # precision -> safetensors dtype, bytes
_DTYPE_BYTES = {"F32": 4, "F16": 2, "U8": 1}
CODED = "auto"  # steps chosen by rate–distortion, entropy-coded (version 3)
PRECISIONS = (*_FLOATS, *INT_BITS, CODED)
# ctx: rate/latents.py; nbr (format 5), ilv (format 6), ilh (format 8), ilp (format 10):
# rate/neighbours.py
_CODER_LETTERS = {
    "geo": "g",
    "lzma": "l",
    "ctx": "x",
    "nbr": "p",
    "ilv": "q",
    "ilh": "r",
    "ilp": "s",
}
_CODERS_FROM = {
    "ctx": 4,
    "nbr": 5,
    "ilv": 6,
    "ilh": 8,
    "ilp": 10,
}  # each coder's first format version
POST_FILTER_FROM = 7  # the grid's post-filter (hp "post")
SEGMENTS_FROM = 9  # the grid's segments along time (hp "segment")
STRIDE_FROM = 10  # a finest grid coarser than the signal (hp "stride")
MOTION_FROM = 11  # video grids that follow the clip's global motion (hp "motion")
_MEDIA = {"image": 2, "audio": 1, "video": 3}  # medium -> coordinate dimensions
# From format 5 the metadata is packed: "z" + base85 of its JSON, raw-deflated under the
# preset dictionary below (typical metadata, so keys and usual values cost a back-reference
# each). A 0.5-bpp Kodak file's header fell from 952 to 272 bytes. The dictionary is part
# of formats 5 and 6: changing it needs a new format version.
PACKED_FROM = 5
_PACKED_PREFIX = "z"
MAX_METADATA_BYTES = 1 << 16
_DICTIONARY = (
    b'{"format":5,"medium":"video","arch":"siren","hp":{"width":64,"depth":3,"first_omega":'
    b'30.0,"hidden_omega":30.0,"first_bias_scale":null,"tiles":[2,2],"degree":8,"rank":4},'
    b'"out":1,"precision":"int8","pack":"lzma","q":"hhchchch","transform":"sym","scalars":'
    b'{"beta":1.0,"lo":-1.0,"hi":1.0},"channels":"mono","range":[-1.0,1.0],"bits":16,'
    b'"rate":16000.0,"encoder":{"version":"0.1.0","steps":2500,"seconds":60.0,"device":"cpu",'
    b'"stop":"steps","qat_steps":5,"snr":15.0,"si_snr":15.0,"mse":0.001,"psnr":30.0,"ssim":'
    b'0.9}}{"format":5,"medium":"image","arch":"grid","hp":{"shape":[512,768],"levels":7,'
    b'"width":32,"depth":1,"activation":"gelu","interpolation":"bilinear","coordinates":'
    b'false,"context":0},"out":3,"precision":"auto","rq":{"e":[-8,-8,-7,-8,-10,-12,0,0,0,0,'
    b'0,0,0],"c":"ggggggppppppp","k":[466,233,248,126,336,1261,7,6,8,8,8,6,4],"m":[64238,'
    b'64755,63418,63747,64950,65439,0,0,0,0,0,0,0],"n":[228,36,944,32,112,8,46,158,497,1726,'
    b'6098,8002,5378]},"transform":"minmax","scalars":{"lo":0.0,"hi":255.0},"shape":[512,'
    b'768],"channels":"RGB","range":[0.0,255.0],"bits":8,"rate":null,"coords":"linspace(-1,'
    b'1) per axis, ij order","encoder":{"version":"0.1.0","steps":6599,"seconds":300.01,'
    b'"device":"cpu","stop":"time-budget","psnr":35.1102,"ssim":0.9226}}'
)


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
    # auto precision, per parameter in named_parameters() order: the step exponent (set by
    # the encoder) and how each was coded (set when written)
    exponents: list[int] = field(default_factory=list)
    coding: dict[str, list] = field(default_factory=dict)
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
        **({"rq": inr.coding} if inr.precision == CODED else {"pack": inr.packing}),
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

    count = _network_size(inr)  # never write what the reader refuses
    model = _skeleton(inr, "meta")
    params = [as_stored(inr.state[name]).float() for name, _ in model.named_parameters()]
    tensors: dict[str, torch.Tensor] = {}
    if inr.precision == CODED:
        inr.packing, inr.scale_layout = "raw", ""
        names = [name for name, _ in model.named_parameters()]
        inr.coding, payload = _entropy_coded(names, params, inr.exponents)
        weights = _byte_tensor(payload)
    elif inr.precision in INT_BITS:
        names = [name for name, _ in model.named_parameters()]
        stored = store_quantized(params, names, INT_BITS[inr.precision], packings)
        inr.packing, inr.scale_layout = stored.packing, stored.layout
        tensors["s"] = stored.scales.contiguous()
        weights = _byte_tensor(stored.payload)
    else:
        dtype = {"fp16": torch.float16, "fp32": torch.float32}[inr.precision]
        flat = torch.cat([p.reshape(-1) for p in params] or [torch.zeros(0)]).to(dtype)
        inr.scale_layout = ""
        inr.packing, payload = compress(flat.numpy().tobytes(), allowed=packings)
        weights = flat if inr.packing == "raw" else _byte_tensor(payload)
    tensors["w"] = weights.contiguous()
    stored_bytes = weights.numel() * weights.element_size()
    if not _can_hold(inr.precision, inr.packing, stored_bytes, count):
        raise InrcodecError(f"{count:,} values in {stored_bytes} bytes: no reader would take it")
    meta = metadata_text(_metadata(inr))
    return save(tensors, metadata={"inrcodec": meta})


def _byte_tensor(payload: bytes):
    """`payload` as a uint8 tensor (empty too: a file whose every value is zero)."""
    import torch

    if not payload:
        return torch.zeros(0, dtype=torch.uint8)
    return torch.frombuffer(bytearray(payload), dtype=torch.uint8)


def _entropy_coded(
    names: list[str], params: list, exponents: list[int]
) -> tuple[dict[str, list], bytes]:
    """The `rq` header entry and the concatenated streams of the auto precision. Latent
    grids of a model with a context network are coded under it (after the network), the
    others by the shortest of the factorized and predictive coders; each grid after the
    coarser one, as the decoder will read them."""
    import torch

    from inrcodec.rate import coding, latents

    if len(exponents) != len(params):
        raise InrcodecError(f"{len(exponents)} step exponents for {len(params)} parameters")
    stored: dict[str, Any] = {}
    parents: dict[str, Any] = {}  # per owner (a segment's grids among themselves)
    streams = []
    for name, p, e in zip(names, params, exponents, strict=True):
        codes = coding.to_codes(p.detach().cpu().numpy(), e)
        owner = latents.latent_owner(name)
        parent = parents.get(owner) if owner is not None else None
        if latents.is_context_coded(name, names):
            if e != 0:
                raise InrcodecError(f"context-coded latents have step 1, not 2^{e}")
            streams.append(latents.encode_grid(codes, parent, stored))
        elif owner is not None:
            streams.append(latents.encode_factorized(codes, parent))
        else:
            streams.append(coding.encode(codes))
        if owner is not None:
            parents[owner] = codes
        stored[name] = torch.from_numpy(coding.from_codes(codes, e))
    table = {
        "e": list(exponents),
        "c": "".join(_CODER_LETTERS[c.coder] for c in streams),
        "k": [c.bound for c in streams],
        "m": [c.decay for c in streams],
        "n": [len(c.data) for c in streams],
    }
    return table, b"".join(c.data for c in streams)


def _entropy_decoded(
    table: dict[str, Any],
    payload: bytes,
    names: list[str],
    shapes: list,
    keep: Callable[[str], bool] | None = None,
) -> list:
    """Inverse of `_entropy_coded`: fp32 tensors of `shapes`, or an InrcodecError. Tensors
    that `keep` turns down are skipped (zeros): each stream's length is in the table, and a
    segment's grids are coded among themselves, so a decode of a window reads only its
    segments' streams."""
    import torch

    from inrcodec.rate import coding, latents, neighbours

    predictive = neighbours.SCHEMES
    coders = {letter: name for name, letter in _CODER_LETTERS.items()}
    fields = ("e", "k", "m", "n")
    if len(table["c"]) != len(shapes) or any(len(table[f]) != len(shapes) for f in fields):
        raise InrcodecError(f"'rq' describes {len(table['c'])} tensors, the arch has {len(shapes)}")
    if sum(table["n"]) != len(payload):
        raise InrcodecError(
            f"'rq' streams add up to {sum(table['n'])} bytes, 'w' holds {len(payload)}"
        )
    values, stored, parents, at = [], {}, {}, 0
    for i, (name, shape) in enumerate(zip(names, shapes, strict=True)):
        exponent, size = table["e"][i], table["n"][i]
        if not coding.MIN_EXPONENT <= exponent <= coding.MAX_EXPONENT:
            raise InrcodecError(f"step exponent {exponent} is out of range")
        at += size
        if keep is not None and not keep(name):
            values.append(torch.zeros(shape))
            continue
        coded = coding.Coded(
            coders[table["c"][i]], table["k"][i], table["m"][i], payload[at - size : at]
        )
        context_coded = latents.is_context_coded(name, names)
        owner = latents.latent_owner(name)
        is_latent = owner is not None
        parent = parents.get(owner) if is_latent else None
        if (
            (coded.coder == "ctx") != context_coded
            or (coded.coder == "ctx" and exponent != 0)
            or (coded.coder in predictive and (context_coded or not is_latent))
        ):
            raise InrcodecError(
                f"{name} cannot be stored with coder {coded.coder!r} at 2^{exponent}"
            )
        if coded.coder == "ctx":
            codes = latents.decode_grid(coded, tuple(shape), parent, stored)
        elif coded.coder in predictive:
            codes = neighbours.decode(coded, tuple(shape), parent)
        else:
            codes = coding.decode(coded, math.prod(shape))
        if is_latent:
            parents[owner] = codes.reshape(shape)
        values.append(torch.from_numpy(coding.from_codes(codes, exponent)).reshape(shape))
        stored[name] = values[-1]
    return values


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


# Given the parsed header, which tensors to decode (None: all); others stay zero.
Selection = Callable[["InrFile"], Callable[[str], bool] | None]


def read(path: Path | str, select: Selection | None = None) -> InrFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InrcodecError(f"{path}: is a directory, not a .inr file") from None
    except OSError as exc:
        raise InrcodecError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return from_bytes(data, select)
    except InrcodecError as exc:
        raise InrcodecError(f"{path}: {exc}") from None


def from_bytes(data: bytes, select: Selection | None = None) -> InrFile:
    """Parse and validate a container; every problem is an InrcodecError. `select` may
    turn down tensors that a decode will not read (the segments outside a window).

    A hostile header can describe a network of billions of modules in a file of 1 KB, so
    the network is sized from the hyper-parameters and checked against the limits and the
    stored weights before its skeleton is built (on the meta device, for its parameter
    names and shapes).
    """
    from safetensors.torch import load

    meta, w_bytes = _validated_header(data)
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
        coding=meta.get("rq", {}),
        rate=meta["rate"],
        encoder=meta["encoder"],
    )
    _check_scalars(inr)
    count = _network_size(inr)
    if not _can_hold(inr.precision, inr.packing, w_bytes, count):
        raise InrcodecError(
            f"weights hold {w_bytes} bytes, which cannot be the {count:,} values that arch "
            f"{inr.arch!r} with {inr.hparams} needs"
        )
    _probe(inr)
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise InrcodecError(f"corrupt weights ({exc})") from None
    # Floats are unpacked first: a stream that is not exactly `count` values is refused
    # before anything is built. Int codes need the parameter shapes to be unpacked.
    floats = None if inr.precision in (*INT_BITS, CODED) else _floats(inr, tensors["w"], count)
    model = _skeleton(inr, "meta")
    shapes = [stored_shape(p) for p in model.parameters()]
    if inr.precision == CODED:
        names = [name for name, _ in model.named_parameters()]
        keep = select(inr) if select is not None else None
        payload = tensors["w"].numpy().tobytes()
        values = _entropy_decoded(inr.coding, payload, names, shapes, keep)
        inr.exponents = list(inr.coding["e"])
    elif floats is None:
        stored, bits = tensors["w"].numpy().tobytes(), INT_BITS[inr.precision]
        values = load_quantized(stored, inr.packing, tensors["s"], inr.scale_layout, shapes, bits)
    else:
        values = _split(floats, shapes)
    for (name, p), value in zip(model.named_parameters(), values, strict=True):
        inr.state[name] = from_stored(value, p)
    return inr


def _check_scalars(inr: InrFile) -> None:
    from inrcodec.transforms import get_transform

    if inr.transform not in _transform_names():
        raise InrcodecError(f"unknown value transform {inr.transform!r}")
    expected = set(get_transform(inr.transform).scalars)
    if set(inr.scalars) != expected or not all(_finite_number(v) for v in inr.scalars.values()):
        raise InrcodecError(f"transform scalars {inr.scalars} do not match {sorted(expected)}")


def _network_size(inr: InrFile) -> int:
    """The number of values stored for the network `inr` describes, from its
    hyper-parameters alone: a 1 KB header can describe billions of modules, so the size is
    refused above MAX_PARAMETERS or MAX_LAYERS before anything is built."""
    from inrcodec.models import TILES, count_parameters, hyper_parameters

    tiles = inr.hparams.get(TILES)
    if isinstance(tiles, list) and tiles and len(tiles) != inr.in_features:
        # The tiled net routes coordinates by axis: a mismatch would crash at decode time.
        raise InrcodecError(f"tiles {tiles} do not fit a {inr.medium}'s {inr.in_features} axes")
    try:
        count = count_parameters(inr.arch, inr.in_features, inr.out_features, **inr.hparams)
    except InrcodecError as exc:
        raise InrcodecError(f"invalid network description: {exc}") from None
    if count > MAX_PARAMETERS:
        raise InrcodecError(
            f"arch {inr.arch!r} with {inr.hparams} has too many parameters "
            f"({count:,}, at most {MAX_PARAMETERS:,})"
        )
    full = hyper_parameters(inr.arch, inr.hparams)
    layers = (full["depth"] + 2) * math.prod(full.get(TILES, []))
    if layers > MAX_LAYERS:
        raise InrcodecError(
            f"arch {inr.arch!r} with {inr.hparams} has too many layers "
            f"({layers:,} in all nets, at most {MAX_LAYERS:,})"
        )
    return count


def _probe(inr: InrFile) -> None:
    """Build one net of `inr` at depth 1 at most on the CPU, as the decoder will build it.

    The meta device skips the builders' value checks (a negative ω makes an empty init
    range), so a file could read and then fail to build. This net holds at most the
    already-checked parameter count; the RNG is restored, as a read must not change it.
    """
    import torch

    from inrcodec.models import TILES, build_model, hyper_parameters

    full = hyper_parameters(inr.arch, inr.hparams)
    full["depth"] = min(full["depth"], 1)
    if TILES in full:
        full[TILES] = [1] * len(full[TILES])
    with torch.random.fork_rng(devices=[]):
        build_model(inr.arch, inr.in_features, inr.out_features, **full)


def _can_hold(precision: str, packing: str, w_bytes: int, count: int) -> bool:
    """Can `w_bytes` bytes of 'w' be `count` values? Raw floats: exactly. Raw int codes:
    `bits` each, or 2 bytes for those kept fp16. Streams: at most _MAX_EXPANSION bytes per
    byte, of the floats or of the codes at one byte each."""
    if precision == CODED:
        # All-zero tensors cost no bytes, so bytes bound the count only loosely; the bound
        # still stops a tiny file from claiming a huge network.
        return count <= max(w_bytes * _MAX_EXPANSION["lzma"], _CODED_FREE)
    bits = INT_BITS.get(precision)
    if packing == "raw":
        if bits is None:
            return w_bytes == count * _FLOATS[precision][1]
        return math.ceil(count * bits / 8) <= w_bytes <= 2 * count
    least = count if bits else count * _FLOATS[precision][1]
    return least <= w_bytes * _MAX_EXPANSION[packing]


def _floats(inr: InrFile, stored: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` stored floats as one fp32 tensor; refuses a bad stream, NaN and Inf."""
    import torch

    from inrcodec.quantize import decompress

    if inr.packing == "raw":
        flat = stored
    else:
        size = count * _FLOATS[inr.precision][1]
        raw = decompress(inr.packing, stored.numpy().tobytes(), size)
        dtype = {"fp16": torch.float16, "fp32": torch.float32}[inr.precision]
        flat = torch.frombuffer(bytearray(raw), dtype=dtype)
    flat = flat.to(torch.float32)
    if not torch.isfinite(flat).all():
        raise InrcodecError("weights contain NaN or Inf")
    return flat


def _split(flat: torch.Tensor, shapes: list[tuple[int, ...]]) -> list[torch.Tensor]:
    """`flat` cut into tensors of `shapes`, in order (complex parameters as (..., 2))."""
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


def _validated_header(data: bytes) -> tuple[dict[str, Any], int]:
    """Check the safetensors header and our metadata; return the metadata and the byte
    length of 'w' (known before the tensors are loaded, to bound the parameter count)."""
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
    meta = parse_metadata(raw["inrcodec"])
    _validate_metadata(meta)
    quantized = meta["precision"] in INT_BITS
    packing = meta.get("pack", "raw")
    coded = meta["precision"] == CODED
    wanted = "U8" if quantized or coded or packing != "raw" else _FLOATS[meta["precision"]][0]
    if header["w"]["dtype"] != wanted:
        raise InrcodecError(
            f"precision {meta['precision']} packed {packing} disagrees with dtype "
            f"{header['w']['dtype']}"
        )
    if quantized != ("s" in header) or (quantized and header["s"]["dtype"] != "F32"):
        raise InrcodecError("scales (fp32 's') are stored exactly for int precisions")
    begin, end = header["w"]["data_offsets"]
    return meta, end - begin


def metadata_text(meta: dict[str, Any]) -> str:
    """The metadata as stored: compact JSON up to format 4, packed from format 5."""
    text = json.dumps(meta, separators=(",", ":"), allow_nan=False)
    return pack_metadata(text, meta.get("format"))


def pack_metadata(text: str, version: Any) -> str:
    """JSON `text` as a file of format `version` stores it (packed from format 5)."""
    if not _is_int(version) or version < PACKED_FROM:
        return text
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=_DICTIONARY)
    packed = packer.compress(text.encode()) + packer.flush()
    return _PACKED_PREFIX + base64.b85encode(packed).decode("ascii")


def parse_metadata(text: str) -> Any:
    """Inverse of `metadata_text` for untrusted text (bounded in size); the result is
    validated by the caller. Packed metadata must say format 5 or later, plain JSON
    earlier."""
    packed = text.startswith(_PACKED_PREFIX)
    if packed:
        try:
            unpacker = zlib.decompressobj(-15, zdict=_DICTIONARY)
            text = unpacker.decompress(base64.b85decode(text[1:]), MAX_METADATA_BYTES)
        except (ValueError, zlib.error):
            raise InrcodecError("invalid metadata (corrupt packed metadata)") from None
        if not unpacker.eof or unpacker.unconsumed_tail or unpacker.unused_data:
            raise InrcodecError("invalid metadata (truncated or oversized packed metadata)")
    try:
        meta = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InrcodecError("invalid metadata (not JSON)") from None
    version = meta.get("format") if isinstance(meta, dict) else None
    if _is_int(version) and packed != (version >= PACKED_FROM):
        raise InrcodecError(f"format {version} metadata is {'packed' if packed else 'plain JSON'}")
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
    if version == 1 and ("pack" in meta or "q" in meta or _member(meta.get("precision"), INT_BITS)):
        raise InrcodecError("format version 1 stores fp16 or fp32 only, unpacked")
    if _member(meta.get("precision"), INT_BITS) and not (
        isinstance(meta.get("q"), str) and set(meta["q"]) <= {"t", "c", "h"}
    ):
        raise InrcodecError(f"invalid metadata field 'q': {meta.get('q')!r}")
    if "pack" in meta and not _member(meta["pack"], PACKINGS):
        raise InrcodecError(f"invalid metadata field 'pack': {meta['pack']!r}")
    _validate_coding(meta, version)
    checks: dict[str, Any] = {
        "medium": lambda v: _member(v, _MEDIA),
        "arch": lambda v: isinstance(v, str),
        "hp": lambda v: (
            isinstance(v, dict)
            and all(
                isinstance(k, str) and (_plain_value(x) or (k == "motion" and _pairs(x)))
                for k, x in v.items()
            )
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
    if meta["hp"].get("post") and version < POST_FILTER_FROM:
        raise InrcodecError(f"a post-filter needs format {POST_FILTER_FROM}")
    if meta["hp"].get("segment") and version < SEGMENTS_FROM:
        raise InrcodecError(f"segments need format {SEGMENTS_FROM}")
    stride = meta["hp"].get("stride", [])
    if not _int_list(stride):
        raise InrcodecError(f"invalid hyper-parameter stride: {stride!r}")
    if any(s != 1 for s in stride) and version < STRIDE_FROM:
        raise InrcodecError(f"grids coarser than the signal need format {STRIDE_FROM}")
    if meta["hp"].get("motion") and version < MOTION_FROM:
        raise InrcodecError(f"global motion needs format {MOTION_FROM}")


def _validate_coding(meta: dict[str, Any], version: int) -> None:
    """The auto precision exists from version 3 on, with a well-formed `rq` and no `pack`;
    each coder's parameters are checked again, value by value, when its stream is read."""
    from inrcodec.rate import coding

    if meta.get("precision") != CODED:
        if "rq" in meta:
            raise InrcodecError("'rq' belongs to the auto precision only")
        return
    table = meta.get("rq")
    if version < 3 or "pack" in meta or not isinstance(table, dict):
        raise InrcodecError("the auto precision needs format 3 and an 'rq' table")
    lists_ok = all(
        isinstance(table.get(f), list) and all(_is_int(v) for v in table[f]) for f in "ekmn"
    )
    letters_ok = isinstance(table.get("c"), str) and set(table["c"]) <= set(_CODER_LETTERS.values())
    if set(table) != set("ekmnc") or not (lists_ok and letters_ok):
        raise InrcodecError(f"invalid metadata field 'rq': {table!r}"[:200])
    for coder, first in _CODERS_FROM.items():
        if version < first and _CODER_LETTERS[coder] in table["c"]:
            raise InrcodecError(f"latents coded with {coder!r} need format {first}")
    coders = {letter: name for name, letter in _CODER_LETTERS.items()}
    for letter, bound, decay, size in zip(
        table["c"], table["k"], table["m"], table["n"], strict=False
    ):
        coding.check_parameters(coders[letter], bound, decay)
        if size < 0:
            raise InrcodecError(f"negative stream length {size} in 'rq'")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pairs(v: Any) -> bool:
    """A list of [int, int] (a video's offsets per frame; their range is the arch's to
    check, before it sizes anything by them)."""
    return isinstance(v, list) and all(_int_list(p, 2) for p in v)


def _plain_value(v: Any) -> bool:
    """A hyper-parameter: a number, string, bool or None, or a short list of ints (tiles)."""
    if isinstance(v, list):
        return len(v) <= 3 and _int_list(v)
    return v is None or isinstance(v, (str, bool, int)) or _finite_number(v)


def header_size(data: bytes) -> int:
    """Bytes a serialized container spends on its header (length prefix + JSON)."""
    return 8 + int.from_bytes(data[:8], "little")


def with_encoder(data: bytes, encoder: dict[str, Any]) -> bytes:
    """`data` with its encoder facts replaced: only the JSON header is rewritten, so the
    weights, already packed and judged, are written exactly as they were measured."""
    size = header_size(data) - 8
    header = json.loads(data[8 : 8 + size])
    meta = parse_metadata(header["__metadata__"]["inrcodec"])
    meta["encoder"] = encoder
    header["__metadata__"]["inrcodec"] = metadata_text(meta)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads its header to 8 bytes
    return len(raw).to_bytes(8, "little") + raw + data[8 + size :]
