"""The network-size ladder: named (hidden layers, width) pairs ordered by parameter count.

It runs from COIN-sized nets (Dupont et al. 2021: 10 layers of 28) up to the references'
3×256. `--size-preset` picks one; `--target-psnr` and `--target-bpp` search it (search.py).
A leaf module: options, search and codec all read it.
"""

from __future__ import annotations

from inrcodec.errors import UsageError

# name -> (hidden layers, width); ordered by parameter count (2-D input, 3 channels).
LADDER: dict[str, tuple[int, int]] = {
    "3x16": (3, 16),
    "3x24": (3, 24),
    "3x32": (3, 32),
    "coin": (8, 28),  # 10 weight matrices of width 28
    "3x48": (3, 48),
    "3x64": (3, 64),
    "3x96": (3, 96),
    "3x128": (3, 128),
    "3x192": (3, 192),
    "3x256": (3, 256),
}


def size_options(name: str) -> dict[str, int]:
    """`--size-preset NAME` as width/depth options."""
    if name not in LADDER:
        raise UsageError(f"unknown size preset {name!r} (choose from {', '.join(LADDER)})")
    depth, width = LADDER[name]
    return {"depth": depth, "width": width}
