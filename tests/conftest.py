"""Shared fixtures: tiny signals and a tiny trained model, so the suite stays fast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEMO_IMAGE = REPO / "inrcodec" / "data" / "demo.png"


def demo_crop(folder: Path, size: int = 32) -> Path:
    """A size×size centre crop of the committed demo photo (real texture, tiny), written
    to `folder/crop{size}.png`: the one crop every test fixture uses."""
    image = Image.open(DEMO_IMAGE)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    path = folder / f"crop{size}.png"
    image.crop((left, top, left + size, top + size)).save(path)
    return path


@pytest.fixture
def crop32(tmp_path: Path) -> Path:
    """The 32x32 demo crop, in this test's own folder (outputs may land beside it)."""
    return demo_crop(tmp_path)


@pytest.fixture
def gradient_image(tmp_path: Path) -> Path:
    """A smooth 24x20 RGB image: an easy target, so few steps fit it well."""
    y, x = np.mgrid[0:24, 0:20]
    rgb = np.stack([x * 12, y * 10, (x + y) * 5], axis=-1).clip(0, 255).astype(np.uint8)
    path = tmp_path / "gradient.png"
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_inr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quickly trained .inr of the 32x32 crop (fp32 weights), shared by decode tests."""
    from inrcodec.codec import encode_file
    from inrcodec.options import EncodeOptions

    folder = tmp_path_factory.mktemp("tiny")
    src = demo_crop(folder)
    options = EncodeOptions(steps=60, width=32, depth=2, precision="fp32", device="cpu")
    encode_file(src, folder / "crop.inr", options)
    return folder / "crop.inr"


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny signals run fastest on one thread, and stay fast when the machine is busy."""
    import torch

    torch.set_num_threads(1)
