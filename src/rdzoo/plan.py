"""A spec's parameter count in plain Python, before any tensor exists.

The embedding and the head (`heads.py`) are shared by every family and counted here; the
encoder's count and width come from its family (`families.FAMILIES`, each
family's plan), and a neck's from the neck's family (`neck.py`). `rdzoo list` shows counts instantly and `max_params` refuses
absurd specs without allocating; the tests check every count against the built
model's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import heads, neck
from .families import get_family
from .text.tokenize import CHAR_BUCKETS

if TYPE_CHECKING:
    from .spec_types import Spec


def embedding_params(spec: "Spec") -> int:
    """Word (or sub-word) vectors, token types, learned positions, the LayerNorm and the character CNN."""
    emb = spec.embedding
    n = emb.vocab_size * emb.dim + emb.token_types * emb.dim
    if emb.positions == "learned":
        n += emb.max_len * emb.dim
    if emb.norm:
        n += 2 * emb.dim
    if emb.char_dim:  # character table and the width-3 convolution (embedding.CharCNN)
        n += CHAR_BUCKETS * emb.char_dim + 3 * emb.char_dim * emb.dim + emb.dim
    return n


def encoder_width(spec: "Spec") -> int:
    """Channels of the features the head reads: the neck's output, else the body's (the family's plan)."""
    return neck.width(spec) if spec.neck else neck.body_width(spec)


def head_params(spec: "Spec") -> int:
    """The head's parameters at the encoder's width (`heads.head_params`)."""
    return heads.head_params(spec, encoder_width(spec))


def num_features(spec: "Spec") -> int:
    """Width of the pre-logits features (after pooling and hidden layers)."""
    return heads.num_features(spec, encoder_width(spec))


def count_params(spec: "Spec") -> int:
    """Trainable parameters of the model `spec` builds: embedding + encoder + neck + head."""
    n = embedding_params(spec) + get_family(spec.family).encoder_params(spec) + head_params(spec)
    return n + (neck.params(spec) if spec.neck else 0)
