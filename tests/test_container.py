"""The .inr container: exact round trips, a small header, and refusal of bad files."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from inrcodec import container
from inrcodec.errors import InrcodecError
from inrcodec.models import build_model, hyper_parameters


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
    return container.InrFile(**fields)


def split(data: bytes) -> tuple[dict, bytes]:
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def join(header: dict, payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def with_metadata(data: bytes, **changes) -> bytes:
    header, payload = split(data)
    meta = json.loads(header["__metadata__"]["inrcodec"])
    meta.update(changes)
    header["__metadata__"]["inrcodec"] = json.dumps(meta)
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
    meta = json.loads(header["__metadata__"]["inrcodec"])
    meta["format"] = 1
    del meta["pack"]
    header["__metadata__"]["inrcodec"] = json.dumps(meta)
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
        (lambda d: with_metadata(d, precision="int8"), "packed weights"),
        (lambda d: with_metadata(d, precision="fp16"), "disagrees|scales"),
        (lambda d: with_metadata(d, format=1), "version 1"),
        (lambda d: with_metadata(d, hp={"width": 17, "depth": 2}), "packed weights|scale"),
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
