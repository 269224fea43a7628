"""Weight quantization and lossless packing for the container.

Which tensors are quantized: every weight tensor after the first layer. The first layer
and all biases stay fp16 (`kept_in_fp16`): the sine nets multiply their pre-activations by
ω0 = 30 (FINER by 30·(|z|+1) more), so an int8 step there becomes a large phase error.
Measured on a 2×24 FINER fit of a 32×32 crop (29.6 dB): int8 on the first-layer bias
alone costs 7.5 dB, on its weight 2.2 dB, on a hidden weight 0.01–0.09 dB. They are a
small share of the parameters (in·width + one value per unit).

Uniform symmetric quantization to `bits`-bit integers: q = round(w / s), clamped to
±(2^(bits-1) − 1), with an fp32 scale s = max|w| / (2^(bits-1) − 1) either for the whole
tensor or for each row, a row being a slice along the last axis (one output channel of a
Linear weight (out, in); of a tiled weight (tiles, out, in), one channel of one tile).
Each tensor takes whichever of the two reconstructs it with the lower squared error.
Dequantization is q·s in fp32, so every device decodes the same numbers.

`stored_rounding` gives, per parameter, what the file will decode to: quantization-aware
tuning rounds exactly that (integers where integers are stored, fp16 where fp16 is).

Packing: the stored payload is the bit-packed codes (or the raw floats), or a zlib or
LZMA stream of them, whichever is smallest for this file (`pack`).
"""

from __future__ import annotations

import lzma
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from inrcodec.errors import InrcodecError

INT_BITS = {"int8": 8, "int6": 6, "int4": 4}
# LZMA without the .xz wrapper (which costs ~60 bytes); the filter chain is fixed, so the
# decoder needs nothing from the file but the stream.
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
PACKINGS = ("raw", "zlib", "lzma")


def kept_in_fp16(names: Sequence[str]) -> list[bool]:
    """Per parameter (in `named_parameters()` order): stored fp16 rather than quantized?

    The first layer is every parameter sharing the first one's module path.
    """
    first_module = names[0].rsplit(".", 1)[0] + "." if names else ""
    return [name.startswith(first_module) or name.endswith("bias") for name in names]


def quantize(tensor: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, scales): int16 codes shaped like `tensor`; one scale, or one per row (a row
    is a slice along the last axis: an output channel of a Linear weight, of each tile's)."""
    qmax = 2 ** (bits - 1) - 1
    flat = tensor.detach().float()
    candidates = [flat.abs().amax().reshape(1)]
    if rows(flat.shape) > 1:
        candidates.append(flat.abs().reshape(-1, flat.shape[-1]).amax(dim=1))
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    for peaks in candidates:
        scales = peaks / qmax
        codes, restored = _codes(flat, scales, qmax)
        error = float(torch.sum((restored - flat) ** 2))
        if best is None or error < best[0]:
            best = (error, codes, scales)
    assert best is not None
    return best[1], best[2]


def _codes(
    values: torch.Tensor, scales: torch.Tensor, qmax: int
) -> tuple[torch.Tensor, torch.Tensor]:
    per_row = _broadcastable(scales, values.shape)
    safe = torch.where(per_row > 0, per_row, torch.ones_like(per_row))
    codes = torch.clamp(torch.round(values / safe), -qmax, qmax)
    return codes.to(torch.int16), codes * per_row


def dequantize(codes: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """fp32 values from `quantize`'s output (scales: one, or one per row)."""
    return codes.float() * _broadcastable(scales, codes.shape)


def rows(shape: Sequence[int]) -> int:
    """How many per-row scales a tensor of `shape` has (1-D tensors have one scale)."""
    return math.prod(shape[:-1]) if len(shape) >= 2 else 1


def _broadcastable(scales: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    return scales.reshape(*shape[:-1], 1) if len(scales) > 1 else scales


def fake_quantize(tensor: torch.Tensor, bits: int) -> torch.Tensor:
    """What the stored int tensor will decode to."""
    real = as_stored(tensor)
    restored = dequantize(*quantize(real, bits)).to(real.dtype)
    return from_stored(restored, tensor)


def fake_half(tensor: torch.Tensor) -> torch.Tensor:
    """What a tensor stored as fp16 will decode to."""
    real = as_stored(tensor)
    return from_stored(real.half().to(real.dtype), tensor)


def fake_step(tensor: torch.Tensor, exponent: int) -> torch.Tensor:
    """What a tensor stored at step 2^exponent decodes to (the auto precision, rate/):
    scaling by a power of two is exact, so this equals the decoder's codes · 2^exponent."""
    real = as_stored(tensor)
    return from_stored(torch.round(real * 2.0**-exponent) * 2.0**exponent, tensor)


def stored_rounding(
    names: Sequence[str], precision: str
) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Per parameter name: the function from its value to what the container stores and the
    decoder reads back at `precision` (fp32 parameters are stored exactly: not listed)."""
    if precision == "fp32":
        return {}
    if precision == "fp16":
        return dict.fromkeys(names, fake_half)
    bits = INT_BITS[precision]
    as_int = partial(fake_quantize, bits=bits)
    return {
        name: fake_half if keep else as_int
        for name, keep in zip(names, kept_in_fp16(names), strict=True)
    }


def as_stored(tensor: torch.Tensor) -> torch.Tensor:
    """A parameter as it is stored: complex ones as real numbers, each row's real/imaginary
    pairs laid out along the last axis (so a row keeps its own scale)."""
    if not tensor.is_complex():
        return tensor
    return torch.view_as_real(tensor).reshape(*tensor.shape[:-1], -1)


def stored_shape(tensor: torch.Tensor) -> tuple[int, ...]:
    shape = tuple(tensor.shape)
    return (*shape[:-1], 2 * shape[-1]) if tensor.is_complex() else shape


def from_stored(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of `as_stored` (a copy for complex parameters)."""
    if not like.is_complex():
        return values
    return torch.view_as_complex(values.reshape(*like.shape, 2).clone())


def _unsigned(codes: np.ndarray, bits: int) -> np.ndarray:
    """Signed codes as one byte each, offset by 2^(bits-1)."""
    return (codes.astype(np.int32) + (1 << (bits - 1))).astype(np.uint8)


def _signed(unsigned: np.ndarray, bits: int) -> np.ndarray:
    return unsigned.astype(np.int16) - (1 << (bits - 1))


def pack_bits(codes: np.ndarray, bits: int) -> bytes:
    """Signed codes -> `bits` bits each (offset by 2^(bits-1)), big-endian, zero-padded."""
    unsigned = _unsigned(codes, bits)
    if bits == 8:
        return unsigned.tobytes()
    planes = np.unpackbits(unsigned[:, None], axis=1)[:, 8 - bits :]
    return np.packbits(planes.reshape(-1)).tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of `pack_bits`: `count` signed codes as int16."""
    if len(data) != math.ceil(count * bits / 8):
        raise InrcodecError(f"packed weights hold {len(data)} bytes, expected {count} codes")
    raw = np.frombuffer(data, dtype=np.uint8)
    if bits == 8:
        unsigned = raw
    else:
        planes = np.unpackbits(raw)[: count * bits].reshape(count, bits)
        unsigned = np.packbits(np.pad(planes, ((0, 0), (8 - bits, 0))), axis=1)[:, 0]
    return _signed(unsigned, bits)


def compress(
    payload: bytes, alternative: bytes | None = None, allowed: Sequence[str] = PACKINGS
) -> tuple[str, bytes]:
    """The smallest allowed of `payload` as is and zlib/LZMA streams of `alternative`
    (default: the payload itself; codes compress better at one byte each than bit-packed)."""
    source = payload if alternative is None else alternative
    coders = {
        "raw": lambda: payload,
        "zlib": lambda: zlib.compress(source, 9),
        "lzma": lambda: lzma.compress(source, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS),
    }
    options = [(name, coders[name]()) for name in allowed]
    return min(options, key=lambda option: len(option[1]))


def decompress(packing: str, data: bytes, size: int) -> bytes:
    """Inverse of `compress` for a stream expected to expand to exactly `size` bytes.

    Reads at most `size + 1` bytes, so a hostile stream cannot expand without bound.
    """
    try:
        if packing == "zlib":
            inflater = zlib.decompressobj()
            out = inflater.decompress(data, size + 1)
        else:
            out = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_LZMA_FILTERS).decompress(
                data, size + 1
            )
    except (zlib.error, lzma.LZMAError) as exc:
        raise InrcodecError(f"corrupt {packing} weight stream ({exc})") from None
    if len(out) != size:
        raise InrcodecError(f"{packing} weight stream expands to {len(out)} bytes, not {size}")
    return out


@dataclass
class StoredInts:
    packing: str  # "raw", "zlib" or "lzma"
    payload: bytes  # the codes (bit-packed when raw), then the fp16-kept values
    scales: torch.Tensor  # fp32, one per "t" tensor, one per row of a "c" tensor
    layout: str  # per parameter: "t", "c" or "h" (kept fp16)


def store_quantized(
    params: Sequence[torch.Tensor], names: Sequence[str], bits: int, packings: Sequence[str]
) -> StoredInts:
    """Quantize `params` (real, in `names` order) for an int precision and pack them."""
    codes, scales, halves, layout = [], [], [], []
    for param, keep in zip(params, kept_in_fp16(names), strict=True):
        if keep:
            halves.append(param.reshape(-1).half())
            layout.append("h")
            continue
        tensor_codes, tensor_scales = quantize(param, bits)
        codes.append(tensor_codes.reshape(-1).numpy())
        scales.append(tensor_scales)
        layout.append("c" if len(tensor_scales) > 1 else "t")
    code_array = np.concatenate(codes or [np.zeros(0, dtype=np.int16)])
    half_bytes = torch.cat(halves or [torch.zeros(0, dtype=torch.float16)]).numpy().tobytes()
    packing, payload = compress(
        pack_bits(code_array, bits) + half_bytes,
        _unsigned(code_array, bits).tobytes() + half_bytes,
        packings,
    )
    return StoredInts(packing, payload, torch.cat(scales or [torch.zeros(0)]), "".join(layout))


def load_quantized(
    payload: bytes,
    packing: str,
    scales: torch.Tensor,
    layout: str,
    shapes: Sequence[tuple[int, ...]],
    bits: int,
) -> list[torch.Tensor]:
    """Inverse of `store_quantized`: fp32 tensors of `shapes`; refuses inconsistent input."""
    if len(layout) != len(shapes) or any(
        flag == "c" and len(shape) < 2 for flag, shape in zip(layout, shapes, strict=True)
    ):
        raise InrcodecError(f"scale layout {layout!r} does not fit the arch")
    n_codes = sum(math.prod(s) for s, f in zip(shapes, layout, strict=True) if f != "h")
    n_halves = sum(math.prod(s) for s, f in zip(shapes, layout, strict=True) if f == "h")
    needed = sum(
        rows(s) if f == "c" else 1 for s, f in zip(shapes, layout, strict=True) if f != "h"
    )
    if len(scales) != needed:
        raise InrcodecError(f"{len(scales)} scales stored, the layout needs {needed}")
    if not (torch.isfinite(scales).all() and (scales >= 0).all()):
        raise InrcodecError("scales must be finite and non-negative")
    if packing == "raw":
        packed = math.ceil(n_codes * bits / 8)
        codes = unpack_bits(payload[:packed], bits, n_codes)
        half_bytes = payload[packed:]
    else:
        payload = decompress(packing, payload, n_codes + 2 * n_halves)
        codes = _signed(np.frombuffer(payload[:n_codes], dtype=np.uint8), bits)
        half_bytes = payload[n_codes:]
    if len(half_bytes) != 2 * n_halves:
        raise InrcodecError(f"packed weights hold {len(payload)} bytes, the arch needs more")
    halves = torch.frombuffer(bytearray(half_bytes), dtype=torch.float16).float()
    if not torch.isfinite(halves).all():
        raise InrcodecError("weights contain NaN or Inf")
    codes_t = torch.from_numpy(codes.astype(np.int16))
    values, at_code, at_half, at_scale = [], 0, 0, 0
    for shape, flag in zip(shapes, layout, strict=True):
        n = math.prod(shape)
        if flag == "h":
            values.append(halves[at_half : at_half + n].reshape(shape))
            at_half += n
            continue
        count = rows(shape) if flag == "c" else 1
        piece = codes_t[at_code : at_code + n].reshape(shape)
        values.append(dequantize(piece, scales[at_scale : at_scale + count]))
        at_code, at_scale = at_code + n, at_scale + count
    return values
