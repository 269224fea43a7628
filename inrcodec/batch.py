"""Many files at once: plan inputs and outputs, run jobs, never stop on one failure.

Each file is independent, so the work is a plain map over files. Everything that can
fail for one file (reading it, even to name its output) happens inside that file's task,
so a bad file is reported and the others go on. Parallel runs use separate processes;
the cores are split between them so that jobs × threads ≤ cores.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inrcodec.errors import InrcodecError, UsageError, one_line

SKIPPED: dict[str, Any] = {"skipped": True}  # a worker's result for an existing output


@dataclass
class Task:
    source: Path
    output: Path | None = None  # None: named by the worker (decode: after the medium)
    reference: Path | None = None  # eval: the reference file
    folder: Path | None = None  # decode without --suffix: where the named output goes


@dataclass
class Outcome:
    source: str
    output: str | None
    status: str  # "ok", "failed", "skipped" or "interrupted"
    seconds: float = 0.0
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.source,
            "output": self.output,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            **({"error": self.message} if self.message else {}),
            **self.result,
        }


STATUSES = ("ok", "failed", "skipped", "interrupted")


def is_batch(inputs: list[Path], output: Path | None) -> bool:
    """Several inputs, a directory, or an output directory: batch mode."""
    return (
        len(inputs) > 1
        or any(p.is_dir() for p in inputs)
        or (output is not None and (output.is_dir() or str(output).endswith(("/", "\\"))))
    )


def expand(
    inputs: Iterable[Path], suffixes: Iterable[str], recursive: bool
) -> list[tuple[Path, Path]]:
    """Files named directly plus matching files inside directories, as (path, relative name).

    A directory contributes the files whose suffix is in `suffixes` (its subdirectories
    too with `recursive`); a file named directly is always taken, so that a bad one is
    reported rather than silently ignored.
    """
    wanted = {s.lower() for s in suffixes}
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            pattern = item.rglob("*") if recursive else item.glob("*")
            matches = sorted(p for p in pattern if p.is_file() and p.suffix.lower() in wanted)
            found += [(p, p.relative_to(item)) for p in matches]
        else:
            found.append((item, Path(item.name)))
    return found


def plan(
    inputs: list[Path],
    output: Path | None,
    suffixes: set[str],
    out_suffix: str | None,
    recursive: bool,
) -> list[Task]:
    """Pair each input with its output: inside -o DIR (keeping subfolders), else beside it.

    With `out_suffix` None the worker names the output (decode: by the medium it reads)."""
    if output is not None:
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output}: with several inputs, -o must be a directory")
        output.mkdir(parents=True, exist_ok=True)
    tasks = []
    for source, relative in expand(inputs, suffixes, recursive):
        folder = source.parent if output is None else (output / relative).parent
        folder.mkdir(parents=True, exist_ok=True)  # mirror input subfolders
        if out_suffix is None:
            tasks.append(Task(source, folder=folder))
        else:
            tasks.append(Task(source, folder / (source.stem + out_suffix)))
    if not tasks:
        raise UsageError("no input files found")
    return tasks


def plan_eval(models: list[Path], references: Path, suffixes: set[str], recursive: bool):
    """Each .inr paired with the reference of the same relative name (any suffix)."""
    if not references.is_dir():
        raise UsageError(f"{references}: with several models, the reference must be a directory")
    found = expand(models, {".inr"}, recursive)
    if not found:
        raise UsageError("no .inr files found")
    return [Task(m, reference=_reference(references, rel, suffixes)) for m, rel in found]


def _reference(folder: Path, relative: Path, suffixes: set[str]) -> Path:
    """The file in `folder` with the model's relative name and any supported extension."""
    stem = folder / relative.with_suffix("")
    for suffix in sorted(suffixes):
        candidate = stem.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return stem.with_suffix(".png")  # missing: the task fails with "no such file"


def complete_output(path: Path) -> bool:
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


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


# Set when the user asks to stop (Ctrl-C): running encodes write their best model so far,
# marked partial, and no new file starts. Workers get a process-shared event instead.
_stop: Any = threading.Event()


def request_stop() -> None:
    _stop.set()


def stop_requested() -> bool:
    return _stop.is_set()


def _init_worker(threads: int, stop_event: Any) -> None:
    import signal

    import torch

    global _stop
    _stop = stop_event
    torch.set_num_threads(threads)
    # The parent owns Ctrl-C and forwards it through the event.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_one(worker: Callable[[Task], dict], task: Task) -> Outcome:
    start = time.perf_counter()
    output = None if task.output is None else str(task.output)
    try:
        result = worker(task)
    except InrcodecError as exc:
        return Outcome(str(task.source), output, "failed", time.perf_counter() - start, str(exc))
    except Exception as exc:  # a bug must not stop the other files either
        message = f"internal error: {type(exc).__name__}: {one_line(exc)}"
        return Outcome(str(task.source), output, "failed", time.perf_counter() - start, message)
    if result.get("skipped"):
        status = "skipped"
    elif result.get("stop_reason") == "interrupted":
        status = "interrupted"
    else:
        status = "ok"
    output = result.get("output", output)
    result = {k: v for k, v in result.items() if k not in ("skipped", "output", "input")}
    return Outcome(str(task.source), output, status, time.perf_counter() - start, result=result)


def run(tasks: list[Task], worker: Callable[[Task], dict], jobs: int = 1) -> Iterator[Outcome]:
    """Run `worker` on every task, yielding outcomes as they finish.

    `worker` is a top-level function or a partial of one (it is pickled for the process
    pool); it returns a result dict or raises. After `request_stop`, no new task starts.
    """
    if jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if jobs == 1 or len(tasks) <= 1:
        for task in tasks:
            if stop_requested():
                return
            yield _run_one(worker, task)
        return
    # spawn, not fork: forking a process that has used torch's thread pool can deadlock.
    context = multiprocessing.get_context("spawn")
    shared_stop = context.Event()
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_init_worker,
        initargs=(threads_per_job(jobs), shared_stop),
    ) as pool:
        pending = {pool.submit(_run_one, worker, task) for task in tasks}
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    if not future.cancelled():
                        yield future.result()
                if stop_requested() and not shared_stop.is_set():
                    shared_stop.set()
                    for future in pending:
                        future.cancel()
        finally:
            for future in pending:
                future.cancel()


def exit_code(outcomes: list[Outcome]) -> int:
    """130 if interrupted, 1 if any file failed, else 0."""
    if stop_requested() or any(o.status == "interrupted" for o in outcomes):
        return 130
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def counts(outcomes: list[Outcome]) -> dict[str, int]:
    return {s: sum(o.status == s for o in outcomes) for s in STATUSES}


def encode_task(
    task: Task, settings: Any, force: bool, skip_existing: bool = False, on_progress: Any = None
) -> dict:
    """Encode one file; `settings` (options.EncodeSettings) resolve per medium."""
    from inrcodec.codec import encode_file
    from inrcodec.media import handler_for_path

    assert task.output is not None
    if skip_existing and complete_output(task.output):
        return {**SKIPPED, "output": str(task.output)}
    options = settings.resolve(handler_for_path(task.source).medium)
    report = encode_file(task.source, task.output, options, force, on_progress, stop_requested)
    return report.to_dict()


def decode_task(
    task: Task,
    request: dict,
    force: bool,
    device: str,
    max_pixels: int,
    skip_existing: bool = False,
) -> dict:
    """Decode one file; its output is named here when the plan left it open."""
    from inrcodec.codec import decode_file, decoded_name

    target = task.output or decoded_name(task.source, task.folder)
    if skip_existing and target.exists():
        return {**SKIPPED, "output": str(target)}
    return asdict(decode_file(task.source, target, request, force, device, max_pixels))


def evaluate_task(task: Task, device: str) -> dict:
    from inrcodec.codec import evaluate_file

    assert task.reference is not None
    return {"metrics": evaluate_file(task.source, task.reference, device)}
