"""Checks and arithmetic that several medium handlers share, so that their messages agree."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from inrcodec.errors import InrcodecError, UsageError


def check_input_file(path: Path, kind: str) -> None:
    """Refuse a missing, directory or empty input before a decoder sees it; `kind` is e.g.
    "an image file"."""
    if not path.exists():
        raise InrcodecError(f"{path}: no such file")
    if path.is_dir():
        raise InrcodecError(f"{path}: is a directory, not {kind}")
    if path.stat().st_size == 0:
        raise InrcodecError(f"{path}: empty file")


def refuse_options(
    options: Iterable[str], allowed: set[str], medium: str, prefix: str = ""
) -> None:
    """A UsageError naming the CLI flags (`max_side` -> --max-side) among `options` that are
    not `allowed` for `medium` (plural, e.g. "images")."""
    names = ["--" + k.replace("_", "-") for k in options if k not in allowed]
    if names:
        verb = "does" if len(names) == 1 else "do"
        raise UsageError(f"{prefix}{', '.join(names)} {verb} not apply to {medium}")


def positive(value: float, flag: str, zero_ok: bool = False) -> float:
    """`value` as a float if it is a finite positive number (or zero, with `zero_ok`),
    else a UsageError naming `flag`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and (number > 0 or (zero_ok and number == 0))):
        what = "zero or a positive number" if zero_ok else "a positive number"
        raise UsageError(f"{flag} must be {what}, got {value}")
    return number


def known_rate(rate: float | None, what: str) -> float:
    """Audio and video always have a rate (`what`: "sample rate", "frame rate"); only a
    hand-made container could lack one."""
    if rate is None:
        raise InrcodecError(f"the model records no {what}")
    return rate


def retimed_length(samples: int, rate: float, new_rate: float) -> int:
    """Samples (or frames) that keep the duration at `new_rate`.

    A one-sample grid stays one sample: the model only ever saw t = 0, so other times
    would be extrapolation, not interpolation.
    """
    if samples == 1:
        return 1
    return max(1, round(samples * new_rate / rate))


def time_window(
    length: int, rate: float, start: float | None, duration: float | None, where: str = ""
) -> tuple[int, int]:
    """(first sample, sample count) of --start/--duration in seconds on an axis of `length`
    samples at `rate`, clipped to its end; `where` prefixes the messages (a file name)."""
    first = 0 if start is None else round(positive(start, "--start", zero_ok=True) * rate)
    if first >= length:
        raise UsageError(f"{where}--start {start} s is past the end ({length / rate:.3f} s)")
    count = length - first
    if duration is not None:
        wanted = round(positive(duration, "--duration") * rate)
        if wanted < 1:
            raise UsageError(f"--duration {duration} s is shorter than one sample at {rate:g} Hz")
        count = min(count, wanted)
    return first, count
