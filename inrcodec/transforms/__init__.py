"""Value transforms: reversible maps from raw signal values to the network's target range.

Each transform is a forward/inverse pair. `fit` looks at the whole signal once (global
statistics over all channels, as the sym-power reference does) and returns the scalars
that decoding needs; `forward` and `inverse` take only those scalars. The scalars are
what the container stores, so a transform must declare their names in `scalars`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

Scalars = dict[str, float]


class ValueTransform(ABC):
    """A reversible value map, fitted once per signal."""

    name: ClassVar[str]
    scalars: ClassVar[tuple[str, ...]]  # names of the floats stored in the container

    @abstractmethod
    def fit(self, x: torch.Tensor) -> Scalars:
        """Compute the stored scalars from the raw signal (any shape, float32)."""

    @abstractmethod
    def forward(self, x: torch.Tensor, s: Scalars) -> torch.Tensor:
        """Raw values -> network targets."""

    @abstractmethod
    def inverse(self, y: torch.Tensor, s: Scalars) -> torch.Tensor:
        """Network outputs -> raw values (before the medium's final clamp)."""


_REGISTRY: dict[str, type[ValueTransform]] = {}


def register(cls: type[ValueTransform]) -> type[ValueTransform]:
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_transform(spec: str) -> ValueTransform:
    """Instantiate a transform from `name` or `name:param` (e.g. ``gamma:2.0``).

    The optional parameter is an encode-time setting (the fixed exponent of `gamma`);
    decoding never needs it, because the fitted scalars carry everything.
    """
    from inrcodec.errors import UsageError

    _load_builtins()
    name, _, param = spec.partition(":")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise UsageError(f"unknown transform {name!r} (choose from {', '.join(available())})")
    if not param:
        return cls()
    try:
        return cls(float(param))  # type: ignore[call-arg]
    except (TypeError, ValueError):
        raise UsageError(f"transform {name!r} takes no parameter {param!r}") from None


def _load_builtins() -> None:
    # Importing the modules registers their classes.
    from inrcodec.transforms import boxcox, simple, sympower  # noqa: F401
