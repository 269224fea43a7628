"""The medium registry, a leaf module: medium modules register their handler here, and
`inrcodec.media` reads it, so no module imports back into the package that loads it."""

from __future__ import annotations

from typing import TypeVar

from inrcodec.media.base import MediumHandler

HandlerClass = TypeVar("HandlerClass", bound=type[MediumHandler])

_REGISTRY: dict[str, MediumHandler] = {}


def register_medium(cls: HandlerClass) -> HandlerClass:
    """Register the handler for `cls.medium`; handlers hold no state, so one instance
    serves every caller."""
    _REGISTRY[cls.medium] = cls()
    return cls
