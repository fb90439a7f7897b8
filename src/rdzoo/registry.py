"""The zoo: named specs found on disk, listed, resolved and built.

Named specs are the YAML files in the packaged `zoo/` folder plus every folder
in `RDZOO_ZOO_PATH` (os.pathsep-separated). A name is the file's stem; the
same name in two places is an error, not a silent override.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from .spec import SpecError, did_you_mean, load

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`zoo` or `search_spaces`: inside the wheel, or at the top of a source checkout."""
    packaged = PACKAGE_DIR / name
    return packaged if packaged.is_dir() else PACKAGE_DIR.parents[1] / name


class UnknownModelError(SpecError):
    pass


def natural_key(text: str) -> list:
    """resnet-text-18 before resnet-text-101 (timm's _natural_key)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.lower())]


def zoo_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("RDZOO_ZOO_PATH", "").split(os.pathsep) if p]
    return [resource_dir("zoo"), *extra]


def zoo_index() -> dict[str, Path]:
    """Name -> file over every zoo folder (read fresh: users add files while working)."""
    index: dict[str, Path] = {}
    for folder in zoo_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            if path.stem in index:
                raise SpecError("", f"zoo name {path.stem!r} is defined twice: {index[path.stem]} and {path}")
            index[path.stem] = path
    return index


def list_models(pattern: str = "*") -> list[str]:
    """Zoo names matching an fnmatch pattern, in natural order."""
    return sorted((n for n in zoo_index() if fnmatch.fnmatch(n, pattern)), key=natural_key)


def spec_path(source: str, relative_to: str | None = None) -> Path:
    """A zoo name or a path to a YAML file -> the file's path."""
    index = zoo_index()
    if source in index:
        return index[source]
    path = Path(source).expanduser()
    if relative_to and not path.is_absolute() and Path(relative_to).suffix in (".yaml", ".yml"):
        sibling = Path(relative_to).parent / path
        if sibling.is_file():
            return sibling
    if path.is_file():
        return path
    if path.suffix in (".yaml", ".yml") or os.sep in source:
        raise SpecError("", f"no such spec file: {source}")
    hint = did_you_mean(source, index) or "; run `rdzoo list` to see the zoo"
    raise UnknownModelError("", f"unknown model {source!r}{hint}")


def build(source, overrides=(), **kwargs):
    """Build a model from a zoo name, a YAML path, a checkpoint folder, a dict or a Spec.
    A spec with `pretrained:` gets the checkpoint's weights (rdzoo.pretrained).

    Overrides are dotted keys (`{"encoder.growth_rate": 24}`, or a list of
    "key=value" strings) or nested dicts passed as keyword arguments
    (`build("resnet-text-18", head={"num_classes": 6})`).
    """
    from .families import build_model

    if isinstance(overrides, dict):
        overrides = {**overrides, **kwargs}
    elif kwargs:
        overrides = {**dict(_parse_all(overrides)), **kwargs}
    spec = load(source, overrides)
    model = build_model(spec)
    if spec.pretrained:
        from .pretrained import prepare

        prepare(model, spec)
    return model


def _parse_all(items):
    from .spec import parse_override

    return [parse_override(item) for item in items]
