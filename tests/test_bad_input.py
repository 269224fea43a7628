"""Bad input never crashes: one line on stderr naming the file, a meaningful exit code,
no traceback, no output left behind, nothing overwritten without --force."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inrcodec import container
from inrcodec.cli import main
from tests.conftest import DEMO_IMAGE

TINY = ["--arch", "siren", "--steps", "2", "--width", "8", "--depth", "1", "--device", "cpu"]


@dataclass
class Case:
    name: str
    setup: Callable[[Path], list[str]]  # builds files in tmp, returns argv
    code: int
    message: str  # must appear in the single stderr line
    output: str | None = "out.inr"  # must not exist afterwards (None: nothing to check)


def png(tmp: Path, name: str = "in.png", size: tuple[int, int] = (16, 16)) -> Path:
    path = tmp / name
    Image.open(DEMO_IMAGE).convert("RGB").resize(size).save(path)
    return path


def write(tmp: Path, name: str, data: bytes) -> Path:
    (tmp / name).write_bytes(data)
    return tmp / name


def float_tiff(tmp: Path, bad: float) -> Path:
    values = np.full((8, 8), 100.0, dtype=np.float32)
    values[3, 3] = bad
    path = tmp / "f.tif"
    Image.fromarray(values, mode="F").save(path)
    return path


def model(tmp: Path, precision: str = "fp32") -> Path:
    src = png(tmp, "m.png", (8, 8))
    assert (
        main(
            [
                "encode",
                str(src),
                "-o",
                str(tmp / "m.inr"),
                "--precision",
                precision,
                "--quiet",
                *TINY,
            ]
        )
        == 0
    )
    return tmp / "m.inr"


def rewrite_meta(tmp: Path, precision: str = "fp32", **changes) -> Path:
    return with_metadata(tmp, model(tmp, precision), lambda meta: meta.update(changes))


def with_metadata(tmp: Path, source: Path, edit: Callable[[dict], object]) -> Path:
    """bad.inr: `source` with its metadata edited in place by `edit`."""
    data = source.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    meta = container.parse_metadata(header["__metadata__"]["inrcodec"])
    edit(meta)
    header["__metadata__"]["inrcodec"] = container.pack_metadata(
        json.dumps(meta), meta.get("format")
    )
    raw = json.dumps(header).encode()
    return write(tmp, "bad.inr", struct.pack("<Q", len(raw)) + raw + data[8 + size :])


def corrupt_middle(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    return path


def encode_args(path: Path, tmp: Path, *extra: str) -> list[str]:
    return ["encode", str(path), "-o", str(tmp / "out.inr"), *TINY, *extra]


def decode_args(path: Path, tmp: Path, *extra: str) -> list[str]:
    output = "out.wav" if "--rate" in extra else "out.png"
    return ["decode", str(path), "-o", str(tmp / output), "--device", "cpu", *extra]


CASES = [
    Case("missing file", lambda t: encode_args(t / "nope.png", t), 1, "nope.png: no such file"),
    Case("directory as a file", lambda t: ["info", str(t)], 1, "is a directory", None),
    Case("empty file", lambda t: encode_args(write(t, "e.png", b""), t), 1, "e.png"),
    Case(
        "unsupported extension",
        lambda t: encode_args(write(t, "a.xyz", b"hello"), t),
        1,
        "unsupported file type '.xyz'",
    ),
    Case("no extension", lambda t: encode_args(write(t, "noext", b"hello"), t), 1, "noext"),
    Case(
        "text named .png",
        lambda t: encode_args(write(t, "t.png", b"just text\n" * 20), t),
        1,
        "t.png: not an image",
    ),
    Case(
        "truncated PNG",
        lambda t: encode_args(write(t, "tr.png", png(t).read_bytes()[:200]), t),
        1,
        "tr.png",
    ),
    Case(
        "corrupted PNG",
        lambda t: encode_args(corrupt_middle(png(t, "c.png", (64, 64))), t),
        1,
        "c.png",
    ),
    Case(
        "truncated JPEG",
        lambda t: encode_args(write(t, "tr.jpg", _jpeg(t).read_bytes()[:300]), t),
        1,
        "tr.jpg",
    ),
    Case(
        "corrupted JPEG",
        lambda t: encode_args(write(t, "c.jpg", b"\xff\xd8\xff\xe0" + bytes(200)), t),
        1,
        "c.jpg",
    ),
    Case("NaN in float TIFF", lambda t: encode_args(float_tiff(t, float("nan")), t), 1, "NaN"),
    Case("Inf in float TIFF", lambda t: encode_args(float_tiff(t, float("inf")), t), 1, "f.tif"),
    Case(
        "truncated .inr",
        lambda t: decode_args(write(t, "x.inr", model(t).read_bytes()[:100]), t),
        1,
        "x.inr",
    ),
    Case(
        "header-length overflow",
        lambda t: decode_args(
            write(t, "x.inr", struct.pack("<Q", 2**63) + model(t).read_bytes()[8:]), t
        ),
        1,
        "header length",
    ),
    Case("metadata not JSON", lambda t: decode_args(_bad_json_meta(t), t), 1, "metadata"),
    Case(
        "unknown format version",
        lambda t: decode_args(rewrite_meta(t, format=99), t),
        1,
        "unsupported format version 99",
    ),
    Case(
        "unknown arch",
        lambda t: decode_args(rewrite_meta(t, arch="nerf"), t),
        1,
        "unknown arch 'nerf'",
    ),
    Case(
        "shapes disagree",
        lambda t: decode_args(rewrite_meta(t, hp={"width": 9, "depth": 1}), t),
        1,
        "needs",
    ),
    Case("NaN weights", lambda t: decode_args(_nan_weights(t), t), 1, "NaN"),
    Case(
        "10^9 pixels declared",
        lambda t: decode_args(rewrite_meta(t, shape=[31623, 31623]), t),
        1,
        "--max-pixels",
    ),
    Case(
        "decode over the pixel cap",
        lambda t: decode_args(model(t), t, "--scale", "10", "--max-pixels", "1000"),
        1,
        "exceeds --max-pixels",
    ),
    Case("not a .inr at all", lambda t: decode_args(png(t), t), 1, "not a .inr file"),
    Case(
        "output in a missing directory",
        lambda t: encode_args(png(t), t, "-o", str(t / "missing" / "o.inr")),
        1,
        "does not exist",
        "missing/o.inr",
    ),
    Case(
        "output exists",
        lambda t: [*encode_args(png(t), t), "-o", str(_existing(t))],
        1,
        "use --force",
        None,
    ),
    Case(
        "decode output exists",
        lambda t: [*decode_args(model(t), t), "-o", str(_existing(t, "keep.png"))],
        1,
        "use --force",
        None,
    ),
    Case("zero scale", lambda t: decode_args(model(t), t, "--scale", "0"), 2, "--scale"),
    Case("bad size", lambda t: decode_args(model(t), t, "--size", "big"), 2, "--size"),
    Case("unknown option", lambda t: [*encode_args(png(t), t), "--colour"], 2, "--colour"),
    Case("zero steps", lambda t: [*encode_args(png(t), t), "--steps", "0"], 2, "--steps"),
    Case("negative lr", lambda t: [*encode_args(png(t), t), "--lr", "-1"], 2, "--lr"),
    Case(
        "unknown transform",
        lambda t: encode_args(png(t), t, "--transform", "log"),
        2,
        "unknown transform 'log'",
    ),
    Case(
        "unknown arch option",
        lambda t: encode_args(png(t), t, "-O", "colour=3"),
        2,
        "no option colour",
    ),
    Case(
        "preset with unknown key",
        lambda t: encode_args(
            png(t), t, "--preset", str(write(t, "p.yaml", b"encode:\n  stepz: 3\n"))
        ),
        2,
        "stepz",
    ),
    Case(
        "preset not YAML",
        lambda t: encode_args(
            png(t), t, "--preset", str(write(t, "p.yaml", b"encode: [unclosed\n"))
        ),
        2,
        "p.yaml",
    ),
    Case(
        "eval channel mismatch",
        lambda t: ["eval", str(model(t)), str(_gray(t))],
        1,
        "channels",
        None,
    ),
    Case(
        "eval missing reference",
        lambda t: ["eval", str(model(t)), str(t / "gone.png")],
        1,
        "gone.png: no such file",
        None,
    ),
    Case("frames on an image", lambda t: encode_args(png(t), t, "--frames", "3"), 2, "--frames"),
    Case(
        "unknown precision",
        lambda t: encode_args(png(t), t, "--precision", "int3"),
        2,
        "unknown precision 'int3'",
    ),
    Case("negative QAT", lambda t: encode_args(png(t), t, "--qat-steps", "-1"), 2, "--qat-steps"),
    Case("zero bpp", lambda t: encode_args(png(t), t, "--target-bpp", "0"), 2, "--target-bpp"),
    Case(
        "bpp below the smallest file",
        lambda t: encode_args(png(t), t, "--target-bpp", "0.01"),
        2,
        "smallest file",
    ),
    Case(
        "unknown size preset",
        lambda t: encode_args(png(t), t, "--size-preset", "huge"),
        2,
        "unknown size preset 'huge'",
    ),
    Case("negative tile size", lambda t: encode_args(png(t), t, "--tile-size", "-4"), 2, "--tile"),
    Case(
        "tiles on SL2A",
        lambda t: encode_args(png(t), t, "--arch", "sl2a", "--tile-size", "8"),
        1,
        "can be tiled",
    ),
    Case(
        "quantized file with a broken scale layout",
        lambda t: decode_args(rewrite_meta(t, "int6", q="hh"), t),
        1,
        "scale layout",
    ),
    # Audio (issue 31).
    Case("0-sample WAV", lambda t: encode_args(audio(t, 0), t), 1, "has no samples"),
    Case("WAV holding inf", lambda t: encode_args(audio(t, 64, bad=np.inf), t), 1, "infinite"),
    Case("WAV holding NaN", lambda t: encode_args(audio(t, 64, bad=np.nan), t), 1, "NaN"),
    Case("rate 0", lambda t: decode_args(audio_model(t), t, "--rate", "0"), 2, "--rate"),
    Case("negative rate", lambda t: decode_args(audio_model(t), t, "--rate", "-8000"), 2, "--rate"),
    Case("absurd rate", lambda t: decode_args(audio_model(t), t, "--rate", "1e12"), 1, "samples"),
    Case(
        "kbps below the header",
        lambda t: encode_args(audio(t, 800), t, "--target-kbps", "1"),
        2,
        "--target-kbps allows 12 bytes",
    ),
    Case("kbps on an image", lambda t: encode_args(png(t), t, "--target-kbps", "64"), 2, "kbps"),
    # Video (issue 33).
    Case("fps 0", lambda t: video_decode_args(t, "--fps", "0"), 2, "--fps"),
    Case("negative fps", lambda t: video_decode_args(t, "--fps", "-30"), 2, "--fps"),
    Case("absurd fps", lambda t: video_decode_args(t, "--fps", "1e9"), 1, "--max-pixels"),
    Case(
        "truncated MP4",
        lambda t: encode_args(write(t, "cut.mp4", _noise_mp4(t).read_bytes()[:3000]), t),
        1,
        "cut.mp4: truncated or corrupted video",
    ),
    Case(
        "3-D grid beyond the limits",
        lambda t: decode_args(_video_grid_with(t, shape=[4096, 2048, 2048]), t),
        1,
        "latents",
    ),
    Case(
        "3-D grid beyond its payload",
        lambda t: decode_args(_video_grid_with(t, shape=[256, 1024, 1024]), t),
        1,
        "which cannot be the",
    ),
    Case(
        "motion beyond the limits",
        lambda t: decode_args(_video_motion(t, [[0, 0]] * 3 + [[1 << 20, 1 << 20]]), t),
        1,
        "latents",
    ),
    Case(
        "motion for fewer frames",
        lambda t: decode_args(_video_motion(t, [[0, 0]] * 3), t),
        1,
        "motion must give",
    ),
    Case(
        "motion not in pairs",
        lambda t: decode_args(_video_motion(t, [[0, 0, 0]] * 4), t),
        1,
        "invalid metadata field 'hp'",
    ),
    Case(
        "motion in a format-10 file",
        lambda t: decode_args(_video_motion(t, [[0, 0]] * 4, version=10), t),
        1,
        "global motion needs format 11",
    ),
]


def video_frames(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour ramps that move a pixel a frame, plus a little noise: (T, H, W, 3)."""
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).integers(0, 24, (frames, height, width, 3))
    ramps = [np.stack([x + t, y + 2 * t, x + y - t], -1) * 7 % 200 for t in range(frames)]
    return (np.stack(ramps) + noise).astype(np.uint8)


def video_gif(tmp: Path, frames: int, height: int, width: int, durations=100) -> Path:
    path = tmp / "in.gif"
    images = [Image.fromarray(f).quantize(256) for f in video_frames(frames, height, width)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def _noise_mp4(tmp: Path) -> Path:
    """An H.264 file of several kilobytes (index at the front, as the writer makes it)."""
    from inrcodec.media.video import write_video

    path = tmp / "noise.mp4"
    write_video(path, video_frames(12, 48, 64), 24.0)
    assert path.stat().st_size > 6000
    return path


VIDEO_GRID = ["--arch", "grid", "--steps", "2", "--device", "cpu", "--quiet"]


def video_grid_model(tmp: Path) -> Path:
    src = video_gif(tmp, 4, 12, 16)
    assert main(["encode", str(src), "-o", str(tmp / "v.inr"), *VIDEO_GRID]) == 0
    return tmp / "v.inr"


def video_decode_args(tmp: Path, *extra: str) -> list[str]:
    return ["decode", str(video_grid_model(tmp)), "-o", str(tmp / "out.mp4"), *extra]


def _video_grid_with(tmp: Path, shape: list[int]) -> Path:
    """The tiny video grid model claiming a grid of `shape` (its hyper-parameter and the
    signal's shape both), without global motion (whose frames would not match)."""

    def claim(meta: dict) -> None:
        meta["hp"]["shape"] = meta["shape"] = shape
        meta["hp"]["motion"] = []

    return with_metadata(tmp, video_grid_model(tmp), claim)


def _video_motion(tmp: Path, motion: object, version: int | None = None) -> Path:
    """The tiny video grid model (4 frames) claiming this global motion (and format)."""

    def claim(meta: dict) -> None:
        meta["hp"]["motion"] = motion
        meta["format"] = version or meta["format"]

    return with_metadata(tmp, video_grid_model(tmp), claim)


def audio(
    tmp: Path, samples: int, bad: float | None = None, rate: int = 8000, channels: int = 1
) -> Path:
    """A float WAV of `samples` samples (one of them `bad`, if given)."""
    import soundfile as sf

    values = 0.5 * np.sin(np.arange(samples * channels) / 5).reshape(samples, channels)
    if bad is not None:
        values[samples // 2, 0] = bad
    path = tmp / "in.wav"
    sf.write(path, values.astype(np.float32), rate, subtype="FLOAT")
    return path


def audio_model(tmp: Path) -> Path:
    assert main(["encode", str(audio(tmp, 400)), "-o", str(tmp / "a.inr"), "--quiet", *TINY]) == 0
    return tmp / "a.inr"


def _jpeg(tmp: Path) -> Path:
    path = tmp / "j.jpg"
    Image.open(DEMO_IMAGE).convert("RGB").save(path, quality=90)
    return path


def _gray(tmp: Path) -> Path:
    path = tmp / "g.png"
    Image.open(DEMO_IMAGE).convert("L").resize((8, 8)).save(path)
    return path


def _existing(tmp: Path, name: str = "keep.inr") -> Path:
    return write(tmp, name, b"precious")


def _bad_json_meta(tmp: Path) -> Path:
    data = model(tmp).read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    header["__metadata__"]["inrcodec"] = "{broken"
    raw = json.dumps(header).encode()
    return write(tmp, "bad.inr", struct.pack("<Q", len(raw)) + raw + data[8 + size :])


def _nan_weights(tmp: Path) -> Path:
    data = bytearray(model(tmp).read_bytes())
    data[-4:] = struct.pack("<f", float("nan"))
    return write(tmp, "nan.inr", bytes(data))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    argv = case.setup(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == case.code, captured.err
    assert len(lines) == 1, captured.err
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in captured.err
    if case.output:
        assert not (tmp_path / case.output).exists()
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p in before} == before  # nothing overwritten
    assert not [p for p in after if p.name.startswith(".")]  # no temp files left


def test_read_only_output_directory(tmp_path, capsys, monkeypatch):
    """Tests run as root, who may write anywhere, so the permission check is simulated."""
    import os

    src = png(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if m == os.W_OK else real_access(p, m))
    assert main(encode_args(src, tmp_path)) == 1
    assert "not writable" in capsys.readouterr().err
    assert not (tmp_path / "out.inr").exists()


@pytest.mark.parametrize(
    "make",
    [
        lambda t: png(t, "one.png", (1, 1)),
        lambda t: _save(t, Image.new("RGB", (9, 7), (120, 30, 200)), "const.png"),
        lambda t: _save(
            t, Image.fromarray(np.arange(80, dtype=np.uint16).reshape(8, 10) * 800), "deep.png"
        ),
        lambda t: _save(
            t, Image.open(DEMO_IMAGE).convert("RGB").resize((8, 8)).convert("P"), "pal.png"
        ),
        lambda t: _save(t, Image.open(DEMO_IMAGE).convert("RGBA").resize((8, 8)), "alpha.png"),
        lambda t: _save(t, Image.open(DEMO_IMAGE).convert("CMYK").resize((8, 8)), "cmyk.jpg"),
    ],
    ids=["1x1", "constant", "16-bit", "palette", "alpha", "CMYK"],
)
def test_unusual_but_valid_images_encode_and_decode(make, tmp_path):
    src = make(tmp_path)
    assert main(encode_args(src, tmp_path, "--quiet")) == 0
    assert main(decode_args(tmp_path / "out.inr", tmp_path, "--quiet")) == 0
    with Image.open(tmp_path / "out.png") as decoded, Image.open(src) as source:
        assert decoded.size == source.size


def _save(tmp: Path, image: Image.Image, name: str) -> Path:
    image.save(tmp / name)
    return tmp / name


def _tiny_medium(tmp: Path, medium: str) -> Path:
    """A tiny valid input of `medium`: a PNG, a WAV or a GIF."""
    if medium == "image":
        return png(tmp)
    if medium == "audio":
        import soundfile as sf

        path = tmp / "in.wav"
        sf.write(path, np.sin(np.arange(800) / 5).astype(np.float32) * 0.5, 8000)
        return path
    frames = [Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp / "in.gif", save_all=True, append_images=frames[1:], duration=100)
    return tmp / "in.gif"


@pytest.mark.parametrize("medium", ["image", "audio", "video"])
def test_every_arch_on_every_medium_is_served_or_refused_in_one_line(
    medium: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The arch × medium matrix: an arch that can give a useful file of the medium gets a
    recipe (resolved and validated before any training), one that cannot is refused with
    one line and exit 2, before anything is written."""
    from inrcodec.models import available, media
    from inrcodec.options import resolve_options

    src = _tiny_medium(tmp_path, medium)
    for arch in available():
        if medium in media(arch):
            options = resolve_options(None, medium, {"arch": arch})
            options.validate(medium)
            assert options.arch == arch
            continue
        out = tmp_path / f"{arch}.inr"
        assert main(["encode", str(src), "-o", str(out), "--arch", arch, "--quiet"]) == 2
        stderr = capsys.readouterr().err.strip()
        assert len(stderr.splitlines()) == 1 and f"--arch {arch}" in stderr, stderr
        assert not out.exists()


@pytest.mark.parametrize(
    ("samples", "rate", "channels", "subtype"),
    [(1, 8000, 1, "PCM_16"), (200, 8000, 8, "PCM_16"), (800, 192000, 1, "PCM_16"),
     (300, 16000, 2, "PCM_24"), (300, 16000, 1, "FLOAT")],
    ids=["1 sample", "8 channels", "192 kHz", "24-bit", "32-bit float"],
)  # fmt: skip
def test_unusual_but_valid_audio_encodes_and_decodes(samples, rate, channels, subtype, tmp_path):
    """The audio default (1-D latent grids) on each: a file, and a decode of the same
    length, channels and depth."""
    import soundfile as sf

    values = 0.5 * np.sin(np.arange(samples * channels) / 7).reshape(samples, channels)
    src = tmp_path / "in.wav"
    sf.write(src, values.astype(np.float32), rate, subtype=subtype)
    flags = ["--steps", "20", "--device", "cpu", "--compile", "off", "--quiet"]
    assert main(["encode", str(src), "-o", str(tmp_path / "a.inr"), *flags]) == 0
    out = tmp_path / "a.wav"
    assert main(["decode", str(tmp_path / "a.inr"), "-o", str(out), "--quiet"]) == 0
    info = sf.info(out)
    assert (info.frames, info.channels, info.samplerate, info.subtype) == (
        samples,
        channels,
        rate,
        subtype,
    )


@pytest.mark.parametrize(
    ("make", "frames", "height", "width", "fps"),
    [
        (lambda t: video_gif(t, 1, 9, 11), 1, 9, 11, 10.0),
        (lambda t: video_gif(t, 5, 13, 17), 5, 13, 17, 10.0),
        (lambda t: video_gif(t, 5, 12, 16, [40, 200, 40, 100, 20]), 5, 12, 16, 12.5),
    ],
    ids=["1 frame", "odd sizes (GIF)", "variable frame rate"],
)
def test_unusual_but_valid_videos_encode_and_decode(make, frames, height, width, fps, tmp_path):
    """The video default (3-D latent grids) on each: a file of the frames as read, stored at
    the file's average frame rate (a variable rate keeps the clip's duration), decoded to
    PNG frames of the same size and at other frame rates."""
    from inrcodec.codec import describe

    src = make(tmp_path)
    assert main(["encode", str(src), "-o", str(tmp_path / "v.inr"), *VIDEO_GRID]) == 0
    facts = describe(tmp_path / "v.inr")
    assert facts["shape"] == [frames, height, width] and facts["rate"] == pytest.approx(fps)
    out = tmp_path / "frames"
    assert main(["decode", str(tmp_path / "v.inr"), "-o", str(out), "--quiet"]) == 0
    decoded = sorted(out.iterdir())
    assert len(decoded) == frames
    with Image.open(decoded[0]) as first:
        assert first.size == (width, height)
    twice = tmp_path / "twice"
    assert main(["decode", str(tmp_path / "v.inr"), "-o", str(twice), "--fps", str(2 * fps)]) == 0
    assert len(list(twice.iterdir())) == (1 if frames == 1 else 2 * frames)
