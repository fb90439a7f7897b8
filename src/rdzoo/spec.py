"""YAML specs -> frozen, validated dataclasses: the loader.

A spec describes one text encoder completely: embedding, encoder (one dataclass
per family), head and training settings; the dataclasses are in `spec_types` (below the
families) and re-exported here. Loading is `yamlio.parse_yaml` (safe, one meaning),
`base:` inherits another spec, and dotted overrides (`encoder.growth_rate=24`)
patch any key. Every problem is a `SpecError` naming the key path, the bad
value and what is allowed. The parameter count is checked against
`max_params` before any tensor exists.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from . import neck as necks
from . import plan
from .checkpoint import expand
from .errors import SpecError
from .families import FAMILIES, get_family
from .names import did_you_mean
# the sections, defined below the families (which are typed against them) and re-exported here
from .spec_types import DISTILL_TEMPERATURE, Distill, Embedding, Head, Neck, Spec, Train  # noqa: F401
from .yamlio import deep_merge, parse_yaml, read_yaml_file
from .zoo import spec_path, zoo_index

DEFAULT_MAX_PARAMS = 2_000_000_000


# --- dicts -> dataclasses ------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(tp: Any, value: Any, path: str, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, path, meta)
            except SpecError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        names = " or ".join(_type_name(o) for o in options if o is not type(None))
        raise SpecError(path, f"expected {names}, got {_describe(value)}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices or isinstance(value, bool):
            allowed = ", ".join(map(str, choices))
            raise SpecError(path, f"{_describe(value)} is not one of: {allowed}{did_you_mean(value, choices)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise SpecError(path, f"expected a list of {_type_name(typing.get_args(tp)[0])}, got {_describe(value)}")
        if len(value) > meta.get("max_items", 256):
            raise SpecError(path, f"{len(value)} items is too many (at most {meta['max_items']})")
        if len(value) < meta.get("min_items", 0):
            raise SpecError(path, f"needs at least {meta['min_items']} item{'s' if meta['min_items'] > 1 else ''}, got {len(value) or 'none'}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, v, f"{path}[{i}]", meta) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _to_dataclass(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(path, f"expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpecError(path, f"expected an integer, got {_describe(value)}{_unquote_hint(value)}")
        return _check_range(value, path, meta)
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise SpecError(path, f"expected a number, got {_describe(value)}{_unquote_hint(value)}")
        if not math.isfinite(value):
            raise SpecError(path, f"expected a finite number, got {value}")
        return _check_range(float(value), path, meta)
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(path, f"expected a string, got {_describe(value)}")
        if len(value) > 10_000:
            raise SpecError(path, f"string of {len(value):,} characters is too long")
        return value
    raise TypeError(f"unsupported field type {tp!r}")  # a bug in spec_types' dataclasses


def _unquote_hint(value: Any) -> str:
    """A number written as text ('3', "1e-3") is text, as YAML reads it (1e-3 unquoted is a number)."""
    if not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    return " (text: write the number without quotes)"


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is list:
        return "a list"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, str(tp))


def _check_range(value: float, path: str, meta: dict) -> float:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value <= lo if meta.get("lo_open") else value < lo):
        low = f"greater than {lo:g}" if meta.get("lo_open") else f"at least {lo:g}"
        raise SpecError(path, f"{value:g} is out of range: must be {low}" + (f" and at most {hi:g}" if hi is not None else ""))
    if hi is not None and value > hi:
        raise SpecError(path, f"{value:g} is out of range: must be at most {hi:g}")
    return value


def _to_dataclass(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise SpecError(path, f"expected a mapping of keys, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if not isinstance(key, str) or key not in fields:
            raise SpecError(_join(path, str(key)), f"unknown key; allowed keys: {', '.join(fields)}{did_you_mean(key, fields)}")
        kwargs[key] = _convert(hints[key], value, _join(path, key), dict(fields[key].metadata))
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(_join(path, name), "missing required key")
    return cls(**kwargs)


def from_dict(data: Any, max_params: float = DEFAULT_MAX_PARAMS) -> Spec:
    """Validate a plain dict (already merged with its bases) into a Spec: every key checked
    against its section, the family's defaults filled in, the rules across keys checked, and
    the parameter count (`plan.count_params`) at most `max_params`. Raises SpecError naming
    the key path, the bad value and what is allowed."""
    if not isinstance(data, dict):
        raise SpecError("", f"a spec must be a mapping of keys, got {_describe(data)}")
    data = dict(data)
    data.pop("base", None)
    name = data.get("family")
    if name is None:
        raise SpecError("family", f"missing required key; one of: {', '.join(FAMILIES)}")
    family = get_family(name if isinstance(name, str) else _describe(name))
    if data.get("head") == "none":  # a bare encoder: pooled features, no classifier
        data["head"] = {"num_classes": 0}
    encoder = data.pop("encoder", None) or {}
    neck = data.pop("neck", None)
    spec = _to_dataclass(Spec, data, "")
    spec = dataclasses.replace(spec, encoder=_to_dataclass(family.encoder, encoder, "encoder"))
    _check_skip(family, spec.encoder.skip, "encoder.skip")
    spec = family.resolve(spec)
    spec = _resolve_distill(spec)
    _validate(spec, family)
    spec = _with_neck(spec, neck)
    params = plan.count_params(spec)
    if params > max_params:
        raise SpecError("", f"{spec.name} has {params:,} parameters, over the limit of {int(max_params):,} (max_params)")
    return spec


def _resolve_distill(spec: Spec) -> Spec:
    """`train.distill` with its temperature filled in (DISTILL_TEMPERATURE) and its keys checked
    together; SpecError naming the key."""
    distill = spec.train.distill
    if distill is None:
        return spec
    if distill.temperature is None:
        distill = dataclasses.replace(distill, temperature=DISTILL_TEMPERATURE[distill.loss])
    elif distill.loss == "mse" and distill.temperature != 1.0:
        raise SpecError("train.distill.temperature", f"{distill.temperature:g} softens the kl loss's distributions; "
                                                     "loss mse compares raw logits (Tang et al. 2019): use loss: kl, "
                                                     "or temperature 1")
    if distill.p_mask + distill.p_pos > 1.0:
        raise SpecError("train.distill.p_pos", f"p_mask {distill.p_mask:g} + p_pos {distill.p_pos:g} is over 1: "
                                               "a word is masked or replaced, not both")
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, distill=distill))


def _neck_section(data: Any) -> Neck | None:
    """`neck:` as written -> a Neck with its family's encoder section (None, or family none: no neck)."""
    if data is None or data == "none":
        return None
    if not isinstance(data, dict):
        raise SpecError("neck", f"expected a mapping with family and encoder, or none; got {_describe(data)}")
    for key in data:
        if key not in ("family", "encoder"):
            raise SpecError(f"neck.{key}", f"unknown key; allowed keys: family, encoder{did_you_mean(key, ['family', 'encoder'])}")
    name = data.get("family")
    if name == "none":  # no neck, whatever encoder keys a base spec left beside it
        return None
    if name is None:
        raise SpecError("neck.family", f"missing required key; one of: {', '.join(FAMILIES)}, or none")
    family = get_family(name if isinstance(name, str) else _describe(name), "neck.family")
    encoder = _to_dataclass(family.encoder, data.get("encoder") or {}, "neck.encoder")
    _check_skip(family, encoder.skip, "neck.encoder.skip")
    return Neck(family.name, encoder)


def _with_neck(spec: Spec, data: Any) -> Spec:
    """The spec with its neck resolved and checked by the neck's family, over the body's
    states; an error in the neck names its key under `neck.`."""
    neck = _neck_section(data)
    if neck is None:
        return spec
    if getattr(spec.encoder, "pooler", False):
        raise SpecError("neck", "encoder.pooler reads the body's first token, which a neck would skip; "
                                "use encoder.pooler: false with a neck")
    # a neck is its family's `encode` only: a [CLS] it prepended would shift every tag, and BERT's
    # pooler sits in the head that a neck does not have
    for key, why in (("cls_token", "would add a token the head does not expect; the body's [CLS] (encoder.cls_token) "
                                   "passes through the neck"),
                     ("pooler", "sits in a head, which a neck has not; use head.pool")):
        if getattr(neck.encoder, key, False):
            raise SpecError(f"neck.encoder.{key}", f"{why}; use {key}: false in a neck")
    family = get_family(neck.family)
    sub = necks.as_spec(dataclasses.replace(spec, neck=neck))
    try:
        sub = family.resolve(sub)
        family.validate(sub)
        _check_length_kept(family, sub, "neck")
    except SpecError as exc:
        if exc.path == "embedding.dim":  # the only embedding key a family checks: a width that must match
            raise SpecError("neck.encoder", f"reads the body's {sub.embedding.dim}-wide states: {exc.message}") from None
        raise SpecError(f"neck.{exc.path}", exc.message) from None
    return dataclasses.replace(spec, neck=Neck(neck.family, sub.encoder))


def _check_skip(family, skip: str, key: str) -> None:
    if skip not in family.skips:
        raise SpecError(key, f"{skip!r} is not supported by the {family.name} family; it supports: "
                             f"{', '.join(family.skips)}{did_you_mean(skip, family.skips)}")


def _validate(spec: Spec, family) -> None:
    """Checks that involve more than one key: the family's own, then those of the embedding and head."""
    family.validate(spec)
    emb = spec.embedding
    if emb.positions == "rotary" and not family.rotary:
        raise SpecError("embedding.positions", f"rotary positions act inside attention; the {spec.family} family has "
                                               "none: use none, learned or sinusoidal")
    if emb.kind == "pretrained" and not emb.pretrained:
        raise SpecError("embedding.kind", "pretrained is the tokenizer of a checkpoint; name it in embedding.pretrained")
    if emb.pretrained and emb.kind not in ("word", "pretrained"):
        raise SpecError("embedding.pretrained", f"gives vectors to words or to the checkpoint's sub-words; kind {emb.kind!r} "
                                                "has neither: use kind word or pretrained")
    if emb.kind == "pretrained" and spec.train.word_dropout:
        raise SpecError("train.word_dropout", "turns tokens into rdzoo's <unk> id 1, which is another token in a "
                                              "checkpoint's vocabulary; use 0 with embedding.kind: pretrained")
    if spec.pretrained and not family.checkpoint:
        raise SpecError("pretrained", f"loads a transformer body, but family is {spec.family!r}; for word vectors in a "
                                      "convolutional family use embedding.pretrained")
    if emb.char_dim and emb.kind != "word":
        raise SpecError("embedding.char_dim", f"spells out words; kind {emb.kind!r} has no words: use 0")
    if emb.unknown == "shape" and emb.kind != "word":
        raise SpecError("embedding.unknown", f"shape classes stand for unseen words; kind {emb.kind!r} has none: use unk")
    if emb.token_types and not family.token_types:
        raise SpecError("embedding.token_types", "token types are a transformer input; use 0")
    _check_length_kept(family, spec, "encoder")


def _check_length_kept(family, spec: Spec, part: str) -> None:
    """A tagger (head.pool: token) needs its encoder (`part`) to keep the sequence length; SpecError
    at the family's key that shortens it."""
    shortens = family.shortens(spec.encoder) if spec.head.pool == "token" else None
    if shortens:
        raise SpecError(shortens[0], f"{shortens[1]} (head.pool: token tags every token, so the {part} must "
                                     "keep the sequence length)")


def check_value(family: str, dotted: str, value: Any) -> None:
    """Check one value against the spec field at a dotted key path of `family`'s specs (used for
    search spaces); raises SpecError naming the key, as loading a spec with it would."""
    fam = get_family(family)
    if dotted == "neck":  # a neck's family decides its encoder's keys, so a neck is checked whole
        _neck_section(value)
        return
    if dotted.startswith("neck."):
        raise SpecError(dotted, "search a neck whole, as neck: {choice: [none, {family: resnet, encoder: {...}}, ...]}")
    cls: Any = Spec
    path = ""
    parts = dotted.split(".")
    for depth, part in enumerate(parts, 1):
        if not dataclasses.is_dataclass(cls):
            raise SpecError(path, f"is a value, not a section, so {dotted} is not a spec key")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            raise SpecError(_join(path, part), f"unknown key; allowed keys: {', '.join(fields)}{did_you_mean(part, fields)}")
        meta = dict(fields[part].metadata)
        tp = fam.encoder if (cls is Spec and part == "encoder") else typing.get_type_hints(cls)[part]
        path = _join(path, part)
        sections = [t for t in typing.get_args(tp) if dataclasses.is_dataclass(t)]
        if sections and depth < len(parts):  # a key inside an optional section (train.distill.alpha)
            tp = sections[0]
        cls = tp
    if dotted == "head" and value == "none":
        return
    if dataclasses.is_dataclass(cls) and isinstance(value, dict):
        for key, sub in value.items():
            check_value(family, f"{dotted}.{key}", sub)
        return
    _convert(cls, value, path, meta)
    if dotted == "encoder.skip":
        _check_skip(fam, value, dotted)


# --- merging, inheritance, overrides --------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """`encoder.block_config=[6,12,24]` -> ("encoder.block_config", [6, 12, 24])."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError("", f"override {text!r} must look like key.path=value, e.g. encoder.growth_rate=24")
    return key, parse_yaml(raw, f"override {key}") if raw.strip() else ""


def parse_overrides(texts: list[str] | tuple) -> dict[str, Any]:
    """`key.path=value` texts -> {key path: value}. Each key may be set once: a key given twice, or
    inside a mapping given for a section that another text also sets (`head=none` and
    `head.pool=max`), has no one meaning, so it raises SpecError naming both texts."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # every key path a text sets -> that text
    for text in texts:
        key, value = parse_override(text)
        paths = [path for path, _ in _leaves(key, value)]
        for path in paths:
            for other, other_text in given.items():
                if path == other or path.startswith(other + ".") or other.startswith(path + "."):
                    raise SpecError(key, f"set twice, by {other_text!r} and {text!r}; give each key once")
        given.update((path, text) for path in paths)
        out[key] = value
    return out


def _leaves(key: str, value: Any) -> list[tuple[str, Any]]:
    """(dotted key path, value) for each key a value at `key` sets: a mapping sets each of its
    leaves (it merges into the section, see merge_spec), any other value the key itself."""
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(f"{key}.{k}", v)]
    return [(key, value)]


def _value_at(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def merge_spec(base: dict, update: dict) -> dict:
    """deep_merge for spec dicts, except that a new `family` replaces the old family's `encoder`
    keys instead of merging into them, in the spec and in its neck (another family's keys would
    be unknown keys)."""
    if "family" in update and update["family"] != base.get("family"):
        base = {k: v for k, v in base.items() if k != "encoder"}
    out = deep_merge(base, update)
    if isinstance(base.get("neck"), dict) and isinstance(update.get("neck"), dict):
        out["neck"] = merge_spec(base["neck"], update["neck"])
    return out


def apply_overrides(data: dict, overrides: dict | list[str] | tuple = ()) -> dict:
    """Set dotted keys (or merge nested dicts, as merge_spec) into a spec dict. A `family` (or
    `neck.family`) that changes drops the old family's encoder keys; family keys are set first,
    so the other overrides may set the new family's."""
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(overrides)
    out = dict(data)
    for dotted, value in sorted(overrides.items(), key=lambda kv: kv[0].rpartition(".")[2] != "family"):
        parts = dotted.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None or child == "none":
                child = {}
            if not isinstance(child, dict):
                raise SpecError(".".join(parts[: i + 1]), f"is {_describe(child)}, not a mapping, so {dotted} cannot be set")
            node[part] = child = dict(child)
            node = child
        leaf = parts[-1]
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            value = merge_spec(node[leaf], value)
        if leaf == "family" and value != node.get(leaf):
            node.pop("encoder", None)
        node[leaf] = value
    return out


def resolve_bases(data: Any, where: str, seen: tuple[str, ...] = ()) -> dict:
    """Merge a spec dict onto its `base:` chain (zoo names or paths)."""
    if not isinstance(data, dict):
        raise SpecError("", f"{where}: a spec must be a mapping of keys, got {_describe(data)}")
    base = data.get("base")
    if base is None:
        return data
    if not isinstance(base, str):
        raise SpecError("base", f"expected a zoo name or a path, got {_describe(base)}")
    if base in seen:
        raise SpecError("base", f"inheritance cycle: {' -> '.join(seen + (base,))}")
    parent = resolve_bases(_read_source(base, relative_to=where), base, seen + (base,))
    merged = merge_spec(parent, {k: v for k, v in data.items() if k != "base"})
    parent_name = parent.get("name", base)
    if "name" not in data:
        merged["name"] = f"{parent_name}-custom"
    if "description" not in data:
        merged["description"] = _derived_description(parent_name, parent, data)
    return merged


def _derived_description(parent_name: str, parent: dict, data: dict) -> str:
    """What a derived spec without a description of its own is: the base's description is
    about the base (its widths, depths, recipe), so it is kept only where the spec changes no
    key's value; otherwise the spec is described as the base with the keys it changes, the
    base's own description after them, so `rdzoo show` and a run's config never describe a
    model it is not."""
    described = parent.get("description") if isinstance(parent.get("description"), str) else ""
    changed = [path for k, v in data.items() if k not in ("base", "name")
               for path, value in _leaves(k, v) if _value_at(parent, path) != value]
    if not changed:
        return described
    more = len(changed) - 4
    listed = ", ".join(changed[:4]) + (f" and {more} more key{'s' if more > 1 else ''}" if more > 0 else "")
    return f"{parent_name} with {listed} changed" + (f" ({parent_name}: {described})" if described else "")


def _read_source(source: str, relative_to: str | None = None) -> Any:
    if source not in zoo_index() and (source.startswith("pkg:") or Path(source).expanduser().is_dir()):
        return {"pretrained": source, "head": "none"}  # a checkpoint folder: its bare body

    return read_yaml_file(spec_path(source, relative_to=relative_to))


def load(source: str | Path | dict | Spec, overrides: dict | list[str] | tuple = (),
         max_params: float = DEFAULT_MAX_PARAMS) -> Spec:
    """A zoo name, a YAML path, a checkpoint folder, a dict or a Spec -> a validated Spec.
    A `pretrained:` checkpoint's shape is read from its config.json under the spec's own keys."""
    if isinstance(source, Spec):  # already explicit
        return from_dict(apply_overrides(source.to_dict(), overrides), max_params=max_params)
    if isinstance(source, dict):
        data = resolve_bases(source, "spec")
    else:
        data = resolve_bases(_read_source(str(source)), str(source), (str(source),))
    return from_dict(expand(apply_overrides(data, overrides)), max_params=max_params)
