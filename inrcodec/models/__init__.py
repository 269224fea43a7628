"""INR architectures, registered by name.

Each architecture lives in one short module and registers a builder
``build(in_features, out_features, **hyper_parameters) -> nn.Module``. The container
stores the arch name and the builder's full keyword set, so `build_model` can rebuild
the exact network at decode time without the source signal.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from inrcodec.errors import InrcodecError, UsageError
from inrcodec.models.registry import _DESCRIPTIONS, _MEDIA, _MEDIUM_DEFAULTS, _REGISTRY, Builder

TILES = "tiles"  # accepted by every arch: one net per tile (see tiled.py)
TILE_GRID = "tile_grid"  # the training grid of a tiled net: decodes blend across tile borders
MAX_TILES = 4096
MAX_INT_OPTION = 1 << 16  # widths, depths, degrees and ranks are far below this
# Options that count samples of the signal, not units of a layer: a grid's segment length
# and overlap (a small one makes many segments, which models/segments.py bounds).
SAMPLE_COUNTS, MAX_SAMPLE_COUNT = ("segment", "overlap"), 1 << 31


def available() -> dict[str, str]:
    """Arch name -> one-line description."""
    _load_builtins()
    return dict(sorted(_DESCRIPTIONS.items()))


def media(name: str) -> tuple[str, ...]:
    """The media the arch can give a useful file of."""
    _builder(name)
    return _MEDIA[name]


def _builder(name: str) -> Builder:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown arch {name!r} (choose from {', '.join(available())})") from None


def hyper_parameters(
    name: str, overrides: dict[str, Any] | None = None, medium: str | None = None
) -> dict[str, Any]:
    """The builder's full keyword set: its defaults, then the medium's, then `overrides`.

    Unknown keys are refused, so a typo never silently falls back to a default.
    """
    overrides = dict(overrides or {})
    tiles = _tiles(overrides.pop(TILES, []))
    tile_grid = _tile_grid(overrides.pop(TILE_GRID, None), tiles)
    params = inspect.signature(_builder(name)).parameters
    defaults = {
        k: p.default
        for k, p in params.items()
        if p.kind is p.KEYWORD_ONLY and p.default is not inspect.Parameter.empty
    }
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise UsageError(
            f"arch {name!r} has no option {', '.join(sorted(unknown))} "
            f"(it takes {', '.join(sorted(defaults))})"
        )
    medium_defaults = _MEDIUM_DEFAULTS[name].get(medium or "", {})
    full = {**defaults, **medium_defaults, **overrides}
    for key, value in full.items():
        if not _same_kind(value, defaults[key]):
            raise UsageError(
                f"arch {name!r} option {key} must be like {defaults[key]!r}, got {value!r}"
            )
        limit = MAX_SAMPLE_COUNT if key in SAMPLE_COUNTS else MAX_INT_OPTION
        if isinstance(value, int) and not 0 <= value <= limit:
            # Sizes come from untrusted files too: a depth of 10^10 must not build 10^10 layers.
            raise UsageError(f"arch {name!r} option {key}={value} is out of range")
    if tile_grid is not None:
        full[TILE_GRID] = tile_grid
    return {**full, TILES: tiles} if tiles else full


def has_latents(name: str) -> bool:
    """Whether the arch stores latent grids that follow the signal's grid (no width to
    size for a budget: the entropy model's λ sets the rate)."""
    return "shape" in hyper_parameters(name)


def _tiles(value: Any) -> list[int]:
    """Tiles per input axis: [] (one net) or positive ints, at most MAX_TILES in all."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value
    ):
        raise UsageError(f"tiles must be a list of positive integers, got {value!r}")
    if math.prod(value) > MAX_TILES:
        raise UsageError(f"tiles {list(value)} make more than {MAX_TILES} nets")
    return list(value)


def _tile_grid(value: Any, tiles: list[int]) -> list[int] | None:
    """The samples per axis a tiled net was trained on (files before it have none)."""
    if value is None:
        return None
    if not (
        tiles
        and isinstance(value, list)
        and len(value) == len(tiles)
        and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1 << 24 for n in value)
    ):
        raise UsageError(f"tile_grid must be the tiled grid's samples per axis, got {value!r}")
    return list(value)


def _same_kind(value: Any, default: Any) -> bool:
    """Type check against the default (values come from CLI flags, presets and files)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if default is None:  # an optional number
        return value is None or isinstance(value, (int, float))
    if isinstance(default, float):  # a number: None would reach the arithmetic
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def build_model(name: str, in_features: int, out_features: int, **hp: Any):
    """Instantiate a registered arch (hyper-parameters are validated first)."""
    full = hyper_parameters(name, hp)
    tiles = full.pop(TILES, [])
    tile_grid = full.pop(TILE_GRID, None)
    try:
        if not tiles:
            return _builder(name)(in_features, out_features, **full)
        from inrcodec.models.tiled import TiledMLP

        nets = [_builder(name)(in_features, out_features, **full) for _ in range(math.prod(tiles))]
        return TiledMLP(nets, tiles, tile_grid)
    except (TypeError, ValueError, ArithmeticError, RuntimeError) as exc:
        # Out-of-range values (zero width, zero ω, absurd sizes) from a file or a flag.
        raise InrcodecError(f"cannot build arch {name!r} with {full}: {exc}") from None


def count_parameters(name: str, in_features: int, out_features: int, /, **hp: Any) -> int:
    """Real values in the arch's parameters as a container stores them (a complex element is
    two), found without building the network at its depth or tiling.

    Sizes come from untrusted files, whose headers may ask for 65,536 layers in each of
    4,096 tiles: the reader must know the size before it builds anything. Every arch
    repeats one identical hidden layer `depth` times and the tiles are copies of one net,
    so one net at depth 0 and 1 on the meta device (no memory) gives the count. It is built
    with one tile per axis so that an arch that cannot be tiled is refused as build_model
    refuses it. Positional-only, so a file's hyper-parameter named "name" cannot collide.
    """
    import torch

    full = hyper_parameters(name, hp)
    tiles = full.pop(TILES, [])
    full.pop(TILE_GRID, None)
    depth = full.pop("depth")
    one_tile = {TILES: [1] * len(tiles)} if tiles else {}

    def stored(at_depth: int) -> int:
        with torch.device("meta"):
            model = build_model(name, in_features, out_features, depth=at_depth, **full, **one_tile)
        return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())

    shallow = stored(0)
    return (shallow + depth * (stored(1) - shallow)) * math.prod(tiles)


def _load_builtins() -> None:
    # Importing the modules registers their builders.
    from inrcodec.models import finer, grid, siren, sl2a, spder  # noqa: F401
