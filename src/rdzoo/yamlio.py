"""YAML in and out, safely and with one meaning: `yaml.safe_load`'s data types with limits on
size, alias expansion and nesting, block-style dumping, and the dict merge that `base:`
inheritance uses.

A document means exactly what is written, or is refused:

- plain scalars are resolved by the YAML 1.2 core schema (`1e-3` is a number, `true` and `false`
  are the booleans), and one that a YAML 1.1 reader such as PyYAML's `safe_load` reads as another
  value (`yes`/`no`/`on`/`off`, `012`, `1_000`, `1:30`, a date, the `<<` merge key) is refused, so
  that every reader of the file agrees on it;
- a key given twice in one mapping is refused (YAML 1.2 requires unique keys; PyYAML keeps the
  last one silently), naming both places;
- keys are text, and values are text, numbers, true/false, null, lists and mappings (JSON's
  types); other tags (`!!binary`, `!!set`, `!!omap`, ...) are refused.

Every problem is a `SpecError` naming the file (and line and column where the text has one).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode

from .errors import SpecError

MAX_FILE_BYTES = 1_000_000  # a spec is a few hundred bytes; anything this big is not one
MAX_NODES = 20_000  # after alias expansion: refuses "billion laughs" documents
MAX_DEPTH = 32

YAML = "tag:yaml.org,2002:"
# a plain scalar that YAML 1.1 and YAML 1.2 read differently; its constructor raises
TWO_READINGS = "tag:rdzoo:two-readings"


# --- resolving plain scalars: YAML 1.2's core schema, refusing what YAML 1.1 reads otherwise ----


class _Resolver(yaml.resolver.BaseResolver):
    """The YAML 1.2 core schema's tags for plain scalars (https://yaml.org/spec/1.2.2/#1032-tag-resolution),
    and TWO_READINGS where a YAML 1.1 reader would construct another value."""

    def resolve(self, kind, value, implicit):
        tag = super().resolve(kind, value, implicit)
        if kind is ScalarNode and implicit[0] and _two_readings(value, tag):
            return TWO_READINGS
        return tag

    def core_tag(self, value: str) -> str:
        """The YAML 1.2 core schema's tag of a plain scalar."""
        return super().resolve(ScalarNode, value, (True, False))


for _tag, _pattern, _first in (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    ("float", r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
     "-+.0123456789"),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
):
    _Resolver.add_implicit_resolver(YAML + _tag, re.compile(f"^(?:{_pattern})$"), list(_first))

_YAML11 = yaml.resolver.Resolver()  # PyYAML's YAML 1.1 resolver, the reading a plain scalar is compared with


def _int12(text: str) -> int:
    """A YAML 1.2 core integer: decimal (leading zeros are decimal too), 0o octal or 0x hex."""
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
    base = {"0o": 8, "0x": 16}.get(digits[:2].lower(), 10)
    return sign * int(digits[2:] if base != 10 else digits, base)


def _float12(text: str) -> float:
    """A YAML 1.2 core float: Python's float syntax plus .inf and .nan."""
    lowered = text.lower()
    if lowered.lstrip("+-") in (".inf", ".nan"):
        return float(lowered.replace(".", ""))
    return float(text)


def _reading(value: str, tag: str, as_yaml11: bool) -> Any:
    """The value a plain scalar with `tag` constructs to, in YAML 1.1 (PyYAML's SafeConstructor)
    or YAML 1.2 (this module)."""
    if tag == YAML + "str":
        return value
    if as_yaml11:
        return SafeConstructor().construct_object(ScalarNode(tag, value))
    return {YAML + "int": _int12, YAML + "float": _float12, YAML + "bool": lambda v: v.lower() == "true",
            YAML + "null": lambda v: None}[tag](value)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def _two_readings(value: str, tag12: str) -> str | None:
    """Why a plain scalar means one thing to YAML 1.1 and another to YAML 1.2, or None where the
    two agree or YAML 1.1 reads it as text (`1e-3`, `0o17`: the number written, which is 1.2's
    reading, is kept)."""
    tag11 = _YAML11.resolve(ScalarNode, value, (True, False))
    if tag11 in (YAML + "str", YAML + "value"):  # `=` (YAML 1.1's "value" type) has no safe meaning but text
        return None
    if tag11 == YAML + "merge":
        return ("'<<' is a merge key in YAML 1.1 (the mapping it names is copied in, and the keys beside it "
                "win) but a plain key in YAML 1.2; inherit a spec with base: instead, or write the keys out")
    try:
        old = _reading(value, tag11, as_yaml11=True)
    except (ValueError, TypeError, AttributeError, yaml.YAMLError):  # no value in YAML 1.1 either (`1:99`)
        return None
    new = _reading(value, tag12, as_yaml11=False)
    if _same(old, new):
        return None
    if isinstance(old, bool):
        return (f"{value!r} is {str(old).lower()} in YAML 1.1 but the text {value!r} in YAML 1.2: write "
                f"{str(old).lower()} for the switch, or \"{value}\" (quoted) for the text")
    if isinstance(new, (int, float)) and not isinstance(new, bool):  # 010: octal 8 in YAML 1.1, 10 in 1.2
        return (f"{value!r} is {old!r} in YAML 1.1 (a leading 0 means octal) but {new!r} in YAML 1.2: write "
                f"{new!r}, or 0o{oct(old)[2:]} for octal" if isinstance(old, int) and old >= 0 else
                f"{value!r} is {old!r} in YAML 1.1 but {new!r} in YAML 1.2: write it without leading zeros")
    if isinstance(old, (int, float)):
        return (f"{value!r} is the number {old!r} in YAML 1.1 but text in YAML 1.2: write {old!r} for the "
                f"number, or \"{value}\" (quoted) for the text")
    return (f"{value!r} is a {type(old).__name__} in YAML 1.1 but text in YAML 1.2: write \"{value}\" "
            f"(quoted) for the text")


# --- constructing: JSON's types, text keys given once ---------------------------------------------


def _key_kind(key: Any, node) -> str:
    """What a key that is not text is, for the message that refuses it."""
    if key is None:
        return "a key is empty (null)"
    if isinstance(key, (bool, int, float)):
        return f"the key {node.value} is a {'boolean' if isinstance(key, bool) else 'number'}: quote it (\"{node.value}\") for the text"
    return f"a key is a {'mapping' if isinstance(node, MappingNode) else 'list'}"


class _Constructor(SafeConstructor):
    """SafeConstructor restricted to JSON's types, with unique text keys and no merge keys."""

    yaml_constructors: dict = {}

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
        out: dict = {}
        first: dict = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise ConstructorError(None, None, f"{_key_kind(key, key_node)}; keys are names (text)",
                                       key_node.start_mark)
            if key in first:
                at = first[key]
                raise ConstructorError(None, None, f"key {key!r} is given twice in one mapping (first at line "
                                       f"{at.line + 1}, column {at.column + 1}); YAML allows one, so keep "
                                       f"one of them", key_node.start_mark)
            first[key] = key_node.start_mark
            out[key] = self.construct_object(value_node, deep=deep)
        return out

    def _scalar(self, node, parse, what: str) -> Any:
        text = self.construct_scalar(node)
        try:
            return parse(text)
        except (ValueError, KeyError):
            raise ConstructorError(None, None, f"{text!r} is not {what}", node.start_mark) from None

    def construct_bool(self, node):
        return self._scalar(node, lambda v: self.bool_values[v.lower()], "true or false")

    def construct_int(self, node):
        return self._scalar(node, _int12, "an integer")

    def construct_float(self, node):
        return self._scalar(node, _float12, "a number")

    def construct_two_readings(self, node):
        raise ConstructorError(None, None, _two_readings(node.value, self.core_tag(node.value)), node.start_mark)

    def construct_undefined(self, node):
        tag = "!!" + node.tag[len(YAML):] if node.tag.startswith(YAML) else node.tag
        raise ConstructorError(None, None, f"the tag {tag} is not allowed: values are text, numbers, "
                               "true/false, null, lists and mappings", node.start_mark)


for _tag, _method in (("null", SafeConstructor.construct_yaml_null), ("bool", _Constructor.construct_bool),
                      ("int", _Constructor.construct_int), ("float", _Constructor.construct_float),
                      ("str", SafeConstructor.construct_yaml_str), ("seq", SafeConstructor.construct_yaml_seq),
                      ("map", SafeConstructor.construct_yaml_map)):
    _Constructor.add_constructor(YAML + _tag, _method)
_Constructor.add_constructor(TWO_READINGS, _Constructor.construct_two_readings)
_Constructor.add_constructor(None, _Constructor.construct_undefined)


try:  # libyaml's parser where PyYAML was built with it, as in yaml.CSafeLoader
    from yaml.cyaml import CParser
except ImportError:
    CParser = None

if CParser is not None:
    class _Loader(CParser, _Constructor, _Resolver):
        def __init__(self, stream):
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)
else:
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
                  _Constructor, _Resolver):
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


# --- dumping ---------------------------------------------------------------------------------------


class _SpecDumper(yaml.emitter.Emitter, yaml.serializer.Serializer, yaml.representer.SafeRepresenter, _Resolver):
    """Block-style mappings, one-line lists of scalars: `stages: [2, 2, 2, 2]`. Text that a reader
    could take for anything else (`no`, `1e-3`, `2024-01-01`) is quoted, as the loader's resolver
    decides, so a dumped document loads back the same in YAML 1.1 and 1.2."""

    __init__ = yaml.SafeDumper.__init__


def _represent_list(dumper, data):
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_SpecDumper.add_representer(list, _represent_list)


def dump_yaml(data: Any) -> str:
    """A spec or space dict -> YAML text, keys in their order, short lists on one line."""
    return yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, default_flow_style=False, width=100)


def parse_yaml(text: str, where: str) -> Any:
    """YAML text -> its data (one meaning or none: see the module docstring), with limits on size,
    alias expansion and nesting. `where` (a file, `override KEY`) starts every message.

    Raises SpecError for bad syntax, a duplicate or non-text key, a scalar that YAML 1.1 and 1.2
    read differently, a tag outside JSON's types, or a limit passed; with line and column."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError("", f"{where}: {len(text):,} bytes is too large for a spec (limit {MAX_FILE_BYTES:,})")
    try:
        data = yaml.load(text, Loader=_Loader)
    except ConstructorError as exc:  # well-formed YAML that rdzoo will not guess the meaning of
        mark = exc.problem_mark
        raise SpecError("", f"{where}, line {mark.line + 1}, column {mark.column + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if problem.startswith("but ") and getattr(exc, "context", None):  # "expected a single document ..., but found another"
            problem = f"{exc.context}, {problem}"
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
