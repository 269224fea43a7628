"""Image reading/writing and atomic outputs: exact round trips and one-line errors."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inrcodec.atomic import atomic_output
from inrcodec.errors import InrcodecError
from inrcodec.media import (
    OutputFormat,
    handler_for_medium,
    handler_for_path,
    supported_extensions,
)
from inrcodec.media import image as image_module
from inrcodec.media.image import image_to_uint, read_image, write_image

CHANNEL_COUNTS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def random_uint8(channels: str, shape: tuple[int, int] = (13, 17), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*shape, CHANNEL_COUNTS[channels]), dtype=np.uint8)


def assert_user_error(path: Path, match: str) -> None:
    """Reading `path` fails with a one-line InrcodecError that names the file."""
    with pytest.raises(InrcodecError, match=match) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message


def write_png16(path: Path, samples: np.ndarray, color_type: int) -> None:
    """A 16-bit PNG written by hand, since Pillow cannot write 16-bit colour."""
    height, width = samples.shape[:2]
    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- reading -------------------------------------------------------------------------


@pytest.mark.parametrize("channels", ["L", "LA", "RGB", "RGBA"])
def test_8bit_png_round_trip_is_exact(tmp_path: Path, channels: str) -> None:
    original = random_uint8(channels)
    path = tmp_path / "x.png"
    write_image(path, original, channels, 8)

    signal = read_image(path)

    assert signal.medium == "image"
    assert signal.channels == channels
    assert signal.bit_depth == 8
    assert signal.value_range == (0.0, 255.0)
    assert signal.source == str(path)
    assert signal.values.dtype == np.float32
    assert signal.values.shape == original.shape
    np.testing.assert_array_equal(image_to_uint(signal.values, 8), original)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grayscale_round_trip_is_exact(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(1)
    original = rng.integers(0, 65536, (9, 11, 1), dtype=np.uint16)
    original[0, 0, 0], original[0, 1, 0] = 0, 65535
    path = tmp_path / f"x{suffix}"
    write_image(path, original, "L", 16)

    signal = read_image(path)

    assert (signal.channels, signal.bit_depth) == ("L", 16)
    assert signal.values[0, 0, 0] == 0.0
    assert signal.values[0, 1, 0] == 255.0
    np.testing.assert_array_equal(image_to_uint(signal.values, 16), original)


def test_every_16bit_value_survives_the_float32_scale() -> None:
    every = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1)
    scaled = (every / 257.0).astype(np.float32)
    np.testing.assert_array_equal(image_to_uint(scaled, 16), every)


def test_16bit_rgb_png_is_read_at_8_bits(tmp_path: Path) -> None:
    """Pillow has no 16-bit colour mode: it keeps the high byte of each sample."""
    samples = np.random.default_rng(2).integers(0, 65536, (4, 5, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    write_png16(path, samples, color_type=2)

    signal = read_image(path)

    assert (signal.channels, signal.bit_depth) == ("RGB", 8)
    np.testing.assert_array_equal(signal.values, samples >> 8)


def test_palette_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    im = Image.new("P", (4, 3), 1)
    im.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    im.putpixel((0, 0), 0)
    path = tmp_path / "p.png"
    im.save(path, transparency=0)

    signal = read_image(path)

    assert signal.channels == "RGBA"
    assert signal.values[0, 0, 3] == 0.0
    np.testing.assert_array_equal(signal.values[1, 1], [10, 200, 30, 255])


def test_palette_without_transparency_becomes_rgb(tmp_path: Path) -> None:
    im = Image.new("P", (4, 3), 1)
    im.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    path = tmp_path / "p.gif"
    im.save(path)

    signal = read_image(path)

    assert signal.channels == "RGB"
    np.testing.assert_array_equal(signal.values[2, 3], [10, 200, 30])


def test_bilevel_becomes_grayscale(tmp_path: Path) -> None:
    im = Image.new("1", (8, 2), 0)
    im.putpixel((3, 1), 1)
    path = tmp_path / "b.png"
    im.save(path)

    signal = read_image(path)

    assert (signal.channels, signal.bit_depth) == ("L", 8)
    assert signal.values[1, 3, 0] == 255.0
    assert signal.values.sum() == 255.0


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path)  # pure red ink

    signal = read_image(path)

    assert signal.channels == "RGB"
    assert signal.values.shape == (16, 16, 3)
    red, green, blue = signal.values.reshape(-1, 3).mean(axis=0)
    assert red > 240 and green < 15 and blue < 15


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """Orientation 6 means 'rotate 90° clockwise to display': the left half goes on top."""
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    im.save(path, exif=exif, quality=95)

    values = read_image(path).values

    assert values.shape == (40, 20, 3)
    assert values[:15, :, 0].mean() > 200 and values[:15, :, 2].mean() < 50
    assert values[-15:, :, 2].mean() > 200 and values[-15:, :, 0].mean() < 50


def test_float_tiff_is_taken_on_the_0_255_scale(tmp_path: Path) -> None:
    samples = np.linspace(0.0, 255.0, 24, dtype=np.float32).reshape(4, 6)
    path = tmp_path / "f.tif"
    Image.fromarray(samples).save(path)

    signal = read_image(path)

    assert (signal.channels, signal.bit_depth) == ("L", 32)
    np.testing.assert_array_equal(signal.values[:, :, 0], samples)


@pytest.mark.parametrize(
    ("bad", "match"), [(np.nan, "NaN or infinite"), (np.inf, "NaN or infinite"), (300.0, "0..255")]
)
def test_float_tiff_with_bad_samples_is_rejected(tmp_path: Path, bad: float, match: str) -> None:
    samples = np.zeros((4, 6), dtype=np.float32)
    samples[2, 3] = bad
    path = tmp_path / "f.tif"
    Image.fromarray(samples).save(path)

    assert_user_error(path, match)


def test_truncated_png_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    Image.fromarray(random_uint8("RGB", (64, 64))).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    assert_user_error(path, "truncated or corrupted")


def test_garbage_with_png_extension_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "garbage.png"
    path.write_bytes(b"this is not an image at all" * 10)

    assert_user_error(path, "not an image")


def test_zero_width_png_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty-image.png"
    write_png16(path, np.zeros((3, 0, 1), dtype=np.uint16), color_type=0)

    assert_user_error(path, "zero size|not an image")


def test_missing_file_directory_and_empty_file_are_rejected(tmp_path: Path) -> None:
    assert_user_error(tmp_path / "missing.png", "no such file")
    assert_user_error(tmp_path, "is a directory")
    empty = tmp_path / "empty.png"
    empty.touch()
    assert_user_error(empty, "empty file")


def test_images_over_the_pixel_cap_are_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (5, 4)).save(path)
    monkeypatch.setattr(image_module, "MAX_PIXELS", 19)

    assert_user_error(path, "too large")


# --- conversion ----------------------------------------------------------------------


def test_image_to_uint_rounds_half_to_even_and_clamps() -> None:
    values = np.array([0.5, 1.5, 2.5, 254.6, -3.0, 300.0, np.nan], dtype=np.float32)

    np.testing.assert_array_equal(image_to_uint(values, 8), [0, 2, 2, 255, 0, 255, 0])
    assert image_to_uint(values, 8).dtype == np.uint8
    sixteen = image_to_uint(np.array([1.0, 255.0, 256.0, -1.0]), 16)
    assert sixteen.dtype == np.uint16
    np.testing.assert_array_equal(sixteen, [257, 65535, 65535, 0])


# --- writing -------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "channels"), [(".bmp", "RGB"), (".bmp", "L"), (".tiff", "LA")])
def test_lossless_formats_round_trip(tmp_path: Path, suffix: str, channels: str) -> None:
    original = random_uint8(channels)
    path = tmp_path / f"x{suffix}"
    write_image(path, original, channels, 8)

    signal = read_image(path)

    assert signal.channels == channels
    np.testing.assert_array_equal(image_to_uint(signal.values, 8), original)


def test_webp_is_written_lossless(tmp_path: Path) -> None:
    original = random_uint8("RGBA")
    path = tmp_path / "x.webp"
    write_image(path, original, "RGBA", 8)

    np.testing.assert_array_equal(image_to_uint(read_image(path).values, 8), original)


def test_jpeg_is_written_at_high_quality(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:32, 0:32]
    original = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=-1).astype(np.uint8)
    path = tmp_path / "x.JPG"
    write_image(path, original, "RGB", 8)

    decoded = read_image(path).values
    assert np.abs(decoded - original).mean() < 2.0


def test_16bit_colour_is_down_converted_to_8bit(tmp_path: Path) -> None:
    original = random_uint8("RGB")
    path = tmp_path / "x.png"
    write_image(path, original.astype(np.uint16) * 257, "RGB", 16)

    signal = read_image(path)

    assert signal.bit_depth == 8
    np.testing.assert_array_equal(image_to_uint(signal.values, 8), original)


@pytest.mark.parametrize("suffix", [".jpg", ".bmp"])
def test_alpha_in_a_format_without_alpha_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"x{suffix}"
    with pytest.raises(InrcodecError, match="alpha") as info:
        write_image(path, random_uint8("RGBA"), "RGBA", 8)

    assert str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unknown_extension_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.xyz"
    with pytest.raises(InrcodecError, match="unknown image extension"):
        write_image(path, random_uint8("RGB"), "RGB", 8)


def test_array_not_matching_the_declared_layout_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", random_uint8("RGB"), "RGBA", 8)
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", random_uint8("L"), "L", 16)


def test_existing_output_needs_force(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    first, second = random_uint8("RGB", seed=1), random_uint8("RGB", seed=2)
    write_image(path, first, "RGB", 8)

    with pytest.raises(InrcodecError, match="exists; use --force to overwrite"):
        write_image(path, second, "RGB", 8)
    np.testing.assert_array_equal(image_to_uint(read_image(path).values, 8), first)

    write_image(path, second, "RGB", 8, force=True)
    np.testing.assert_array_equal(image_to_uint(read_image(path).values, 8), second)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_the_handler_writes_the_recorded_layout_and_depth(tmp_path: Path) -> None:
    original = random_uint8("L").astype(np.uint16) * 257
    path = tmp_path / "x.png"
    handler_for_medium("image").write(path, original, OutputFormat("L", 16), force=False)

    signal = read_image(path)

    assert (signal.channels, signal.bit_depth) == ("L", 16)
    np.testing.assert_array_equal(image_to_uint(signal.values, 16), original)


def test_failed_save_leaves_no_temp_file_and_keeps_the_old_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"old")

    def failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(InrcodecError, match="No space left on device") as info:
        write_image(path, random_uint8("RGB"), "RGB", 8, force=True)

    assert str(path) in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    assert path.read_bytes() == b"old"


def test_missing_output_directory_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "x.png"
    with pytest.raises(InrcodecError, match="does not exist") as info:
        write_image(path, random_uint8("RGB"), "RGB", 8)
    assert str(path) in str(info.value)


def test_output_gets_ordinary_file_permissions(tmp_path: Path) -> None:
    reference = tmp_path / "plain"
    reference.touch()
    path = tmp_path / "x.png"
    write_image(path, random_uint8("L"), "L", 8)

    assert path.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777


# --- atomic_output -------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_output_cleans_up_on_exception(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(type(error)), atomic_output(target, force=False) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".bin"
        tmp.write_bytes(b"half")
        raise error

    assert list(tmp_path.iterdir()) == []


def test_atomic_output_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with atomic_output(target, force=False) as tmp:
        tmp.write_bytes(b"done")
        assert not target.exists()

    assert target.read_bytes() == b"done"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_output_refuses_a_directory_target(tmp_path: Path) -> None:
    with pytest.raises(InrcodecError, match="is a directory"), atomic_output(tmp_path, True):
        pass


def test_atomic_output_reports_an_unwritable_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated: permission bits do not stop root, who may run the tests."""
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK)
    with pytest.raises(InrcodecError, match="not writable"), atomic_output(tmp_path / "x", False):
        pass
    assert list(tmp_path.iterdir()) == []


# --- the media registry --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "medium"), [("a.PNG", "image"), ("a.flac", "audio"), ("a.mkv", "video")]
)
def test_the_suffix_picks_the_registered_handler(name: str, medium: str) -> None:
    handler = handler_for_path(Path(name))

    assert handler is handler_for_medium(medium)
    assert handler.medium == medium
    assert handler.extensions <= supported_extensions()


def test_an_unknown_suffix_is_refused() -> None:
    with pytest.raises(InrcodecError, match=r"unsupported file type '\.xyz'"):
        handler_for_path(Path("a.xyz"))
