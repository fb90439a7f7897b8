"""What an encoder family is, in one object: the torch-free half of a family.

A `Family` holds its encoder section (a frozen dataclass of `spec.encoder`'s keys),
the defaults it fills in, the checks that span several keys, its plan's parameter
count and output width, the skip types it supports, and where its model class
lives (imported only when a model is built). `families.register` puts one in the
table that spec loading, plans, search spaces and the CLI read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..spec_types import Spec


def _no_checks(spec: "Spec") -> None:
    return None


def _keeps_length(encoder: Any) -> None:
    return None


@dataclass(frozen=True)
class Family:
    """One encoder family.

    name: the spec's `family:` value. encoder: the frozen dataclass of its `encoder:`
    section; it must have `skip` (a name in `skips.SKIP_TYPES`) and `act` keys.
    skips: the skip types it supports (the section gives the default).
    model: the `base.TextModel` subclass built from a validated Spec, or "module:Class" to
    import it only then (keeps torch out of spec loading); `registry.build_model` calls
    `model(spec, encoder_width=..., neck=...)` (see `base.TextModel`).
    encoder_params(spec): the encoder's parameter count, without embedding and head.
    width(spec): channels of the encoder's output features (the head's input).
    resolve(spec): the spec with the family's defaults filled in (embedding width,
    positions, head pool), so a saved spec is explicit. validate(spec): raises SpecError
    naming the key for a rule that spans several keys. shortens(encoder): None when the
    encoder keeps the sequence length (it can tag tokens), else (key, why not).
    rotary, token_types, checkpoint: whether the family takes rotary positions, token-type
    embeddings, and BERT-family checkpoints (`pretrained:`).
    """

    name: str
    encoder: type
    skips: tuple[str, ...]
    model: str | Callable
    encoder_params: Callable[["Spec"], int]
    width: Callable[["Spec"], int]
    resolve: Callable[["Spec"], "Spec"]
    description: str = ""
    validate: Callable[["Spec"], None] = _no_checks
    shortens: Callable[[Any], tuple[str, str] | None] = _keeps_length
    rotary: bool = False
    token_types: bool = False
    checkpoint: bool = False


def conv_defaults(spec: "Spec", encoder: Any = None) -> "Spec":
    """The defaults a convolutional family fills in: 128-wide word vectors, no positions,
    max pooling; `encoder` replaces the section when the family resolved it too."""
    emb, head = spec.embedding, spec.head
    emb = dataclasses.replace(emb, dim=emb.dim if emb.dim is not None else 128, positions=emb.positions or "none")
    return dataclasses.replace(spec, embedding=emb, encoder=encoder or spec.encoder,
                               head=dataclasses.replace(head, pool=head.pool or "max"))
