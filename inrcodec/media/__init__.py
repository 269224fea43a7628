"""Media I/O: files on disk <-> `Signal`, a regular grid of float samples in raw units.

Each medium lives in one module whose handler class registers itself with
`@register_medium`; the built-in modules are imported on first use, so importing this
package does not load Pillow, soundfile or ffmpeg.
"""

from __future__ import annotations

from pathlib import Path

from inrcodec.errors import InrcodecError
from inrcodec.media.base import Medium, MediumHandler, OutputFormat, Signal
from inrcodec.media.registry import _REGISTRY, register_medium

__all__ = [
    "Medium",
    "MediumHandler",
    "OutputFormat",
    "Signal",
    "handler_for_medium",
    "handler_for_path",
    "register_medium",
    "supported_extensions",
]


def handler_for_medium(medium: str) -> MediumHandler:
    """The handler for a medium the container records (it validates the name)."""
    _load_builtins()
    return _REGISTRY[medium]


def handler_for_path(path: Path) -> MediumHandler:
    """Pick the medium from the file extension."""
    _load_builtins()
    suffix = path.suffix.lower()
    for handler in _REGISTRY.values():
        if suffix in handler.extensions:
            return handler
    raise InrcodecError(f"{path}: unsupported file type {suffix or '(no extension)'!r}")


def supported_extensions() -> set[str]:
    """Every input suffix some medium reads (for picking files out of directories)."""
    _load_builtins()
    return set().union(*(h.extensions for h in _REGISTRY.values()))


def _load_builtins() -> None:
    # Importing the modules registers their handlers.
    from inrcodec.media import audio, image, video  # noqa: F401
