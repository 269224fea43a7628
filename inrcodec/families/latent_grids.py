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
    from inrcodec.rate.latents import latent_owner

    return latent_owner(name) is not None


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
        typically costs, leave of it. A segmented model (models/segments.py) trains its
        segments one after another, each with its share of the time and of the bits, from
        the λ the previous one ended at."""
        from dataclasses import replace

        from inrcodec.rd_fitting import Target, fit_rd

        quality = options.target_psnr
        spare = None
        if budget is not None:
            weights = sum(p.numel() for name, p in model.named_parameters() if not is_latent(name))
            spare = 8 * (budget - HEADER_BYTES_ESTIMATE) - weights * BITS_PER_PARAMETER
        segments = model.segments()
        total = sum(count for _, _, count in segments)
        shares = [count / total for _, _, count in segments]
        lam = options.lam or LATENT_LAMBDA
        results: list[FitResult] = []
        for (part, first, count), share in zip(segments, shares, strict=True):
            target = Target(quality=quality)
            if spare is not None:
                bits = spare * share
                target = Target(bits=max(8.0, bits * LATENT_BUDGET_SHARE), limit=max(8.0, bits))
            part_options = options
            if options.time_budget is not None:
                part_options = replace(options, time_budget=options.time_budget * share)
            segment = job.part(first, count)
            result = fit_rd(
                part,
                segment.coords,
                segment.targets,
                part_options,
                lam,
                segment.quality,
                _shifted(on_progress, *_progress_after(results), options.time_budget),
                should_stop,
                target,
            )
            part.zero_grad(set_to_none=True)  # one segment's training state at a time
            results.append(replace(result, state={}) if len(segments) > 1 else result)
            lam = result.lam or lam
            if result.stop_reason == "interrupted":
                break
        return _combined(model, results, shares)

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


def _progress_after(results: list[FitResult]) -> tuple[int, float]:
    """Steps and seconds of the segments already trained."""
    return sum(r.steps for r in results), sum(r.seconds for r in results)


def _shifted(
    on_progress: ProgressCallback, steps: int, seconds: float, budget: float | None
) -> ProgressCallback:
    """Progress of one segment reported as the whole encode's: steps and time so far, and
    the whole time budget."""
    if on_progress is None:
        return None
    from dataclasses import replace

    def report(p: Any) -> None:
        on_progress(replace(p, step=p.step + steps, elapsed=p.elapsed + seconds, budget=budget))

    return report


def _combined(model: Any, results: list[FitResult], shares: list[float]) -> FitResult:
    """One result for the segments: the whole model's state, summed steps and seconds, the
    loss weighted by length, and the median λ (what the weights' steps are chosen at).
    Segments left untrained by an interruption keep zero latents: silence."""
    import statistics

    from inrcodec.fitting import FitResult

    if len(results) == 1 and len(shares) == 1:
        return results[0]
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    lams = [r.lam for r in results if r.lam is not None]
    return FitResult(
        state,
        sum(r.steps for r in results),
        sum(r.seconds for r in results),
        sum(r.best_loss * w for r, w in zip(results, shares, strict=False)),
        results[-1].stop_reason,
        compiled=any(r.compiled for r in results),
        lam=statistics.median(lams) if lams else None,
        warnings=tuple(dict.fromkeys(w for r in results for w in r.warnings)),
    )
