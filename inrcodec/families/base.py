"""The interface every model family implements, and what packaging needs of a fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inrcodec.codec import Job
    from inrcodec.fitting import FitResult
    from inrcodec.options import EncodeOptions

ProgressCallback = Callable[[Any], None] | None  # called with fitting.Progress
StopCheck = Callable[[], bool] | None

HEADER_BYTES_ESTIMATE = 300  # packed header and encoder facts of an auto file (format 5)
BITS_PER_PARAMETER = 6.0  # what a network weight costs in the auto precision, roughly


@dataclass
class Fitted:
    """A trained network: what packaging needs of it."""

    arch: str
    hparams: dict[str, Any]
    model: Any
    result: Any  # fitting.FitResult


class Family:
    """How one kind of network is fitted, sized and given its quantization steps. The
    defaults are those of a family whose every tensor gets a step chosen for it."""

    # Whether a target without a given size searches the size ladder (several trainings).
    searches_ladder: bool

    def sized_for_budget(self, job: Job, options: EncodeOptions, budget: float) -> EncodeOptions:
        """`options` with a network sized to fill `budget` bytes at the auto precision."""
        return options

    def fit(
        self,
        job: Job,
        options: EncodeOptions,
        model: Any,
        on_progress: ProgressCallback,
        should_stop: StopCheck,
        budget: float | None,
    ) -> FitResult:
        """Train `model` on the job's signal (towards `budget` bytes, if given)."""
        raise NotImplementedError

    def fixed_tensors(self, names: list[str]) -> list[str]:
        """The parameters stored as trained, at step 1: no step is chosen for them."""
        return []

    def weight_bits(
        self, job: Job, fitted: Fitted, tables: dict, options: EncodeOptions, bits: float
    ) -> float:
        """Of `bits` (a budget less the header), what the chosen-step tensors may spend."""
        return bits

    def weight_steps(
        self,
        tables: dict,
        options: EncodeOptions,
        fitted: Fitted,
        samples: int,
        bits: float | None,
    ) -> dict[str, int]:
        """The step exponent of each chosen-step tensor (`tables`: rate.steps.measure)."""
        raise NotImplementedError
