"""FINER (Liu et al., CVPR 2024) and FINER++: variable-periodic activations on SIREN's layout.

With z = Wx + b and α = |z| + 1, every hidden unit computes sin(ω·α·z). As in the official
code (`generate_scale` / `generate_alpha` under `torch.no_grad()`), α carries no gradient,
so backward uses ω·α·cos(ωαz) rather than the true derivative; this is what the published
runs trained with. Weights follow SIREN's init; only the first layer's bias may be drawn
from U(±k) (`first_bias_scale`, FINER's `first_bias_scale` / FINER++'s `fbs`).

FINER++ (`FINERplusplus/models.py`) wraps the same sine in two base activations:
Gauss exp(-(s·u)²) and the complex Wavelet exp(i·ω_w·u − |s·u|²), u = sin(ω·α·z).
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from inrcodec.models.registry import register
from inrcodec.models.siren import AUDIO_OMEGA, PeriodicMLP


def _alpha(z: torch.Tensor) -> torch.Tensor:
    return z.detach().abs() + 1


def finer(z: torch.Tensor, omega: float) -> torch.Tensor:
    """sin(ω·α·z), α detached; for complex z, α applies to the real and imaginary parts apart."""
    if z.is_complex():
        # The reference writes x.real/x.imag in place (finer_activation_complex_sep_real_imag);
        # torch.complex computes the same values without mutating a graph tensor.
        return torch.sin(omega * torch.complex(z.real * _alpha(z.real), z.imag * _alpha(z.imag)))
    return torch.sin(omega * _alpha(z) * z)


def gauss_finer(z: torch.Tensor, omega: float, scale: float) -> torch.Tensor:
    return torch.exp(-((scale * finer(z, omega)) ** 2))


def wavelet_finer(z: torch.Tensor, omega: float, scale: float, omega_w: float) -> torch.Tensor:
    u = finer(z, omega)
    return torch.exp(1j * omega_w * u - torch.abs(scale * u) ** 2)


@register(
    "finer",
    "FINER / FINER++ Sine: sin(ω(|z|+1)z), α detached, ω = 30, SIREN init (Liu et al. 2024)",
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
    first_bias_scale: float | None = None,
) -> nn.Module:
    return PeriodicMLP(
        in_features, out_features, width, depth, first_omega, hidden_omega, finer, first_bias_scale
    )


@register(
    "finer-gauss",
    "FINER++ Gauss: exp(-(s·sin(ω(|z|+1)z))²), s = 3, ω = 10, first bias U(±1)",
)
def build_gauss(
    in_features: int,
    out_features: int,
    *,
    width: int = 256,
    depth: int = 3,
    first_omega: float = 10.0,
    hidden_omega: float = 10.0,
    scale: float = 3.0,
    first_bias_scale: float | None = 1.0,
) -> nn.Module:
    """Defaults from FINER++'s run.sh (`--scale 3 --omega 10 --fbs 1`); its notebook's best
    image run used ω = 12, s = 2.5. The reference has one ω; here it is split into first
    and hidden (equal by default) so that `--omega` works for every sine-based arch.
    (One early FINER++ commit's GFLayer drops the activation for want of a `return`; the
    later code and the notebook apply it, as here.)"""
    activation = partial(gauss_finer, scale=scale)
    return PeriodicMLP(
        in_features,
        out_features,
        width,
        depth,
        first_omega,
        hidden_omega,
        activation,
        first_bias_scale,
    )


@register(
    "finer-wavelet",
    "FINER++ Wavelet: complex exp(iω_w·u − |s·u|²), u = sin(ω(|z|+1)z), width 256/√2 = 181",
)
def build_wavelet(
    in_features: int,
    out_features: int,
    *,
    width: int = 256,
    depth: int = 3,
    first_omega: float = 5.0,
    hidden_omega: float = 5.0,
    scale: float = 2.0,
    omega_w: float = 4.0,
    first_bias_scale: float | None = 1.0,
) -> nn.Module:
    """Defaults from FINER++'s run.sh (`--scale 2 --omega_w 4 --omega 5 --fbs 1`).

    As in the reference `WF`, `width` is the real-valued width being matched: the layers
    are int(width/√2) wide (181 for 256), the first real, the rest and the head complex,
    and the output is the head's real part. Weight bounds use ω·ω_w (20 by default).
    """
    activation = partial(wavelet_finer, scale=scale, omega_w=omega_w)
    layer_width = int(width / math.sqrt(2))
    model = PeriodicMLP(
        in_features,
        out_features,
        layer_width,
        depth,
        first_omega,
        hidden_omega,
        activation,
        first_bias_scale,
        init_omega=hidden_omega * omega_w,
        hidden_dtype=torch.complex64,
    )
    # Complex temporaries peak at about 52 bytes per unit and coordinate (measured), over
    # three times render.py's real-valued default; declare it so decode chunks fit the budget.
    model.bytes_per_point = 64 * layer_width
    return model
