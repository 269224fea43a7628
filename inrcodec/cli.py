"""The `inrcodec` command line: parse, call the library, print.

Human-readable progress and summaries go to stderr/stdout through rich; `--json`
prints one JSON document on stdout. Exit codes: 0 success, 1 a file or data problem,
2 a usage error, 130 interrupted. Torch is imported only inside commands, so
`inrcodec --help` is instant. Encode flags are derived from the option declarations in
options.py, so an option is declared once.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from inrcodec.errors import InrcodecError, UsageError, one_line
from inrcodec.models.registry import ALL_MEDIA
from inrcodec.options import (
    DEFAULT_MAX_PIXELS,
    ArchFlags,
    EncodeOptions,
    EncodeSettings,
    cli_fields,
)

app = typer.Typer(
    name="inrcodec",
    help="Store images, audio and video as implicit neural representations (.inr files).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
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


def _run_batch(tasks: list, worker, jobs: int, json_output: bool, quiet: bool, columns) -> int:
    """Run a batch, print the summary table (stderr) and JSON (stdout); return the exit code."""
    from inrcodec.batch import counts, exit_code

    outcomes = _outcomes(tasks, worker, jobs, quiet or json_output)
    if not quiet:
        _summary_table(outcomes, columns)
    if json_output:
        _print_json({"files": [o.to_dict() for o in outcomes], "summary": counts(outcomes)})
    return exit_code(outcomes)


def _outcomes(tasks: list, worker, jobs: int, quiet: bool) -> list:
    """Every task's outcome, with a files-done bar on stderr unless quiet."""
    from inrcodec.batch import run

    outcomes = []
    with _batch_bar(len(tasks), enabled=not quiet) as advance:
        for outcome in run(tasks, worker, jobs):
            outcomes.append(outcome)
            advance(1)
    return outcomes


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
            o.message or "; ".join(o.result.get("warnings", [])),
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


def _with_flags(*declarations: type) -> Callable[[Callable], Callable]:
    """Give a command one `--flag` per option field of `declarations` (options.py), so each
    option is declared once. The command receives them as keyword arguments (None: not
    given, so the preset or the default decides)."""

    def wrap(command: Callable) -> Callable:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        added = []
        for declaration in declarations:
            hints = typing.get_type_hints(declaration)
            for spec in cli_fields(declaration):
                flag = typer.Option(*spec.metadata["flags"], help=spec.metadata["help"])
                added.append(
                    inspect.Parameter(
                        spec.name,
                        inspect.Parameter.KEYWORD_ONLY,
                        default=None,
                        annotation=Annotated[hints[spec.name] | None, flag],
                    )
                )

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            return command(**kwargs)

        run.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
        return run

    return wrap


@app.command()
@_with_flags(EncodeOptions, ArchFlags)
def encode(
    inputs: Inputs,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output .inr, or a directory for several inputs."),
    ] = None,
    preset: Annotated[str | None, typer.Option(help="Preset name or YAML file.")] = None,
    arch_option: Annotated[
        list[str] | None,
        typer.Option("--arch-option", "-O", help="Any arch hyper-parameter, KEY=VALUE."),
    ] = None,
    recursive: Recursive = False,
    jobs: Jobs = 1,
    skip_existing: SkipExisting = False,
    force: Force = False,
    quiet: Quiet = False,
    json_output: Json = False,
    **flags: Any,
) -> None:
    """Fit an INR to each input and write .inr files.

    Without --preset, the preset named after the input's medium (image, audio, video)
    applies. The preset also sets how long training takes for the input's size (`inrcodec
    presets` lists it: the image default, 2 minutes at 768x512 and longer for larger
    photos); --time-budget replaces that, and progress shows the time left from the start.
    Ctrl-C stops training and writes the best model so far, marked partial;
    a second Ctrl-C aborts without output.
    """
    from inrcodec.batch import Task, encode_task, is_batch, plan

    arch_flags = {f.name: flags.pop(f.name) for f in cli_fields(ArchFlags)}
    arch_options = {**ArchFlags(**arch_flags).arch_options(), **_key_values(arch_option or [])}
    settings = EncodeSettings(preset, flags, arch_options)
    if is_batch(inputs, output):
        settings.resolve(_preset_medium(preset)).validate()  # fail before any file is read
        tasks = plan(inputs, output, _input_suffixes(), ".inr", recursive)
        worker = functools.partial(
            encode_task, settings=settings, force=force, skip_existing=skip_existing
        )
        columns = [("PSNR", "psnr"), ("SSIM", "ssim"), ("bpp", "bpp")]
        raise typer.Exit(_run_batch(tasks, worker, jobs, json_output, quiet, columns))

    from inrcodec.codec import default_output

    source = inputs[0]
    task = Task(source, output or default_output(source, ".inr"))
    with _progress_bar(enabled=not quiet and not json_output) as on_progress:
        report = encode_task(task, settings, force, skip_existing, on_progress)
    if json_output:
        _print_json(report)
    elif not quiet:
        _print_encode(report)
    if not quiet:
        for warning in report.get("warnings", []):
            err.print(f"warning: {warning}", markup=False)
    if report.get("stop_reason") == "interrupted":
        raise typer.Exit(130)


def _preset_medium(preset: str | None) -> str:
    """The medium a batch's settings are checked for before any file is read."""
    from inrcodec.presets import load_preset

    return (load_preset(preset).medium if preset else None) or "image"


def _print_encode(report: dict[str, Any]) -> None:
    if report.get("skipped"):
        err.print(f"{report['output']}: exists, skipped", markup=False)
        return
    for trial in report["trials"]:
        verdict = "fits" if trial["fits"] else "misses"
        err.print(
            f"tried {trial['size']} {trial['precision']}: {trial['quality']:.2f} dB "
            f"{trial['metric'].upper()}, {trial['file_bytes']:,} B, {trial['seconds']:.1f} s "
            f"({verdict})",
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
    lam = f", λ {report['lam']:.3g}" if report.get("lam") else ""
    out.print(
        f"{report['output']}: {quality}  {report['file_bytes']:,} B  {rate}  "
        f"{report['seconds']:.1f} s  ({report['steps']} steps{stopped}{lam}, {report['device']})",
        soft_wrap=True,
    )
    trials = report["trials"]
    if trials and not any(t["fits"] for t in trials):
        err.print("warning: no trial met the target; wrote the best found", markup=False)


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
    """Per-step encode progress on stderr; yields the `on_progress` callback (or None).

    A terminal gets a live bar; a pipe or log file gets plain lines (the first report,
    then one every `LINE_SECONDS`), so scripts and CI logs see progress too."""

    LINE_SECONDS = 10.0

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar, self.last_line = enabled, None, -math.inf

    def __enter__(self):
        if not self.enabled:
            return None
        if not err.is_terminal:
            return self.line
        self.bar = _rich_progress("encode", "loss {task.fields[loss]}  {task.fields[db]} dB")
        self.task = self.bar.add_task("encode", total=None, loss="-", db="-")
        return self.update

    def update(self, p) -> None:
        fields = {"loss": f"{p.loss:.2e}"}
        if p.psnr is not None:
            fields["db"] = _fmt(p.psnr)
        if p.budget:  # a time budget ends the run: the bar and its ETA follow the clock
            seconds = {"total": math.ceil(p.budget), "completed": int(p.elapsed)}
            self.bar.update(self.task, **seconds, **fields)
        else:
            self.bar.update(self.task, total=p.total, completed=p.step, **fields)

    def line(self, p) -> None:
        if p.elapsed - self.last_line < self.LINE_SECONDS:
            return
        self.last_line = p.elapsed
        quality = "" if p.psnr is None else f"  {_fmt(p.psnr)} dB"
        steps = f"step {p.step}" if p.budget else f"step {p.step}/{p.total}"
        clock = f"{p.elapsed:.0f}/{p.budget:.0f} s" if p.budget else f"{p.elapsed:.0f} s"
        err.print(
            f"encode: {steps}  loss {p.loss:.2e}{quality}  {clock}",
            markup=False,
            soft_wrap=True,
        )

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
    start: Annotated[
        float | None, typer.Option(help="Audio and video: decode from this second.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Audio and video: decode this many seconds.")
    ] = None,
    suffix: Annotated[
        str | None, typer.Option(help="Output extension in batch mode, e.g. .png or .flac.")
    ] = None,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse outputs with more samples than this.")
    ] = DEFAULT_MAX_PIXELS,
    device: Device = "auto",
    recursive: Recursive = False,
    jobs: Jobs = 1,
    skip_existing: SkipExisting = False,
    force: Force = False,
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:
    """Rebuild signals from .inr files at any resolution, sample rate or frame rate."""
    from inrcodec.batch import Task, decode_task, is_batch, plan

    asked = {"scale": scale, "size": size, "rate": rate, "fps": fps}
    asked |= {"start": start, "duration": duration}
    worker = functools.partial(
        decode_task,
        request={k: v for k, v in asked.items() if v is not None},
        force=force,
        device=device,
        max_pixels=max_pixels,
        skip_existing=skip_existing,
    )
    if is_batch(inputs, output):
        tasks = plan(inputs, output, {".inr"}, suffix, recursive)
        raise typer.Exit(_run_batch(tasks, worker, jobs, json_output, quiet, [("shape", "shape")]))
    report = worker(Task(inputs[0], output))
    if json_output:
        _print_json(report)
    elif not quiet and not report.get("skipped"):
        shape = "x".join(map(str, report["shape"]))
        out.print(f"{report['output']}: {shape}  {report['seconds']:.2f} s", soft_wrap=True)


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
    from inrcodec.batch import Task, evaluate_task, plan_eval
    from inrcodec.metrics import compressai_json, mean_metrics

    if len(paths) < 2:
        raise UsageError("eval needs a model and a reference")
    *models, reference = paths
    worker = functools.partial(evaluate_task, device=device)
    if len(models) == 1 and not models[0].is_dir():
        if reference.is_dir():
            raise UsageError(f"{reference}: give a reference file for a single model")
        metrics = worker(Task(models[0], reference=reference))["metrics"]
        if json_output:
            _print_json(compressai_json("inrcodec", f"{models[0]} vs {reference}", metrics))
        else:
            _metrics_table(f"{models[0].name} vs {reference.name}", metrics)
        return
    tasks = plan_eval(models, reference, _input_suffixes(), recursive)
    outcomes = _outcomes(tasks, worker, jobs, quiet or json_output)
    ok = [o for o in outcomes if o.status == "ok"]
    if not quiet:
        _summary_table(outcomes, [("PSNR", "psnr"), ("SSIM", "ssim"), ("bpp", "bpp")])
    if json_output:
        document = compressai_json(
            "inrcodec",
            f"{len(ok)} files vs {reference}",
            mean_metrics([o.result["metrics"] for o in ok]),
        )
        document["files"] = [o.to_dict() for o in outcomes]
        _print_json(document)
    if len(ok) != len(outcomes):
        raise typer.Exit(1)


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


@app.command("compare")
def compare_codecs(
    image: Annotated[Path, typer.Argument(help="The original image.")],
    model: Annotated[Path, typer.Argument(help="The .inr file encoded from it.")],
    codecs: Annotated[
        str, typer.Option(help="Classical codecs, comma-separated: jpeg, webp, avif.")
    ] = "jpeg,webp",
    side_by_side: Annotated[
        Path | None,
        typer.Option(help="Also write original | inrcodec | each codec as one PNG here."),
    ] = None,
    device: Device = "auto",
    force: Force = False,
    json_output: Json = False,
) -> None:
    """Compare a .inr with classical codecs given the same number of bytes.

    Each codec gets the highest quality whose whole file fits in the .inr file's size;
    every picture is scored against IMAGE as eval scores the model.
    """
    from inrcodec import compare as comparing

    names = comparing.parse_codecs(codecs)
    if side_by_side is not None:
        comparing.check_output(side_by_side, force)  # fail before decoding and searching
    rows = comparing.compare(image, model, names, device)
    if side_by_side is not None:
        panels = comparing.comparison_panels(comparing.read_rgb(image), rows)
        comparing.side_by_side(panels, side_by_side, force)
    table_rows = [{k: v for k, v in row.items() if k != "decoded"} for row in rows]
    if json_output:
        document = {"image": str(image), "model": str(model), "budget_bytes": rows[0]["bytes"]}
        document |= {"results": table_rows, "side_by_side": side_by_side}
        _print_json(document)
    else:
        _compare_table(f"{model.name} vs {image.name}, {rows[0]['bytes']:,} B", table_rows)
        if side_by_side is not None:
            err.print(f"side by side written to {side_by_side}", markup=False)


def _compare_table(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title, show_header=True)
    for heading in ("codec", "quality", "bytes", "bpp", "PSNR", "SSIM"):
        table.add_column(heading, justify="left" if heading == "codec" else "right")
    for row in rows:
        quality = "" if row["quality"] is None else str(row["quality"])
        over = " [red](over budget)[/red]" if row["over_budget"] else ""
        table.add_row(
            row["codec"],
            quality,
            f"{row['bytes']:,}{over}",
            f"{row['bpp']:.3f}",
            _fmt(row["psnr"]),
            _fmt(row["ssim"], 4),
        )
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
                    "media": p.served(),
                    "description": p.description,
                    "encode": {m: p.encode_for(m) for m in p.served() or ALL_MEDIA},
                }
                for p in found
            ]
        )
        return
    for p in found:
        media = ", ".join(p.served() or ["any medium"])
        out.print(f"[bold]{p.name}[/bold]  ({media})  {p.description}", markup=True)


@app.command()
def archs() -> None:
    """List the architectures, and the recipe `--arch NAME` gets for each medium."""
    from inrcodec.models import available, media
    from inrcodec.presets import recipe

    for name, description in available().items():
        recipes = []
        for medium in media(name):
            try:
                recipes.append(f"{medium}: {recipe(medium, name).name}.yaml")
            except UsageError:
                continue
        refused = sorted(set(ALL_MEDIA) - set(media(name)))
        note = f"; refuses {', '.join(refused)}" if refused else ""
        out.print(f"[bold]{name}[/bold]  {description}")
        out.print(f"    recipe: {', '.join(recipes)}{note}", markup=False)


def _graceful_interrupts() -> None:
    """First Ctrl-C: stop training and write the best model so far. Second: abort now."""
    import signal

    from inrcodec import batch

    def say(text: str) -> None:
        # Straight to fd 2: the handler may run while the main thread is inside a rich
        # print, and rich's console buffer is not reentrant (it would print that twice).
        os.write(2, f"inrcodec: {text}\n".encode())

    def handle(signum, frame) -> None:
        if batch.stop_requested():
            # Not KeyboardInterrupt: the training loop turns that into a graceful stop.
            # SystemExit unwinds everything; atomic outputs delete their temp files.
            say("aborted")
            raise SystemExit(130)
        batch.request_stop()
        say("stopping — writing the best model so far (Ctrl-C again to abort)")

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
        message = one_line(exc)
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
