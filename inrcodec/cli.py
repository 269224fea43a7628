"""The `inrcodec` command line: parse, call the library, print.

Human-readable progress and summaries go to stderr/stdout through rich; `--json`
prints one JSON document on stdout. Exit codes: 0 success, 1 a file or data problem,
2 a usage error, 130 interrupted. Torch is imported only inside commands, so
`inrcodec --help` is instant.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from inrcodec.errors import InrcodecError, UsageError

app = typer.Typer(
    name="inrcodec",
    help="Store images, audio and video as implicit neural representations (.inr files).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]


def _jsonable(value: Any) -> Any:
    """JSON has no inf/NaN: a perfect PSNR is written as null rather than dropped."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(document), indent=2, default=str) + "\n")


def _fmt(value: float, digits: int = 2) -> str:
    return "inf" if value == float("inf") else f"{value:.{digits}f}"


Inputs = Annotated[
    list[Path], typer.Argument(help="Files or directories (directories: the files inside).")
]
Recursive = Annotated[
    bool, typer.Option("--recursive", "-r", help="Also take files in subdirectories.")
]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Files processed in parallel.")]
SkipExisting = Annotated[
    bool, typer.Option("--skip-existing", help="Skip files whose output already exists.")
]


def _is_batch(inputs: list[Path], output: Path | None) -> bool:
    """Several inputs, a directory, or an output directory: batch mode."""
    return (
        len(inputs) > 1
        or any(p.is_dir() for p in inputs)
        or (output is not None and (output.is_dir() or str(output).endswith(("/", "\\"))))
    )


def _tasks(
    inputs: list[Path], output: Path | None, suffixes: set[str], out_suffix: str, recursive: bool
) -> list:
    """Pair each input with its output: inside -o DIR (keeping subfolders), else beside it."""
    from inrcodec.batch import Task, expand

    if output is not None:
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output}: with several inputs, -o must be a directory")
        output.mkdir(parents=True, exist_ok=True)
    tasks = []
    for source, relative in expand(inputs, suffixes, recursive):
        if output is None:
            target = source.with_suffix(out_suffix)
        else:
            target = output / relative.with_suffix(out_suffix)
            target.parent.mkdir(parents=True, exist_ok=True)  # mirror input subfolders
        tasks.append(Task(source, target))
    if not tasks:
        raise UsageError("no input files found")
    return tasks


def _run_batch(
    tasks: list,
    worker,
    jobs: int,
    skip_existing: bool,
    json_output: bool,
    quiet: bool,
    columns: list[tuple[str, str]],
) -> int:
    """Run a batch, print the summary table (stderr) and JSON (stdout); return the exit code."""
    from inrcodec.batch import Outcome, run, stop_requested

    outcomes: list[Outcome] = []
    todo = []
    for task in tasks:
        if skip_existing and task.output is not None and _complete_output(task.output):
            outcomes.append(Outcome(str(task.source), str(task.output), "skipped"))
        else:
            todo.append(task)
    with _batch_bar(len(tasks), enabled=not quiet and not json_output) as advance:
        advance(len(outcomes))
        for outcome in run(todo, worker, jobs):
            outcomes.append(outcome)
            advance(1)
    if not quiet:
        _summary_table(outcomes, columns)
    failed = sum(o.status == "failed" for o in outcomes)
    if json_output:
        counts = {
            s: sum(o.status == s for o in outcomes)
            for s in ("ok", "failed", "skipped", "interrupted")
        }
        _print_json({"files": [o.to_dict() for o in outcomes], "summary": counts})
    if stop_requested() or any(o.status == "interrupted" for o in outcomes):
        return 130
    return 1 if failed else 0


def _complete_output(path: Path) -> bool:
    """An existing output counts as done unless it is a partial (interrupted) encode."""
    if not path.exists():
        return False
    if path.suffix != ".inr":
        return True
    from inrcodec.container import read

    try:
        return not read(path).encoder.get("partial", False)
    except InrcodecError:
        return False


def _cell(value: Any, key: str) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return _fmt(value, 4 if key == "ssim" else 2)


def _summary_table(outcomes: list, columns: list[tuple[str, str]]) -> None:
    table = Table(title="summary", show_header=True)
    table.add_column("file", overflow="fold")
    table.add_column("status")
    for title, _ in columns:
        table.add_column(title, justify="right")
    table.add_column("s", justify="right")
    table.add_column("message", overflow="fold")
    for o in outcomes:
        flat = {**o.result, **o.result.get("metrics", {})}
        values = [_cell(flat.get(key), key) for _, key in columns]
        style = {"failed": "red", "interrupted": "yellow"}.get(o.status, "")
        table.add_row(
            o.source,
            f"[{style}]{o.status}[/{style}]" if style else o.status,
            *values,
            f"{o.seconds:.1f}",
            o.message,
        )
    err.print(table)


class _batch_bar:
    """Files-done progress bar on stderr for batch runs; yields an `advance(n)` callback."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self):
        if self.enabled:
            self.bar = _rich_progress("files")
            self.task = self.bar.add_task("files", total=self.total)
        return self.advance

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _rich_progress(label: str, fields: str | None = None):
    """A started rich progress bar on stderr: label, bar, n/total, fields, elapsed, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn(fields)] if fields else []
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    bar = Progress(*columns, console=err, transient=True)
    bar.start()
    return bar


def _input_suffixes() -> set[str]:
    from inrcodec.media import supported_extensions

    return supported_extensions()


@app.command()
def encode(
    inputs: Inputs,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output .inr, or a directory for several inputs."),
    ] = None,
    preset: Annotated[str | None, typer.Option(help="Preset name or YAML file.")] = None,
    arch: Annotated[str | None, typer.Option(help="Architecture (see `inrcodec archs`).")] = None,
    transform: Annotated[
        str | None, typer.Option(help="Value transform: sym, minmax, zscore, gamma[:β], boxcox.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate (decays to 0.1x).")] = None,
    width: Annotated[int | None, typer.Option(help="Hidden width.")] = None,
    depth: Annotated[
        int | None, typer.Option(help="Hidden layers (3 = 5 weight matrices).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Coordinates per step; 0 = full batch.")
    ] = None,
    tile_size: Annotated[
        int | None,
        typer.Option(help="One small net per tile of about N samples a side (0 = one net)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    precision: Annotated[
        str | None, typer.Option(help="Stored weights: fp32, fp16, int8, int6 or int4.")
    ] = None,
    qat_steps: Annotated[
        int | None,
        typer.Option(help="int precisions: quantization-aware fine-tuning steps after fitting."),
    ] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Stop after this many seconds of training.")
    ] = None,
    target_psnr: Annotated[
        float | None,
        typer.Option(
            help="Stop once the PSNR reaches this (dB); unless --width, --depth or "
            "--size-preset is given, also search for the smallest size that reaches it."
        ),
    ] = None,
    target_bpp: Annotated[
        float | None,
        typer.Option(
            help="Search the size (unless given) and precision for the best "
            "quality whose file fits this many bits per pixel."
        ),
    ] = None,
    size_preset: Annotated[
        str | None,
        typer.Option(
            help="Network size: 3x16, 3x24, 3x32, coin (8x28), 3x48, 3x64, 3x96, "
            "3x128, 3x192 or 3x256 (hidden layers x width)."
        ),
    ] = None,
    patience: Annotated[
        int | None, typer.Option(help="Stop after this many steps without improvement.")
    ] = None,
    omega: Annotated[
        float | None, typer.Option(help="ω0 of the first and hidden layers (SIREN, FINER, SPDER).")
    ] = None,
    first_bias_scale: Annotated[
        float | None, typer.Option(help="FINER: first-layer bias ~ U(-k, k).")
    ] = None,
    damping: Annotated[str | None, typer.Option(help="SPDER damping: sqrt or arctan.")] = None,
    degree: Annotated[int | None, typer.Option(help="SL2A Chebyshev degree K.")] = None,
    rank: Annotated[int | None, typer.Option(help="SL2A low-rank r.")] = None,
    arch_option: Annotated[
        list[str] | None,
        typer.Option("--arch-option", "-O", help="Any arch hyper-parameter, KEY=VALUE."),
    ] = None,
    start: Annotated[float | None, typer.Option(help="Audio: start at this second.")] = None,
    duration: Annotated[float | None, typer.Option(help="Audio: fit this many seconds.")] = None,
    frames: Annotated[int | None, typer.Option(help="Video: fit the first N frames.")] = None,
    max_side: Annotated[
        int | None, typer.Option(help="Video: downscale so the longest side is at most this.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    compile: Annotated[
        str | None, typer.Option(help="torch.compile training: auto (long runs), on, off.")
    ] = None,
    recursive: Recursive = False,
    jobs: Jobs = 1,
    skip_existing: SkipExisting = False,
    force: Force = False,
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:
    """Fit an INR to each input and write .inr files.

    Without --preset, the preset named after the input's medium (image, audio, video)
    applies. Ctrl-C stops training and writes the best model so far, marked partial;
    a second Ctrl-C aborts without output.
    """
    from functools import partial

    from inrcodec.batch import Task, encode_task

    flags = {
        "arch": arch,
        "transform": transform,
        "steps": steps,
        "lr": lr,
        "width": width,
        "depth": depth,
        "batch_size": batch_size,
        "tile_size": tile_size,
        "seed": seed,
        "precision": precision,
        "qat_steps": qat_steps,
        "time_budget": time_budget,
        "target_psnr": target_psnr,
        "target_bpp": target_bpp,
        "size_preset": size_preset,
        # A target chooses the size unless the command line fixes it.
        "size_search": _size_is_free((target_psnr, target_bpp), (width, depth, size_preset)),
        "patience": patience,
        "device": device,
        "compile": compile,
        "start": start,
        "duration": duration,
        "frames": frames,
        "max_side": max_side,
    }
    arch_values = {
        "first_bias_scale": first_bias_scale,
        "damping": damping,
        "degree": degree,
        "rank": rank,
        **({"first_omega": omega, "hidden_omega": omega} if omega is not None else {}),
    }
    arch_values = {k: v for k, v in arch_values.items() if v is not None}
    arch_values.update(_key_values(arch_option or []))
    settings = {"preset": preset, "flags": flags, "arch_options": arch_values}
    _check_settings(settings)

    if _is_batch(inputs, output):
        tasks = _tasks(inputs, output, _input_suffixes(), ".inr", recursive)
        worker = partial(encode_task, settings=settings, force=force)
        columns = [("PSNR", "psnr"), ("SSIM", "ssim"), ("bpp", "bpp")]
        raise typer.Exit(
            _run_batch(tasks, worker, jobs, skip_existing, json_output, quiet, columns)
        )

    from inrcodec.codec import default_output

    source = inputs[0]
    destination = output or default_output(source, ".inr")
    if skip_existing and _complete_output(destination):
        if not quiet:
            err.print(f"{destination}: exists, skipped", markup=False)
        return
    with _progress_bar(enabled=not quiet and not json_output) as on_progress:
        report = encode_task(Task(source, destination), settings, force, on_progress)
    if json_output:
        _print_json(report)
    elif not quiet:
        for trial in report["trials"]:
            verdict = "fits" if trial["fits"] else "misses"
            err.print(
                f"tried {trial['size']} {trial['precision']}: {trial['psnr']:.2f} dB, "
                f"{trial['file_bytes']:,} B, {trial['seconds']:.1f} s ({verdict})",
                markup=False,
            )
        m = report["metrics"]
        quality = "  ".join(
            f"{k.upper()} {_fmt(m[k], 4 if k in ('ssim', 'stoi') else 2)}"
            for k in ("psnr", "ssim", "snr", "stoi")
            if isinstance(m.get(k), float)
        )
        rate = f"{m['bpp']:.3f} bpp" if "bpp" in m else f"{m.get('bps', 0):.0f} bit/s"
        reason = report["stop_reason"]
        stopped = "" if reason == "steps" else f", stopped: {reason}"
        out.print(
            f"{report['output']}: {quality}  {report['file_bytes']:,} B  {rate}  "
            f"{report['seconds']:.1f} s  ({report['steps']} steps{stopped}, {report['device']})",
            soft_wrap=True,
        )
    if target_psnr is not None and report["metrics"].get("psnr", 0) < target_psnr and not quiet:
        err.print(
            f"warning: --target-psnr {target_psnr:g} not reached; wrote the best found",
            markup=False,
        )
    if report["stop_reason"] == "interrupted":
        raise typer.Exit(130)


def _size_is_free(targets: tuple, sizes: tuple) -> bool | None:
    """True when a target is given and no size is; else None, so that a preset's own
    setting stands."""
    free = any(t is not None for t in targets) and all(s is None for s in sizes)
    return True if free else None


def _check_settings(settings: dict[str, Any]) -> None:
    """Fail on a bad preset or option before any file is touched (batch runs included)."""
    from inrcodec.codec import resolve_options
    from inrcodec.presets import load_preset

    if settings["preset"]:
        load_preset(settings["preset"])
    resolve_options(medium="image", **settings).validate()


def _key_values(items: list[str]) -> dict[str, Any]:
    """Parse KEY=VALUE pairs; values are read as YAML scalars (numbers, true, null...)."""
    import yaml

    parsed = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--arch-option expects KEY=VALUE, got {item!r}")
        parsed[key.strip().replace("-", "_")] = yaml.safe_load(text)
    return parsed


class _progress_bar:
    """Per-step encode progress on stderr; yields the `on_progress` callback (or None)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def __enter__(self):
        if not self.enabled:
            return None
        self.bar = _rich_progress("encode", "loss {task.fields[loss]}  PSNR {task.fields[psnr]}")
        self.task = self.bar.add_task("encode", total=None, loss="-", psnr="-")
        return self.update

    def update(self, p) -> None:
        fields = {"loss": f"{p.loss:.2e}"}
        if p.psnr is not None:
            fields["psnr"] = f"{_fmt(p.psnr)} dB"
        self.bar.update(self.task, total=p.total, completed=p.step, **fields)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


@app.command()
def decode(
    inputs: Annotated[list[Path], typer.Argument(help=".inr files or directories of them.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Output file, or a directory for several inputs "
            "(default: MODEL.decoded.png/.wav/.mp4).",
        ),
    ] = None,
    scale: Annotated[
        float | None, typer.Option(help="Resolution factor (1 = training grid).")
    ] = None,
    size: Annotated[str | None, typer.Option(help="Exact output size WxH.")] = None,
    rate: Annotated[float | None, typer.Option(help="Audio: output sample rate (Hz).")] = None,
    fps: Annotated[float | None, typer.Option(help="Video: output frame rate.")] = None,
    suffix: Annotated[
        str | None, typer.Option(help="Output extension in batch mode, e.g. .png or .flac.")
    ] = None,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse outputs with more samples than this.")
    ] = 100_000_000,
    device: Device = "auto",
    recursive: Recursive = False,
    jobs: Jobs = 1,
    skip_existing: SkipExisting = False,
    force: Force = False,
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:
    """Rebuild signals from .inr files at any resolution, sample rate or frame rate."""
    from functools import partial

    from inrcodec.batch import Task, decode_task

    asked = {"scale": scale, "size": size, "rate": rate, "fps": fps}
    request = {k: v for k, v in asked.items() if v is not None}
    worker = partial(
        decode_task, request=request, force=force, device=device, max_pixels=max_pixels
    )
    if _is_batch(inputs, output):
        tasks = _tasks(inputs, output, {".inr"}, suffix or ".decoded", recursive)
        if suffix is None:
            tasks = [Task(t.source, _decoded_name(t.source, t.output.parent)) for t in tasks]
        columns = [("shape", "shape")]
        raise typer.Exit(
            _run_batch(tasks, worker, jobs, skip_existing, json_output, quiet, columns)
        )
    source = inputs[0]
    target = output or _decoded_name(source, source.parent)
    if skip_existing and target.exists():
        return
    report = worker(Task(source, target))
    if json_output:
        _print_json(report)
    elif not quiet:
        shape = "x".join(map(str, report["shape"]))
        out.print(f"{report['output']}: {shape}  {report['seconds']:.2f} s", soft_wrap=True)


def _decoded_name(model: Path, folder: Path) -> Path:
    """MODEL.decoded.<the medium's usual suffix> in `folder`."""
    from inrcodec.container import read
    from inrcodec.media import handler_for_medium

    suffix = handler_for_medium(read(model).medium).output_suffix
    return folder / (model.stem + ".decoded" + suffix)


@app.command("eval")
def evaluate(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="MODEL REFERENCE, or .inr files/directories then a reference directory."
        ),
    ],
    device: Device = "auto",
    recursive: Recursive = False,
    jobs: Jobs = 1,
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:
    """Decode at each reference's size and report quality and rate.

    In batch mode each .inr is paired with the reference of the same name (any supported
    extension) in the reference directory.
    """
    from functools import partial

    from inrcodec.batch import Task, evaluate_task
    from inrcodec.metrics import compressai_json

    if len(paths) < 2:
        raise UsageError("eval needs a model and a reference")
    *models, reference = paths
    worker = partial(evaluate_task, device=device)
    if len(models) == 1 and not models[0].is_dir():
        if reference.is_dir():
            raise UsageError(f"{reference}: give a reference file for a single model")
        metrics = worker(Task(models[0], None, reference))["metrics"]
        if json_output:
            _print_json(compressai_json("inrcodec", f"{models[0]} vs {reference}", metrics))
        else:
            _metrics_table(f"{models[0].name} vs {reference.name}", metrics)
        return
    if not reference.is_dir():
        raise UsageError(f"{reference}: with several models, the reference must be a directory")
    tasks = [
        Task(model, None, _find_reference(reference, relative))
        for model, relative in _expand_models(models, recursive)
    ]
    outcomes = list(_collect(tasks, worker, jobs, quiet or json_output))
    ok = [o for o in outcomes if o.status == "ok"]
    if not quiet:
        _summary_table(outcomes, [("PSNR", "psnr"), ("SSIM", "ssim"), ("bpp", "bpp")])
    if json_output:
        document = compressai_json(
            "inrcodec",
            f"{len(ok)} files vs {reference}",
            _mean_metrics([o.result["metrics"] for o in ok]),
        )
        document["files"] = [o.to_dict() for o in outcomes]
        _print_json(document)
    if len(ok) != len(outcomes):
        raise typer.Exit(1)


def _expand_models(models: list[Path], recursive: bool) -> list[tuple[Path, Path]]:
    from inrcodec.batch import expand

    found = expand(models, {".inr"}, recursive)
    if not found:
        raise UsageError("no .inr files found")
    return found


def _find_reference(folder: Path, relative: Path) -> Path:
    """The file in `folder` with the model's relative name and any supported extension."""
    stem = folder / relative.with_suffix("")
    for suffix in sorted(_input_suffixes()):
        candidate = stem.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return stem.with_suffix(".png")  # missing: the task fails with "no such file"


def _collect(tasks: list, worker, jobs: int, quiet: bool):
    from inrcodec.batch import run

    with _batch_bar(len(tasks), enabled=not quiet) as advance:
        for outcome in run(tasks, worker, jobs):
            advance(1)
            yield outcome


def _mean_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of each scalar metric over files (CompressAI's aggregate)."""
    keys = [k for k in (results[0] if results else {}) if not isinstance(results[0][k], list)]
    means = {}
    for key in keys:
        values = [r[key] for r in results if key in r and math.isfinite(r[key])]
        if values:
            means[key] = sum(values) / len(values)
    return means


def _metrics_table(title: str, metrics: dict[str, Any]) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if isinstance(value, list):  # per-frame series: the JSON output has them all
            value_text = f"{len(value)} values"
        elif float(value).is_integer() and abs(value) >= 100:
            value_text = f"{value:,.0f}"
        else:
            value_text = _fmt(value, 4 if abs(value) < 10 else 2)
        table.add_row(key, value_text)
    out.print(table)


@app.command()
def info(
    model: Annotated[Path, typer.Argument(help="The .inr file.")],
    json_output: Json = False,
) -> None:
    """Show what is inside a .inr file."""
    from inrcodec.codec import describe

    facts = describe(model)
    if json_output:
        _print_json(facts)
        return
    table = Table(show_header=False, title=str(model))
    table.add_column(style="bold")
    table.add_column()
    for key, value in facts.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        table.add_row(key, str(value))
    out.print(table)


@app.command()
def presets(json_output: Json = False) -> None:
    """List the presets."""
    from inrcodec.presets import list_presets

    found = list_presets()
    if json_output:
        _print_json(
            [
                {
                    "name": p.name,
                    "medium": p.medium,
                    "description": p.description,
                    "encode": p.encode,
                }
                for p in found
            ]
        )
        return
    for p in found:
        out.print(f"[bold]{p.name}[/bold]  {p.description}")


@app.command()
def archs() -> None:
    """List the architectures."""
    from inrcodec.models import available

    for name, description in available().items():
        out.print(f"[bold]{name}[/bold]  {description}")


def _graceful_interrupts() -> None:
    """First Ctrl-C: stop training and write the best model so far. Second: abort now."""
    import signal

    from inrcodec import batch

    def handle(signum, frame) -> None:
        if batch.stop_requested():
            # Not KeyboardInterrupt: the training loop turns that into a graceful stop.
            # SystemExit unwinds everything; atomic outputs delete their temp files.
            err.print("inrcodec: aborted", markup=False)
            raise SystemExit(130)
        batch.request_stop()
        err.print(
            "inrcodec: stopping — writing the best model so far (Ctrl-C again to abort)",
            markup=False,
        )

    signal.signal(signal.SIGINT, handle)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every outcome into an exit code."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["encode"]:
        _graceful_interrupts()
    try:
        result = app(args=args, prog_name="inrcodec", standalone_mode=False)
    except InrcodecError as exc:
        err.print(f"inrcodec: error: {exc}", markup=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("inrcodec: interrupted", markup=False)
        return 130
    except Exception as exc:
        # typer/click usage errors carry their own exit code and message.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            err.print(f"inrcodec: error: {exc.format_message()}", markup=False, soft_wrap=True)
            return int(exc.exit_code)
        if type(exc).__name__ == "Abort":
            err.print("inrcodec: aborted", markup=False)
            return 130
        if os.environ.get("INRCODEC_DEBUG"):
            raise
        # A bug, not the user's fault: still one line, with a way to get the details.
        message = " ".join(str(exc).split())
        err.print(
            f"inrcodec: internal error: {type(exc).__name__}: {message} "
            "(set INRCODEC_DEBUG=1 for the traceback)",
            markup=False,
            soft_wrap=True,
        )
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
