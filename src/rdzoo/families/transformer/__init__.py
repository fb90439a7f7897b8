"""Transformer encoders, torch-free half: the `encoder:` section, its rules and its parameter count.

Pre-LN, x + F(LN(x)), or post-LN, LN(x + F(x)) (Xiong et al. 2020), with a skip type
around each sublayer; BERT-family checkpoints load into this family (`pretrained:`).
`model.py` builds the network.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ...counts import linear
from ...errors import SpecError
from ...fields import Act, bounded
from ...skips import get_skip
from ..family import Family

if TYPE_CHECKING:
    from ...spec_types import Spec

SKIPS = ("none", "residual", "gated", "rezero", "dwa", "deepnorm")


@dataclass(frozen=True)
class TransformerEncoder:
    """The `encoder:` section of a transformer spec; widths in features."""

    layers: int = bounded(4, 1, 10000)
    d_model: int = bounded(256, 1, 65536)
    heads: int = bounded(4, 1, 1024)
    ff: int | None = bounded(None, 1, 1_000_000)  # None: 4 * d_model
    skip: str = "residual"
    norm_position: Literal["pre", "post"] | None = None  # None: what the skip type needs, else pre
    act: Act = "gelu"
    dropout: float = bounded(0.1, 0.0, 1.0)
    attn_dropout: float = bounded(0.0, 0.0, 1.0)
    norm_eps: float = bounded(1e-5, 0.0, 1.0, lo_open=True)
    cls_token: bool = False  # prepend a learned [CLS] vector
    stem_kernel: int = bounded(0, 0, 1024)  # > 0: a convolution over the embeddings before the first layer
    pooler: bool = False  # BERT's dense + tanh on the first token


def width(spec: "Spec") -> int:
    """d_model."""
    return spec.encoder.d_model


def encoder_params(spec: "Spec") -> int:
    """Per layer: fused q, k, v and the output projection, the feed-forward pair, two LayerNorms
    (none with a skip that replaces them) and the skip rules' own; then the skip's per-stack
    weights, a pre-LN stack's final LayerNorm, the conv stem, [CLS] and BERT's pooler."""
    enc = spec.encoder
    skip = get_skip(enc.skip)
    d, depth = enc.d_model, enc.layers
    layer = 4 * linear(d, d) + linear(d, enc.ff) + linear(enc.ff, d)
    layer += 0 if skip.replaces_norm else 2 * 2 * d
    layer += skip.params(d) * (1 if skip.one_per_layer else 2)
    n = depth * layer + skip.stack_params(depth)
    if enc.norm_position == "pre" and not skip.replaces_norm:
        n += 2 * d  # the final LayerNorm of a pre-LN stack
    if enc.stem_kernel:
        n += d * d * enc.stem_kernel + d
    if enc.cls_token:
        n += d
    if enc.pooler:
        n += linear(d, d)
    return n


def resolve(spec: "Spec") -> "Spec":
    """The embedding is d_model wide with learned positions; ff 4 * d_model; the LayerNorm
    position the skip type needs (else pre-LN); pooling on [CLS] or the pooler, else mean."""
    emb, enc, head = spec.embedding, spec.encoder, spec.head
    emb = dataclasses.replace(emb, dim=emb.dim if emb.dim is not None else enc.d_model,
                              positions=emb.positions or "learned")
    needs = get_skip(enc.skip).norm_position  # spec.from_dict checked the skip type first
    enc = dataclasses.replace(enc, ff=enc.ff if enc.ff is not None else 4 * enc.d_model,
                              norm_position=enc.norm_position or needs or "pre")
    pool = head.pool or ("first" if enc.cls_token or enc.pooler else "mean")
    return dataclasses.replace(spec, embedding=emb, encoder=enc, head=dataclasses.replace(head, pool=pool))


def validate(spec: "Spec") -> None:
    """Embedding width = d_model, heads dividing it, an even head width for rotary positions,
    the skip type's LayerNorm position, pooling on the first token under BERT's pooler."""
    enc, emb = spec.encoder, spec.embedding
    if emb.dim != enc.d_model:
        raise SpecError("embedding.dim", f"{emb.dim} differs from encoder.d_model {enc.d_model}; a transformer's "
                                         "embedding width is its d_model")
    if enc.d_model % enc.heads:
        raise SpecError("encoder.heads", f"{enc.heads} heads do not divide d_model {enc.d_model}")
    if emb.positions == "rotary" and (enc.d_model // enc.heads) % 2:
        raise SpecError("embedding.positions", f"rotary needs an even head width, got d_model/heads = "
                                               f"{enc.d_model // enc.heads}")
    needs = get_skip(enc.skip).norm_position
    if needs and enc.norm_position != needs:
        raise SpecError("encoder.norm_position", f"{enc.skip} is a {needs}-LN rule; use norm_position: {needs} "
                                                 "(or leave it out)")
    if enc.pooler and spec.head.pool != "first":
        raise SpecError("head.pool", f"{spec.head.pool!r} does not fit encoder.pooler, which reads the first token; "
                                     "use pool: first")


FAMILY = Family("transformer", TransformerEncoder, SKIPS, "rdzoo.families.transformer.model:TransformerText",
                encoder_params, width, resolve, "Transformer encoder (Vaswani et al. 2017)", validate=validate,
                rotary=True, token_types=True, checkpoint=True)
