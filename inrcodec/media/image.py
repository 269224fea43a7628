"""Image files <-> `Signal` through Pillow.

Samples are float32 on the 0..255 scale whatever the source depth: 16-bit sources are
divided by 257 (so 65535 -> 255.0 and `image_to_uint` restores them exactly), and
float ("F" mode) TIFFs are taken as already on the 0..255 scale.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from inrcodec.atomic import atomic_output
from inrcodec.errors import InrcodecError, UsageError, one_line
from inrcodec.media.base import MediumHandler, OutputFormat, Signal
from inrcodec.media.helpers import check_input_file, positive, refuse_options
from inrcodec.media.registry import register_medium
from inrcodec.metrics import bits_per_pixel, compression_ratio, psnr, ssim

# A float32 RGBA copy of 2**26 pixels is 1 GiB; fitting an INR to more is impractical.
# Kept below Pillow's own decompression-bomb limit so that ours is the one users hit.
MAX_PIXELS = 2**26

# Modes kept as they are; everything else Pillow can decode is converted (see _to_known_mode).
_8BIT_MODES = {"L", "LA", "RGB", "RGBA"}
_16BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}

_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
# Modes each format can store; other modes are widened losslessly (L -> RGB, LA -> RGBA).
_FORMAT_MODES = {
    "PNG": {"L", "LA", "RGB", "RGBA", "I;16"},
    "TIFF": {"L", "LA", "RGB", "RGBA", "I;16"},
    "JPEG": {"L", "RGB"},
    "BMP": {"L", "RGB"},  # Pillow writes RGBA BMPs but reads them back without alpha
    "WEBP": {"RGB", "RGBA"},
}
# The codec's output is already lossy: store it as faithfully as each format allows.
_SAVE_OPTIONS = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"lossless": True, "exact": True},  # exact: keep colour under zero alpha
}


def _open_decoded(path: Path) -> Image.Image:
    """Open and fully decode `path`, turning every failure into an InrcodecError."""
    check_input_file(path, "an image file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise InrcodecError(f"{path}: image too large (over {MAX_PIXELS} pixels)") from exc
        except PermissionError as exc:
            raise InrcodecError(f"{path}: cannot read (permission denied)") from exc
        except Image.UnidentifiedImageError as exc:
            raise InrcodecError(f"{path}: not an image (unrecognised format)") from exc
        except Exception as exc:  # Pillow plugins raise many types for malformed files
            raise InrcodecError(f"{path}: not a readable image ({one_line(exc)})") from exc
        with im:
            width, height = im.size
            if width * height == 0:
                raise InrcodecError(f"{path}: image has zero size ({width}x{height})")
            if width * height > MAX_PIXELS:
                raise InrcodecError(
                    f"{path}: image too large ({width}x{height}, over {MAX_PIXELS} pixels)"
                )
            try:
                im.load()  # decode now: truncation and corruption surface here, not later
                return ImageOps.exif_transpose(im)
            except Exception as exc:  # same as above: decoder errors vary by plugin
                raise InrcodecError(
                    f"{path}: truncated or corrupted image ({one_line(exc)})"
                ) from exc


def _to_known_mode(im: Image.Image) -> Image.Image:
    """Map Pillow's many modes onto L/LA/RGB/RGBA, or leave 16-bit and float modes as is."""
    mode = im.mode
    if mode in _8BIT_MODES or mode in _16BIT_MODES or mode in {"I", "F"}:
        return im
    if mode == "1":
        return im.convert("L")
    if mode == "La":  # premultiplied alpha
        return im.convert("LA")
    if mode in {"PA", "RGBa"} or (mode == "P" and "transparency" in im.info):
        return im.convert("RGBA")
    return im.convert("RGB")  # P, CMYK, YCbCr, LAB, HSV, RGBX, ...


def read_image(path: str | Path) -> Signal:
    """Read an image file as a float32 (H, W, C) signal on the 0..255 scale.

    Only the first frame of multi-frame files (GIF, TIFF) is read. 16-bit RGB PNGs are
    reduced to 8 bits by Pillow itself (it has no 16-bit colour mode), so they come back
    with bit_depth 8.
    """
    path = Path(path)
    im = _to_known_mode(_open_decoded(path))
    array = np.asarray(im)
    if im.mode in _8BIT_MODES:
        values, channels, bit_depth = array.astype(np.float32), im.mode, 8
    elif im.mode == "F":
        if not np.isfinite(array).all():
            raise InrcodecError(f"{path}: float image contains NaN or infinite samples")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 255.0:
            raise InrcodecError(
                f"{path}: float samples span {low:g}..{high:g}; expected the 0..255 scale"
            )
        values, channels, bit_depth = array.astype(np.float32), "L", 32
    else:  # 16-bit grayscale; "I" is how some Pillow versions and TIFFs deliver it
        if array.min() < 0 or array.max() > 65535:
            raise InrcodecError(f"{path}: integer samples outside the 16-bit range 0..65535")
        values, channels, bit_depth = (array / 257.0).astype(np.float32), "L", 16
    if values.ndim == 2:
        values = values[:, :, None]
    return Signal(
        medium="image",
        values=np.ascontiguousarray(values),
        channels=channels,
        value_range=(0.0, 255.0),
        bit_depth=bit_depth,
        source=str(path),
    )


def image_to_uint(values: np.ndarray, bit_depth: int) -> np.ndarray:
    """Round (half to even) and clamp 0..255 floats to uint8, or to uint16 when bit_depth > 8.

    Float (32-bit) sources are written at 16 bits, the most a PNG can hold. NaN, which a
    diverged model can produce, becomes 0 rather than an undefined integer.
    """
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    if bit_depth <= 8:
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.clip(np.rint(values * 257.0), 0, 65535).astype(np.uint16)


def _pillow_image(values: np.ndarray, channels: str, fmt: str) -> Image.Image:
    """Build the Pillow image to save, down-converting what `fmt` cannot store."""
    if values.dtype == np.uint16 and not (channels == "L" and fmt in {"PNG", "TIFF"}):
        # Pillow has no 16-bit colour or alpha modes, and JPEG/BMP/WebP are 8-bit
        # formats: keep the top 8 bits, rounded (exact for values saved as x * 257).
        values = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
    # Pillow infers the mode from shape and dtype: L, LA, RGB, RGBA or I;16.
    im = Image.fromarray(np.ascontiguousarray(values[:, :, 0] if channels == "L" else values))
    if im.mode not in _FORMAT_MODES[fmt]:
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    return im


def write_image(
    path: str | Path, values: np.ndarray, channels: str, bit_depth: int, force: bool = False
) -> None:
    """Write an (H, W, C) uint8/uint16 array (see `image_to_uint`) atomically.

    The format follows the extension. 16-bit samples are kept only for grayscale PNG
    and TIFF; elsewhere they are down-converted to 8 bits.
    """
    path = Path(path)
    expected = np.uint8 if bit_depth <= 8 else np.uint16
    if values.dtype != expected or values.ndim != 3 or values.shape[2] != len(channels):
        raise ValueError(
            f"expected ({len(channels)} channels) {np.dtype(expected)} array for {channels} "
            f"at {bit_depth} bits, got {values.dtype} {values.shape}"
        )
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(_FORMATS)
        raise InrcodecError(f"{path}: unknown image extension (use one of {known})")
    if "A" in channels and "RGBA" not in _FORMAT_MODES[fmt]:
        raise InrcodecError(
            f"{path}: {fmt} cannot store the alpha channel of this {channels} image; "
            "use .png, .webp or .tiff"
        )
    im = _pillow_image(values, channels, fmt)
    with atomic_output(path, force) as tmp:
        im.save(tmp, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))


@register_medium
class ImageHandler(MediumHandler):
    medium = "image"
    extensions = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
    output_suffix = ".png"

    def read(self, path: Path, **selection) -> Signal:
        refuse_options(selection, set(), "images", f"{path}: ")
        return read_image(path)

    def output_shape(
        self, shape: tuple[int, ...], rate: float | None, request: dict
    ) -> tuple[tuple[int, ...], float | None]:
        refuse_options(request, {"scale", "size"}, "images")
        return spatial_shape(shape, request), None

    def output_dtype(self, bit_depth: int) -> np.dtype:
        return np.dtype(np.uint8 if bit_depth <= 8 else np.uint16)

    def to_output(self, raw: np.ndarray, bit_depth: int) -> np.ndarray:
        return image_to_uint(raw, bit_depth)

    def write(
        self, path: Path, values: np.ndarray, output_format: OutputFormat, *, force: bool
    ) -> None:
        write_image(path, values, output_format.channels, output_format.bit_depth, force)

    def metrics(self, reference: Signal, decoded: np.ndarray) -> dict[str, float]:
        """PSNR (peak 255) and SSIM on the decoded output, against the reference rounded
        to the same bit depth (exact for 8- and 16-bit sources)."""
        scale = 1.0 if decoded.dtype == np.uint8 else 1 / 257
        test = decoded.astype(np.float64) * scale
        ref = image_to_uint(reference.values, reference.bit_depth).astype(np.float64) * scale
        return {"psnr": psnr(ref, test), "ssim": ssim(ref, test)}

    def rate_metrics(
        self, file_bytes: int, shape: tuple[int, ...], channels: int, rate: float | None
    ) -> dict[str, float]:
        return pixel_rate_metrics(file_bytes, shape, channels)


def pixel_rate_metrics(file_bytes: int, shape: tuple[int, ...], channels: int) -> dict[str, float]:
    """Rate of 8-bit pixels (images, and video frames stacked): bits per pixel of the whole
    grid, and the ratio to the raw 8-bit samples."""
    pixels = math.prod(shape)
    return {
        "bytes": float(file_bytes),
        "bpp": bits_per_pixel(file_bytes, pixels),
        "compression_ratio": compression_ratio(file_bytes, pixels * channels),
    }


def spatial_shape(shape: tuple[int, ...], request: dict) -> tuple[int, int]:
    """The (H, W) a --scale or --size request gives for a grid whose last two axes are
    (H, W)."""
    height, width = shape[-2:]
    if "size" in request and "scale" in request:
        raise UsageError("give --scale or --size, not both")
    if "size" in request:
        return _parse_size(request["size"])
    scale = positive(request.get("scale", 1.0), "--scale")
    return max(1, round(height * scale)), max(1, round(width * scale))


def _parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (H, W), the grid's row-major order."""
    try:
        width, height = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise UsageError(f"--size must look like 640x480, got {text!r}") from None
    if width < 1 or height < 1:
        raise UsageError(f"--size must be positive, got {text!r}")
    return height, width
