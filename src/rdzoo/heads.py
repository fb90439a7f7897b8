"""The head's widths from the encoder's width, in plain Python.

Below the family table: a model reads its head's widths here, given the encoder
width its builder (`registry.build_model`) took from the plan, so no model module
needs the table. `plan` adds the table's widths and counts the whole model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .counts import linear

if TYPE_CHECKING:
    from .spec_types import Spec


def head_widths(spec: "Spec", encoder_width: int) -> list[int]:
    """Widths from the pooled features to the logits (the last is num_classes or absent);
    `encoder_width` is the channels of the features the head reads."""
    head = spec.head
    widths = [encoder_width * (head.k if head.pool == "kmax" else 1), *head.hidden]
    if head.num_classes:
        widths.append(head.num_classes)
    return widths


def has_crf(spec: "Spec") -> bool:
    """A CRF sits on a tagger's tag scores: head.crf with head.pool token and a classifier."""
    return spec.head.crf and spec.head.pool == "token" and spec.head.num_classes > 0


def head_params(spec: "Spec", encoder_width: int) -> int:
    """The hidden layers and classifier, and a CRF's K x K transitions and 2K start and end scores."""
    widths = head_widths(spec, encoder_width)
    n = sum(linear(a, b) for a, b in zip(widths, widths[1:]))
    if has_crf(spec):  # transition scores between tags, and start and end scores (crf.CRF)
        k = spec.head.num_classes
        n += k * k + 2 * k
    return n


def num_features(spec: "Spec", encoder_width: int) -> int:
    """Width of the pre-logits features (after pooling and hidden layers)."""
    head = spec.head
    return head.hidden[-1] if head.hidden else head_widths(spec, encoder_width)[0]
