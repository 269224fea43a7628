"""The transform interface and registry, a leaf module: transform modules register here,
and `inrcodec.transforms` reads it, so no module imports back into the package."""

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
