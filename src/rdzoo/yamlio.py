"""YAML in and out, safely: `yaml.safe_load` with limits on size, alias expansion and
nesting, block-style dumping, and the dict merge that `base:` inheritance uses.

Every problem is a `SpecError` naming the file (and line and column for a syntax error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

MAX_FILE_BYTES = 1_000_000  # a spec is a few hundred bytes; anything this big is not one
MAX_NODES = 20_000  # after alias expansion: refuses "billion laughs" documents
MAX_DEPTH = 32


class _SpecDumper(yaml.SafeDumper):
    """Block-style mappings, one-line lists of scalars: `stages: [2, 2, 2, 2]`."""


def _represent_list(dumper, data):
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_SpecDumper.add_representer(list, _represent_list)


def dump_yaml(data: Any) -> str:
    """A spec or space dict -> YAML text, keys in their order, short lists on one line."""
    return yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, default_flow_style=False, width=100)


def parse_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load` with limits on size, alias expansion and nesting."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError("", f"{where}: {len(text):,} bytes is too large for a spec (limit {MAX_FILE_BYTES:,})")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError("", f"{where}: not valid YAML{at}: {problem}") from None
    except RecursionError:
        raise SpecError("", f"{where}: nested more than {MAX_DEPTH} levels deep") from None
    _check_size(data, where)
    return data


def _check_size(data: Any, where: str) -> None:
    """Walk the document as its aliases expand, stopping at the limits."""
    budget = MAX_NODES
    stack = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise SpecError("", f"{where}: expands to more than {MAX_NODES:,} values (too many aliases?)")
        if depth > MAX_DEPTH:
            raise SpecError("", f"{where}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node.keys())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def read_yaml_file(path: Path) -> Any:
    """A UTF-8 YAML file -> its data, with `parse_yaml`'s limits; raises SpecError naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError("", f"{path}: {size:,} bytes is too large for a spec (limit {MAX_FILE_BYTES:,})")
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError("", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError("", f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_yaml(text, str(path))


def deep_merge(base: dict, update: dict) -> dict:
    """Dicts merge key by key; anything else (lists included) is replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
