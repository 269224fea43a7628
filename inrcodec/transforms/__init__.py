"""Value transforms: reversible maps from raw signal values to the network's target range.

Each transform is a forward/inverse pair. `fit` looks at the whole signal once (global
statistics over all channels, as the sym-power reference does) and returns the scalars
that decoding needs; `forward` and `inverse` take only those scalars. The scalars are
what the container stores, so a transform must declare their names in `scalars`.
"""

from __future__ import annotations

from inrcodec.transforms.base import _REGISTRY, ValueTransform


def available() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_transform(spec: str) -> ValueTransform:
    """Instantiate a transform from `name` or `name:param` (e.g. ``gamma:2.0``).

    The optional parameter is an encode-time setting (the fixed exponent of `gamma`);
    decoding never needs it, because the fitted scalars carry everything.
    """
    from inrcodec.errors import UsageError

    _load_builtins()
    name, _, param = spec.partition(":")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise UsageError(f"unknown transform {name!r} (choose from {', '.join(available())})")
    if not param:
        return cls()
    try:
        return cls(float(param))  # type: ignore[call-arg]
    except (TypeError, ValueError):
        raise UsageError(f"transform {name!r} takes no parameter {param!r}") from None


def _load_builtins() -> None:
    # Importing the modules registers their classes.
    from inrcodec.transforms import boxcox, simple, sympower  # noqa: F401
