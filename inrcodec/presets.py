"""Presets: named encode recipes stored as YAML files in `presets/`.

A preset file has a one-line `description`, an optional `medium` it is meant for, an
`encode` mapping of `EncodeOptions` fields, optionally `media` (per medium, the fields that
differ there: a preset with `media` serves those media only) and `base` (a preset whose
recipe this one starts from). Explicit CLI flags override it.

An arch's own recipe is the preset named after it (`presets/finer.yaml`): `--arch finer`
without `--preset` uses it (`recipe`), so no arch inherits another arch's recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inrcodec.errors import UsageError, one_line


def preset_dirs() -> list[Path]:
    """Installed copy first (wheel), then the repository's `presets/` (editable install)."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "presets", here.parent / "presets") if d.is_dir()]


@dataclass
class Preset:
    name: str
    description: str
    medium: str | None
    encode: dict[str, Any]
    path: Path
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: str | None = None

    def chain(self) -> list[Preset]:
        """This preset and the presets it is based on, base first."""
        seen: list[Preset] = [self]
        while seen[0].base is not None:
            base = load_preset(seen[0].base)
            if any(p.name == base.name for p in seen):
                raise UsageError(f"preset {self.name}: its bases loop through {base.name}")
            seen.insert(0, base)
        return seen

    def served(self) -> list[str] | None:
        """The media this recipe serves (None: any)."""
        chain = self.chain()
        declared = [p.medium for p in chain if p.medium]
        listed = {m for p in chain for m in p.media}
        if declared:
            return [declared[-1]] if not listed or declared[-1] in listed else []
        return sorted(listed) or None

    def encode_for(self, medium: str) -> dict[str, Any]:
        """The recipe's encode options for `medium`; refused if it serves another."""
        served = self.served()
        if served is not None and medium not in served:
            raise UsageError(
                f"preset {self.name!r} is made for {', '.join(served) or 'no medium'}, not {medium}"
            )
        values: dict[str, Any] = {}
        for preset in self.chain():
            values.update(preset.encode)
            values.update(preset.media.get(medium, {}))
        return values


def _parse(path: Path) -> Preset:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read preset ({one_line(exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("encode", {}), dict):
        raise UsageError(f"{path}: a preset is a mapping with an 'encode' mapping")
    media = data.get("media") or {}
    if not isinstance(media, dict) or not all(isinstance(v, dict) for v in media.values()):
        raise UsageError(f"{path}: 'media' maps each medium to an encode mapping")
    unknown = set(data) - {"description", "medium", "encode", "media", "base"}
    if unknown:
        raise UsageError(f"{path}: unknown preset key {', '.join(sorted(unknown))}")
    return Preset(
        name=path.stem,
        description=str(data.get("description", "")).strip(),
        medium=data.get("medium"),
        encode=dict(data.get("encode") or {}),
        path=path,
        media={str(k): dict(v) for k, v in media.items()},
        base=data.get("base"),
    )


def list_presets() -> list[Preset]:
    found: dict[str, Preset] = {}
    for directory in preset_dirs():
        for path in sorted(directory.glob("*.yaml")):
            found.setdefault(path.stem, _parse(path))
    return sorted(found.values(), key=lambda p: p.name)


def load_preset(name_or_path: str) -> Preset:
    """A preset by name, or any YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise UsageError(f"{path}: no such preset file")
        return _parse(path)
    for preset in list_presets():
        if preset.name == name_or_path:
            return preset
    names = ", ".join(p.name for p in list_presets())
    raise UsageError(f"unknown preset {name_or_path!r} (available: {names})")


def default_preset(medium: str) -> Preset | None:
    """The preset named after the medium (`presets/image.yaml`, ...), if there is one."""
    return _named(medium)


def recipe(medium: str, arch: str | None = None) -> Preset | None:
    """The recipe an encode without `--preset` gets: the medium's default, unless `arch`
    is another arch than that default's, which then gets its own (`presets/ARCH.yaml`).
    An arch with no recipe for the medium is refused rather than given another's."""
    from inrcodec.models import media

    default = default_preset(medium)
    if arch is not None:
        media(arch)  # an unknown arch is named as such, not as one without a recipe
    if arch is None or (default is not None and default.encode_for(medium).get("arch") == arch):
        return default
    own = _named(arch)
    served = None if own is None else own.served()
    if own is None or (served is not None and medium not in served):
        raise UsageError(
            f"--arch {arch} has no recipe for {medium} (it cannot give a useful {medium} "
            "file yet); choose another --arch, or give a --preset"
        )
    return own


def _named(name: str) -> Preset | None:
    return next((p for p in list_presets() if p.name == name), None)
