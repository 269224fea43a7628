"""Many files at once: expand inputs, map them to outputs, run jobs, never stop on one failure.

Each file is independent, so the work is a plain map over files. Parallel runs use
separate processes (torch's CPU kernels hold the GIL-free thread pool per process); the
cores are split between them so that jobs × threads ≤ cores.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inrcodec.errors import InrcodecError, UsageError


@dataclass
class Task:
    source: Path
    output: Path | None  # None for eval
    extra: Path | None = None  # eval: the reference file


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


def output_path(out_dir: Path, relative: Path, suffix: str) -> Path:
    return out_dir / relative.with_suffix(suffix)


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
    try:
        result = worker(task)
    except InrcodecError as exc:
        return Outcome(
            str(task.source), _str(task.output), "failed", time.perf_counter() - start, str(exc)
        )
    except Exception as exc:  # a bug must not stop the other files either
        message = f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}"
        return Outcome(
            str(task.source), _str(task.output), "failed", time.perf_counter() - start, message
        )
    status = "interrupted" if result.get("stop_reason") == "interrupted" else "ok"
    return Outcome(
        str(task.source), _str(task.output), status, time.perf_counter() - start, result=result
    )


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def run(
    tasks: list[Task],
    worker: Callable[[Task], dict],
    jobs: int = 1,
) -> Iterator[Outcome]:
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


def encode_task(task: Task, settings: dict[str, Any], force: bool, on_progress: Any = None) -> dict:
    """Encode one file; `settings` (preset, flags, arch_options) resolve per medium."""
    from inrcodec.codec import encode_file, resolve_options
    from inrcodec.media import handler_for_path

    assert task.output is not None
    medium = handler_for_path(task.source).medium
    options = resolve_options(medium=medium, **settings)
    report = encode_file(task.source, task.output, options, force, on_progress, stop_requested)
    return report.to_dict()


def decode_task(task: Task, request: dict, force: bool, device: str, max_pixels: int) -> dict:
    from dataclasses import asdict

    from inrcodec.codec import decode_file

    assert task.output is not None
    return asdict(decode_file(task.source, task.output, request, force, device, max_pixels))


def evaluate_task(task: Task, device: str) -> dict:
    from inrcodec.codec import evaluate_file

    assert task.extra is not None
    return {"metrics": evaluate_file(task.source, task.extra, device)}
