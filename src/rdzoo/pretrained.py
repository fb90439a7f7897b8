"""Pretrained BERT-family checkpoints as weights: tensors -> model, offline.

`load_body(model, spec)` maps a checkpoint's tensors (`model.safetensors`) onto
the transformer that `checkpoint.derive` described, by name; `init_word_vectors`
gives a convolutional model's word table each word's mean sub-word vector;
`registry.create_model` calls them on a freshly built model. Every problem is one
error naming the tensor: `WeightsError` for tensors that do not fit.
"""

from __future__ import annotations

import re
from pathlib import Path

from .checkpoint import OTHER_HEADS, STATIC_TABLE, WEIGHTS, body_name, is_static, locate
from .errors import WeightsError


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


def _tensors_in(path: Path) -> dict:
    """Every tensor of a safetensors file, by name; WeightsError naming the file when it is damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: damaged weights ({exc})") from None


def read_tensors(folder: Path) -> dict:
    """The checkpoint's body tensors under BertModel's names, floating ones as fp32; tensors of
    pretraining or task heads are left out.

    Raises WeightsError for a damaged file or a tensor BERT's body does not have."""
    path = folder / WEIGHTS
    tensors = {}
    for name, tensor in _tensors_in(path).items():
        body = body_name(name)
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

    The table is the checkpoint's input embeddings, or a Model2Vec folder's static table
    (`checkpoint.is_static`: each sub-word's output of the whole model, mean-pooled and
    weighted by frequency; Tulkens and van Dongen 2024), read the same way: a word's vector is
    then the mean Model2Vec itself takes. A student taught on SST-2 scored 0.8 points higher
    from Model2Vec's table of the same checkpoint than from its input table (bench/distill.py).

    Raises WeightsError when the table is missing or its width (or, copied, its row count) does
    not fit the model; SpecError when the checkpoint cannot be found.
    """
    import torch

    from .text.tokenize import PAD_ID, PretrainedTokenizer

    ref = spec.embedding.pretrained
    folder = locate(ref)
    if is_static(folder):
        table, name = static_table(folder), STATIC_TABLE
    else:
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


def static_table(folder: Path):
    """A Model2Vec folder's `embeddings` table (sub-words, width) as fp32 (it is often stored as
    fp16). Raises WeightsError for a damaged file or a table that is missing or not finite."""
    import torch

    path = folder / WEIGHTS
    table = _tensors_in(path).get(STATIC_TABLE)
    if table is None or table.dim() != 2:
        raise WeightsError(f"{path}: no 2-d tensor {STATIC_TABLE!r} (a Model2Vec model's table)")
    table = table.float()
    if not torch.isfinite(table).all():
        raise WeightsError(f"{path}: tensor {STATIC_TABLE!r} holds a NaN or infinity")
    return table


def freeze(model, spec) -> None:
    """`embedding.freeze`: the embedding gets no updates (the optimizer skips frozen parameters)."""
    if spec.embedding.freeze:
        model.embed.requires_grad_(False)

