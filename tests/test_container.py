"""The .inr container: exact round trips, a small header, and refusal of bad files."""

from __future__ import annotations

import json
import math
import re
import struct

import pytest
import torch

from inrcodec import container, models
from inrcodec.errors import InrcodecError
from inrcodec.models import available, build_model, count_parameters, hyper_parameters
from inrcodec.quantize import stored_shape


def make_inr(precision: str = "fp32", width: int = 16, **overrides) -> container.InrFile:
    torch.manual_seed(0)
    hp = hyper_parameters("siren", {"width": width, "depth": 2})
    model = build_model("siren", 2, 3, **hp)
    fields = dict(
        medium="image",
        arch="siren",
        hparams=hp,
        out_features=3,
        transform="minmax",
        scalars={"lo": 3.0, "hi": 250.0},
        shape=[8, 9],
        channels="RGB",
        value_range=(0.0, 255.0),
        bit_depth=8,
        precision=precision,
        encoder={"version": "test", "steps": 1},
        state={k: v.detach().clone() for k, v in model.named_parameters()},
    )
    fields.update(overrides)
    if precision == container.CODED and "exponents" not in overrides:
        # Steps fine enough for these weights: a real encode chooses them by rate–distortion.
        fields["exponents"] = [-9 - i % 3 for i in range(len(fields["state"]))]
    return container.InrFile(**fields)


def split(data: bytes) -> tuple[dict, bytes]:
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def join(header: dict, payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def with_metadata(data: bytes, **changes) -> bytes:
    header, payload = split(data)
    meta = container.parse_metadata(header["__metadata__"]["inrcodec"])
    meta.update(changes)
    header["__metadata__"]["inrcodec"] = container.pack_metadata(
        json.dumps(meta), meta.get("format")
    )
    return join(header, payload)


def test_fp32_round_trip_is_bit_exact():
    inr = make_inr("fp32")
    back = container.from_bytes(container.to_bytes(inr))
    assert back.state.keys() == inr.state.keys()
    for name, tensor in inr.state.items():
        assert torch.equal(back.state[name], tensor), name
    assert back.scalars == inr.scalars
    assert back.shape == inr.shape and back.channels == "RGB" and back.hparams == inr.hparams


def test_fp16_round_trip_equals_the_fp16_cast():
    inr = make_inr("fp16")
    back = container.from_bytes(container.to_bytes(inr))
    for name, tensor in inr.state.items():
        assert torch.equal(back.state[name], tensor.half().float())
        assert back.state[name].dtype == torch.float32


def test_rebuilt_model_computes_the_same_function():
    inr = make_inr("fp32")
    coords = torch.rand(50, 2) * 2 - 1
    original = build_model("siren", 2, 3, **inr.hparams)
    original.load_state_dict(inr.state)
    rebuilt = container.from_bytes(container.to_bytes(inr)).build_model()
    assert torch.equal(original(coords), rebuilt(coords))


def test_header_is_a_few_hundred_bytes_for_a_3x256_model():
    inr = make_inr("fp16", width=256)
    data = container.to_bytes(inr)
    _header, payload = split(data)
    header_bytes = len(data) - len(payload)
    assert header_bytes < 700, header_bytes
    assert len(payload) <= 2 * sum(t.numel() for t in inr.state.values())


def test_write_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "m.inr"
    container.write(path, make_inr())
    before = path.read_bytes()
    with pytest.raises(InrcodecError, match="exists"):
        container.write(path, make_inr(width=8))
    assert path.read_bytes() == before
    container.write(path, make_inr(width=8), force=True)
    assert path.read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["m.inr"]  # no temp files left


def test_read_names_the_file(tmp_path):
    path = tmp_path / "bad.inr"
    path.write_bytes(b"\x00" * 3)
    with pytest.raises(InrcodecError, match=r"bad\.inr.*truncated"):
        container.read(path)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[: len(d) // 2], "truncated"),
        (lambda d: struct.pack("<Q", 2**40) + d[8:], "header length"),
        (lambda d: d[:8] + b"}" + d[9:], "not JSON"),
        (lambda d: with_metadata(d, format=99), "unsupported format version 99"),
        (lambda d: with_metadata(d, arch="nope"), "unknown arch"),
        (lambda d: with_metadata(d, hp={"width": 17, "depth": 2}), "needs"),
        (lambda d: with_metadata(d, hp={"width": 16, "colour": 1}), "no option"),
        (lambda d: with_metadata(d, shape=[8]), "does not fit"),
        (lambda d: with_metadata(d, medium="audio", shape=[72]), "must store its rate"),
        (lambda d: with_metadata(d, shape=[100000, 100000, 0]), "shape"),
        (lambda d: with_metadata(d, transform="rot13"), "unknown value transform"),
        (lambda d: with_metadata(d, scalars={"lo": 1.0}), "scalars"),
        (lambda d: with_metadata(d, precision="fp16"), "disagrees"),
        (lambda d: with_metadata(d, range=[255, 0]), "range"),
    ],
)
def test_corrupt_files_are_refused_with_a_reason(mutate, message):
    data = container.to_bytes(make_inr("fp32"), packings=("raw",))
    with pytest.raises(InrcodecError, match=message):
        container.from_bytes(mutate(data))


def test_invalid_metadata_json_is_refused():
    header, payload = split(container.to_bytes(make_inr()))
    header["__metadata__"]["inrcodec"] = "{not json"
    with pytest.raises(InrcodecError, match="metadata"):
        container.from_bytes(join(header, payload))


@pytest.mark.parametrize("packing", ["raw", "zlib", "lzma"])
def test_nan_weights_are_refused(packing):
    inr = make_inr("fp32")
    first = next(iter(inr.state))
    inr.state[first][0] = float("nan")
    with pytest.raises(InrcodecError, match="NaN"):
        container.from_bytes(container.to_bytes(inr, packings=(packing,)))


def test_extra_tensors_are_refused():
    header, payload = split(container.to_bytes(make_inr()))
    header["evil"] = dict(header["w"])
    with pytest.raises(InrcodecError, match="unexpected tensors"):
        container.from_bytes(join(header, payload))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("packing", ["raw", "zlib", "lzma"])
def test_every_packing_of_floats_round_trips_exactly(precision, packing):
    inr = make_inr(precision)
    back = container.from_bytes(container.to_bytes(inr, packings=(packing,)))
    assert back.packing == packing
    for name, tensor in inr.state.items():
        cast = tensor.half().float() if precision == "fp16" else tensor
        assert torch.equal(back.state[name], cast), name


def test_the_smallest_packing_is_chosen():
    inr = make_inr("fp32")
    sizes = {p: len(container.to_bytes(inr, packings=(p,))) for p in container.PACKINGS}
    chosen = container.to_bytes(inr)
    assert len(chosen) == min(sizes.values())


@pytest.mark.parametrize(("precision", "bits"), [("int8", 8), ("int6", 6), ("int4", 4)])
@pytest.mark.parametrize("packing", ["raw", "zlib", "lzma"])
def test_int_precisions_dequantize_within_half_a_step(precision, bits, packing):
    inr = make_inr(precision)
    data = container.to_bytes(inr, packings=(packing,))
    back = container.from_bytes(data)
    assert back.precision == precision and back.packing == packing
    header, _payload = split(data)
    assert header["s"]["dtype"] == "F32"
    qmax = 2 ** (bits - 1) - 1
    for (name, tensor), flag in zip(inr.state.items(), back.scale_layout, strict=True):
        if flag == "h":  # the first layer and the biases stay fp16
            assert torch.equal(back.state[name], tensor.half().float()), name
            continue
        rows = tensor.abs().reshape(len(tensor), -1).amax(1) if flag == "c" else tensor.abs().max()
        step = (
            (rows / qmax).reshape(-1, *([1] * (tensor.dim() - 1))) if flag == "c" else rows / qmax
        )
        assert back.state[name].dtype == torch.float32
        assert torch.all((back.state[name] - tensor).abs() <= step / 2 + 1e-7), name
        # Every value is an integer multiple of its scale within ±qmax.
        codes = back.state[name] / torch.where(step > 0, step, 1)
        assert torch.allclose(codes, codes.round(), atol=1e-3) and codes.abs().max() <= qmax + 1e-3


def test_quantization_picks_per_channel_scales_only_where_they_help():
    from inrcodec.quantize import quantize

    rows = torch.tensor([[1.0, -0.5, 0.25], [0.01, 0.02, -0.015]])  # very different rows
    _codes, scales = quantize(rows, 8)
    assert len(scales) == 2
    _codes, scales = quantize(torch.tensor([0.3, -1.0, 0.7]), 8)  # 1-D: one scale
    assert len(scales) == 1
    torch.manual_seed(0)
    inr = make_inr("int8")
    container.to_bytes(inr)
    assert len(inr.scale_layout) == len(inr.state)
    kept = {name for name, flag in zip(inr.state, inr.scale_layout, strict=True) if flag == "h"}
    assert kept == {name for name in inr.state if name.startswith("net.0.") or "bias" in name}
    assert set(inr.scale_layout) - {"h"} <= {"t", "c"}
    assert "c" in inr.scale_layout  # SIREN's weight rows differ in range


def test_quantized_file_is_smaller_than_fp16():
    sizes = {p: len(container.to_bytes(make_inr(p, width=64))) for p in container.PRECISIONS}
    assert sizes["int4"] < sizes["int6"] < sizes["int8"] < sizes["fp16"] < sizes["fp32"]


def test_format_version_1_files_still_read():
    inr = make_inr("fp16")
    header, payload = split(container.to_bytes(inr, packings=("raw",)))
    meta = container.parse_metadata(header["__metadata__"]["inrcodec"])
    meta["format"] = 1
    del meta["pack"]
    header["__metadata__"]["inrcodec"] = container.pack_metadata(
        json.dumps(meta), meta.get("format")
    )
    back = container.from_bytes(join(header, payload))
    for name, tensor in inr.state.items():
        assert torch.equal(back.state[name], tensor.half().float())


def _quantized_with() -> bytes:
    return container.to_bytes(make_inr("int6"), packings=("raw",))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: with_metadata(d, q="tc"), "scale layout"),
        (lambda d: with_metadata(d, q="xxxxxx"), "'q'"),
        (lambda d: with_metadata(d, q="cccccc"), "scale layout|scales stored"),
        (lambda d: with_metadata(d, pack="brotli"), "'pack'"),
        (lambda d: with_metadata(d, pack="lzma"), "corrupt lzma|expands"),
        (lambda d: with_metadata(d, pack="zlib"), "corrupt zlib|expands"),
        (lambda d: with_metadata(d, precision="int8"), "packed weights|cannot be"),
        (lambda d: with_metadata(d, precision="fp16"), "disagrees|scales"),
        (lambda d: with_metadata(d, format=1), "version 1"),
        (lambda d: with_metadata(d, hp={"width": 17, "depth": 2}), "packed weights|scale"),
        (lambda d: with_metadata(d, hp={"width": 16, "depth": 9}), "cannot be"),
    ],
)
def test_corrupt_quantized_files_are_refused_with_a_reason(mutate, message):
    with pytest.raises(InrcodecError, match=message):
        container.from_bytes(mutate(_quantized_with()))


def test_bad_scales_are_refused():
    from safetensors.torch import load, save

    data = container.to_bytes(make_inr("int8"), packings=("raw",))
    header, _payload = split(data)
    tensors = load(data)
    for bad in (float("nan"), -1.0):
        scales = tensors["s"].clone()
        scales[0] = bad
        forged = save({"w": tensors["w"], "s": scales}, metadata=header["__metadata__"])
        with pytest.raises(InrcodecError, match="scales must be finite"):
            container.from_bytes(forged)
    forged = save({"w": tensors["w"]}, metadata=header["__metadata__"])
    with pytest.raises(InrcodecError, match="scales"):
        container.from_bytes(forged)


def test_a_hostile_stream_cannot_expand_without_bound():
    import zlib

    from inrcodec.quantize import decompress

    bomb = zlib.compress(b"\x00" * 10_000_000)
    with pytest.raises(InrcodecError, match="expands"):
        decompress("zlib", bomb, 1000)


@pytest.mark.parametrize("arch", sorted(available()))
@pytest.mark.parametrize(
    ("in_features", "width", "depth", "tiles"),
    [(2, 8, 0, []), (2, 5, 3, []), (1, 3, 2, [4]), (3, 4, 1, [2, 1, 3]), (2, 16, 2, [2, 3])],
)
def test_count_parameters_equals_the_built_models_stored_values(
    arch: str, in_features: int, width: int, depth: int, tiles: list[int]
):
    hp = {"width": width, "depth": depth, **({"degree": 3, "rank": 2} if arch == "sl2a" else {})}
    if tiles:
        hp["tiles"] = tiles
    try:
        model = build_model(arch, in_features, 3, **hp)
    except InrcodecError as exc:  # an arch that cannot be tiled is refused alike
        with pytest.raises(InrcodecError, match=re.escape(str(exc).split(": ")[-1])):
            count_parameters(arch, in_features, 3, **hp)
        return
    stored = sum(math.prod(stored_shape(p)) for p in model.parameters())
    assert count_parameters(arch, in_features, 3, **hp) == stored


def test_count_parameters_validates_the_hyper_parameters_first():
    with pytest.raises(InrcodecError, match="no option"):
        count_parameters("siren", 2, 3, colour=1)
    with pytest.raises(InrcodecError, match="out of range"):
        count_parameters("siren", 2, 3, depth=-1)
    with pytest.raises(InrcodecError, match="unknown arch"):
        count_parameters("nope", 2, 3)
    with pytest.raises(InrcodecError, match="no option name"):
        count_parameters("siren", 2, 3, name="x")  # a file's key cannot collide


def _forbid_big_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any build beyond one tile at depth 1 (what count_parameters builds on the meta
    device), and the container's skeleton, fail the test."""
    real = models.build_model

    def guarded(name: str, in_features: int, out_features: int, **hp):
        assert hp.get("depth", 3) <= 1 and math.prod(hp.get("tiles", [])) <= 1, hp
        return real(name, in_features, out_features, **hp)

    monkeypatch.setattr(models, "build_model", guarded)
    monkeypatch.setattr(container, "_skeleton", lambda *a, **k: pytest.fail("skeleton built"))


@pytest.mark.parametrize(
    ("precision", "packing", "hp", "message"),
    [
        # The example: 4,096 nets of 65,537 layers described in a ~1 KB file.
        ("fp16", "raw", {"depth": 65536, "tiles": [64, 64]}, "too many parameters"),
        ("int4", "lzma", {"depth": 65536, "tiles": [64, 64]}, "too many parameters"),
        ("fp16", "lzma", {"width": 1, "depth": 65536}, "too many layers"),
        ("fp16", "zlib", {"width": 1, "depth": 60, "tiles": [64, 64]}, "too many layers"),
        ("fp16", "raw", {"width": 8, "depth": 900}, "cannot be"),
        ("int4", "raw", {"width": 8, "depth": 900}, "cannot be"),
        ("fp32", "lzma", {"width": 64, "depth": 1000}, "cannot be"),
        ("int8", "zlib", {"width": 64, "depth": 1000}, "cannot be"),
    ],
)
def test_huge_networks_in_small_files_are_refused_before_anything_is_built(
    monkeypatch: pytest.MonkeyPatch, precision: str, packing: str, hp: dict, message: str
):
    data = with_metadata(
        container.to_bytes(make_inr(precision, width=8), packings=(packing,)), hp=hp
    )
    assert len(data) < 1500
    _forbid_big_builds(monkeypatch)
    with pytest.raises(InrcodecError, match=message):
        container.from_bytes(data)


def test_the_refusal_names_the_count_and_the_limit(monkeypatch: pytest.MonkeyPatch):
    data = with_metadata(
        container.to_bytes(make_inr("fp16")), hp={"depth": 65536, "tiles": [64, 64]}
    )
    _forbid_big_builds(monkeypatch)
    with pytest.raises(InrcodecError) as refused:
        container.from_bytes(data)
    assert "too many parameters" in str(refused.value)
    assert f"{container.MAX_PARAMETERS:,}" in str(refused.value)


def test_tiles_must_match_the_mediums_axes():
    data = container.to_bytes(make_inr("fp16"))
    with pytest.raises(InrcodecError, match="do not fit"):
        container.from_bytes(with_metadata(data, hp={"width": 16, "depth": 2, "tiles": [2]}))


def test_values_the_builder_refuses_on_the_cpu_are_refused_on_reading():
    # The meta device does not check an init range; a negative ω makes an empty one.
    data = container.to_bytes(make_inr("fp16"))
    state = torch.get_rng_state()
    bad = {"width": 16, "depth": 2, "hidden_omega": -1.0}
    with pytest.raises(InrcodecError, match="cannot build"):
        container.from_bytes(with_metadata(data, hp=bad))
    assert torch.equal(torch.get_rng_state(), state)  # reading leaves the RNG alone


def test_the_writer_refuses_what_the_reader_would():
    with pytest.raises(InrcodecError, match="too many layers"):
        container.to_bytes(make_inr("fp16", hparams={"width": 1, "depth": 40000}))


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "int4"])
@pytest.mark.parametrize("packing", ["zlib", "lzma"])
def test_the_most_compressible_weights_still_read(precision: str, packing: str):
    """All-zero weights are the most compressible stream a writer can make: the bound on
    a stream's expansion must not refuse them (about 800,000 values here)."""
    hp = hyper_parameters("siren", {"width": 512, "depth": 3})
    state = {
        k: torch.zeros_like(v) for k, v in build_model("siren", 2, 3, **hp).state_dict().items()
    }
    data = container.to_bytes(make_inr(precision, hparams=hp, state=state), packings=(packing,))
    back = container.from_bytes(data)
    assert back.num_parameters == sum(v.numel() for v in state.values())


def test_a_near_empty_grid_file_of_a_large_photo_reads_back() -> None:
    """A short encode of a 12-megapixel photo left every latent at zero: 16 million values
    in a few hundred bytes. The reader once refused what the writer wrote."""
    hparams = {"shape": [2900, 2900], "levels": 1}  # 8.4 million: over the old bound
    model = build_model("grid", 2, 3, **hparams)
    state = {k: p.detach() for k, p in model.named_parameters()}
    grid = {"arch": "grid", "hparams": hparams, "shape": [2900, 2900], "state": state}
    inr = make_inr(container.CODED, **grid, exponents=[0] * len(state))
    data = container.to_bytes(inr)
    assert len(data) < 4096 and sum(p.numel() for p in state.values()) > 1024 << 13
    assert container.from_bytes(data).shape == [2900, 2900]
