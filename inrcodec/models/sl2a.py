"""SL2A-INR (Heidari et al., ICCV 2025): one learnable-activation layer, then a ReLU MLP.

Follows the official `SL2A_INR.py` (`SL2A`, `ChebyLayer`, `ChebyKANLayer`,
`LowRankReLULayer`) with `train.py`'s K = 256, r = 128 (330,243 parameters at 2 -> 3x256 -> 3):
  z1 = LayerNorm(Σ_i Σ_k a_ijk·T_k(tanh x_i)),  T_k(t) = cos(k·arccos t)
  h_0 = z1,  h_l = ReLU((z1 ⊙ h_{l-1})·A_l B_l + b_l),  y = Linear(z1 ⊙ h_L).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from inrcodec.models.registry import register


class ChebyshevBlock(nn.Module):
    """The learnable-activation block (ChebyKANLayer) followed by LayerNorm."""

    def __init__(self, in_features: int, out_features: int, degree: int) -> None:
        super().__init__()
        self.coefficients = nn.Parameter(torch.empty(in_features, out_features, degree + 1))
        nn.init.xavier_uniform_(self.coefficients)  # ±√(6/((in+out)(K+1))), as the reference
        # Non-persistent: the container stores parameters only, and this follows from K.
        self.register_buffer("orders", torch.arange(degree + 1), persistent=False)
        self.norm = nn.LayerNorm(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        basis = chebyshev_basis(torch.tanh(x), self.orders)
        return self.norm(torch.einsum("bid,iod->bo", basis, self.coefficients))


def chebyshev_basis(t: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """T_k(t) = cos(k·arccos t) for t of shape (N, d) and k in `orders`: (N, d, K+1).

    The reference's loop-free trig form; the three-term recurrence is more accurate in
    fp32 (2e-5 against 2e-4 at K = 512) but takes K sequential steps, and the reference
    trained with this one. Deviation: t is clamped to [-1+ε, 1-ε]; the reference
    feeds tanh straight to acos, whose gradient is NaN where tanh saturates to ±1
    (|x| ≳ 9 in fp32). Coordinates in [-1, 1] give |t| ≤ 0.762, so they are untouched.
    """
    eps = max(1e-6, torch.finfo(t.dtype).eps)
    # The reference expands to (N, d, K+1) before acos; one acos per input gives the
    # same values with one (N, d, K+1) temporary fewer.
    angle = t.clamp(-1 + eps, 1 - eps).acos().unsqueeze(-1)
    return torch.cos(angle * orders)


class LowRankReLU(nn.Module):
    """ReLU(x·(A B) + b), A: width x r, B: r x width, with the reference's init."""

    def __init__(self, width: int, rank: int) -> None:
        super().__init__()
        self.left = nn.Parameter(torch.empty(width, rank))
        self.right = nn.Parameter(torch.empty(rank, width))
        self.bias = nn.Parameter(torch.empty(width))
        # kaiming_uniform_(a=√5) uses size(1) as fan-in: A ~ U(±1/√r), B ~ U(±1/√width);
        # the bias bound also comes from A's fan-in, 1/√r (a quirk kept on purpose).
        nn.init.kaiming_uniform_(self.left, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.right, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -1 / math.sqrt(rank), 1 / math.sqrt(rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ (self.left @ self.right) + self.bias)


class SL2A(nn.Module):
    """The Chebyshev block's output z1 modulates every later layer (Hadamard product)."""

    def __init__(
        self, in_features: int, out_features: int, width: int, depth: int, degree: int, rank: int
    ) -> None:
        super().__init__()
        if min(width, degree, rank) < 1 or depth < 0:
            raise ValueError("width, degree and rank must be >= 1 and depth >= 0")
        self.activation = ChebyshevBlock(in_features, width, degree)
        # Built before the fusion layers, as in the reference, so a seed draws the same weights.
        self.head = nn.Linear(width, out_features)
        self.fusion = nn.ModuleList(LowRankReLU(width, rank) for _ in range(depth))
        # Bytes per coordinate in one forward pass, an upper bound: two fp32 (d, K+1)
        # tensors (angles and their cosines) plus a few width-sized activations (measured
        # peak at K = 256, d = 2: 5,136). render.py sizes decode chunks from it.
        self.bytes_per_point = 4 * (2 * in_features * (degree + 1) + 4 * width)
        # The matrix products besides the head, as (fan_in, fan_out): the Chebyshev einsum and
        # each fusion layer's input @ (A @ B). benchmarks/train_speed.py times them alone.
        self.gemm_shapes = [(in_features * (degree + 1), width)] + [(width, width)] * depth

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        # Deviation: the reference squeezes the coordinates first; ours are already (N, d),
        # and squeezing would break a single-coordinate batch.
        z1 = self.activation(coords)
        h = z1
        for layer in self.fusion:
            h = layer(z1 * h)
        return self.head(z1 * h)


@register(
    "sl2a",
    "SL2A-INR: Chebyshev learnable activation (K = 256) + LayerNorm, low-rank (r = 128) "
    "ReLU layers modulated by it (Heidari et al. 2025)",
)
def build(
    in_features: int,
    out_features: int,
    *,
    width: int = 256,
    depth: int = 3,
    degree: int = 256,
    rank: int = 128,
) -> nn.Module:
    """Defaults are train.py's (the paper's 330.2K model); the class's are K = 512, r = 32."""
    return SL2A(in_features, out_features, width, depth, degree, rank)
