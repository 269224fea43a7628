"""Audio files <-> `Signal` through soundfile (libsndfile): WAV, FLAC and OGG in, WAV and FLAC out.

Samples are float amplitudes, as soundfile delivers them: n-bit PCM is divided by
2^(n-1), so full scale is [-1, 1) and the sym-power soft boundary L, R is in amplitude
units, as in the reference. Every channel is one network output. The grid is (T,), one
coordinate per sample, and `Signal.rate` is the sample rate in Hz.

Bit depths: 8, 16 and 24-bit PCM are kept on output; float sources (and 32-bit PCM, which
float32 holds just as well) are 32; lossy and companded sources (Vorbis, Opus, µ-law...)
count as 16-bit. An output's integer samples are rounded from the decoded amplitudes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from inrcodec.atomic import atomic_output
from inrcodec.errors import InrcodecError, UsageError, one_line
from inrcodec.media.base import MediumHandler, OutputFormat, Signal
from inrcodec.media.helpers import (
    check_input_file,
    known_rate,
    positive,
    refuse_options,
    retimed_length,
    time_window,
)
from inrcodec.media.registry import register_medium
from inrcodec.metrics import mse, si_snr_db, snr_db, stoi

# A float32 copy of 2**26 samples is 256 MiB, about 23 minutes of 48 kHz mono; an INR
# fitted to more takes days on a CPU. --start/--duration pick a part.
MAX_SAMPLES = 2**26
MAX_CHANNELS = 64  # the container's limit on network outputs
FLOAT_BITS = 32  # bit depth recorded for float sources

_SUBTYPE_BITS = {
    "PCM_S8": 8,
    "PCM_U8": 8,
    "PCM_16": 16,
    "PCM_24": 24,
    "PCM_32": FLOAT_BITS,
    "FLOAT": FLOAT_BITS,
    "DOUBLE": FLOAT_BITS,
}
# Output subtype per (format, bit depth): the source depth where the format allows it.
_SUBTYPES = {
    "WAV": {8: "PCM_U8", 16: "PCM_16", 24: "PCM_24", FLOAT_BITS: "FLOAT"},
    "FLAC": {8: "PCM_S8", 16: "PCM_16", 24: "PCM_24", FLOAT_BITS: "PCM_24"},  # no float FLAC
}
_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


def _bits(subtype: str) -> int:
    return _SUBTYPE_BITS.get(subtype, 16)


def _channel_name(count: int) -> str:
    return "mono" if count == 1 else f"{count}ch"


def _sound_error(path: Path, exc: Exception) -> InrcodecError:
    """libsndfile's message, without its own "Error opening 'path': " prefix."""
    text = one_line(exc)
    if text.startswith("Error opening"):
        text = text.split(": ", 1)[-1]
    return InrcodecError(f"{path}: not a readable audio file ({text})")


def read_audio(
    path: str | Path, start: float | None = None, duration: float | None = None
) -> Signal:
    """Read an audio file (or the part --start/--duration select) as a float32 (T, C) signal.

    A float source may exceed [-1, 1]; its value range then grows to its peak, so decoding
    does not clip what the file holds. NaN or infinite samples are refused.
    """
    path = Path(path)
    check_input_file(path, "an audio file")
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError) as exc:
        raise _sound_error(path, exc) from exc
    if info.frames <= 0:
        raise InrcodecError(f"{path}: audio file has no samples")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise InrcodecError(f"{path}: {info.channels} channels (at most {MAX_CHANNELS})")
    first, count = time_window(info.frames, info.samplerate, start, duration, f"{path}: ")
    if count * info.channels > MAX_SAMPLES:
        raise InrcodecError(
            f"{path}: {count / info.samplerate:.0f} s x {info.channels} channels is over "
            f"{MAX_SAMPLES:,} samples; pick a part with --start/--duration"
        )
    try:
        values, rate = sf.read(
            str(path), start=first, frames=count, dtype="float32", always_2d=True
        )
    except (sf.SoundFileError, RuntimeError) as exc:
        raise _sound_error(path, exc) from exc
    if len(values) == 0:
        raise InrcodecError(f"{path}: no samples could be decoded (truncated file?)")
    if not np.isfinite(values).all():
        raise InrcodecError(f"{path}: audio contains NaN or infinite samples")
    bit_depth = _bits(info.subtype)
    peak = max(1.0, float(np.abs(values).max())) if bit_depth == FLOAT_BITS else 1.0
    return Signal(
        medium="audio",
        values=np.ascontiguousarray(values),
        channels=_channel_name(info.channels),
        value_range=(-peak, peak),
        bit_depth=bit_depth,
        rate=float(rate),
        source=str(path),
    )


def audio_to_output(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """Amplitudes -> what is written: float32 for float depths, else int32 full scale.

    n-bit samples are rounded to n bits and shifted to the top of an int32, which is how
    libsndfile maps int32 onto every PCM width (and back: sample / 2^31). NaN, which a
    diverged model can produce, becomes silence.
    """
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    if bit_depth >= FLOAT_BITS:
        return values.astype(np.float32)
    full = 2.0 ** (bit_depth - 1)
    quantized = np.clip(np.rint(values * full), -full, full - 1)
    return (quantized * 2.0 ** (32 - bit_depth)).astype(np.int32)


def output_amplitudes(values: np.ndarray) -> np.ndarray:
    """The inverse of `audio_to_output`: float64 amplitudes, as soundfile would read them."""
    if values.dtype == np.int32:
        return values / 2.0**31
    return values.astype(np.float64)


def write_audio(
    path: str | Path, values: np.ndarray, bit_depth: int, rate: float, force: bool = False
) -> None:
    """Write (T, C) samples from `audio_to_output` atomically; the format follows the suffix."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InrcodecError(f"{path}: unknown audio extension (use .wav or .flac)")
    table = _SUBTYPES[fmt]
    subtype = table[min(table, key=lambda bits: abs(bits - bit_depth))]  # any depth a file holds
    with atomic_output(path, force) as tmp:
        try:
            sf.write(str(tmp), values, round(rate), subtype=subtype, format=fmt)
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            raise InrcodecError(f"{path}: cannot write {fmt} ({one_line(exc)})") from exc


@register_medium
class AudioHandler(MediumHandler):
    medium = "audio"
    extensions = frozenset({".wav", ".flac", ".ogg"})
    output_suffix = ".wav"
    quality_key = "snr"

    def reference_power(self, signal: Signal) -> float:
        """Mean square amplitude: the training quality is then the SNR that eval reports."""
        return float(np.mean(signal.values.astype(np.float64) ** 2))

    def read(self, path: Path, **selection) -> Signal:
        refuse_options(selection, {"start", "duration"}, "audio", f"{path}: ")
        return read_audio(path, **selection)

    def read_reference(
        self, path: Path, shape: tuple[int, ...], rate: float | None, selection: dict
    ) -> Signal:
        """The same part of `path` as encode read (start and duration come from the
        container); a different rate or length is refused rather than resampled, because
        it means a different recording or cut."""
        rate = known_rate(rate, "sample rate")
        part = {k: v for k, v in selection.items() if k in ("start", "duration")}
        reference = self.read(path, **part)
        if reference.rate != rate:
            raise InrcodecError(
                f"{path}: is {reference.rate:g} Hz audio; the model holds {rate:g} Hz "
                "(evaluate against the file that was encoded)"
            )
        if reference.grid_shape != tuple(shape):
            have, want = reference.grid_shape[0], shape[0]
            raise InrcodecError(
                f"{path}: holds {have:,} samples ({have / rate:.3f} s) where the model holds "
                f"{want:,} ({want / rate:.3f} s); evaluate against the file that was encoded"
            )
        return reference

    def output_shape(
        self, shape: tuple[int, ...], rate: float | None, request: dict
    ) -> tuple[tuple[int, ...], float | None]:
        refuse_options(request, {"scale", "rate"}, "audio")
        if "scale" in request and "rate" in request:
            raise UsageError("give --rate or --scale, not both")
        rate = known_rate(rate, "sample rate")
        if "rate" in request:
            new_rate = positive(request["rate"], "--rate")
            if not new_rate.is_integer():
                raise UsageError(f"--rate must be a whole number of Hz, got {request['rate']}")
        else:
            new_rate = round(rate * positive(request.get("scale", 1.0), "--scale"))
            if new_rate < 1:
                raise UsageError(f"--scale {request['scale']} leaves less than 1 Hz")
        return (retimed_length(shape[0], rate, new_rate),), float(new_rate)

    def output_dtype(self, bit_depth: int) -> np.dtype:
        return np.dtype(np.float32 if bit_depth >= FLOAT_BITS else np.int32)

    def to_output(self, raw: np.ndarray, bit_depth: int) -> np.ndarray:
        return audio_to_output(raw, bit_depth)

    def write(
        self, path: Path, values: np.ndarray, output_format: OutputFormat, *, force: bool
    ) -> None:
        rate = known_rate(output_format.rate, "sample rate")
        write_audio(path, values, output_format.bit_depth, rate, force)

    def metrics(self, reference: Signal, decoded: np.ndarray) -> dict[str, float]:
        """SNR, true SI-SNR (with the projection), STOI and MSE of what is written (the
        decoded samples at the output bit depth) against the reference amplitudes."""
        ref, est = reference.values, output_amplitudes(decoded)  # metrics widen by chunks
        return {
            "snr": snr_db(ref, est),
            "si_snr": si_snr_db(ref, est),
            "stoi": stoi(ref, est, known_rate(reference.rate, "sample rate")),
            "mse": mse(ref, est),
        }

    def rate_metrics(
        self, file_bytes: int, shape: tuple[int, ...], channels: int, rate: float | None
    ) -> dict[str, float]:
        seconds = shape[0] / known_rate(rate, "sample rate")
        return {
            "bytes": float(file_bytes),
            "bps": 8.0 * file_bytes / seconds,
            "bits_per_sample": 8.0 * file_bytes / (shape[0] * channels),
        }
