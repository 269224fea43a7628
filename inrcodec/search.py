"""Pick a network size (and precision) for a quality or size target.

Both searches walk the size ladder (ladder.py) and train through a callable they are
given, so they know nothing of media, containers or training; the quality they read is
the medium's own (`metric`: PSNR for images and video, SNR for audio), in dB.

- `smallest_reaching` (`--target-psnr DB` with the size left free): binary search for
  the smallest ladder size whose *stored* file decodes at ≥ DB. Each trial trains with
  early stopping at DB + `EARLY_STOP_MARGIN_DB` (rounding the weights to the stored
  precision costs a little). Assumes quality grows with size; ~log2(10) ≈ 3–4 trials.
- `best_under_bytes` (`--target-bpp R`, `--target-kbps R`): for each precision (fp16,
  int8, int6, int4), the largest size whose unpacked file fits the budget; each distinct
  size is trained once and packaged at every precision that chose it; the best decoded
  quality among the files that fit wins. With the size pinned (size None), only the
  precision is searched.

Neither is exhaustive; both return every trial, which the CLI prints and `--json` lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from inrcodec.errors import InrcodecError, UsageError
from inrcodec.ladder import LADDER

SEARCH_PRECISIONS = ("fp16", "int8", "int6", "int4")
EARLY_STOP_MARGIN_DB = 0.2

# (ladder size or None for the pinned size, precisions, stop-at quality) -> candidates, each
# with .inr, .data, .metrics and .result (codec.Candidate).
Train = Callable[[str | None, Sequence[str], float | None], list[Any]]
StopCheck = Callable[[], bool] | None


@dataclass
class Trial:
    size: str
    precision: str
    parameters: int
    file_bytes: int
    metric: str  # the medium's quality measure: "psnr" or "snr"
    quality: float  # dB
    steps: int
    seconds: float
    fits: bool = True  # within the byte budget (target-bpp), or reached the target (psnr)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def binary_search_smallest(count: int, reaches: Callable[[int], bool]) -> int | None:
    """Smallest index in range(count) where `reaches` holds, assuming it is monotone."""
    low, high, found = 0, count - 1, None
    while low <= high:
        middle = (low + high) // 2
        if reaches(middle):
            found, high = middle, middle - 1
        else:
            low = middle + 1
    return found


def _trial(size: str | None, candidate: Any, metric: str) -> Trial:
    return Trial(
        size=size or "pinned",
        precision=candidate.inr.precision,
        parameters=candidate.inr.num_parameters,
        file_bytes=candidate.file_bytes,
        metric=metric,
        quality=round(candidate.metrics[metric], 4),
        steps=candidate.result.steps,
        seconds=round(candidate.result.seconds, 2),
    )


class _Stopped(Exception):
    """`should_stop` turned true between two trials."""


def smallest_reaching(
    train: Train, target: float, precision: str, metric: str, should_stop: StopCheck = None
) -> tuple[Any, list[Trial]]:
    """(the chosen candidate, every trial): see the module docstring."""
    names = list(LADDER)
    tried: dict[int, Any] = {}
    trials: list[Trial] = []

    def reaches(index: int) -> bool:
        if tried and should_stop is not None and should_stop():
            raise _Stopped
        candidate = train(names[index], [precision], target + EARLY_STOP_MARGIN_DB)[0]
        tried[index] = candidate
        trial = _trial(names[index], candidate, metric)
        trial.fits = trial.quality >= target
        trials.append(trial)
        return trial.fits

    try:
        found = binary_search_smallest(len(names), reaches)
    except _Stopped:  # Ctrl-C: the smallest that reached the target so far, or the best
        reached = [i for i, t in zip(tried, trials, strict=True) if t.fits]
        found = min(reached) if reached else None
    if found is None:  # nothing reached the target: keep the best one tried
        found = max(tried, key=lambda i: tried[i].metrics[metric])
    return tried[found], trials


def best_under_bytes(
    train: Train,
    estimate: Callable[[str | None], dict[str, int]],
    budget: float,
    sizes: Sequence[str | None],
    metric: str,
    should_stop: StopCheck = None,
    flag: str = "--target-bpp",
) -> tuple[Any, list[Trial]]:
    """(the chosen candidate, every trial): see the module docstring. `flag` is the rate
    target's, for messages.

    `estimate(size)` gives each search precision's file size before lossless packing
    (which can only shrink it); `sizes` is the ladder, or [None] for the pinned size.
    """
    estimates = {size: estimate(size) for size in sizes}
    plan: dict[str | None, list[str]] = {}  # size -> precisions that chose it
    for precision in SEARCH_PRECISIONS:
        fitting = [s for s in sizes if estimates[s][precision] <= budget]
        if fitting:
            plan.setdefault(fitting[-1], []).append(precision)
    if not plan:
        smallest = min(estimates[sizes[0]].values())
        raise UsageError(
            f"{flag} allows {budget:.0f} bytes; the smallest file this search can "
            f"write needs about {smallest:.0f}"
        )
    trials: list[Trial] = []
    best = None
    for size, precisions in plan.items():
        if should_stop is not None and should_stop():
            break
        for candidate in train(size, precisions, None):
            trial = _trial(size, candidate, metric)
            trial.fits = candidate.file_bytes <= budget
            trials.append(trial)
            if trial.fits and (best is None or trial.quality > best.metrics[metric]):
                best = candidate
            if candidate.result.stop_reason == "interrupted":
                break
    if best is None:
        raise InrcodecError(f"no trial fitted {budget:.0f} bytes (see the trials)")
    return best, trials
