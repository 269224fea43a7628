"""Latent grids + a small synthesis (`grid`): the file is mostly entropy-coded latents.

The same code serves signals of 1, 2 and 3 dimensions. Training minimises D + λ·R
(rd_fitting); a target steers λ while training, so the rate is met there, not by a
size. The latents are trained for integer rounding (step 1) and stored as trained; the
synthesis weights get their steps at the λ training ended at, so every part of the
file trades rate for distortion at the same slope, a budget only capping them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

LATENT_LAMBDA = 1e-3  # latent grids without a target: about 1.5 bpp on a Kodak photo
LATENT_BUDGET_SHARE = 0.97  # the controller aims a little under the budget


def is_latent(name: str) -> bool:
    from inrcodec.rate.latents import LATENTS_PREFIX

    return name.startswith(LATENTS_PREFIX)


class LatentGrids(Family):
    searches_ladder = False  # the grids follow the signal; λ meets a budget

    def fit(
        self,
        job: Job,
        options: EncodeOptions,
        model: Any,
        on_progress: ProgressCallback,
        should_stop: StopCheck,
        budget: float | None,
    ) -> FitResult:
        """Train on D + λ·R; a target steers λ (rd_fitting.Target). The latents' share of
        a byte budget is what the header and the network's weights, at the bits a weight
        typically costs, leave of it."""
        from inrcodec.rd_fitting import Target, fit_rd

        target = Target(quality=options.target_psnr)
        if budget is not None:
            weights = sum(p.numel() for name, p in model.named_parameters() if not is_latent(name))
            spare = 8 * (budget - HEADER_BYTES_ESTIMATE) - weights * BITS_PER_PARAMETER
            target = Target(bits=max(8.0, spare * LATENT_BUDGET_SHARE), limit=max(8.0, spare))
        lam = options.lam or LATENT_LAMBDA
        return fit_rd(
            model,
            job.coords,
            job.targets,
            options,
            lam,
            job.quality,
            on_progress,
            should_stop,
            target,
        )

    def fixed_tensors(self, names: list[str]) -> list[str]:
        return [n for n in names if is_latent(n)]

    def weight_bits(
        self, job: Job, fitted: Fitted, tables: dict, options: EncodeOptions, bits: float
    ) -> float:
        """The budget less the latents' bytes as the container writes them, the weights at
        the training's λ (a context model's steps change its predictions a little, hence
        the latents' bytes)."""
        from inrcodec import container
        from inrcodec.rate import steps

        samples = len(job.coords)
        exponents = steps.choose(tables, _lam(options, fitted), samples)
        names = [n for n, _ in fitted.model.named_parameters()]
        inr = job.inr_file(fitted.arch, fitted.hparams, container.CODED, fitted.result.state)
        inr.exponents = [exponents.get(n, 0) for n in names]
        container.to_bytes(inr)
        sizes = zip(inr.coding["n"], names, strict=True)
        return bits - 8 * sum(size for size, n in sizes if is_latent(n))

    def weight_steps(
        self,
        tables: dict,
        options: EncodeOptions,
        fitted: Fitted,
        samples: int,
        bits: float | None,
    ) -> dict[str, int]:
        """The steps at the λ training ended at; a budget only caps them."""
        from inrcodec.rate import steps

        exponents = steps.choose(tables, _lam(options, fitted), samples)
        if bits is not None and steps.total_bits(tables, exponents) > bits:
            exponents = steps.choose_within(tables, bits, samples)[0]
        return exponents


def _lam(options: EncodeOptions, fitted: Fitted) -> float:
    return fitted.result.lam or options.lam or LATENT_LAMBDA
