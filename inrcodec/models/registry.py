"""The arch registry, a leaf module: arch modules register here, and `inrcodec.models`
reads it, so no module imports back into the package that loads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Builder = Callable[..., Any]

_REGISTRY: dict[str, Builder] = {}
_DESCRIPTIONS: dict[str, str] = {}
_MEDIUM_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {}
_MEDIA: dict[str, tuple[str, ...]] = {}
ALL_MEDIA = ("image", "audio", "video")


def register(
    name: str,
    description: str,
    medium_defaults: dict[str, dict[str, Any]] | None = None,
    media: tuple[str, ...] = ALL_MEDIA,
) -> Callable[[Builder], Builder]:
    """Register a builder. `medium_defaults` replaces some defaults for one medium, e.g.
    {"audio": {"first_omega": 100.0}} for the sym-power reference's audio setting;
    `media` are those it can give a useful file of (others are refused up front)."""

    def wrap(builder: Builder) -> Builder:
        _REGISTRY[name] = builder
        _DESCRIPTIONS[name] = description
        _MEDIUM_DEFAULTS[name] = medium_defaults or {}
        _MEDIA[name] = media
        return builder

    return wrap
