"""How the golden .inr files were made: each by the inrcodec of its format version.

The script is additive: it makes only the files that `golden.json` does not list yet, and
records what they decode to (the decoded samples at scales 1 and 2 in decoded/, and a
hash of the decoded parameters in golden.json), leaving every existing file as it is.
Never delete a file to "fix" a failing golden test: the files pin what an older inrcodec
wrote and what it decoded to. A new format version adds its own entries to FILES (named
after the version).

    python tests/data/golden/make_golden.py tests/data/golden [--refresh]
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image

from inrcodec.cli import main

HERE = Path(__file__).resolve().parent
CROP = HERE.parent / "div2k00_crop48.png"
PHOTO = HERE.parent / "kodim05_crop256.png"  # grids large enough for the predictive coders
COMMON = ["--steps", "40", "--device", "cpu", "--compile", "off", "--batch-size", "0"]
SMALL = [*COMMON, "--width", "16", "--depth", "2", "--lr", "3e-3"]
TILED = ["--arch", "finer", "--tile-size", "24"]
GRID = [*COMMON, "--arch", "grid", "--transform", "minmax", "--lr", "3e-2", "--steps", "120"]
SL2A = [*COMMON, "--arch", "sl2a", "--width", "16", "--depth", "2", "-O", "degree=8"]
# name -> (source: "crop", "photo" or "tone", encode flags); v1 is made from a raw fp16 file.
FILES: dict[str, tuple[str, list[str]]] = {
    "v1_siren_fp16": ("crop", [*SMALL, "--precision", "fp16"]),
    "v2_siren_fp16": ("crop", [*SMALL, "--precision", "fp16"]),
    "v2_finer_int8": ("crop", [*SMALL, "--arch", "finer", "--precision", "int8"]),
    "v2_siren_int6": ("crop", [*SMALL, "--precision", "int6"]),
    "v2_siren_int4": ("crop", [*SMALL, "--precision", "int4"]),
    "v2_finer_tiled_int8": ("crop", [*SMALL, *TILED, "--precision", "int8"]),
    "v2_wavelet_fp16": ("crop", [*SMALL, "--arch", "finer-wavelet", "--precision", "fp16"]),
    "v2_sl2a_fp16": ("crop", [*SL2A, "-O", "rank=4", "--precision", "fp16"]),
    "v2_audio_siren_int8": ("tone", [*SMALL, "--precision", "int8"]),
    "v3_finer_auto": ("crop", [*SMALL, "--arch", "finer", "--precision", "auto"]),
    "v3_finer_tiled_auto": ("crop", [*SMALL, *TILED, "--precision", "auto", "--qat-steps", "5"]),
    "v3_wavelet_auto": ("crop", [*SMALL, "--arch", "finer-wavelet", "--precision", "auto"]),
    "v3_audio_siren_auto": ("tone", [*SMALL, "--precision", "auto"]),
    "v4_grid_factorized": ("crop", [*GRID]),
    "v4_grid_context": ("crop", [*GRID, "-O", "context=8"]),
    "v5_grid_predictive": ("crop", [*GRID]),
    "v6_grid_interlaced": ("crop", [*GRID]),
    "v7_grid_post": ("crop", [*GRID, "-O", "post=5"]),
    "v8_grid_half": ("photo", [*GRID, "--lambda", "3e-3"]),
    "v8_audio_grid": ("tone", [*GRID, "--lambda", "2e-5"]),
    "v9_audio_segments": (
        "tone",
        [*GRID, "--lambda", "2e-5", "-O", "segment=300", "-O", "overlap=32"],
    ),
    "v10_video_grid": ("clip", [*GRID, "--steps", "400", "--lambda", "1e-4"]),
    "v11_video_motion": ("clip", [*GRID, "--steps", "400", "--lambda", "1e-4"]),
}


def samples(path: Path) -> np.ndarray:
    """A decoded PNG's, WAV's or folder of PNG frames' samples as read back."""
    if path.is_dir():
        return np.stack([np.asarray(Image.open(frame)) for frame in sorted(path.iterdir())])
    if path.suffix == ".png":
        return np.asarray(Image.open(path))
    return sf.read(path, dtype="int16", always_2d=True)[0]


def tone(folder: Path) -> Path:
    t = np.arange(800) / 8000
    values = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)
    path = folder / "tone.wav"
    sf.write(path, values.astype(np.float32), 8000, subtype="PCM_16")
    return path


def clip(folder: Path) -> Path:
    """16 frames of 48x64 panning over the photo crop, two pixels a frame (a GIF)."""
    frames = np.asarray(Image.open(PHOTO).convert("RGB"))
    images = [Image.fromarray(frames[40 + t : 88 + t, 2 * t : 64 + 2 * t]) for t in range(16)]
    images = [image.quantize(256, dither=Image.Dither.NONE) for image in images]
    path = folder / "clip.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    return path


def encode(name: str, folder: Path) -> Path:
    source, flags = FILES[name]
    made = {"tone": tone, "clip": clip}
    src = made[source](folder) if source in made else {"crop": CROP, "photo": PHOTO}[source]
    target = folder / f"{name}.inr"
    code = main(["encode", str(src), "-o", str(target), "--quiet", "--force", *flags])
    assert code == 0, name
    if name.startswith("v1_"):
        v1_from(target)
    return target


def v1_from(path: Path) -> None:
    """Rewrite a raw fp16 file as format 1: no 'pack' key (what v1 wrote)."""
    from inrcodec import container

    data = container.to_bytes(container.from_bytes(path.read_bytes()), packings=("raw",))
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    meta = container.parse_metadata(header["__metadata__"]["inrcodec"])
    assert meta.pop("pack") == "raw"
    meta["format"] = 1
    header["__metadata__"]["inrcodec"] = json.dumps(meta, separators=(",", ":"))
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + size :])


def parameters_sha256(path: Path) -> str:
    """sha256 of the parameters as decoded from the file: for the auto precision the
    entropy-decoded integers themselves (latents and weights, each tensor's values over
    its power-of-two step), else the stored values as the reader returns them."""
    from inrcodec import container

    inr = container.read(path)
    steps = inr.exponents or [None] * len(inr.state)
    digest = hashlib.sha256()
    for (name, tensor), exponent in zip(inr.state.items(), steps, strict=True):
        if tensor.is_complex():
            tensor = torch.view_as_real(tensor)
        if exponent is not None:
            codes = torch.round(tensor.double() / 2.0**exponent).long()
            assert torch.equal(codes.double() * 2.0**exponent, tensor.double()), name
            tensor = codes
        digest.update(f"{name}:{tensor.dtype}".encode())
        digest.update(np.ascontiguousarray(tensor.numpy()).tobytes())
    return digest.hexdigest()


def reference_path(folder: Path, name: str, scale: str) -> Path:
    """Where the decode of golden file `name` at `scale` is kept (PNG, 16-bit WAV, or for
    video a folder of PNG frames: a path without a suffix)."""
    if "video" in name:
        return folder / "decoded" / f"{Path(name).stem}_scale{scale}"
    suffix = ".wav" if "audio" in name else ".png"
    return folder / "decoded" / f"{Path(name).stem}.scale{scale}{suffix}"


def record(path: Path, folder: Path) -> dict[str, str]:
    """The file's parameter hash, and its decodes at scales 1 and 2 written beside it."""
    for scale in SCALES:
        out = reference_path(folder, path.name, scale)
        out.parent.mkdir(exist_ok=True)
        args = ["decode", str(path), "-o", str(out), "--scale", scale, "--force", "--quiet"]
        assert main([*args, "--device", "cpu"]) == 0, path
    return {"parameters": parameters_sha256(path)}


SCALES = ("1", "2")


def make(folder: Path, refresh: bool = False) -> None:
    """Encode the files FILES adds, and record what each new file decodes to. `refresh`
    records every file again: only for a deliberate change of what decoding computes
    (2026-12-04: float64 decoding), never to make a failing test pass."""
    torch.set_num_threads(1)
    manifest_path = folder / "golden.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    for name in FILES:
        if f"{name}.inr" not in manifest:
            manifest[f"{name}.inr"] = record(encode(name, folder), folder)
        elif refresh:
            manifest[f"{name}.inr"] = record(folder / f"{name}.inr", folder)
    for leftover in [*folder.glob("tone.wav"), *folder.glob("clip.gif")]:
        leftover.unlink()
    manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=2) + "\n")


if __name__ == "__main__":
    make(Path(sys.argv[1]), refresh="--refresh" in sys.argv[2:])
