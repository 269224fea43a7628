"""The `inrcodec` command line: parse, call the library, print.

Human-readable progress and summaries go to stderr/stdout through rich; `--json`
prints one JSON document on stdout. Exit codes: 0 success, 1 a file or data problem,
2 a usage error, 130 interrupted. Torch is imported only inside commands, so
`inrcodec --help` is instant.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from inrcodec.errors import InrcodecError

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


@app.command()
def encode(
    input: Annotated[Path, typer.Argument(help="Image to encode (PNG, JPEG, BMP, TIFF).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output .inr (default: INPUT.inr).")
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
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    precision: Annotated[str | None, typer.Option(help="Stored weights: fp16 or fp32.")] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Stop after this many seconds of training.")
    ] = None,
    target_psnr: Annotated[
        float | None, typer.Option(help="Stop once the PSNR reaches this (dB).")
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
    force: Force = False,
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:
    """Fit an INR to INPUT and write a .inr file.

    Without --preset, the preset named after INPUT's medium (image, audio, video) applies.
    """
    from inrcodec.codec import EncodeOptions, default_output, encode_file
    from inrcodec.media import handler_for_path
    from inrcodec.presets import default_preset, load_preset

    chosen = load_preset(preset) if preset else default_preset(handler_for_path(input).medium)
    values: dict[str, Any] = dict(chosen.encode) if chosen else {}
    arch_values = {
        "first_bias_scale": first_bias_scale,
        "damping": damping,
        "degree": degree,
        "rank": rank,
        **({"first_omega": omega, "hidden_omega": omega} if omega is not None else {}),
    }
    arch_values = {k: v for k, v in arch_values.items() if v is not None}
    arch_values.update(_key_values(arch_option or []))
    if arch_values:
        # Options the preset set for its own arch do not carry over to another --arch.
        keep = values.get("arch_options", {}) if arch in (None, values.get("arch")) else {}
        values["arch_options"] = {**keep, **arch_values}
    elif arch not in (None, values.get("arch")):
        values.pop("arch_options", None)
    flags = {
        "arch": arch,
        "transform": transform,
        "steps": steps,
        "lr": lr,
        "width": width,
        "depth": depth,
        "batch_size": batch_size,
        "seed": seed,
        "precision": precision,
        "time_budget": time_budget,
        "target_psnr": target_psnr,
        "patience": patience,
        "device": device,
        "start": start,
        "duration": duration,
        "frames": frames,
        "max_side": max_side,
    }
    values.update({k: v for k, v in flags.items() if v is not None})
    options = EncodeOptions.from_mapping(values, f"preset {chosen.name}" if chosen else "options")
    destination = output or default_output(input, ".inr")

    with _progress_bar(enabled=not quiet and not json_output) as on_progress:
        report = encode_file(input, destination, options, force=force, on_progress=on_progress)
    if json_output:
        _print_json(report.to_dict())
    elif not quiet:
        m = report.metrics
        quality = "  ".join(
            f"{k.upper()} {_fmt(m[k], 4 if k == 'ssim' else 2)}" for k in ("psnr", "ssim") if k in m
        )
        rate = f"{m['bpp']:.3f} bpp" if "bpp" in m else f"{m.get('bps', 0):.0f} bit/s"
        stopped = "" if report.stop_reason == "steps" else f", stopped: {report.stop_reason}"
        out.print(
            f"{report.output}: {quality}  {report.file_bytes:,} B  {rate}  "
            f"{report.seconds:.1f} s  ({report.steps} steps{stopped}, {report.device})",
            soft_wrap=True,
        )
    if report.stop_reason == "interrupted":
        raise typer.Exit(130)


def _key_values(items: list[str]) -> dict[str, Any]:
    """Parse KEY=VALUE pairs; values are read as YAML scalars (numbers, true, null...)."""
    import yaml

    from inrcodec.errors import UsageError

    parsed = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--arch-option expects KEY=VALUE, got {item!r}")
        parsed[key.strip().replace("-", "_")] = yaml.safe_load(text)
    return parsed


class _progress_bar:
    """Context manager yielding a progress callback that drives a rich bar on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("encode"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  PSNR {task.fields[psnr]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        self.bar.start()
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
    model: Annotated[Path, typer.Argument(help="The .inr file.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (default: MODEL.decoded.png)."),
    ] = None,
    scale: Annotated[
        float | None, typer.Option(help="Resolution factor (1 = training grid).")
    ] = None,
    size: Annotated[str | None, typer.Option(help="Exact output size WxH.")] = None,
    rate: Annotated[float | None, typer.Option(help="Audio: output sample rate (Hz).")] = None,
    fps: Annotated[float | None, typer.Option(help="Video: output frame rate.")] = None,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse outputs with more samples than this.")
    ] = 100_000_000,
    device: Device = "auto",
    force: Force = False,
    quiet: Quiet = False,
    json_output: Json = False,
) -> None:
    """Rebuild the signal from a .inr file at any resolution."""
    from inrcodec.codec import decode_file, default_output
    from inrcodec.container import read
    from inrcodec.media import handler_for_medium

    asked = {"scale": scale, "size": size, "rate": rate, "fps": fps}
    request = {k: v for k, v in asked.items() if v is not None}
    if output is None:
        handler = handler_for_medium(read(model).medium)
        output = default_output(model, ".decoded" + handler.output_suffix)
    report = decode_file(model, output, request, force, device, max_pixels)
    if json_output:
        _print_json(vars(report))
    elif not quiet:
        shape = "x".join(map(str, report.shape))
        out.print(f"{report.output}: {shape}  {report.seconds:.2f} s", soft_wrap=True)


@app.command("eval")
def evaluate(
    model: Annotated[Path, typer.Argument(help="The .inr file.")],
    reference: Annotated[Path, typer.Argument(help="The original signal.")],
    device: Device = "auto",
    json_output: Json = False,
) -> None:
    """Decode at the reference's size and report quality and rate."""
    from inrcodec.codec import evaluate_file
    from inrcodec.metrics import compressai_json

    metrics = evaluate_file(model, reference, device)
    if json_output:
        _print_json(compressai_json("inrcodec", f"{model} vs {reference}", metrics))
        return
    table = Table(title=f"{model.name} vs {reference.name}", show_header=True)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every outcome into an exit code."""
    args = sys.argv[1:] if argv is None else argv
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
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
