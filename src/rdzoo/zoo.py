"""The zoo: named specs found on disk, listed and resolved to their files.

Named specs are the YAML files in the packaged `zoo/` folder plus every folder
in `RDZOO_ZOO_PATH` (os.pathsep-separated). A name is the file's stem; the
same name in two places is an error, not a silent override. Torch-free and
spec-free, so `rdzoo list` and spec loading can both use it.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from .errors import SpecError
from .names import did_you_mean, natural_key

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`zoo` or `search_spaces`: inside the wheel, or at the top of a source checkout."""
    packaged = PACKAGE_DIR / name
    return packaged if packaged.is_dir() else PACKAGE_DIR.parents[1] / name


class UnknownModelError(SpecError):
    """A name that is neither a zoo model nor a spec file (the message suggests the closest name)."""


def zoo_dirs() -> list[Path]:
    """The packaged zoo folder, then each folder of RDZOO_ZOO_PATH."""
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
