"""Pick a network size (and precision) for a quality or size target.

The size ladder runs from COIN-sized nets (Dupont et al. 2021: 10 layers of 28) up to
the references' 3×256, ordered by parameter count. Two searches use it:

- `smallest_reaching` (`--target-psnr DB` with the size left free): binary search for
  the smallest ladder size whose *stored* file decodes at ≥ DB. Each trial trains with
  early stopping at DB + `EARLY_STOP_MARGIN_DB` (rounding the weights to the stored
  precision costs a little). Assumes quality grows with size; ~log2(10) ≈ 3–4 trials.
- `best_under_bytes` (`--target-bpp R`): for each precision (fp16, int8, int6, int4),
  the largest ladder size whose unpacked file fits R·pixels/8 bytes; each distinct size is
  trained once and packaged at every precision that chose it; the best decoded PSNR
  among the files that fit wins. With the size pinned (`--width/--depth/--size-preset`),
  only the precision is searched.

Neither is exhaustive; both return every trial, which the CLI prints and `--json` lists.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inrcodec.errors import InrcodecError, UsageError

# name -> (hidden layers, width); ordered by parameter count (2-D input, 3 channels).
LADDER: dict[str, tuple[int, int]] = {
    "3x16": (3, 16),
    "3x24": (3, 24),
    "3x32": (3, 32),
    "coin": (8, 28),  # 10 weight matrices of width 28
    "3x48": (3, 48),
    "3x64": (3, 64),
    "3x96": (3, 96),
    "3x128": (3, 128),
    "3x192": (3, 192),
    "3x256": (3, 256),
}
SEARCH_PRECISIONS = ("fp16", "int8", "int6", "int4")
EARLY_STOP_MARGIN_DB = 0.2
ENCODER_FACTS_BYTES = 160  # header bytes the encoder facts (steps, seconds, metrics) add


def size_options(name: str) -> dict[str, int]:
    """`--size-preset NAME` as width/depth options."""
    if name not in LADDER:
        raise UsageError(f"unknown size preset {name!r} (choose from {', '.join(LADDER)})")
    depth, width = LADDER[name]
    return {"depth": depth, "width": width}


@dataclass
class Trial:
    size: str
    precision: str
    parameters: int
    file_bytes: int
    psnr: float
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


def _sized(options, name: str):
    """The options at ladder size `name` (one net: the ladder sizes are whole-signal nets)."""
    return dataclasses.replace(options, **size_options(name), size_preset=None, tile_size=None)


def _trial(name: str, candidate) -> Trial:
    return Trial(
        size=name,
        precision=candidate.inr.precision,
        parameters=candidate.inr.num_parameters,
        file_bytes=candidate.file_bytes,
        psnr=round(candidate.metrics["psnr"], 4),
        steps=candidate.result.steps,
        seconds=round(candidate.result.seconds, 2),
    )


class _Stopped(Exception):
    """`should_stop` turned true between two trials."""


def smallest_reaching(job, options, on_progress=None, should_stop=None):
    """(the chosen candidate, every trial): see the module docstring."""
    from inrcodec.codec import train_candidates

    names = list(LADDER)
    target = options.target_psnr
    tried: dict[int, Any] = {}
    trials: list[Trial] = []

    def reaches(index: int) -> bool:
        trial_options = dataclasses.replace(
            _sized(options, names[index]), target_psnr=target + EARLY_STOP_MARGIN_DB
        )
        if tried and should_stop is not None and should_stop():
            raise _Stopped
        candidate = train_candidates(
            job, trial_options, [options.precision], on_progress, should_stop
        )[0]
        tried[index] = candidate
        trial = _trial(names[index], candidate)
        trial.fits = trial.psnr >= target
        trials.append(trial)
        return trial.fits

    try:
        found = binary_search_smallest(len(names), reaches)
    except _Stopped:  # Ctrl-C: the smallest that reached the target so far, or the best
        reached = [i for i, t in zip(tried, trials, strict=True) if t.fits]
        found = min(reached) if reached else None
    if found is None:  # nothing reached the target: keep the best one tried
        found = max(tried, key=lambda i: tried[i].metrics["psnr"])
    return tried[found], trials


def best_under_bytes(job, options, budget: float, on_progress=None, should_stop=None):
    """(the chosen candidate, every trial): see the module docstring."""
    from inrcodec.codec import train_candidates

    names = list(LADDER) if options.size_search else ["pinned"]
    sizes = {name: _unpacked_bytes(job, options, name) for name in names}
    plan: dict[str, list[str]] = {}  # size -> precisions that chose it
    for precision in SEARCH_PRECISIONS:
        fitting = [n for n in names if sizes[n][precision] <= budget]
        if fitting:
            plan.setdefault(fitting[-1], []).append(precision)
    if not plan:
        smallest = min(sizes[names[0]].values())
        raise UsageError(
            f"--target-bpp allows {budget:.0f} bytes; the smallest file this search can "
            f"write needs about {smallest:.0f}"
        )
    trials: list[Trial] = []
    best = None
    for name, precisions in plan.items():
        if should_stop is not None and should_stop():
            break
        sized = options if name == "pinned" else _sized(options, name)
        for candidate in train_candidates(job, sized, precisions, on_progress, should_stop):
            trial = _trial(name, candidate)
            trial.fits = candidate.file_bytes <= budget
            trials.append(trial)
            if trial.fits and (best is None or trial.psnr > best.metrics["psnr"]):
                best = candidate
            if candidate.result.stop_reason == "interrupted":
                break
    if best is None:
        raise InrcodecError(f"no trial fitted {budget:.0f} bytes (see the trials)")
    return best, trials


def _unpacked_bytes(job, options, name: str) -> dict[str, int]:
    """Per search precision: the file size before lossless packing (which can only
    shrink it), plus a margin for the encoder facts written into the header after
    training. Freshly initialised weights stand in for the trained ones: they choose
    per-row scales alike."""
    from inrcodec import container
    from inrcodec.models import build_model

    sized = options if name == "pinned" else _sized(options, name)
    signal = job.signal
    hparams = sized.hyper_parameters(signal.medium, signal.grid_shape)
    model = build_model(sized.arch, len(signal.grid_shape), signal.num_channels, **hparams)
    state = {k: p.detach() for k, p in model.named_parameters()}
    return {
        precision: ENCODER_FACTS_BYTES
        + len(container.to_bytes(job.inr_file(sized.arch, hparams, precision, state), ("raw",)))
        for precision in SEARCH_PRECISIONS
    }
