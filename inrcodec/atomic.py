"""Atomic output files: a reader never sees a half-written output, and a failed or
interrupted write leaves the previous file (if any) untouched."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from inrcodec.errors import InrcodecError


def ensure_writable(path: str | Path, force: bool) -> Path:
    """Check that `path` may be written, before any expensive work is done for it.

    Callers can run this before a long encode so that a bad output path fails fast;
    `atomic_output` runs it again.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise InrcodecError(f"{path}: output directory {parent} does not exist")
    if path.is_dir():
        raise InrcodecError(f"{path}: is a directory, not an output file")
    if path.exists() and not force:
        raise InrcodecError(f"{path}: exists; use --force to overwrite")
    if not os.access(parent, os.W_OK):
        raise InrcodecError(f"{path}: output directory {parent} is not writable")
    return path


def _default_file_mode() -> int:
    """Permissions a plain `open(path, "w")` would give; temp files are created 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_output(path: str | Path, force: bool) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`.

    The temp file is in the same directory (so the rename is atomic) and has the same
    suffix (so libraries that pick a format from the extension still work). On any
    exception, KeyboardInterrupt included, the temp file is removed.
    """
    path = ensure_writable(path, force)
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix, delete=False
        ) as handle:
            tmp = Path(handle.name)
    except OSError as exc:
        raise InrcodecError(
            f"{path}: cannot create a file in {path.parent} ({exc.strerror})"
        ) from exc
    try:
        yield tmp
        tmp.chmod(_default_file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InrcodecError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
