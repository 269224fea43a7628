"""Presets: named encode recipes stored as YAML files in `presets/`.

A preset file has a one-line `description`, an optional `medium` it is meant for,
and an `encode` mapping of `EncodeOptions` fields. Explicit CLI flags override it.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def _parse(path: Path) -> Preset:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read preset ({one_line(exc)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("encode", {}), dict):
        raise UsageError(f"{path}: a preset is a mapping with an 'encode' mapping")
    unknown = set(data) - {"description", "medium", "encode"}
    if unknown:
        raise UsageError(f"{path}: unknown preset key {', '.join(sorted(unknown))}")
    return Preset(
        name=path.stem,
        description=str(data.get("description", "")).strip(),
        medium=data.get("medium"),
        encode=dict(data.get("encode") or {}),
        path=path,
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
    return next((p for p in list_presets() if p.name == medium), None)
