"""What the benchmark scripts share: subprocesses with a thread count, the machine and the
date for their reports, list parsing and table cells."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def subprocess_env(threads: int) -> dict[str, str]:
    """A child's environment: `threads` OpenMP/BLAS threads, this checkout's package."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@dataclass
class Run:
    """A finished subprocess: error "" on success, else the exit status and the last line
    of stderr (where the CLI and ffmpeg put theirs); its wall seconds and its own peak RSS."""

    error: str
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float


def run_timed(command: list[str], env: dict[str, str], timeout: float) -> Run:
    """Run a subprocess to its end or `timeout` (then killed), measuring the child alone."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        status, usage, error = 0, None, ""
        while usage is None:
            pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                usage = rusage
            elif time.perf_counter() - started > timeout:
                child.kill()
                error = f"timed out after {timeout:g} s"
            else:
                time.sleep(0.05)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if not error and child.returncode != 0:
        lines = [line for line in stderr.splitlines() if line.strip()] or ["(no stderr)"]
        error = f"exit {child.returncode}: {lines[-1].strip()}"
    return Run(error, stdout, stderr, seconds, usage.ru_maxrss / 1024)


def ffmpeg_encoders(ffmpeg: str) -> set[str]:
    """The encoder names this ffmpeg binary lists (`ffmpeg -encoders`)."""
    listing = subprocess.run(
        [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False
    ).stdout
    return {fields[1] for fields in map(str.split, listing.splitlines()) if len(fields) > 1}


def today() -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z")


def machine() -> str:
    """CPU model and the cores this process may use, for reading the timings."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return f"{model}, {usable or os.cpu_count()} usable cores ({os.cpu_count()} online)"


def parse_list(text: str, allowed: Iterable[str] | None = None) -> list[str]:
    """Comma-separated names, each one of `allowed` if given (an argparse type)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in items if allowed is not None and t not in allowed]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown: {', '.join(unknown)}")
    return items


def cell(value: float | None, digits: int = 2, sign: bool = False) -> str:
    """A table cell: the number, or – where there is none."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def measurements(
    out: Path, store: str, replot: bool, measure: Callable[[], tuple[list[dict], dict]]
) -> tuple[list[dict], dict]:
    """A run's rows and meta: measured now and saved to out/store, or, with --replot, read
    back from it, so that tables and plots can be rebuilt without encoding."""
    path = out / store
    if replot:
        saved = json.loads(path.read_text())
        return saved["measurements"], saved["meta"] | {"replotted": True}
    rows, meta = measure()
    path.write_text(json.dumps({"meta": meta, "measurements": rows}, indent=1) + "\n")
    return rows, meta


def failure_lines(rows: list[dict], where: str) -> list[str]:
    """One Markdown line per failed measurement; `where` is the rows' input key."""
    failed = [r for r in rows if "error" in r]
    if not failed:
        return ["None."]
    return [
        f"- {r['codec']} {r['setting']:g} on {r[where]}: `{r['error'].replace('`', '')}`"
        for r in failed
    ]
