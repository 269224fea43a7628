"""Integer codes of a tensor and their entropy coding, exact on every machine.

Quantization uses power-of-two steps, step = 2^e: `codes = round(values / step)` and
dequantization `codes · step` are exact in fp32 (|codes| < 2^24), so every device
decodes the same numbers from the same integers.

Entropy coding: each tensor's integers are range-coded (`constriction`) under a two-sided
geometric model, p(k) ∝ r^|k| on [−K, K] — the discrete Laplace that network weights and
latents follow. Its two parameters are integers (K = max |k|, and r as m / 2^16), and the
frequency table is built from them with integer arithmetic, so encoder and decoder build
the same model bit for bit, whatever the platform's floating-point library. Each tensor
is also packed as LZMA of its bytes, and the smaller of the two is kept (`coder` says
which). No float parameter enters the decoder's model.
"""

from __future__ import annotations

import lzma
import math
from dataclasses import dataclass

import numpy as np

from inrcodec.errors import InrcodecError

# ctx: latents under a context model (latents.py); nbr, ilv, ilh: predicted latents
# (neighbours.py)
CODERS = ("geo", "lzma", "ctx", "nbr", "ilv", "ilh", "ilp")
DECAY_BITS = 16  # r = decay / 2^16
MAX_BOUND = 1 << 15  # K: codes stay within int16, and the model table small
MAX_EXPONENT, MIN_EXPONENT = 8, -30  # step = 2^e with e in this range
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
_TABLE_ONE = 1 << 40  # the model's frequency at k = 0


def to_codes(values: np.ndarray, exponent: int) -> np.ndarray:
    """round(values / 2^exponent) as int32 (exact: the division is by a power of two)."""
    return np.rint(np.ldexp(values.astype(np.float64), -exponent)).astype(np.int64).astype(np.int32)


def from_codes(codes: np.ndarray, exponent: int) -> np.ndarray:
    """codes · 2^exponent in fp32 (exact for |codes| < 2^24)."""
    return np.ldexp(codes.astype(np.float32), exponent).astype(np.float32)


@dataclass(frozen=True)
class Coded:
    """One tensor's integers as stored: the coder, its integer parameters, the bytes."""

    coder: str  # "geo" (range-coded two-sided geometric), "lzma", or one of latents' coders
    bound: int  # K = max |code|
    decay: int  # geo: r = decay / 2^16 (lzma: 0)
    data: bytes


def decay_for(codes: np.ndarray) -> int:
    """The maximum-likelihood r of a two-sided geometric law, as m / 2^16.

    With a = mean |k|, E|k| = 2r / (1 − r²) gives r = (√(1 + a²) − 1) / a."""
    a = float(np.mean(np.abs(codes))) if codes.size else 0.0
    r = 0.0 if a == 0 else (math.sqrt(1 + a * a) - 1) / a
    return min((1 << DECAY_BITS) - 1, max(0, round(r * (1 << DECAY_BITS))))


def geometric_table(bound: int, decay: int) -> np.ndarray:
    """Probabilities of −K..K, from integers only: f(0) = 2^40, f(j) = f(j−1)·m >> 16 (at
    least 1), normalised. The float division is correctly rounded, hence reproducible."""
    half = _frequencies(bound, decay)
    table = np.concatenate([half[:0:-1], half])
    return table / table.sum()


def half_centred_table(bound: int, decay: int) -> np.ndarray:
    """The same law centred halfway between two integers: probabilities of −K..K+1, where
    −j and j + 1 (distance j + ½ from the centre) both take f(j)."""
    half = _frequencies(bound, decay)
    table = np.concatenate([half[::-1], half])
    return table / table.sum()


def _frequencies(bound: int, decay: int) -> np.ndarray:
    frequencies = [_TABLE_ONE]
    for _ in range(bound):
        frequencies.append(max(1, (frequencies[-1] * decay) >> DECAY_BITS))
    return np.array(frequencies, dtype=np.float64)


def estimated_bits(codes: np.ndarray) -> float:
    """Bits the range coder will spend on `codes` (its model's ideal code length; the
    coder adds at most a few words). Fast enough to call inside a search."""
    codes = np.asarray(codes).reshape(-1)
    bound = int(np.abs(codes).max()) if codes.size else 0
    if bound == 0:
        return 0.0
    table = geometric_table(bound, decay_for(codes))
    return float(-np.log2(table[codes + bound]).sum())


def _model(bound: int, decay: int):
    import constriction

    return constriction.stream.model.Categorical(geometric_table(bound, decay), perfect=False)


def _geo_bytes(codes: np.ndarray, bound: int, decay: int) -> bytes:
    import constriction

    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode((codes + bound).astype(np.int32), _model(bound, decay))
    return encoder.get_compressed().astype("<u4").tobytes()


def _lzma_bytes(codes: np.ndarray, bound: int) -> bytes:
    dtype = "<i1" if bound < 128 else "<i2"
    return lzma.compress(codes.astype(dtype).tobytes(), lzma.FORMAT_RAW, filters=_LZMA_FILTERS)


def encode(codes: np.ndarray, lzma_too: bool = True) -> Coded:
    """The smaller of the range-coded and (unless not `lzma_too`) the LZMA form of `codes`
    (int, |codes| ≤ 2^15)."""
    codes = np.asarray(codes).reshape(-1)
    bound = int(np.abs(codes).max()) if codes.size else 0
    if bound > MAX_BOUND:
        raise ValueError(f"codes reach {bound}, beyond ±{MAX_BOUND}: choose a coarser step")
    if bound == 0:  # all zeros: the parameters say everything
        return Coded("geo", 0, 0, b"")
    decay = decay_for(codes)
    options = [Coded("geo", bound, decay, _geo_bytes(codes, bound, decay))]
    if lzma_too:
        options.append(Coded("lzma", bound, 0, _lzma_bytes(codes, bound)))
    return min(options, key=lambda coded: len(coded.data))


def decode(coded: Coded, count: int) -> np.ndarray:
    """`count` int32 codes back from `coded`; refuses parameters or data that cannot be
    what `encode` wrote."""
    check_parameters(coded.coder, coded.bound, coded.decay)
    if coded.bound == 0 and coded.coder == "geo":
        if coded.data:
            raise InrcodecError("an all-zero tensor stores no bytes")
        return np.zeros(count, dtype=np.int32)
    if coded.coder in ("ctx", "nbr", "ilv", "ilh", "ilp"):
        raise InrcodecError("these latents decode with their coarser grid (rate/latents.py)")
    codes = _decode_geo(coded, count) if coded.coder == "geo" else _decode_lzma(coded, count)
    if codes.size and int(np.abs(codes).max()) > coded.bound:
        raise InrcodecError(f"decoded codes exceed their bound ±{coded.bound}")
    return codes


def check_parameters(coder: object, bound: object, decay: object) -> None:
    """Validate a coder's parameters (from an untrusted header) before any use."""
    if coder not in CODERS:
        raise InrcodecError(f"unknown entropy coder {coder!r}")
    if not (_is_int(bound) and 0 <= bound <= MAX_BOUND):
        raise InrcodecError(f"code bound {bound!r} is out of range")
    if not (_is_int(decay) and 0 <= decay < (1 << DECAY_BITS)):
        raise InrcodecError(f"geometric decay {decay!r} is out of range")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_geo(coded: Coded, count: int) -> np.ndarray:
    import constriction

    if len(coded.data) % 4:
        raise InrcodecError("range-coded stream is not a whole number of 32-bit words")
    words = np.frombuffer(coded.data, dtype="<u4").astype(np.uint32)
    try:
        decoder = constriction.stream.queue.RangeDecoder(words)
        symbols = decoder.decode(_model(coded.bound, coded.decay), count)
    except Exception as exc:  # constriction reports corrupt streams with its own types
        raise InrcodecError(f"corrupt range-coded stream ({exc})") from None
    return symbols.astype(np.int32) - coded.bound


def _decode_lzma(coded: Coded, count: int) -> np.ndarray:
    width = 1 if coded.bound < 128 else 2
    try:
        raw = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=_LZMA_FILTERS).decompress(
            coded.data, count * width + 1
        )
    except lzma.LZMAError as exc:
        raise InrcodecError(f"corrupt lzma stream ({exc})") from None
    if len(raw) != count * width:
        raise InrcodecError(f"lzma stream holds {len(raw)} bytes, expected {count * width}")
    return np.frombuffer(raw, dtype="<i1" if width == 1 else "<i2").astype(np.int32)
