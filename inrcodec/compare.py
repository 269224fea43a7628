"""inrcodec against classical codecs at the same bytes: the question a reader of a
`.inr` file asks first is what JPEG or WebP would have made of the picture in as many
bytes.

Each classical codec (through Pillow, with the settings of benchmarks/rd.py) gets the
highest quality setting whose whole file fits in the `.inr` file's real size, and every
codec's picture is scored by the same code that `eval` uses. Like the rest of the
library, this module never prints; torch is only imported when a model is decoded.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from inrcodec.atomic import atomic_output, ensure_writable
from inrcodec.errors import InrcodecError, UsageError
from inrcodec.metrics import bits_per_pixel

# Pillow's save options, as benchmarks/rd.py measures the anchors.
SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "jpeg": {"format": "JPEG", "optimize": True, "subsampling": "4:2:0"},
    "webp": {"format": "WEBP", "method": 6},
    "avif": {"format": "AVIF", "speed": 4},
}
# Integer quality ranges searched. JPEG stops at 95: Pillow warns that above it parts of
# the compression are switched off, so the files grow without a matching gain.
QUALITY_RANGE: dict[str, tuple[int, int]] = {"jpeg": (1, 95), "webp": (0, 100), "avif": (0, 100)}
DISPLAY_NAMES = {"inrcodec": "inrcodec", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}
CODECS = tuple(SAVE_OPTIONS)
DEFAULT_CODECS = ("jpeg", "webp")
# Qualities above the binary search's answer that are tried too: file size is not
# strictly monotone in the quality setting, so a slightly higher one may still fit.
NEIGHBOURS = 3
PANEL_GAP = 8  # pixels between side-by-side panels
LABEL_PADDING = 4


@dataclass
class Encoded:
    """One classical encode: the file, its decoded picture and the setting that made it."""

    codec: str
    data: bytes
    decoded: np.ndarray  # (H, W, 3) uint8
    quality: int
    over_budget: bool = False  # even the lowest quality did not fit

    @property
    def num_bytes(self) -> int:
        return len(self.data)


def parse_codecs(text: str) -> list[str]:
    """'jpeg,webp' -> ['jpeg', 'webp'] (order kept, duplicates dropped); unknown names are
    a usage error."""
    names = list(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in SAVE_OPTIONS]
    if unknown or not names:
        raise UsageError(
            f"--codecs: unknown codec {', '.join(map(repr, unknown)) or repr(text)} "
            f"(choose from {', '.join(CODECS)})"
        )
    return names


def _check_available(codec: str) -> None:
    if codec not in SAVE_OPTIONS:
        raise UsageError(f"unknown codec {codec!r} (choose from {', '.join(CODECS)})")
    if codec == "avif" and not features.check("avif"):
        raise InrcodecError("avif: this Pillow was built without AVIF support")


def _encode(reference: np.ndarray, codec: str, quality: int) -> Encoded:
    """Encode and decode once in memory; the size is the whole file."""
    buffer = io.BytesIO()
    Image.fromarray(reference).save(buffer, quality=quality, **SAVE_OPTIONS[codec])
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as encoded:
        decoded = np.asarray(encoded.convert("RGB"))
    return Encoded(codec, data, decoded, quality)


def same_bytes(reference: np.ndarray, max_bytes: int, codec: str) -> Encoded:
    """`reference` ((H, W, 3) uint8) through `codec` at the highest quality whose file is at
    most `max_bytes`; if none fits, the lowest quality, marked `over_budget`.

    A binary search assumes size grows with quality, then the next NEIGHBOURS settings
    above its answer are tried as well, since real encoders are not strictly monotone.
    Only a file actually measured to fit is returned as within budget.
    """
    _check_available(codec)
    if reference.dtype != np.uint8 or reference.ndim != 3 or reference.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) uint8 array, got {reference.dtype} {reference.shape}"
        )
    cache: dict[int, Encoded] = {}

    def at(quality: int) -> Encoded:
        if quality not in cache:
            cache[quality] = _encode(reference, codec, quality)
        return cache[quality]

    def fits(quality: int) -> bool:
        return at(quality).num_bytes <= max_bytes

    lowest, highest = QUALITY_RANGE[codec]
    best = _highest_fitting(lowest, highest, fits)
    if best is None:
        encoded = at(lowest)
        encoded.over_budget = True
        return encoded
    for quality in range(best + 1, min(best + NEIGHBOURS, highest) + 1):
        if fits(quality):
            best = quality
    return at(best)


def _highest_fitting(lowest: int, highest: int, fits: Callable[[int], bool]) -> int | None:
    """The largest q in [lowest, highest] with fits(q), if fits is monotone (True, then
    False); None when every probe failed, `lowest` included."""
    best = None
    while lowest <= highest:
        middle = (lowest + highest) // 2
        if fits(middle):
            best, lowest = middle, middle + 1
        else:
            highest = middle - 1
    return best


def reference_rgb(reference: Any, path: Path) -> np.ndarray:
    """The reference signal (media.Signal) as the (H, W, 3) uint8 array the classical codecs
    take; other channel layouts and bit depths are refused."""
    from inrcodec.media.image import image_to_uint

    if reference.medium != "image" or reference.channels != "RGB" or reference.bit_depth != 8:
        raise InrcodecError(
            f"{path}: compare needs an 8-bit RGB image, got "
            f"{reference.medium} {reference.channels} at {reference.bit_depth} bits"
        )
    return image_to_uint(reference.values, 8)


def read_rgb(image_path: Path | str) -> np.ndarray:
    """The original picture as `compare` scores against it: (H, W, 3) uint8."""
    from inrcodec.media.image import read_image

    return reference_rgb(read_image(image_path), Path(image_path))


def compare(
    image_path: Path,
    inr_path: Path,
    codecs: Sequence[str] = DEFAULT_CODECS,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Score `inr_path` and each classical codec, given as many bytes as the `.inr` file
    really has, against `image_path`.

    The model is decoded at the image's size exactly as `decode` does. One row per codec,
    inrcodec first: codec, bytes, bpp, psnr, ssim, quality (None for inrcodec),
    over_budget, and `decoded`, the (H, W, 3) uint8 picture (drop it for JSON). The
    original picture is `reference_rgb` of the image as read here.
    """
    from inrcodec.codec import decode_at_reference
    from inrcodec.media import handler_for_path

    image_path, inr_path = Path(image_path), Path(inr_path)
    for codec in codecs:
        _check_available(codec)
    handler = handler_for_path(image_path)
    if handler.medium != "image":
        raise UsageError(f"{image_path}: compare works on images, not {handler.medium}")
    reference, decoded = decode_at_reference(inr_path, image_path, device)
    original = reference_rgb(reference, image_path)
    budget = inr_path.stat().st_size
    pixels = original.shape[0] * original.shape[1]

    def row(codec: str, data_bytes: int, picture: np.ndarray, **extra: Any) -> dict[str, Any]:
        return {
            "codec": codec,
            "bytes": data_bytes,
            "bpp": bits_per_pixel(data_bytes, pixels),
            **handler.metrics(reference, picture),
            **extra,
            "decoded": picture,
        }

    rows = [row("inrcodec", budget, decoded, quality=None, over_budget=False)]
    for codec in codecs:
        encoded = same_bytes(original, budget, codec)
        rows.append(
            row(
                codec,
                encoded.num_bytes,
                encoded.decoded,
                quality=encoded.quality,
                over_budget=encoded.over_budget,
            )
        )
    return rows


def panel_label(row: dict[str, Any]) -> str:
    """Two lines for a side-by-side panel: the codec (and its quality), then bytes and PSNR."""
    name = DISPLAY_NAMES.get(row["codec"], row["codec"])
    if row.get("quality") is not None:
        name += f" q{row['quality']}"
    if row.get("over_budget"):
        name += " (over budget)"
    return f"{name}\n{row['bytes']:,} B  {row['psnr']:.2f} dB"


def comparison_panels(
    original: np.ndarray, rows: list[dict[str, Any]]
) -> list[tuple[str, np.ndarray]]:
    """The original, then each row's picture, labelled for `side_by_side`."""
    height, width = original.shape[:2]
    return [(f"original\n{width}x{height}", original)] + [
        (panel_label(r), r["decoded"]) for r in rows
    ]


def check_output(path: Path | str, force: bool) -> Path:
    """Refuse a side-by-side path that cannot be written, before any work is done for it."""
    path = ensure_writable(path, force)
    if path.suffix.lower() != ".png":
        raise UsageError(f"{path}: the side-by-side is written as PNG; name it .png")
    return path


def side_by_side(
    panels: list[tuple[str, np.ndarray]], path: Path | str, force: bool = False
) -> Path:
    """Write the panels left to right, PANEL_GAP apart, each with its label in a strip
    above it, as a PNG (lossless, so the artefacts shown are the codecs' own)."""
    path = check_output(path, force)
    if not panels:
        raise ValueError("side_by_side needs at least one panel")
    font = ImageFont.load_default()
    strip = _label_height(font, [label for label, _ in panels])
    widths = [picture.shape[1] for _, picture in panels]
    height = strip + max(picture.shape[0] for _, picture in panels)
    canvas = Image.new("RGB", (sum(widths) + PANEL_GAP * (len(panels) - 1), height), "white")
    left = 0
    for (label, picture), width in zip(panels, widths, strict=True):
        column = Image.new("RGB", (width, strip), "white")  # a label never spills over
        ImageDraw.Draw(column).multiline_text(
            (LABEL_PADDING, LABEL_PADDING), label, fill="black", font=font
        )
        canvas.paste(column, (left, 0))
        canvas.paste(Image.fromarray(np.ascontiguousarray(picture)).convert("RGB"), (left, strip))
        left += width + PANEL_GAP
    with atomic_output(path, force) as tmp:  # turns an OSError into a one-line error
        canvas.save(tmp, format="PNG")
    return path


def _label_height(font: Any, labels: list[str]) -> int:
    """Pixels of the label strip: the tallest label, padded."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    tallest = max(draw.multiline_textbbox((0, 0), label, font=font)[3] for label in labels)
    return int(tallest) + 2 * LABEL_PADDING
