"""Encode options: each declared once, as a dataclass field with its default and help.

`FitConfig` holds what the training loop reads, `EncodeOptions` adds what the codec reads,
and `ArchFlags` the shortcuts for arch hyper-parameters. The CLI derives one flag from
every field that carries a help text (`option(...)`), presets set the same names, and
`resolve_options` layers them: defaults < preset < flags < arch options. This module
imports no torch, so building the CLI stays instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from inrcodec.errors import UsageError

DEFAULT_MAX_PIXELS = 100_000_000  # decode refuses larger grids unless raised explicitly


def option(default: Any, help: str, flags: tuple[str, ...] = ()) -> Any:
    """A dataclass field that is also a CLI flag (`flags`: its names, when not the field's
    own name with dashes)."""
    return field(default=default, metadata={"help": help, "flags": flags})


def cli_fields(cls: type) -> list:
    """The fields of `cls` that are CLI flags, in declaration order."""
    return [f for f in fields(cls) if "help" in f.metadata]


@dataclass
class FitConfig:
    """What the training loop reads (fitting.py). These defaults are the encoder's:
    `EncodeOptions` extends this class, so each is declared once."""

    steps: int = option(1000, "Optimizer steps (at most).")
    lr: float = option(
        5e-4, "Adam learning rate at the start (decays to 0.1x by the end; --arch grid: to 0)."
    )
    lr_final_factor: float = 0.1  # lr decays exponentially to lr·factor at the end of the run
    batch_size: int = option(
        16384,
        "Random coordinates per step; 0 (or more than the grid) = full batch. Without it, "
        "the image presets grow it with photos above 768x512 (their steps_per_pass).",
    )
    eval_every: int = 50  # mini-batch mode: steps between full-grid evaluations
    rate_every: int = 8  # latent grids: steps between fresh gradients of the rate term
    adam_beta2: float = 0.999  # latent grids: Adam's second-moment decay (images: 0.99)
    seed: int = option(3407, "Random seed (initialisation and mini-batch sampling).")
    time_budget: float | None = option(
        None,
        "Stop after this many seconds of training; the lr schedule follows it. Without "
        "it, the preset's time per megapixel (images; video: of all its frames) or per "
        "second (audio) sets it.",
    )
    # The medium decides what the quality measures: PSNR for images and video, SNR for
    # audio (the metric `eval` reports).
    target_psnr: float | None = option(
        None,
        "Stop once the quality reaches this many dB (PSNR; SNR for audio); unless a size "
        "is given, also search for the smallest size that reaches it.",
    )
    # Checked at evaluations only, so in mini-batch mode it is in effect rounded up to
    # whole `eval_every` intervals.
    patience: int | None = option(None, "Stop after this many steps without a new best loss.")
    compile: str = option("auto", "torch.compile training: auto (when it pays off), on, off.")
    l1: float = option(
        0.0,
        "L1 penalty on the parameters while fitting (Strümpler et al. use 1e-5): smaller "
        "weights cost fewer entropy-coded bits.",
    )


@dataclass
class EncodeOptions(FitConfig):
    """Everything that shapes an encode; presets fill these, CLI flags override them."""

    arch: str = option(
        "siren",
        "Architecture (see `inrcodec archs`); without --preset it brings its own recipe, "
        "presets/ARCH.yaml.",
    )
    transform: str = option("sym", "Value transform: sym, minmax, zscore, gamma[:β], boxcox.")
    width: int | None = option(None, "Hidden width (default: the arch's).")
    depth: int | None = option(None, "Hidden layers (3 = 5 weight matrices).")
    tile_size: int | None = option(
        None, "One small net per tile of about N samples a side (0 = one net)."
    )
    size_preset: str | None = option(
        None,
        "Network size: 3x16, 3x24, 3x32, coin (8x28), 3x48, 3x64, 3x96, 3x128, 3x192 or "
        "3x256 (hidden layers x width).",
    )
    precision: str = option(
        "auto",
        "Stored weights: auto (a step per tensor chosen by rate–distortion, entropy-coded), "
        "or fixed: fp32, fp16, int8, int6, int4.",
    )
    lam: float | None = option(
        None,
        "auto precision (expert): the λ of D + λ·R that chooses the steps, with D the MSE "
        "over the squared peak and R in bits per sample (default: "
        "rate.steps.DEFAULT_LAMBDA; --target-bpp sets it itself).",
        flags=("--lambda",),
    )
    qat_steps: int = option(
        0, "int precisions: quantization-aware fine-tuning steps after fitting."
    )
    target_bpp: float | None = option(
        None,
        "The best quality whose whole file fits this many bits per pixel (audio: per "
        "sample of each channel); unless a size is given, the size is searched too.",
    )
    target_kbps: float | None = option(
        None,
        "Audio and video: the best quality whose whole file, header included, fits this "
        "many kbit/s (1000 bit/s) over the signal's duration.",
    )
    device: str = option("auto", "auto, cpu, cuda or mps.")
    # What part of the input to fit; None means all of it.
    start: float | None = option(None, "Audio: start at this second.")
    duration: float | None = option(None, "Audio: fit this many seconds.")
    frames: int | None = option(None, "Video: fit the first N frames.")
    max_side: int | None = option(None, "Video: downscale so the longest side is at most this.")
    arch_options: dict[str, Any] = field(default_factory=dict)  # the arch's keyword set
    # A recipe's time: the budget, when none is given, is this many training seconds per
    # second of audio, or per million pixels of an image or of all a video's frames, so
    # encodes scale with the signal (`codec.timed_for`).
    time_per_second: float | None = None
    time_per_megapixel: float | None = None
    min_time_budget: float | None = None  # the least such a sized budget gives
    # A recipe's batch: a signal larger than `batch_size` × `steps_per_pass` points is
    # sampled a `steps_per_pass`-th of its points a step, up to `max_batch_size`, so that
    # the work over every latent (noise, rate, Adam) is shared by more points
    # (`codec.batched_for`). A given `--batch-size` replaces the rule.
    steps_per_pass: int | None = None
    max_batch_size: int | None = None
    # A recipe's segment length for signals with a duration: latent grids longer than this
    # many seconds are cut into segments along time, one model each (models/segments.py).
    segment_seconds: float | None = None
    # A recipe's motion: a video's latent grids follow the clip's global translation,
    # tracked from its frames before training (models/motion.py).
    track_motion: bool = False
    size_search: bool = False  # let a target choose the size from the ladder

    def hyper_parameters(
        self, medium: str, grid_shape: tuple[int, ...] | None = None, rate: float | None = None
    ) -> dict[str, Any]:
        """The arch's keyword set; tiles follow from `tile_size` once the grid is known, and
        segments from `segment_seconds` once its rate is."""
        from inrcodec.ladder import size_options
        from inrcodec.models import TILE_GRID, TILES, hyper_parameters

        sizes: dict[str, Any] = size_options(self.size_preset) if self.size_preset else {}
        pairs = (("width", self.width), ("depth", self.depth))
        sizes.update({k: v for k, v in pairs if v is not None})
        if self.tile_size and grid_shape:
            sizes[TILES] = [max(1, round(n / self.tile_size)) for n in grid_shape]
            sizes[TILE_GRID] = list(grid_shape)
        if grid_shape and "shape" in hyper_parameters(self.arch):  # grids follow the signal
            sizes["shape"] = list(grid_shape)
            if self.segment_seconds and rate and "segment" not in self.arch_options:
                sizes["segment"] = max(1, round(self.segment_seconds * rate))
        return hyper_parameters(self.arch, {**self.arch_options, **sizes}, medium)

    def validate(self, medium: str = "image") -> None:
        """Refuse bad settings up front, before any file is read or written."""
        from inrcodec.container import PRECISIONS
        from inrcodec.models import media
        from inrcodec.transforms import get_transform

        if self.precision not in PRECISIONS:
            raise UsageError(
                f"unknown precision {self.precision!r} (choose {', '.join(PRECISIONS)})"
            )
        _at_least(self.steps, 1, "--steps")
        _at_least(self.qat_steps, 0, "--qat-steps")
        _at_least(self.eval_every, 1, "eval_every")
        recipe = (
            *("time_per_second", "time_per_megapixel", "min_time_budget", "segment_seconds"),
            *("steps_per_pass", "max_batch_size"),
        )
        for name in recipe:
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"{name} must be positive, not {value}")
        if self.patience is not None:
            _at_least(self.patience, 1, "--patience")
        if self.tile_size is not None:
            _at_least(self.tile_size, 0, "--tile-size")
        if not (math.isfinite(self.l1) and self.l1 >= 0):
            raise UsageError(f"--l1 must be zero or a positive number, got {self.l1:g}")
        for value, flag in (
            (self.lr, "--lr"),
            (self.lam, "--lambda"),
            (self.time_budget, "--time-budget"),
            (self.target_bpp, "--target-bpp"),
            (self.target_kbps, "--target-kbps"),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise UsageError(f"{flag} must be a positive number, got {value:g}")
        if self.compile not in ("auto", "on", "off"):
            raise UsageError(f"--compile must be auto, on or off, got {self.compile!r}")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise UsageError(f"unknown device {self.device!r} (choose auto, cpu, cuda or mps)")
        get_transform(self.transform)
        self.hyper_parameters(medium)
        if self.target_bpp is not None and self.target_kbps is not None:
            raise UsageError("give --target-bpp or --target-kbps, not both")
        if self.target_kbps is not None and medium == "image":
            raise UsageError("--target-kbps needs a duration (audio or video); use --target-bpp")
        if medium not in media(self.arch):
            raise UsageError(
                f"--arch {self.arch} cannot give a useful {medium} file yet "
                f"(it encodes {', '.join(media(self.arch))})"
            )

    def selection(self) -> dict[str, Any]:
        """The input-selection options that were set, for the medium's reader."""
        names = ("start", "duration", "frames", "max_side")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


def _at_least(value: int, low: int, flag: str) -> None:
    if value < low:
        raise UsageError(f"{flag} must be at least {low}, got {value}")


@dataclass
class ArchFlags:
    """Shortcuts for arch hyper-parameters (any other: `-O KEY=VALUE`)."""

    omega: float | None = option(None, "ω0 of the first and hidden layers (SIREN, FINER, SPDER).")
    first_bias_scale: float | None = option(None, "FINER: first-layer bias ~ U(-k, k).")
    damping: str | None = option(None, "SPDER damping: sqrt or arctan.")
    degree: int | None = option(None, "SL2A Chebyshev degree K.")
    rank: int | None = option(None, "SL2A low-rank r.")

    def arch_options(self) -> dict[str, Any]:
        """The given shortcuts as arch keywords (ω0 sets the first and hidden layers')."""
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        given = {k: v for k, v in given.items() if v is not None}
        omega = given.pop("omega", None)
        if omega is not None:
            given.update(first_omega=omega, hidden_omega=omega)
        return given


@dataclass
class EncodeSettings:
    """What the user asked for, before it meets an input: a preset, flags, arch options.

    Resolved per file (`resolve`), since the default preset depends on the medium.
    """

    preset: str | None = None
    flags: dict[str, Any] = field(default_factory=dict)  # EncodeOptions fields that were set
    arch_options: dict[str, Any] = field(default_factory=dict)

    def resolve(self, medium: str) -> EncodeOptions:
        return resolve_options(self.preset, medium, self.flags, self.arch_options)


# A target picks the width (auto precision) or a ladder size unless one of these is given;
# a given --depth or --tile-size shapes the network whose width is picked.
SIZE_FIELDS = ("width", "size_preset")
TARGET_FIELDS = ("target_psnr", "target_bpp", "target_kbps")
# Where a file lands on the rate–distortion curve: a recipe's default operating point
# gives way to any of these given as a flag, and to a given size (a recipe's rate is met
# by sizing the network: a size fixed by hand would be crushed into it).
OPERATING_POINT_FIELDS = (*TARGET_FIELDS, "lam")


def resolve_options(
    preset: str | None,
    medium: str,
    flags: dict[str, Any] | None = None,
    arch_options: dict[str, Any] | None = None,
) -> EncodeOptions:
    """Layer the encode settings: the recipe (the preset given, else the medium's default,
    else the `--arch`'s own), then explicit flags, then explicit arch options.

    Policy decided here, not in the CLI:
    - a preset made for another medium is refused;
    - a preset made for another arch than `--arch` is refused: no recipe (its learning
      rate, batch, operating point) is carried from one arch to another;
    - an operating point given as a flag (a target or `--lambda`), or a size, replaces
      the recipe's target (its λ stays, as a target's starting point);
    - a target chooses the size unless the flags fix it (`--width`, `--size-preset`).
    """
    from inrcodec.presets import load_preset, recipe

    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    chosen = load_preset(preset) if preset else recipe(medium, flags.get("arch"))
    values: dict[str, Any] = chosen.encode_for(medium) if chosen else {}
    recipe_arch = values.get("arch", EncodeOptions.arch)
    if "arch" in flags and flags["arch"] != recipe_arch:
        raise UsageError(
            f"preset {chosen.name!r} is a recipe for --arch {recipe_arch}, not "
            f"{flags['arch']}; drop --preset to use {flags['arch']}'s own recipe"
        )
    if any(k in flags for k in (*OPERATING_POINT_FIELDS, *SIZE_FIELDS)):
        # The recipe's λ stays: a target's controller starts from it, so a medium whose
        # rates sit far from the images' (audio: λ 2e-5) reaches them in the time it has.
        for name in (*TARGET_FIELDS, "size_search"):
            values.pop(name, None)
    if "batch_size" in flags:  # a batch chosen by hand does not grow with the signal
        values.pop("steps_per_pass", None)
    values.update(flags)
    if any(k in flags for k in TARGET_FIELDS):
        values["size_search"] = True
    if any(k in flags for k in SIZE_FIELDS):
        values["size_search"] = False
    if arch_options:
        values["arch_options"] = {**values.get("arch_options", {}), **arch_options}
    known = {f.name for f in fields(EncodeOptions)}
    unknown = set(values) - known
    if unknown:
        origin = f"preset {chosen.name}" if chosen else "options"
        raise UsageError(f"{origin}: unknown option {', '.join(sorted(unknown))}")
    return EncodeOptions(**values)
