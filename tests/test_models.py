"""The architectures against their reference implementations: sizes, inits, gradients, numerics.

Expected values come from shared/reference/architectures.md (§5 parameter counts, §1-§4
initialisation, §7 numerical pitfalls).
"""

from __future__ import annotations

import math

import pytest
import torch

from inrcodec.errors import InrcodecError, UsageError
from inrcodec.models import available, build_model, hyper_parameters
from inrcodec.models.finer import finer
from inrcodec.models.sl2a import chebyshev_basis
from inrcodec.models.spder import spder
from inrcodec.render import chunk_points

ARCHS = ["siren", "finer", "finer-gauss", "finer-wavelet", "spder", "sl2a"]


def build(name: str, in_features: int = 2, out_features: int = 3, **overrides):
    torch.manual_seed(0)
    return build_model(name, in_features, out_features, **hyper_parameters(name, overrides))


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_every_arch_is_registered():
    assert set(ARCHS) <= set(available())


@pytest.mark.parametrize(
    ("name", "shape", "overrides", "count"),
    [
        ("siren", (2, 3), {}, 198_915),
        ("finer", (2, 3), {}, 198_915),
        ("finer-gauss", (2, 3), {}, 198_915),
        ("spder", (2, 3), {}, 198_915),
        ("finer-wavelet", (2, 3), {}, 99_915),  # complex numbers counted once
        ("sl2a", (2, 3), {}, 330_243),  # the paper's "330.2K"
        ("sl2a", (2, 3), {"degree": 512, "rank": 32}, 313_859),
        ("siren", (1, 1), {}, 198_145),
        ("spder", (1, 1), {"depth": 5}, 329_729),
        ("siren", (3, 3), {"width": 1024}, 3_155_971),
    ],
)
def test_parameter_counts(name, shape, overrides, count):
    assert numel(build(name, *shape, **overrides)) == count


def test_wavelet_has_the_real_degrees_of_freedom_of_a_256_wide_net():
    params = list(build("finer-wavelet").parameters())
    assert sum(p.numel() * (2 if p.is_complex() else 1) for p in params) == 199_287
    assert [p.is_complex() for p in params] == [False, False] + [True] * 8  # first layer real


@pytest.mark.parametrize("name", ARCHS)
def test_output_is_real_float_of_shape_n_by_out(name):
    model = build(name, width=16, depth=1, **({"degree": 8, "rank": 4} if name == "sl2a" else {}))
    out = model(torch.rand(7, 2) * 2 - 1)
    assert out.shape == (7, 3) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_no_arch_keeps_state_outside_its_parameters():
    """The container stores named_parameters() only; buffers must follow from hyper-parameters."""
    for name in ARCHS:
        model = build(name, width=8, depth=1)
        assert set(model.state_dict()) == {n for n, _ in model.named_parameters()}, name


def bound(t: torch.Tensor) -> float:
    return t.detach().abs().max().item()


def test_siren_init_bounds():
    layers = build("siren").net
    hidden = math.sqrt(6 / 256) / 30
    assert hidden == pytest.approx(0.005103, abs=1e-6)
    assert 0.49 < bound(layers[0].linear.weight) <= 0.5  # U(±1/fan_in), 2-D input
    assert 0.69 < bound(layers[0].linear.bias) <= 1 / math.sqrt(2)  # PyTorch default
    for layer in layers[1:4]:
        assert 0.99 * hidden < bound(layer.linear.weight) <= hidden
        assert 0.06 < bound(layer.linear.bias) <= 1 / 16
    assert 0.97 * hidden < bound(layers[4].weight) <= hidden  # only 768 draws


@pytest.mark.parametrize(
    ("name", "first_bias", "hidden_bound"),
    [
        ("finer", 1 / math.sqrt(2), math.sqrt(6 / 256) / 30),  # k = None: PyTorch default
        ("finer-gauss", 1.0, math.sqrt(6 / 256) / 10),  # run.sh: ω = 10, fbs = 1
        ("finer-wavelet", 1.0, math.sqrt(6 / 181) / 20),  # ω·ω_w = 20, width 181
    ],
)
def test_finer_family_init(name, first_bias, hidden_bound):
    layers = build(name).net
    assert 0.97 * first_bias < bound(layers[0].linear.bias) <= first_bias
    weight = layers[1].linear.weight
    parts = [weight.real, weight.imag] if weight.is_complex() else [weight]
    for part in parts:  # uniform_ fills the real and imaginary parts independently
        assert 0.99 * hidden_bound < bound(part) <= hidden_bound


def test_finer_first_bias_scale_only_touches_the_first_layer():
    layers = build("finer", first_bias_scale=20.0).net
    assert 19 < bound(layers[0].linear.bias) <= 20
    assert bound(layers[1].linear.bias) <= 1 / 16


def test_finer_backward_uses_the_detached_alpha():
    omega = 30.0
    z = torch.linspace(-2, 2, 101, dtype=torch.float64, requires_grad=True)
    finer(z, omega).sum().backward()
    alpha = z.detach().abs() + 1
    expected = omega * alpha * torch.cos(omega * alpha * z.detach())
    torch.testing.assert_close(z.grad, expected)


def test_finer_complex_alpha_applies_to_each_part():
    z = torch.complex(torch.tensor([0.3, -1.2]), torch.tensor([-0.7, 0.4]))
    scaled = torch.complex(z.real * (z.real.abs() + 1), z.imag * (z.imag.abs() + 1))
    torch.testing.assert_close(finer(z, 5.0), torch.sin(5.0 * scaled))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("flush_denormal", [False, True])
def test_spder_gradient_is_finite_at_zero(dtype, flush_denormal):
    torch.set_flush_denormal(flush_denormal)
    try:
        z = torch.tensor([0.0, -0.0, 1e-30, 0.02], dtype=dtype, requires_grad=True)
        out = spder(z, 30.0, "sqrt")
        out.sum().backward()
    finally:
        torch.set_flush_denormal(False)
    assert torch.isfinite(out).all() and torch.isfinite(z.grad).all()
    assert z.grad[0].item() == 0.0  # the derivative's limit at u = 0


def test_spder_gradient_equals_the_analytic_derivative():
    u = torch.linspace(-7, 7, 1000, dtype=torch.float64, requires_grad=True)
    spder(u, 1.0, "sqrt").sum().backward()
    v = u.detach()
    expected = torch.cos(v) * v.abs().sqrt() + torch.sin(v) * v.sign() / (2 * v.abs().sqrt())
    torch.testing.assert_close(u.grad, expected)


def test_spder_damping_is_selectable_and_arctan_is_audio_default():
    z = torch.tensor([0.1, -2.0])
    torch.testing.assert_close(spder(z, 30.0, "arctan"), torch.sin(30 * z) * torch.atan(30 * z))
    audio = hyper_parameters("spder", {}, "audio")
    assert audio["damping"] == "arctan"
    assert audio["first_omega"] == 3000.0 and audio["hidden_omega"] == 30.0  # t·100, ω0 = 30
    assert hyper_parameters("spder", {}, "image")["damping"] == "sqrt"
    with pytest.raises(Exception, match="damping"):
        build("spder", damping="log")


@pytest.mark.parametrize("name", ["siren", "finer"])
def test_sine_archs_use_omega_100_for_audio(name):
    audio = hyper_parameters(name, {}, "audio")
    assert audio["first_omega"] == audio["hidden_omega"] == 100.0
    assert hyper_parameters(name, {"first_omega": 3000.0}, "audio")["first_omega"] == 3000.0
    assert hyper_parameters(name, {}, "image")["first_omega"] == 30.0


def test_sl2a_init_bounds():
    model = build("sl2a")
    xavier = math.sqrt(6 / ((2 + 256) * 257))
    assert xavier == pytest.approx(0.009513, abs=1e-6)
    assert 0.99 * xavier < bound(model.activation.coefficients) <= xavier
    for layer in model.fusion:
        assert 0.99 / math.sqrt(128) < bound(layer.left) <= 1 / math.sqrt(128)
        assert 0.99 / 16 < bound(layer.right) <= 1 / 16
        assert 0.95 / math.sqrt(128) < bound(layer.bias) <= 1 / math.sqrt(128)  # A's fan-in


def test_sl2a_head_and_fusion_layers_are_modulated_by_z1():
    model = build("sl2a", width=8, depth=2, degree=6, rank=3)
    x = torch.rand(5, 2) * 2 - 1
    z1 = model.activation(x)
    h = z1
    for layer in model.fusion:
        h = torch.relu((z1 * h) @ (layer.left @ layer.right) + layer.bias)
    torch.testing.assert_close(model(x), model.head(z1 * h))


@pytest.mark.parametrize("saturating", [9.5, 20.0])
def test_sl2a_is_finite_on_saturated_inputs(saturating):
    model = build("sl2a", width=16, depth=1, degree=32, rank=4)
    x = torch.tensor([[saturating, -saturating], [0.5, saturating]], requires_grad=True)
    out = model(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_chebyshev_trig_form_agrees_with_the_recurrence():
    degree = 512
    t = torch.tanh(torch.linspace(-1, 1, 1001, dtype=torch.float64)).reshape(-1, 1)
    terms = [torch.ones_like(t), t]
    for _ in range(degree - 1):
        terms.append(2 * t * terms[-1] - terms[-2])
    recurrence = torch.stack(terms, dim=-1)
    trig = chebyshev_basis(t.float(), torch.arange(degree + 1))
    assert trig.shape == (1001, 1, degree + 1)
    assert (trig.double() - recurrence).abs().max().item() < 2e-4


def test_sl2a_declares_its_memory_per_point_for_chunked_decoding():
    model = build("sl2a")
    assert model.bytes_per_point == 4 * (2 * 2 * 257 + 4 * 256)
    assert chunk_points(model, 64 * 2**20) == 64 * 2**20 // model.bytes_per_point
    assert "orders" not in model.state_dict()  # non-persistent: follows from the degree
    assert build("sl2a", 3, 3, degree=512).bytes_per_point > model.bytes_per_point


def test_tiled_net_is_one_reference_net_per_tile_on_local_coordinates():
    torch.manual_seed(0)
    tiled = build_model("finer", 2, 3, width=16, depth=2, tiles=[2, 3])
    torch.manual_seed(0)  # the tiles are built one after another with the arch's own init
    nets = [build_model("finer", 2, 3, width=16, depth=2) for _ in range(6)]
    coords = torch.rand(500, 2) * 2 - 1
    coords[:4] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-1.0, 1.0]])  # borders
    scaled = (coords + 1) * 0.5 * torch.tensor([2, 3])
    cell = scaled.floor().clamp(max=torch.tensor([1, 2]))
    local = (scaled - cell) * 2 - 1
    index = (cell[:, 0] * 3 + cell[:, 1]).long()
    expected = torch.stack([nets[int(t)](p[None])[0] for t, p in zip(index, local, strict=True)])
    torch.testing.assert_close(tiled(coords), expected, atol=1e-5, rtol=1e-5)
    # Chunks that touch only some tiles give the same values as the whole batch.
    left = coords[:, 1] < -0.5
    torch.testing.assert_close(tiled(coords[left]), tiled(coords)[left])
    assert numel(tiled) == 6 * numel(nets[0])


def test_every_tile_gets_gradients_only_from_its_own_points():
    tiled = build("siren", width=8, depth=1, tiles=[2, 2])
    tiled(torch.tensor([[-0.3, -0.7]])).sum().backward()  # tile 0 only
    first = next(iter(tiled.parameters()))
    assert first.grad[0].abs().sum() > 0
    assert first.grad[1:].abs().sum() == 0


@pytest.mark.parametrize("tiles", [[0, 2], [2, "a"], "2x2", [True], [64, 64, 2]])
def test_bad_tiles_are_refused(tiles):
    with pytest.raises(UsageError, match="tiles"):
        hyper_parameters("finer", {"tiles": tiles})


def test_tiling_refuses_parameters_outside_linear_layers():
    with pytest.raises(InrcodecError, match="can be tiled"):
        build_model("sl2a", 2, 3, tiles=[2, 2])


def test_a_float_option_with_a_number_default_refuses_none():
    """Found by the container fuzzer: `first_omega: null` in a header built a net whose
    forward pass then failed with a TypeError."""
    from inrcodec.errors import UsageError
    from inrcodec.models import hyper_parameters

    with pytest.raises(UsageError, match="first_omega"):
        hyper_parameters("finer-wavelet", {"first_omega": None})
    assert hyper_parameters("finer", {"first_bias_scale": None})["first_bias_scale"] is None
