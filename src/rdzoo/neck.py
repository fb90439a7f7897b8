"""A neck: a small encoder of any registered family between the body and the head.

MMDetection's backbone -> neck -> head, for text: the body (a pretrained
transformer, say) gives (batch, tokens, channels) states, and the `neck:` section
puts a few ResNet-, DenseNet- or Transformer-style layers, with their own skip
type, over them before pooling and the classifier.

    neck:
      family: densenet
      encoder: {stem_channels: 128, block_config: [2], growth_rate: 32, skip: dense}

The neck is the family's own encoder (its plan, parameter count and model) reading
the body's states as its embeddings, so a family added to `families.FAMILIES` can
be a neck with no code here. The section itself is `spec_types.Neck`. Torch-free.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .families import get_family

if TYPE_CHECKING:
    from .spec_types import Spec


def body_width(spec: "Spec") -> int:
    """Channels of the body's output features, the neck's input (the body family's plan)."""
    return get_family(spec.family).width(spec)


def as_spec(spec: "Spec") -> "Spec":
    """The neck of `spec` as a spec of its own family whose "embeddings" are the body's
    (batch, tokens, body_width) states: no vocabulary, positions or character CNN of its
    own, and no classifier. Its family's plan, rules and model read it as any spec."""
    neck = spec.neck
    # norm: the body's states arrive normalised (a transformer's last LayerNorm, a conv net's norms),
    # so a family that scales raw embeddings up (a ReZero transformer) leaves them as they are
    emb = dataclasses.replace(spec.embedding, kind="word", dim=body_width(spec), vocab_size=2, positions="none",
                              token_types=0, norm=True, char_dim=0, pretrained=None, freeze=False, dropout=0.0)
    head = dataclasses.replace(spec.head, hidden=[], num_classes=0, crf=False)
    return dataclasses.replace(spec, name=f"{spec.name}-neck", family=neck.family, encoder=neck.encoder,
                               pretrained=None, neck=None, embedding=emb, head=head)


def width(spec: "Spec") -> int:
    """Channels of the neck's output features (the head's input)."""
    return get_family(spec.neck.family).width(as_spec(spec))


def params(spec: "Spec") -> int:
    """The neck's parameter count: its family's encoder count over body_width inputs."""
    return get_family(spec.neck.family).encoder_params(as_spec(spec))
