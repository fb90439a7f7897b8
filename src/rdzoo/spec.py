"""YAML specs -> frozen, validated dataclasses.

A spec describes one text encoder completely: embedding, encoder (one dataclass
per family), head and training settings. Loading is `yaml.safe_load` only,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .errors import SpecError
from .names import FAMILIES, FAMILY_SKIPS, SKIPS, did_you_mean  # noqa: F401 (re-exported)

DEFAULT_MAX_PARAMS = 2_000_000_000
MAX_FILE_BYTES = 1_000_000  # a spec is a few hundred bytes; anything this big is not one
MAX_NODES = 20_000  # after alias expansion: refuses "billion laughs" documents
MAX_DEPTH = 32
BIG = 1_000_000  # upper bound for sizes: far beyond any sane width or depth

Skip = Literal["none", "residual", "gated", "rezero", "dense", "dwa", "deepnorm"]
Norm = Literal["batch", "layer", "none"]
Act = Literal["relu", "gelu", "silu", "tanh"]


def bounded(default: Any, lo: float | None = None, hi: float | None = None, *,
            lo_open: bool = False, max_items: int = 256) -> Any:
    """A dataclass field with a range, checked on load (lists: per item)."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "max_items": max_items}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


# --- the spec -------------------------------------------------------------------


@dataclass(frozen=True)
class Embedding:
    kind: Literal["word", "char", "bpe", "pretrained"] = "word"  # pretrained: the checkpoint's sub-word tokenizer
    dim: int | None = bounded(None, 1, 65536)  # None: d_model (transformer) or 128
    vocab_size: int = bounded(30000, 2, 10_000_000)  # the tokenizer's cap; set from data
    max_len: int = bounded(256, 1, BIG)
    min_freq: int = bounded(1, 1, BIG)
    lowercase: bool = True
    # an out-of-vocabulary word: one <unk> vector, or its word shape (see tokenize.word_shape)
    unknown: Literal["unk", "shape"] = "unk"
    char_dim: int = bounded(0, 0, 4096)  # > 0: a character CNN adds each word's spelling to its vector
    positions: Literal["none", "learned", "sinusoidal", "rotary"] | None = None
    token_types: int = bounded(0, 0, 1024)
    norm: bool = False  # LayerNorm after the embedding sum (BERT)
    dropout: float = bounded(0.0, 0.0, 1.0)
    # a checkpoint folder (or pkg:module/folder) whose input embeddings start the word vectors
    pretrained: str | None = None
    freeze: bool = False  # the embedding gets no updates


@dataclass(frozen=True)
class ResNetEncoder:
    stem_channels: int = bounded(64, 0, 65536)  # 0: the embedding feeds the stages
    stem_kernels: list[int] = bounded([3], 1, 1024, max_items=16)
    stages: list[int] = bounded([2, 2, 2, 2], 1, 1000, max_items=64)  # blocks per stage
    channels: list[int] | int = bounded([64, 128, 256, 512], 1, 65536, max_items=64)
    block: Literal["basic", "bottleneck"] = "basic"
    kernel_size: int = bounded(3, 1, 1024)
    preact: bool = False
    downsample: Literal["pool", "stride", "none"] = "pool"
    skip: Skip = "residual"
    norm: Norm = "batch"
    act: Act = "relu"
    dropout: float = bounded(0.0, 0.0, 1.0)
    zero_init_last: bool = True  # each residual branch starts as zero


@dataclass(frozen=True)
class DenseNetEncoder:
    stem_channels: int = bounded(64, 1, 65536)
    stem_kernel: int = bounded(3, 1, 1024)
    block_config: list[int] = bounded([6, 12, 24, 16], 1, 1000, max_items=64)
    growth_rate: int = bounded(32, 1, 65536)
    bottleneck: int = bounded(4, 0, 64)  # 1x1 conv to bottleneck*growth_rate; 0 = none
    compression: float = bounded(0.5, 0.0, 1.0, lo_open=True)  # theta
    kernel_size: int = bounded(3, 1, 1024)
    skip: Skip = "dense"
    norm: Norm = "batch"
    act: Act = "relu"
    dropout: float = bounded(0.0, 0.0, 1.0)
    memory_efficient: bool = False  # checkpoint the concatenations


@dataclass(frozen=True)
class TransformerEncoder:
    layers: int = bounded(4, 1, 10000)
    d_model: int = bounded(256, 1, 65536)
    heads: int = bounded(4, 1, 1024)
    ff: int | None = bounded(None, 1, 1_000_000)  # None: 4 * d_model
    skip: Skip = "residual"
    norm_position: Literal["pre", "post"] | None = None  # None: post for deepnorm, else pre
    act: Act = "gelu"
    dropout: float = bounded(0.1, 0.0, 1.0)
    attn_dropout: float = bounded(0.0, 0.0, 1.0)
    norm_eps: float = bounded(1e-5, 0.0, 1.0, lo_open=True)
    cls_token: bool = False  # prepend a learned [CLS] vector
    stem_kernel: int = bounded(0, 0, 1024)  # > 0: a convolution over the embeddings before the first layer
    pooler: bool = False  # BERT's dense + tanh on the first token


ENCODERS = {"resnet": ResNetEncoder, "densenet": DenseNetEncoder, "transformer": TransformerEncoder}


@dataclass(frozen=True)
class Head:
    # None: the family's default; token: no pooling, logits for every token (sequence labeling)
    pool: Literal["max", "mean", "first", "kmax", "token"] | None = None
    k: int = bounded(8, 1, 4096)  # for kmax
    hidden: list[int] = bounded([], 1, 1_000_000, max_items=16)
    dropout: float = bounded(0.0, 0.0, 1.0)
    num_classes: int = bounded(2, 0, 1_000_000)  # 0: no classifier; set from data
    crf: bool = False  # a tagger's linear-chain CRF over the tag scores (crf.py); ignored unless pool is token


@dataclass(frozen=True)
class Train:
    epochs: int = bounded(10, 1, 100000)
    batch_size: int = bounded(64, 1, 1_000_000)
    lr: float = bounded(1e-3, 0.0, 100.0, lo_open=True)
    optimizer: str = "adamw"  # any name timm's create_optimizer_v2 knows
    weight_decay: float = bounded(0.01, 0.0, 10.0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_epochs: float = bounded(0.5, 0.0, 100000)
    label_smoothing: float = bounded(0.0, 0.0, 1.0)
    clip_grad: float = bounded(1.0, 0.0, 1e6)  # 0: no clipping
    word_dropout: float = bounded(0.0, 0.0, 1.0)  # chance that a training token becomes <unk>
    ema_decay: float = bounded(0.0, 0.0, 1.0)  # > 0: evaluate and keep an average of the weights (decay ramps up to it); 0: off
    max_norm: float = bounded(0.0, 0.0, 1e6)  # max-norm of the classifier rows (Kim 2014); 0: off
    layer_decay: float = bounded(1.0, 0.0, 1.0, lo_open=True)  # layer-wise lr decay: lr x decay^(depth from the top); 1: off
    patience: int = bounded(0, 0, 100000)  # early stopping on dev accuracy; 0: off
    dev_fraction: float = bounded(0.1, 0.0, 0.5, lo_open=True)  # held out when data has no dev split
    seed: int = bounded(0, 0, 2**31 - 1)


@dataclass(frozen=True, kw_only=True)
class Spec:
    name: str = "custom"
    family: Literal["resnet", "densenet", "transformer"]
    description: str = ""
    pretrained: str | None = None  # a checkpoint folder (or pkg:module/folder) whose weights the body starts from
    embedding: Embedding = field(default_factory=Embedding)
    encoder: ResNetEncoder | DenseNetEncoder | TransformerEncoder | None = None
    head: Head = field(default_factory=Head)
    train: Train = field(default_factory=Train)

    @property
    def skip(self) -> str:
        return self.encoder.skip

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())

    def replace(self, overrides: dict | list[str]) -> "Spec":
        """A new validated spec with dotted overrides applied."""
        return from_dict(apply_overrides(self.to_dict(), overrides))


class _SpecDumper(yaml.SafeDumper):
    """Block-style mappings, one-line lists of scalars: `stages: [2, 2, 2, 2]`."""


def _represent_list(dumper, data):
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_SpecDumper.add_representer(list, _represent_list)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_SpecDumper, sort_keys=False, default_flow_style=False, width=100)


# --- reading YAML safely ----------------------------------------------------------


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
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, v, f"{path}[{i}]", meta) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _to_dataclass(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(path, f"expected true or false, got {_describe(value)}")
        return value
    if tp in (int, float) and isinstance(value, str):
        value = _number(value)  # YAML 1.1 reads 1e-3 as a string
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpecError(path, f"expected an integer, got {_describe(value)}")
        return _check_range(value, path, meta)
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise SpecError(path, f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise SpecError(path, f"expected a finite number, got {value}")
        return _check_range(float(value), path, meta)
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(path, f"expected a string, got {_describe(value)}")
        if len(value) > 10_000:
            raise SpecError(path, f"string of {len(value):,} characters is too long")
        return value
    raise TypeError(f"unsupported field type {tp!r}")  # a bug in the dataclasses above


def _number(text: str) -> Any:
    for parse in (int, float):
        try:
            return parse(text.replace("_", ""))
        except ValueError:
            pass
    return text


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
    """Validate a plain dict (already merged with its bases) into a Spec."""
    if not isinstance(data, dict):
        raise SpecError("", f"a spec must be a mapping of keys, got {_describe(data)}")
    data = dict(data)
    data.pop("base", None)
    family = data.get("family")
    if family is None:
        raise SpecError("family", f"missing required key; one of: {', '.join(FAMILIES)}")
    if family not in FAMILIES:
        raise SpecError("family", f"{_describe(family)} is not one of: {', '.join(FAMILIES)}{did_you_mean(family, FAMILIES)}")
    if data.get("head") == "none":  # a bare encoder: pooled features, no classifier
        data["head"] = {"num_classes": 0}
    encoder = data.pop("encoder", None) or {}
    spec = _to_dataclass(Spec, data, "")
    spec = dataclasses.replace(spec, encoder=_to_dataclass(ENCODERS[family], encoder, "encoder"))
    spec = _resolve(spec)
    _validate(spec)
    from .plan import count_params

    params = count_params(spec)
    if params > max_params:
        raise SpecError("", f"{spec.name} has {params:,} parameters, over the limit of {int(max_params):,} (max_params)")
    return spec


def _resolve(spec: Spec) -> Spec:
    """Fill the defaults that depend on the family, so a saved spec is explicit."""
    emb, enc, head = spec.embedding, spec.encoder, spec.head
    if spec.family == "transformer":
        emb = dataclasses.replace(
            emb,
            dim=emb.dim if emb.dim is not None else enc.d_model,
            positions=emb.positions or "learned",
        )
        enc = dataclasses.replace(
            enc,
            ff=enc.ff if enc.ff is not None else 4 * enc.d_model,
            norm_position=enc.norm_position or ("post" if enc.skip == "deepnorm" else "pre"),
        )
        pool = head.pool or ("first" if enc.cls_token or enc.pooler else "mean")
    else:
        emb = dataclasses.replace(emb, dim=emb.dim if emb.dim is not None else 128, positions=emb.positions or "none")
        pool = head.pool or "max"
        if spec.family == "resnet" and isinstance(enc.channels, int):
            enc = dataclasses.replace(enc, channels=[enc.channels] * len(enc.stages))
    return dataclasses.replace(spec, embedding=emb, encoder=enc, head=dataclasses.replace(head, pool=pool))


def _validate(spec: Spec) -> None:
    """Checks that involve more than one key."""
    enc, emb = spec.encoder, spec.embedding
    allowed = FAMILY_SKIPS[spec.family]
    if enc.skip not in allowed:
        raise SpecError("encoder.skip", f"{enc.skip!r} is not supported by the {spec.family} family; it supports: {', '.join(allowed)}")
    if spec.family == "resnet":
        if len(enc.channels) != len(enc.stages):
            raise SpecError("encoder.channels", f"has {len(enc.channels)} widths but encoder.stages has {len(enc.stages)} stages; give one width per stage or a single integer")
        if enc.downsample == "stride" and enc.kernel_size % 2 == 0:
            raise SpecError("encoder.kernel_size", f"{enc.kernel_size} is even; downsample: stride needs an odd kernel (or use downsample: pool)")
        if enc.stem_channels == 0 and not enc.stages:
            raise SpecError("encoder.stages", "a resnet with no stem (stem_channels: 0) needs at least one stage")
    if spec.family == "densenet":
        width = enc.stem_channels
        for i, layers in enumerate(enc.block_config[:-1]):
            width = math.floor((width + layers * enc.growth_rate) * enc.compression)
            if width < 1:
                raise SpecError("encoder.compression", f"{enc.compression:g} compresses the output of dense block {i} to zero channels")
    if spec.family == "transformer":
        if emb.dim != enc.d_model:
            raise SpecError("embedding.dim", f"{emb.dim} differs from encoder.d_model {enc.d_model}; a transformer's embedding width is its d_model")
        if enc.d_model % enc.heads:
            raise SpecError("encoder.heads", f"{enc.heads} heads do not divide d_model {enc.d_model}")
        if emb.positions == "rotary" and (enc.d_model // enc.heads) % 2:
            raise SpecError("embedding.positions", f"rotary needs an even head width, got d_model/heads = {enc.d_model // enc.heads}")
        if enc.skip == "deepnorm" and enc.norm_position != "post":
            raise SpecError("encoder.norm_position", "deepnorm is a post-LN rule; use norm_position: post (or leave it out)")
        if enc.pooler and spec.head.pool != "first":
            raise SpecError("head.pool", f"{spec.head.pool!r} does not fit encoder.pooler, which reads the first token; use pool: first")
    elif emb.positions == "rotary":
        raise SpecError("embedding.positions", f"rotary positions act inside attention; the {spec.family} family has none: use none, learned or sinusoidal")
    if emb.kind == "pretrained" and not emb.pretrained:
        raise SpecError("embedding.kind", "pretrained is the tokenizer of a checkpoint; name it in embedding.pretrained")
    if emb.pretrained and emb.kind not in ("word", "pretrained"):
        raise SpecError("embedding.pretrained", f"gives vectors to words or to the checkpoint's sub-words; kind {emb.kind!r} "
                                                "has neither: use kind word or pretrained")
    if emb.kind == "pretrained" and spec.train.word_dropout:
        raise SpecError("train.word_dropout", "turns tokens into rdzoo's <unk> id 1, which is another token in a "
                                              "checkpoint's vocabulary; use 0 with embedding.kind: pretrained")
    if spec.pretrained and spec.family != "transformer":
        raise SpecError("pretrained", f"loads a transformer body, but family is {spec.family!r}; for word vectors in a "
                                      "convolutional family use embedding.pretrained")
    if emb.char_dim and emb.kind != "word":
        raise SpecError("embedding.char_dim", f"spells out words; kind {emb.kind!r} has no words: use 0")
    if emb.unknown == "shape" and emb.kind != "word":
        raise SpecError("embedding.unknown", f"shape classes stand for unseen words; kind {emb.kind!r} has none: use unk")
    if emb.token_types and spec.family != "transformer":
        raise SpecError("embedding.token_types", "token types are a transformer input; use 0")
    if spec.head.pool == "token":
        shortens = None
        if spec.family == "resnet" and len(enc.stages) > 1 and enc.downsample != "none":
            shortens = ("encoder.downsample", f"{enc.downsample!r} halves the length between stages; use none")
        if spec.family == "densenet" and len(enc.block_config) > 1:
            shortens = ("encoder.block_config", "the transitions between dense blocks halve the length; use one block")
        if shortens:
            raise SpecError(shortens[0], f"{shortens[1]} (head.pool: token tags every token, so the encoder must "
                                         "keep the sequence length)")


def check_value(family: str, dotted: str, value: Any) -> None:
    """Check one value against the spec field at a dotted key path (used for search spaces)."""
    cls: Any = Spec
    path = ""
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(cls):
            raise SpecError(path, f"is a value, not a section, so {dotted} is not a spec key")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            raise SpecError(_join(path, part), f"unknown key; allowed keys: {', '.join(fields)}{did_you_mean(part, fields)}")
        meta = dict(fields[part].metadata)
        tp = ENCODERS[family] if (cls is Spec and part == "encoder") else typing.get_type_hints(cls)[part]
        path = _join(path, part)
        cls = tp
    if dotted == "head" and value == "none":
        return
    if dataclasses.is_dataclass(cls) and isinstance(value, dict):
        for key, sub in value.items():
            check_value(family, f"{dotted}.{key}", sub)
        return
    _convert(cls, value, path, meta)
    if dotted == "encoder.skip" and value not in FAMILY_SKIPS[family]:
        raise SpecError(dotted, f"{value!r} is not supported by the {family} family; it supports: {', '.join(FAMILY_SKIPS[family])}")


# --- merging, inheritance, overrides --------------------------------------------------


def deep_merge(base: dict, update: dict) -> dict:
    """Dicts merge key by key; anything else (lists included) is replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`encoder.block_config=[6,12,24]` -> ("encoder.block_config", [6, 12, 24])."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError("", f"override {text!r} must look like key.path=value, e.g. encoder.growth_rate=24")
    return key, parse_yaml(raw, f"override {key}") if raw.strip() else ""


def apply_overrides(data: dict, overrides: dict | list[str] | tuple = ()) -> dict:
    """Set dotted keys (or merge nested dicts) into a spec dict."""
    if isinstance(overrides, (list, tuple)):
        overrides = dict(parse_override(o) for o in overrides)
    out = dict(data)
    for dotted, value in overrides.items():
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
            value = deep_merge(node[leaf], value)
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
    merged = deep_merge(parent, {k: v for k, v in data.items() if k != "base"})
    if "name" not in data:
        merged["name"] = f"{parent.get('name', base)}-custom"
    return merged


def _read_source(source: str, relative_to: str | None = None) -> Any:
    from .registry import spec_path, zoo_index

    if source not in zoo_index() and (source.startswith("pkg:") or Path(source).expanduser().is_dir()):
        return {"pretrained": source, "head": "none"}  # a checkpoint folder: its bare body

    return read_yaml_file(spec_path(source, relative_to=relative_to))


def load(source: str | Path | dict | Spec, overrides: dict | list[str] | tuple = (),
         max_params: float = DEFAULT_MAX_PARAMS) -> Spec:
    """A zoo name, a YAML path, a checkpoint folder, a dict or a Spec -> a validated Spec.
    A `pretrained:` checkpoint's shape is read from its config.json under the spec's own keys."""
    from .pretrained import expand

    if isinstance(source, Spec):  # already explicit
        return from_dict(apply_overrides(source.to_dict(), overrides), max_params=max_params)
    if isinstance(source, dict):
        data = resolve_bases(source, "spec")
    else:
        data = resolve_bases(_read_source(str(source)), str(source), (str(source),))
    return from_dict(expand(apply_overrides(data, overrides)), max_params=max_params)
