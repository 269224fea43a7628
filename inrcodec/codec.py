"""The codec: encode a media file into a `.inr`, decode it at any resolution, evaluate it.

Encoding reads in one direction: `prepare` (read and transform the input once) → `fit`
(train a network) → `package` (round to the stored precision, serialize) → `judge`
(decode the serialized bytes as `decode` does and measure) → annotate the header with
what was measured → write. Searches (search.py) repeat the middle steps per trial.

This is the library behind the CLI. It never prints and never exits; progress goes
through a callback and problems are raised as `InrcodecError`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from inrcodec import __version__, container, search
from inrcodec.atomic import ensure_writable
from inrcodec.errors import InrcodecError, UsageError
from inrcodec.families import Family, Fitted, family_for
from inrcodec.families.base import HEADER_BYTES_ESTIMATE, ProgressCallback, StopCheck
from inrcodec.ladder import LADDER, size_options
from inrcodec.media import OutputFormat, Signal, handler_for_medium, handler_for_path
from inrcodec.models import build_model
from inrcodec.options import DEFAULT_MAX_PIXELS, EncodeOptions


@dataclass
class EncodeReport:
    input: str
    output: str
    medium: str
    arch: str
    transform: str
    parameters: int
    precision: str
    file_bytes: int
    header_bytes: int
    steps: int
    seconds: float
    device: str
    stop_reason: str
    compiled: bool  # whether torch.compile ran the training steps
    metrics: dict[str, float]
    # Latent grids: the λ of D + λ·R the training ended at (where a target steered it):
    # `--lambda` at this value trains towards about the same rate without steering.
    lam: float | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)  # a size/precision search
    warnings: list[str] = field(default_factory=list)  # what the user should know of the file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pick_device(name: str) -> str:
    """Resolve `auto` to CUDA, then MPS, then CPU; refuse a device that is not there."""
    import torch

    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": has_mps}
    if name not in available:
        raise UsageError(f"unknown device {name!r} (choose auto, cpu, cuda or mps)")
    if not available[name]:
        raise InrcodecError(f"device {name!r} is not available on this machine")
    return name


def default_output(src: Path, suffix: str) -> Path:
    return src.with_name(src.stem + suffix)


@dataclass
class Job:
    """One input, read and transformed once, shared by every trial of an encode."""

    signal: Signal
    handler: Any
    device: str
    transform: Any
    scalars: dict[str, float]
    coords: Any  # torch tensors, on `device`
    targets: Any
    raw: Any  # the signal's values (N, C) in raw units, on `device`

    def raw_mse(self, pred: Any, raw: Any = None) -> float:
        """MSE in raw units of a transformed-domain prediction (of every grid point, or of
        the points whose raw values `raw` are given), after the inverse transform."""
        import torch

        low, high = self.signal.value_range
        restored = self.transform.inverse(pred, self.scalars).clamp(low, high)
        return torch.mean((restored - (self.raw if raw is None else raw)) ** 2).item()

    def quality(self, pred: Any) -> float:
        """The medium's quality in dB of a full-grid prediction: what `eval` reports (PSNR,
        or SNR for audio), so that training targets and searches read the same number."""
        mse = self.raw_mse(pred)
        power = self.handler.reference_power(self.signal)
        if mse == 0:
            return math.inf
        return 10 * math.log10(power / mse) if power > 0 else -math.inf  # silent reference

    def hyper_parameters(self, options: EncodeOptions) -> dict[str, Any]:
        """The arch's keyword set for this input: the recipe's, sized to the signal, with
        the clip's global motion where the recipe tracks it and the arch can follow it."""
        from inrcodec.models.motion import track

        signal = self.signal
        hparams = options.hyper_parameters(signal.medium, signal.grid_shape, signal.rate)
        follows = "motion" in hparams and "motion" not in options.arch_options
        if options.track_motion and follows and len(signal.grid_shape) == 3:
            hparams["motion"] = track(signal.values)
        return hparams

    def part(self, first: int, count: int) -> Job:
        """Samples first … first + count − 1 of the first axis as a job of their own, with
        the whole signal's transform and scalars: what a segment is trained on."""
        from inrcodec.coords import grid_coords

        shape = self.signal.grid_shape
        if first == 0 and count == shape[0]:
            return self
        stride = math.prod(shape[1:])
        rows = slice(first * stride, (first + count) * stride)
        signal = replace(self.signal, values=self.signal.values[first : first + count])
        coords = grid_coords(signal.grid_shape, self.device)
        return replace(
            self, signal=signal, coords=coords, targets=self.targets[rows], raw=self.raw[rows]
        )

    def inr_file(
        self, arch: str, hparams: dict[str, Any], precision: str, state: dict[str, Any]
    ) -> container.InrFile:
        """A container for these parameters of a network fitted to this input."""
        signal = self.signal
        return container.InrFile(
            medium=signal.medium,
            arch=arch,
            hparams=hparams,
            out_features=signal.num_channels,
            transform=self.transform.name,
            scalars=self.scalars,
            shape=list(signal.grid_shape),
            channels=signal.channels,
            value_range=signal.value_range,
            bit_depth=signal.bit_depth,
            precision=precision,
            rate=signal.rate,
            state=state,
        )


@dataclass
class Candidate:
    """A trained network packaged at one precision, with what its decode measures."""

    inr: container.InrFile
    data: bytes  # the file as it will be written, header facts included
    metrics: dict[str, Any]
    result: Any  # fitting.FitResult

    @property
    def file_bytes(self) -> int:
        return len(self.data)


def prepare(src: Path, options: EncodeOptions) -> Job:
    """Read and transform the input once, for one or several trainings."""
    handler = handler_for_path(src)
    return job_for(handler.read(src, **options.selection()), options)


def job_for(signal: Signal, options: EncodeOptions) -> Job:
    """A signal already in memory, transformed and laid on its grid for training."""
    import torch

    from inrcodec.coords import grid_coords
    from inrcodec.transforms import get_transform

    handler = handler_for_medium(signal.medium)
    device = pick_device(options.device)
    transform = get_transform(options.transform)
    raw = torch.from_numpy(signal.values).reshape(-1, signal.num_channels)
    scalars = transform.fit(raw)
    targets = transform.forward(raw, scalars).to(device)
    coords = grid_coords(signal.grid_shape, device)
    return Job(signal, handler, device, transform, scalars, coords, targets, raw.to(device))


def encode_file(
    src: Path,
    dst: Path,
    options: EncodeOptions,
    force: bool = False,
    on_progress: ProgressCallback = None,
    should_stop: StopCheck = None,
) -> EncodeReport:
    """Fit an INR to `src` and write it to `dst` (atomically).

    With a rate target (`target_bpp`, `target_kbps`), or `target_psnr` and `size_search`,
    several sizes and precisions are tried (search.py) and the chosen one is written; the
    report lists every trial.
    If `should_stop` turns true, training ends and the best model so far is written,
    marked partial in its metadata (`EncodeReport.stop_reason == "interrupted"`).
    """
    job = prepare_checked(src, dst, options, force)
    chosen, trials = choose(job, options, on_progress, should_stop)
    file_bytes = container.write_bytes(dst, chosen.data, force)
    signal = job.signal
    metrics = dict(chosen.metrics)
    metrics.update(
        job.handler.rate_metrics(file_bytes, signal.grid_shape, signal.num_channels, signal.rate)
    )
    return EncodeReport(
        input=str(src),
        output=str(dst),
        medium=signal.medium,
        arch=chosen.inr.arch,
        transform=chosen.inr.transform,
        parameters=chosen.inr.num_parameters,
        precision=chosen.inr.precision,
        file_bytes=file_bytes,
        header_bytes=container.header_size(chosen.data),
        steps=sum(t.steps for t in trials) if trials else chosen.result.steps,
        seconds=round(sum(t.seconds for t in trials) if trials else chosen.result.seconds, 3),
        device=job.device,
        stop_reason=chosen.result.stop_reason,
        compiled=chosen.result.compiled,
        metrics=metrics,
        lam=chosen.result.lam,
        trials=[t.to_dict() for t in trials],
        warnings=list(chosen.result.warnings),
    )


def prepare_checked(src: Path, dst: Path, options: EncodeOptions, force: bool) -> Job:
    """Refuse bad settings and an unwritable output before reading or training anything."""
    options.validate(handler_for_path(src).medium)
    ensure_writable(dst, force)
    return prepare(src, options)


def choose(
    job: Job, options: EncodeOptions, on_progress: ProgressCallback, should_stop: StopCheck
) -> tuple[Candidate, list[search.Trial]]:
    """The candidate to write (after a size/precision search if a target asks for one)."""
    metric = job.handler.quality_key
    options = batched_for(job.signal, timed_for(job.signal, options))

    def train_size(size: str | None, precisions: Sequence[str], stop_at: float | None):
        sized = _sized(options, size, stop_at)
        return train(job, sized, precisions, on_progress, should_stop)

    family = family_for(options.arch)
    budget = byte_budget(job, options)
    if budget is not None:
        if options.precision == container.CODED or not family.searches_ladder:
            return _within_budget(job, options, family, budget, on_progress, should_stop), []
        sizes = list(LADDER) if options.size_search else [None]
        estimate = lambda size: _unpacked_bytes(job, _sized(options, size))  # noqa: E731
        return search.best_under_bytes(
            train_size, estimate, budget, sizes, metric, should_stop, target_flag(options)
        )
    if options.target_psnr is not None and options.size_search and family.searches_ladder:
        return search.smallest_reaching(
            train_size, options.target_psnr, options.precision, metric, should_stop
        )
    return train(job, options, [options.precision], on_progress, should_stop)[0], []


def timed_for(signal: Signal, options: EncodeOptions) -> EncodeOptions:
    """A recipe's time per megapixel (images; video: per million pixels of all its frames)
    or per second of signal (audio), and at least its `min_time_budget`, as the time
    budget, unless one is given: an encode's time follows the signal's size."""
    if options.time_budget is not None:
        return options
    if options.time_per_megapixel:
        budget = options.time_per_megapixel * math.prod(signal.grid_shape) / 1e6
    elif signal.rate and options.time_per_second:
        budget = options.time_per_second * signal.grid_shape[0] / signal.rate
    else:
        return options
    return replace(options, time_budget=max(budget, options.min_time_budget or 0.0))


def batched_for(signal: Signal, options: EncodeOptions) -> EncodeOptions:
    """A recipe's batch for this signal: a `steps_per_pass`-th of its points a step, at
    least `batch_size` and at most `max_batch_size`. A step's work over every latent grows
    with the signal while a fixed batch does not: on a 1536x1024 photo, batches of 65,536
    points instead of 16,384 gained 0.22 dB at 0.5 bpp and 0.48 at 1 bpp in the default's
    time (docs/experiments.md, fifteenth session)."""
    if not options.steps_per_pass or options.batch_size <= 0:
        return options
    size = max(options.batch_size, math.prod(signal.grid_shape) // options.steps_per_pass)
    if options.max_batch_size:
        size = max(options.batch_size, min(size, options.max_batch_size))
    return replace(options, batch_size=size)


TIME_WINDOW = ("start", "duration")  # decode request keys that select a part in time
# A rate target, the flag that sets it, and the medium's rate metrics it reads (per byte).
RATE_TARGETS = (
    ("target_bpp", "--target-bpp", ("bpp", "bits_per_sample"), 1.0),
    ("target_kbps", "--target-kbps", ("bps",), 1000.0),
)


def byte_budget(job: Job, options: EncodeOptions) -> float | None:
    """The bytes a rate target allows the whole file: a medium's rate metrics are linear in
    the bytes, so the target over the rate of one byte is the budget."""
    signal = job.signal
    per_byte = job.handler.rate_metrics(1, signal.grid_shape, signal.num_channels, signal.rate)
    for name, flag, keys, unit in RATE_TARGETS:
        target = getattr(options, name)
        if target is None:
            continue
        key = next((k for k in keys if k in per_byte), None)
        if key is None:
            raise UsageError(f"{flag} does not apply to {signal.medium}")
        return target * unit / per_byte[key]
    return None


def target_flag(options: EncodeOptions) -> str:
    """The rate target's flag, for messages."""
    return next(flag for name, flag, _, _ in RATE_TARGETS if getattr(options, name) is not None)


def _within_budget(
    job: Job,
    options: EncodeOptions,
    family: Family,
    budget: float,
    on_progress: ProgressCallback,
    should_stop: StopCheck,
) -> Candidate:
    """A rate target at the auto precision: a network sized for the budget (unless the
    size is given), trained once, its steps chosen to fit."""
    if budget < HEADER_BYTES_ESTIMATE:
        raise UsageError(
            f"{target_flag(options)} allows {budget:.0f} bytes; the smallest file needs "
            f"about {HEADER_BYTES_ESTIMATE} for its header alone"
        )
    if options.size_search:
        options = family.sized_for_budget(job, options, budget)
    return train(job, options, [container.CODED], on_progress, should_stop, budget)[0]


def _sized(options: EncodeOptions, size: str | None, stop_at: float | None = None):
    """`options` at ladder size `size` (one net for the whole signal); None: as given."""
    if size is not None:
        options = replace(options, **size_options(size), size_preset=None, tile_size=None)
    return options if stop_at is None else replace(options, target_psnr=stop_at)


def train(
    job: Job,
    options: EncodeOptions,
    precisions: Sequence[str],
    on_progress: ProgressCallback = None,
    should_stop: StopCheck = None,
    budget: float | None = None,
) -> list[Candidate]:
    """Fit one network with `options`, then package and judge it at each of `precisions`
    (the auto precision within `budget` bytes, if given)."""
    import torch

    signal = job.signal
    hparams = job.hyper_parameters(options)
    torch.manual_seed(options.seed)
    model = build_model(options.arch, len(signal.grid_shape), signal.num_channels, **hparams)
    model = model.to(job.device)
    family = family_for(options.arch)
    result = family.fit(job, options, model, on_progress, should_stop, budget)
    fitted = Fitted(options.arch, hparams, model, result)
    return [
        _package_coded(job, options, family, fitted, budget)
        if precision == container.CODED
        else _package(job, options, fitted, precision)
        for precision in precisions
    ]


def _package(job: Job, options: EncodeOptions, fitted: Fitted, precision: str) -> Candidate:
    """The network at a fixed precision, judged as decoded from its bytes."""
    state, tuned = _stored_state(job, options, fitted, precision)
    inr = job.inr_file(fitted.arch, fitted.hparams, precision, state)
    return _judged(job, options, fitted, inr, tuned)


def _judged(
    job: Job, options: EncodeOptions, fitted: Fitted, inr: container.InrFile, tuned: bool
) -> Candidate:
    data = container.to_bytes(inr)
    metrics = judge(job, data)
    facts = _encoder_facts(job, options, fitted.result, metrics, tuned)
    return Candidate(inr, container.with_encoder(data, facts), metrics, fitted.result)


def _stored_state(job: Job, options: EncodeOptions, fitted: Fitted, precision: str):
    """(the parameters to store at fixed `precision`, whether quantization-aware tuning ran).

    Int precisions get `options.qat_steps` of tuning that rounds each parameter exactly as
    the container will store it (quantize.stored_rounding)."""
    from inrcodec.quantize import INT_BITS, stored_rounding

    if precision not in INT_BITS:
        return fitted.result.state, False
    names = [name for name, _ in fitted.model.named_parameters()]
    return _tuned(job, options, fitted, stored_rounding(names, precision))


def _tuned(job: Job, options: EncodeOptions, fitted: Fitted, rounding: dict) -> tuple[dict, bool]:
    """`options.qat_steps` of tuning through `rounding` (unless none, or interrupted)."""
    from inrcodec.fitting import finetune_rounded

    result = fitted.result
    if not options.qat_steps or result.stop_reason == "interrupted":
        return result.state, False
    start = {k: v.to(job.device) for k, v in result.state.items()}
    state, _before, _after = finetune_rounded(
        fitted.model, job.coords, job.targets, options, start, rounding, options.qat_steps
    )
    return state, True


def _package_coded(
    job: Job, options: EncodeOptions, family: Family, fitted: Fitted, budget: float | None
) -> Candidate:
    """The auto precision: a step per tensor chosen by rate–distortion as the family
    chooses it (its fixed tensors, such as latents, keep step 1), quantization-aware
    tuning at those steps, entropy coding. With a budget, the steps are coarsened until
    the written file fits."""
    from functools import partial

    from inrcodec.quantize import as_stored, fake_step
    from inrcodec.rate import steps

    names = [name for name, _ in fitted.model.named_parameters()]
    fixed = family.fixed_tensors(names)
    chosen = [n for n in names if n not in fixed]
    tensors = {n: as_stored(fitted.result.state[n]).float().numpy() for n in chosen}
    tables = steps.measure(tensors, _rd_distortion(job, fitted))
    samples = math.prod(job.signal.grid_shape)
    bits = None
    if budget is not None:
        usable = 8 * (budget - HEADER_BYTES_ESTIMATE)
        bits = family.weight_bits(job, fitted, tables, options, usable)
    for _attempt in range(BUDGET_ATTEMPTS):
        exponents = family.weight_steps(tables, options, fitted, samples, bits)
        estimate = steps.total_bits(tables, exponents)
        exponents.update(dict.fromkeys(fixed, 0))
        rounding = {n: partial(fake_step, exponent=exponents[n]) for n in names}
        state, tuned = _tuned(job, options, fitted, rounding)
        inr = job.inr_file(fitted.arch, fitted.hparams, container.CODED, state)
        inr.exponents = [exponents[n] for n in names]
        candidate = _judged(job, options, fitted, inr, tuned)
        if budget is None or candidate.file_bytes <= budget:
            return candidate
        # The next choice must be estimated under this one by what overflowed: the
        # estimate is stepwise in λ, so aiming a few bits lower may choose the same steps.
        bits = min(bits, estimate) - 8 * (candidate.file_bytes - budget) - 64
    raise UsageError(
        f"{target_flag(options)} allows {budget:.0f} bytes; the smallest file this network made "
        f"was {candidate.file_bytes} bytes (try a smaller --width)"
    )


BUDGET_ATTEMPTS = 6
RD_POINTS = 16384  # grid points on which step choices are judged


def _rd_distortion(job: Job, fitted: Fitted) -> Callable:
    """D of the network with some tensors replaced (stored real values), on a fixed random
    subset of the grid: what the step search minimises with the bits. A post-filtered grid
    is judged on patches of the lattice (with the filter's halo), as decoded there: the
    filter at a point reads its neighbours, so random points would need the whole lattice
    decoded for every trial (8.8 of the 13 s of packaging a 768x512 file)."""
    import torch

    from inrcodec.fitting import rounded_parameters
    from inrcodec.quantize import from_stored

    model = fitted.model
    model.load_state_dict({k: v.to(job.device) for k, v in fitted.result.state.items()})
    count = min(RD_POINTS, len(job.coords))
    predict, subset = _rd_predictor(model, job, count)
    raw = job.raw[subset]
    # A silent reference has no power to compare with: D is then the MSE itself.
    power = job.handler.reference_power(job.signal) or 1.0

    def distortion(replaced: dict) -> float:
        swaps = {
            name: lambda p, v=values: from_stored(torch.from_numpy(v).to(p.device), p)
            for name, values in replaced.items()
        }
        with torch.no_grad(), rounded_parameters(model, swaps):
            pred = predict()
        return job.raw_mse(pred, raw) / power

    return distortion


def _rd_predictor(model, job: Job, count: int) -> tuple[Callable, Any]:
    """(the model's decode at about `count` fixed grid points, those points' indices)."""
    import torch

    if getattr(model, "post", None) is not None:
        from inrcodec.rd_fitting import post_patches

        generator = torch.Generator(device=job.device).manual_seed(0)
        patches = post_patches(model, count, job.device, generator)
        padded, inner = patches()
        points = job.coords[padded]
        return lambda: model.filtered_patches(points, patches.count, list(model.latents)), inner
    generator = torch.Generator().manual_seed(0)
    subset = torch.randperm(len(job.coords), generator=generator)[:count].to(job.device)
    coords = job.coords[subset]
    return lambda: model(coords), subset


def judge(job: Job, data: bytes) -> dict[str, Any]:
    """The medium's metrics of `data` decoded exactly as `decode` would decode the file."""
    stored = container.from_bytes(data)
    decoded = _render(stored, job.handler, job.signal.grid_shape, job.device)
    return job.handler.metrics(job.signal, decoded)


def _encoder_facts(
    job: Job, options: EncodeOptions, result, metrics: dict[str, Any], tuned: bool
) -> dict[str, Any]:
    """What the header records about the encode (shown by `info`, read by `eval`)."""
    facts: dict[str, Any] = {
        "version": __version__,
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "device": job.device,
        "stop": result.stop_reason,
        **({"qat_steps": options.qat_steps} if tuned else {}),
        **{
            k: round(v, 4)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(v)  # not per-frame lists
        },
    }
    if options.selection():  # eval reads the same part of the reference
        facts["selection"] = options.selection()
    if result.stop_reason == "interrupted":
        facts["partial"] = True
    return facts


ENCODER_FACTS_BYTES = 200  # header bytes the encoder facts (steps, seconds, metrics) add


def _unpacked_bytes(job: Job, options: EncodeOptions) -> dict[str, int]:
    """Per search precision: the file size before lossless packing (which can only shrink
    it), plus a margin for the encoder facts written into the header after judging.
    Freshly initialised weights stand in for the trained ones: they choose per-row scales
    alike."""
    from inrcodec.models import build_model

    signal = job.signal
    hparams = job.hyper_parameters(options)
    model = build_model(options.arch, len(signal.grid_shape), signal.num_channels, **hparams)
    state = {k: p.detach() for k, p in model.named_parameters()}
    return {
        precision: ENCODER_FACTS_BYTES
        + len(container.to_bytes(job.inr_file(options.arch, hparams, precision, state), ("raw",)))
        for precision in search.SEARCH_PRECISIONS
    }


def _render(
    inr: container.InrFile,
    handler,
    shape: tuple[int, ...],
    device: str,
    window: tuple[int, int] | None = None,
) -> np.ndarray:
    from inrcodec.render import render

    return render(
        inr,
        shape,
        lambda raw: handler.to_output(raw, inr.bit_depth),
        handler.output_dtype(inr.bit_depth),
        device=device,
        window=window,
    )


@dataclass
class DecodeReport:
    input: str
    output: str
    shape: list[int]
    rate: float | None
    seconds: float


def decoded_name(src: Path, folder: Path | None = None) -> Path:
    """MODEL.decoded.<the medium's usual suffix>, in `folder` (default: beside the model).

    The suffix depends on what the file holds, so this reads it."""
    suffix = handler_for_medium(container.read(src).medium).output_suffix
    return (folder or src.parent) / (src.stem + ".decoded" + suffix)


def decode_file(
    src: Path,
    dst: Path,
    request: dict[str, Any],
    force: bool = False,
    device: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodeReport:
    """Render `src` on the grid that `request` asks for (scale, size, rate or fps), or on
    the part of it in time that its start and duration (seconds) select."""
    start = time.perf_counter()
    part = {k: v for k, v in request.items() if k in TIME_WINDOW}
    grid = {k: v for k, v in request.items() if k not in TIME_WINDOW}
    inr = container.read(src, lambda header: _window_parameters(header, grid, part))
    handler, full, rate, window = _decode_plan(inr, grid, part)
    shape = (window[1], *full[1:])
    samples = math.prod(shape)
    if samples > max_pixels:
        sides = f"{'x'.join(map(str, shape))} = " if len(shape) > 1 else ""
        raise InrcodecError(
            f"{src}: output of {sides}{samples:,} samples exceeds --max-pixels "
            f"{max_pixels:,}; raise it explicitly to decode this"
        )
    ensure_writable(dst, force)
    values = _render(inr, handler, full, pick_device(device), window)
    handler.write(dst, values, OutputFormat(inr.channels, inr.bit_depth, rate), force=force)
    return DecodeReport(str(src), str(dst), list(shape), rate, time.perf_counter() - start)


def _decode_plan(
    inr: container.InrFile, grid: dict[str, Any], part: dict[str, Any]
) -> tuple[Any, tuple[int, ...], float | None, tuple[int, int]]:
    """(handler, output grid, output rate, (first, count) of its first axis) of a decode."""
    handler = handler_for_medium(inr.medium)
    full, rate = handler.output_shape(tuple(inr.shape), inr.rate, grid)
    return handler, full, rate, handler.output_window(full[0], rate, part)


def _window_parameters(
    inr: container.InrFile, grid: dict[str, Any], part: dict[str, Any]
) -> Callable[[str], bool] | None:
    """The parameters a decode of the window reads (a segmented model's segments under
    it), from the header alone: the others are not entropy-decoded. A request the file
    cannot serve reads everything here and is refused by `_decode_plan` after the read."""
    from inrcodec.models.segments import window_filter

    try:
        _, full, _, (first, count) = _decode_plan(inr, grid, part)
    except InrcodecError:
        return None
    if full[0] == 1:  # one output sample sits at the centre
        return window_filter(inr.hparams, (inr.shape[0] - 1) / 2, (inr.shape[0] - 1) / 2)
    scale = (inr.shape[0] - 1) / (full[0] - 1)  # output index -> training sample
    return window_filter(inr.hparams, first * scale, (first + count - 1) * scale)


def evaluate_file(inr_path: Path, reference_path: Path, device: str = "auto") -> dict[str, float]:
    """Decode at the reference's grid and measure quality and rate from the real file size."""
    reference, decoded = decode_at_reference(inr_path, reference_path, device)
    handler = handler_for_path(reference_path)
    metrics = handler.metrics(reference, decoded)
    file_bytes = inr_path.stat().st_size
    metrics.update(
        handler.rate_metrics(
            file_bytes, reference.grid_shape, reference.num_channels, reference.rate
        )
    )
    return metrics


def decode_at_reference(
    inr_path: Path, reference_path: Path, device: str = "auto"
) -> tuple[Signal, np.ndarray]:
    """(the reference as `eval` reads it, the model rendered on the reference's grid as
    `decode` renders it): one path for everything that scores a file against its source."""
    inr = container.read(inr_path)
    handler = handler_for_path(reference_path)
    if handler.medium != inr.medium:
        raise InrcodecError(
            f"{inr_path}: holds {inr.medium}, "
            f"but the reference {reference_path} is {handler.medium}"
        )
    selection = inr.encoder.get("selection")
    reference = handler.read_reference(
        reference_path,
        tuple(inr.shape),
        inr.rate,
        selection if isinstance(selection, dict) else {},
    )
    if reference.num_channels != inr.out_features:
        raise InrcodecError(
            f"{reference_path}: has {reference.num_channels} channels ({reference.channels}), "
            f"the model has {inr.out_features} ({inr.channels})"
        )
    decoded = _render(inr, handler, reference.grid_shape, pick_device(device))
    return reference, decoded


def describe(inr_path: Path) -> dict[str, Any]:
    """What is inside a `.inr` file, for `inrcodec info`."""
    inr = container.read(inr_path)
    return {
        "file": str(inr_path),
        "file_bytes": inr_path.stat().st_size,
        "header_bytes": container.header_bytes(inr_path),
        "medium": inr.medium,
        "arch": inr.arch,
        "hyper_parameters": inr.hparams,
        "parameters": inr.num_parameters,
        "precision": inr.precision,
        **_storage_facts(inr),
        **_decode_cost(inr),
        "transform": inr.transform,
        "scalars": inr.scalars,
        "shape": inr.shape,
        "channels": inr.channels,
        "value_range": list(inr.value_range),
        "bit_depth": inr.bit_depth,
        "rate": inr.rate,
        "coordinates": container.COORDINATES,
        "encoder": inr.encoder,
        "partial": bool(inr.encoder.get("partial", False)),
    }


def _decode_cost(inr: container.InrFile) -> dict[str, Any]:
    """Multiply-adds per decoded sample, for the archs that can count theirs."""
    model = inr.build_model()
    count = getattr(model, "macs_per_point", None)
    return {} if count is None else {"macs_per_pixel": count()}


def _storage_facts(inr: container.InrFile) -> dict[str, Any]:
    """How the weights are stored: per tensor step, coder and bytes for the auto precision;
    the packing (and int scale layout) for the fixed ones."""
    if inr.precision == container.CODED:
        from inrcodec.rate.latents import latent_owner

        sizes = dict(zip(inr.state, inr.coding["n"], strict=True))
        latent = sum(n for name, n in sizes.items() if latent_owner(name) is not None)
        return {
            "latent_bytes": latent,  # the rate split: latents, networks (the header apart)
            "network_bytes": sum(sizes.values()) - latent,
            "tensor_names": list(inr.state),
            "step_exponents": inr.coding["e"],
            "coders": inr.coding["c"],
            "tensor_bytes": inr.coding["n"],
        }
    return {
        "packing": inr.packing,
        **({"scale_layout": inr.scale_layout} if inr.scale_layout else {}),
    }
