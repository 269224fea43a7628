"""The codec: encode a media file into a `.inr`, decode it at any resolution, evaluate it.

This is the library behind the CLI. It never prints and never exits; progress goes
through a callback and problems are raised as `InrcodecError`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inrcodec import __version__, container
from inrcodec.atomic import ensure_writable
from inrcodec.errors import InrcodecError, UsageError
from inrcodec.fitting import FitConfig, Progress
from inrcodec.media import Signal, handler_for_medium, handler_for_path

DEFAULT_MAX_PIXELS = 100_000_000  # decode refuses larger grids unless raised explicitly


@dataclass
class EncodeOptions:
    """Everything that shapes an encode; presets fill these, CLI flags override them."""

    arch: str = "siren"
    transform: str = "sym"
    steps: int = 1000
    lr: float = 5e-4
    lr_final_factor: float = 0.1
    width: int | None = None  # None: the arch's default
    depth: int | None = None  # hidden layers (reference convention: 3 -> 5 weight matrices)
    arch_options: dict[str, Any] = field(default_factory=dict)
    # Split the grid into tiles of about this many samples per side, one small net each
    # (models/tiled.py); None or 0: one net for the whole signal.
    tile_size: int | None = None
    batch_size: int = 16384  # coordinates per step (random); 0 or >= the grid: full batch
    eval_every: int = 50
    seed: int = 3407
    device: str = "auto"
    precision: str = "fp16"  # fp32, fp16, int8, int6 or int4
    qat_steps: int = 0  # int precisions: straight-through fine-tuning steps after fitting
    time_budget: float | None = None
    target_psnr: float | None = None  # stop early there; with size_search, also pick the size
    target_bpp: float | None = None  # pick the best size/precision whose file fits
    size_search: bool = False  # let a target choose the size from search.LADDER
    size_preset: str | None = None  # a search.LADDER size, unless width/depth are given
    patience: int | None = None
    # torch.compile the training step: "auto" compiles when eager training would take
    # over a minute (compiling costs ~15 s on 2 cores); "on"; "off".
    compile: str = "auto"
    # What part of the input to fit (audio: start/duration in seconds; video: frames and
    # the longest side in pixels). None means all of it.
    start: float | None = None
    duration: float | None = None
    frames: int | None = None
    max_side: int | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, Any], origin: str) -> EncodeOptions:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(values) - known
        if unknown:
            raise UsageError(f"{origin}: unknown option {', '.join(sorted(unknown))}")
        return cls(**values)

    def hyper_parameters(
        self, medium: str, grid_shape: tuple[int, ...] | None = None
    ) -> dict[str, Any]:
        """The arch's keyword set; tiles follow from `tile_size` once the grid is known."""
        from inrcodec.models import TILES, hyper_parameters
        from inrcodec.search import size_options

        sizes: dict[str, Any] = size_options(self.size_preset) if self.size_preset else {}
        pairs = (("width", self.width), ("depth", self.depth))
        sizes.update({k: v for k, v in pairs if v is not None})
        if self.tile_size and grid_shape:
            sizes[TILES] = [max(1, round(n / self.tile_size)) for n in grid_shape]
        return hyper_parameters(self.arch, {**self.arch_options, **sizes}, medium)

    def validate(self) -> None:
        """Refuse bad settings up front, before any file is read or written."""
        from inrcodec.transforms import get_transform

        if self.precision not in container.PRECISIONS:
            raise UsageError(
                f"unknown precision {self.precision!r} (choose {', '.join(container.PRECISIONS)})"
            )
        if self.steps < 1:
            raise UsageError("--steps must be at least 1")
        if self.qat_steps < 0:
            raise UsageError("--qat-steps must be 0 or more")
        if self.target_bpp is not None and not self.target_bpp > 0:
            raise UsageError("--target-bpp must be positive")
        if not self.lr > 0:
            raise UsageError("--lr must be positive")
        if self.tile_size is not None and self.tile_size < 0:
            raise UsageError("--tile-size must be 0 (one net) or more")
        if self.compile not in ("auto", "on", "off"):
            raise UsageError(f"--compile must be auto, on or off, got {self.compile!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise UsageError(f"unknown device {self.device!r} (choose auto, cpu, cuda or mps)")
        get_transform(self.transform)
        self.hyper_parameters("image")

    def selection(self) -> dict[str, Any]:
        """The input-selection options that were set, for the medium's reader."""
        names = ("start", "duration", "frames", "max_side")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


def resolve_options(
    preset: str | None,
    medium: str,
    flags: dict[str, Any] | None = None,
    arch_options: dict[str, Any] | None = None,
) -> EncodeOptions:
    """Layer the encode settings: the preset (by default the one named after the medium),
    then explicit flags, then explicit arch options.

    Arch options a preset sets for its own arch do not carry over to another `--arch`.
    """
    from inrcodec.presets import default_preset, load_preset

    chosen = load_preset(preset) if preset else default_preset(medium)
    values: dict[str, Any] = dict(chosen.encode) if chosen else {}
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    if "arch" in flags and flags["arch"] != values.get("arch", EncodeOptions.arch):
        values.pop("arch_options", None)
    values.update(flags)
    if arch_options:
        values["arch_options"] = {**values.get("arch_options", {}), **arch_options}
    return EncodeOptions.from_mapping(values, f"preset {chosen.name}" if chosen else "options")


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
    trials: list[dict[str, Any]] = field(default_factory=list)  # a size/precision search

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


def encode_file(
    src: Path,
    dst: Path,
    options: EncodeOptions,
    force: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> EncodeReport:
    """Fit an INR to `src` and write it to `dst` (atomically).

    With `target_bpp`, or `target_psnr` and `size_search`, several sizes and precisions
    are tried (search.py) and the chosen one is written; the report lists every trial.
    If `should_stop` turns true, training ends and the best model so far is written,
    marked partial in its metadata (`EncodeReport.stop_reason == "interrupted"`).
    """
    from inrcodec import search

    options.validate()
    ensure_writable(dst, force)  # fail before a long encode, not after
    job = prepare(src, options)
    trials: list[search.Trial] = []
    if options.target_bpp is not None:
        budget = options.target_bpp * math.prod(job.signal.grid_shape) / 8
        chosen, trials = search.best_under_bytes(job, options, budget, on_progress, should_stop)
    elif options.target_psnr is not None and options.size_search:
        chosen, trials = search.smallest_reaching(job, options, on_progress, should_stop)
    else:
        chosen = train_candidates(job, options, [options.precision], on_progress, should_stop)[0]
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
        header_bytes=container.header_bytes(dst),
        steps=sum(t.steps for t in trials) if trials else chosen.result.steps,
        seconds=round(sum(t.seconds for t in trials) if trials else chosen.result.seconds, 3),
        device=job.device,
        stop_reason=chosen.result.stop_reason,
        compiled=chosen.result.compiled,
        metrics=metrics,
        trials=[t.to_dict() for t in trials],
    )


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
    quality: Callable[[Any], float]

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
    data: bytes  # the file as it will be written
    metrics: dict[str, Any]
    result: Any  # FitResult

    @property
    def file_bytes(self) -> int:
        return len(self.data)


def prepare(src: Path, options: EncodeOptions) -> Job:
    """Read and transform the input once, for one or several trainings."""
    import torch

    from inrcodec.coords import grid_coords
    from inrcodec.transforms import get_transform

    handler = handler_for_path(src)
    signal = handler.read(src, **options.selection())
    device = pick_device(options.device)
    transform = get_transform(options.transform)
    raw = torch.from_numpy(signal.values).reshape(-1, signal.num_channels)
    scalars = transform.fit(raw)
    targets = transform.forward(raw, scalars).to(device)
    coords = grid_coords(signal.grid_shape, device)
    quality = _training_psnr(signal, transform, scalars, raw.to(device), handler.peak(signal))
    return Job(signal, handler, device, transform, scalars, coords, targets, quality)


def train_candidates(
    job: Job,
    options: EncodeOptions,
    precisions: list[str],
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Candidate]:
    """Train one network with `options` and package it at each of `precisions`.

    Each package is judged as the decoder will see it: the weights as stored, decoded like
    `decode` does. Int precisions get `options.qat_steps` of quantization-aware tuning.
    """
    import torch

    from inrcodec.fitting import finetune_rounded, fit
    from inrcodec.models import build_model
    from inrcodec.quantize import INT_BITS, fake_quantize

    signal = job.signal
    hparams = options.hyper_parameters(signal.medium, signal.grid_shape)
    torch.manual_seed(options.seed)
    model = build_model(options.arch, len(signal.grid_shape), signal.num_channels, **hparams)
    model = model.to(job.device)
    config = FitConfig(**{name: getattr(options, name) for name in FitConfig.__dataclass_fields__})
    result = fit(
        model, job.coords, job.targets, config, job.quality, on_progress, should_stop=should_stop
    )
    candidates = []
    for precision in precisions:
        state = result.state
        tuned = precision in INT_BITS and options.qat_steps and result.stop_reason != "interrupted"
        if tuned:
            bits = INT_BITS[precision]
            state, _before, _after = finetune_rounded(
                model,
                job.coords,
                job.targets,
                config,
                {k: v.to(job.device) for k, v in state.items()},
                lambda p, bits=bits: fake_quantize(p, bits),
                options.qat_steps,
            )
        inr = job.inr_file(options.arch, hparams, precision, state)
        stored = container.from_bytes(container.to_bytes(inr))
        metrics = job.handler.metrics(
            signal, _render(stored, job.handler, signal.grid_shape, job.device)
        )
        inr.encoder = {
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
            inr.encoder["selection"] = options.selection()
        if result.stop_reason == "interrupted":
            inr.encoder["partial"] = True
        candidates.append(Candidate(inr, container.to_bytes(inr), metrics, result))
    return candidates


def _training_psnr(signal: Signal, transform, scalars, raw, peak: float):
    """PSNR of a transformed-domain prediction, measured in raw units (the honest one)."""
    import torch

    low, high = signal.value_range

    def quality(pred: torch.Tensor) -> float:
        restored = transform.inverse(pred, scalars).clamp(low, high)
        mse = torch.mean((restored - raw) ** 2).item()
        return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)

    return quality


def _render(inr: container.InrFile, handler, shape: tuple[int, ...], device: str) -> np.ndarray:
    from inrcodec.render import render

    return render(
        inr,
        shape,
        lambda raw: handler.to_output(raw, inr.bit_depth),
        handler.output_dtype(inr.bit_depth),
        device=device,
    )


@dataclass
class DecodeReport:
    input: str
    output: str
    shape: list[int]
    rate: float | None
    seconds: float


def decode_file(
    src: Path,
    dst: Path,
    request: dict[str, Any],
    force: bool = False,
    device: str = "auto",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodeReport:
    """Render `src` on the grid that `request` asks for (scale, size, rate or fps)."""
    start = time.perf_counter()
    inr = container.read(src)
    handler = handler_for_medium(inr.medium)
    shape, rate = handler.output_shape(tuple(inr.shape), inr.rate, request)
    samples = math.prod(shape)
    if samples > max_pixels:
        raise InrcodecError(
            f"{src}: output of {'x'.join(map(str, shape))} = {samples:,} samples exceeds "
            f"--max-pixels {max_pixels:,}; raise it explicitly to decode this"
        )
    ensure_writable(dst, force)
    values = _render(inr, handler, shape, pick_device(device))
    handler.write(dst, values, inr.channels, inr.bit_depth, rate, force)
    return DecodeReport(str(src), str(dst), list(shape), rate, time.perf_counter() - start)


def evaluate_file(inr_path: Path, reference_path: Path, device: str = "auto") -> dict[str, float]:
    """Decode at the reference's grid and measure quality and rate from the real file size."""
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
    metrics = handler.metrics(reference, decoded)
    file_bytes = inr_path.stat().st_size
    metrics.update(
        handler.rate_metrics(
            file_bytes, reference.grid_shape, reference.num_channels, reference.rate
        )
    )
    return metrics


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
        "packing": inr.packing,
        **({"scale_layout": inr.scale_layout} if inr.scale_layout else {}),
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
