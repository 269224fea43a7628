"""SIREN (Sitzmann et al. 2020): sin(ω0·(Wx + b)) layers with a linear head.

Follows the official `explore_siren.ipynb` exactly: first-layer W ~ U(±1/fan_in), hidden
and output W ~ U(±√(6/fan_in)/ω_hidden), biases left at PyTorch's default init.
`PeriodicMLP` is shared with FINER/FINER++ and SPDER, which only swap the activation
(and, for FINER++ Wavelet, the dtype and the init frequency).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from inrcodec.models.registry import register

Activation = Callable[[torch.Tensor, float], torch.Tensor]

# The sym-power reference's audio runs (after Siamese SIREN) use ω = 100 in every layer,
# for SIREN and FINER alike.
AUDIO_OMEGA = {"audio": {"first_omega": 100.0, "hidden_omega": 100.0}}


def sine(z: torch.Tensor, omega: float) -> torch.Tensor:
    return torch.sin(omega * z)


class PeriodicLayer(nn.Module):
    """Linear map followed by a frequency-scaled periodic activation.

    Initialised in the references' order (PyTorch default, then the weight, then the
    bias override), so a given seed draws the same numbers as the official code.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        omega: float,
        activation: Activation,
        weight_bound: float,
        bias_bound: float | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, dtype=dtype)
        self.omega = omega
        self.activation = activation
        with torch.no_grad():
            self.linear.weight.uniform_(-weight_bound, weight_bound)
            if bias_bound is not None:
                self.linear.bias.uniform_(-bias_bound, bias_bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x), self.omega)


class PeriodicMLP(nn.Module):
    """in -> (1 + depth) periodic layers of `width` -> linear out (the reference layout).

    `init_omega` is the frequency in the hidden and head weight bound √(6/fan_in)/init_omega
    (default: `hidden_omega`). `hidden_dtype` is the dtype of every layer after the first
    (complex for FINER++ Wavelet); the network returns the real part of the head.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int,
        depth: int,
        first_omega: float,
        hidden_omega: float,
        activation: Activation,
        first_bias_scale: float | None = None,
        init_omega: float | None = None,
        hidden_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if width < 1 or depth < 0:
            raise ValueError("width must be >= 1 and depth >= 0")
        hidden_bound = math.sqrt(6 / width) / (hidden_omega if init_omega is None else init_omega)
        layers: list[nn.Module] = [
            PeriodicLayer(
                in_features, width, first_omega, activation, 1 / in_features, first_bias_scale
            )
        ]
        layers += [
            PeriodicLayer(width, width, hidden_omega, activation, hidden_bound, dtype=hidden_dtype)
            for _ in range(depth)
        ]
        head = nn.Linear(width, out_features, dtype=hidden_dtype)
        with torch.no_grad():
            head.weight.uniform_(-hidden_bound, hidden_bound)
        self.net = nn.Sequential(*layers, head)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.net(coords).real


@register(
    "siren",
    "SIREN: sin(ω0(Wx+b)), ω0 = 30, SIREN init (Sitzmann et al. 2020)",
    medium_defaults=AUDIO_OMEGA,
)
def build(
    in_features: int,
    out_features: int,
    *,
    width: int = 256,
    depth: int = 3,
    first_omega: float = 30.0,
    hidden_omega: float = 30.0,
) -> nn.Module:
    return PeriodicMLP(in_features, out_features, width, depth, first_omega, hidden_omega, sine)
