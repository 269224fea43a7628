"""How the golden .inr files were made (run once, from the code of their format version).

Never rerun this to "fix" a failing golden test: the files and the md5 sums in
`golden.json` pin what an older inrcodec wrote and what it decoded to. A new format
version adds new files here; old ones stay as they are.

    python tests/data/golden/make_golden.py tests/data/golden
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


def decoded_md5(path: Path) -> str:
    """md5 of the decoded samples (not of the PNG/WAV bytes, which depend on the encoder)."""
    if path.suffix == ".png":
        return hashlib.md5(np.asarray(Image.open(path)).tobytes()).hexdigest()
    samples, _ = sf.read(path, dtype="int16", always_2d=True)
    return hashlib.md5(samples.tobytes()).hexdigest()


def encode(name: str, source: Path, folder: Path, *flags: str) -> Path:
    target = folder / f"{name}.inr"
    code = main(["encode", str(source), "-o", str(target), "--quiet", "--force", *flags])
    assert code == 0, name
    return target


def v1_from(v2_raw: Path, target: Path) -> None:
    """A format-1 file: v2's raw fp16 case without the 'pack' key (what v1 wrote)."""
    data = v2_raw.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["inrcodec"])
    assert meta.pop("pack") == "raw"
    meta["format"] = 1
    header["__metadata__"]["inrcodec"] = json.dumps(meta, separators=(",", ":"))
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    target.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + size :])
    v2_raw.unlink()


def main_(folder: Path) -> None:
    torch.set_num_threads(1)
    common = ["--steps", "40", "--device", "cpu", "--compile", "off", "--batch-size", "0"]
    small = [*common, "--width", "16", "--depth", "2", "--lr", "3e-3"]
    scratch = encode("scratch", CROP, folder, *small, "--precision", "fp16")
    data = scratch.read_bytes()
    scratch.unlink()
    # A raw (unpacked) fp16 v2 file, for the v1 conversion: write it through the container.
    from inrcodec import container

    inr = container.from_bytes(data)
    raw = folder / "raw.inr"
    raw.write_bytes(container.to_bytes(inr, packings=("raw",)))
    v1_from(raw, folder / "v1_siren_fp16.inr")
    encode("v2_siren_fp16", CROP, folder, *small, "--precision", "fp16")
    encode("v2_finer_int8", CROP, folder, *small, "--arch", "finer", "--precision", "int8")
    encode("v2_siren_int6", CROP, folder, *small, "--precision", "int6")
    encode("v2_siren_int4", CROP, folder, *small, "--precision", "int4")
    encode(
        "v2_finer_tiled_int8",
        CROP,
        folder,
        *small,
        "--arch",
        "finer",
        "--tile-size",
        "24",
        "--precision",
        "int8",
    )
    encode(
        "v2_wavelet_fp16", CROP, folder, *small, "--arch", "finer-wavelet", "--precision", "fp16"
    )
    encode(
        "v2_sl2a_fp16",
        CROP,
        folder,
        *common,
        "--arch",
        "sl2a",
        "--width",
        "16",
        "--depth",
        "2",
        "-O",
        "degree=8",
        "-O",
        "rank=4",
        "--precision",
        "fp16",
    )
    t = np.arange(800) / 8000
    tone = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)).astype(
        np.float32
    )
    wav = folder / "tone.wav"
    sf.write(wav, tone, 8000, subtype="PCM_16")
    encode("v2_audio_siren_int8", wav, folder, *small, "--precision", "int8")
    wav.unlink()

    manifest = {}
    for inr_path in sorted(folder.glob("*.inr")):
        entry = {}
        suffix = ".wav" if "audio" in inr_path.name else ".png"
        for scale in ("1", "2"):
            out = folder / f"out{suffix}"
            code = main(
                [
                    "decode",
                    str(inr_path),
                    "-o",
                    str(out),
                    "--scale",
                    scale,
                    "--device",
                    "cpu",
                    "--force",
                    "--quiet",
                ]
            )
            assert code == 0, inr_path
            entry[f"scale{scale}"] = decoded_md5(out)
            out.unlink()
        manifest[inr_path.name] = entry
    (folder / "golden.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main_(Path(sys.argv[1]))
