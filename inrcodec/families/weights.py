"""Weight-only networks (SIREN, FINER, SPDER, SL2A, tiled or not): the file is the weights.

A rate is met by the network's size: `--target-bpp` trains the widest network whose
weights fit the budget at the bits a weight typically costs, and the steps per tensor
then meet it exactly (they fill the budget). Without a budget, the steps follow
`--target-psnr` (the fewest bits whose estimated quality reaches it) or `--lambda`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from inrcodec.errors import UsageError
from inrcodec.families.base import (
    BITS_PER_PARAMETER,
    HEADER_BYTES_ESTIMATE,
    Family,
    Fitted,
    ProgressCallback,
    StopCheck,
)

if TYPE_CHECKING:
    from inrcodec.codec import Job
    from inrcodec.fitting import FitResult
    from inrcodec.options import EncodeOptions

MAX_BUDGET_WIDTH = 512


class WeightOnly(Family):
    searches_ladder = True

    def sized_for_budget(self, job: Job, options: EncodeOptions, budget: float) -> EncodeOptions:
        """The widest network (depth and tiles as given) whose parameters, at the bits a
        parameter typically costs in the auto precision, fit `budget` bytes: `--target-bpp`
        trains a network made for its budget, and the step choice then meets it exactly."""
        from inrcodec.models import count_parameters
        from inrcodec.search import binary_search_smallest

        signal = job.signal
        usable_bits = 8 * (budget - HEADER_BYTES_ESTIMATE)

        def fits(width: int) -> bool:
            hp = replace(options, width=width, size_preset=None).hyper_parameters(
                signal.medium, signal.grid_shape
            )
            count = count_parameters(
                options.arch, len(signal.grid_shape), signal.num_channels, **hp
            )
            return count * BITS_PER_PARAMETER <= usable_bits

        too_wide = binary_search_smallest(MAX_BUDGET_WIDTH, lambda i: not fits(i + 1))
        width = MAX_BUDGET_WIDTH if too_wide is None else too_wide  # widths are index + 1
        if width < 1:
            raise UsageError(
                f"--target-bpp allows {budget:.0f} bytes; even the smallest file of this "
                "arch would need more"
            )
        return replace(options, width=width, size_preset=None)

    def fit(
        self,
        job: Job,
        options: EncodeOptions,
        model: Any,
        on_progress: ProgressCallback,
        should_stop: StopCheck,
        budget: float | None,
    ) -> FitResult:
        from inrcodec.fitting import fit

        return fit(
            model,
            job.coords,
            job.targets,
            options,
            job.quality,
            on_progress,
            should_stop=should_stop,
        )

    def weight_steps(
        self,
        tables: dict,
        options: EncodeOptions,
        fitted: Fitted,
        samples: int,
        bits: float | None,
    ) -> dict[str, int]:
        """A budget is filled; else the fewest bits that keep `--target-psnr`; else the
        steps at `--lambda`."""
        from inrcodec.rate import steps

        if bits is not None:
            return steps.choose_within(tables, bits, samples)[0]
        if options.target_psnr is not None and options.lam is None:
            most = 10 ** (-options.target_psnr / 10)
            return steps.choose_for_distortion(tables, most, samples)[0]
        return steps.choose(tables, options.lam or steps.DEFAULT_LAMBDA, samples)
