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
    assert len(payload) == 2 * sum(t.numel() for t in inr.state.values())


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
    data = container.to_bytes(make_inr("fp32"))
    with pytest.raises(InrcodecError, match=message):
        container.from_bytes(mutate(data))


def test_invalid_metadata_json_is_refused():
    header, payload = split(container.to_bytes(make_inr()))
    header["__metadata__"]["inrcodec"] = "{not json"
    with pytest.raises(InrcodecError, match="metadata"):
        container.from_bytes(join(header, payload))


def test_nan_weights_are_refused():
    inr = make_inr("fp32")
    first = next(iter(inr.state))
    inr.state[first][0] = float("nan")
    with pytest.raises(InrcodecError, match="NaN"):
        container.from_bytes(container.to_bytes(inr))


def test_extra_tensors_are_refused():
    header, payload = split(container.to_bytes(make_inr()))
    header["evil"] = dict(header["w"])
    with pytest.raises(InrcodecError, match="unexpected tensors"):
        container.from_bytes(join(header, payload))
