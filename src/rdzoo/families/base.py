"""What every family shares: embedding in, pooled features and a classifier out.

timm's interface: `forward_features` gives the sequence features and their
mask, `forward_head(x, mask, pre_logits=False)` pools and classifies,
`reset_classifier(n)` swaps the classifier, `num_features` is the width of the
pre-logits features.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .. import heads
from ..crf import CRF
from ..text.batching import word_ids
from ..text.embedding import TextEmbedding
from ..text.tokenize import PAD_ID
from .layers import exporting, get_act_layer


def masked_pool(x: torch.Tensor, mask: torch.Tensor, pool: str, k: int) -> torch.Tensor:
    """(B, T, C) features, (B, T) mask -> (B, C) or (B, k*C) for k-max."""
    if pool == "first":
        return x[:, 0]
    valid = mask.unsqueeze(-1)
    if pool == "mean":
        return (x * valid).sum(1) / valid.sum(1).clamp(min=1)
    filled = x.masked_fill(~valid, float("-inf"))
    if pool == "max":
        return filled.max(1).values.masked_fill(~valid.any(1), 0.0)
    # k-max pooling keeps the k largest values per channel in their order (Kalchbrenner et al. 2014).
    # k more -inf positions serve a text shorter than k; always added, so no branch on the length
    # (an exported graph serves every length) and the same picks: they sort after every other position
    filled = nn.functional.pad(filled, (0, 0, 0, k), value=float("-inf"))
    # a stable sort breaks ties (ReLU's zeros) by position, so the padding's length cannot choose among them
    if exporting():  # aten's stable sort has no ONNX form; ONNX's TopK breaks ties by position as it does
        index = filled.topk(k, dim=1).indices.sort(dim=1).values
    else:
        index = filled.sort(dim=1, descending=True, stable=True).indices[:, :k].sort(dim=1).values
    top = filled.gather(1, index)
    return top.masked_fill(top == float("-inf"), 0.0).flatten(1)


class ClassifierHead(nn.Module):
    """Pooling, BERT's pooler, hidden layers and the classifier: (B, T, C) features and their
    (B, T) mask -> (B, classes) logits, or (B, T, classes) tag scores with pool token (a
    [CLS] token dropped); `crf` is the tagger's CRF or None. `width` is C, the channels of
    the features it reads (the plan's `encoder_width`)."""
    def __init__(self, spec, width: int):
        super().__init__()
        head = spec.head
        self.pool, self.k = head.pool, head.k
        # encoder sections that have them: a [CLS] token to drop before tagging, BERT's pooler
        self.cls_token = getattr(spec.encoder, "cls_token", False)
        pooler = getattr(spec.encoder, "pooler", False)
        # BERT's pooler: dense + tanh on the first token
        self.pooler = nn.Sequential(nn.Linear(width, width), nn.Tanh()) if pooler else nn.Identity()
        widths = heads.head_widths(spec, width)
        act = get_act_layer(spec.encoder.act)
        hidden = []
        for a, b in zip(widths[: len(head.hidden)], head.hidden):
            hidden += [nn.Linear(a, b), act(), nn.Dropout(head.dropout)]
        self.hidden = nn.Sequential(*hidden)
        self.drop = nn.Dropout(head.dropout)
        self.fc = nn.Linear(widths[-2], widths[-1]) if head.num_classes else nn.Identity()
        self.crf = CRF(head.num_classes) if heads.has_crf(spec) else None  # scores tag sequences; train.py uses it

    def forward(self, x, mask, pre_logits: bool = False):
        """(B, T, C), (B, T) mask -> logits as above; `pre_logits`: the (B, num_features) features
        (or (B, T, num_features)) before dropout and the classifier."""
        if self.pool == "token":  # sequence labeling: (B, T, C) -> (B, T, classes); a [CLS] token gets no tag
            x = x[:, 1:] if self.cls_token else x
        else:
            x = self.pooler(masked_pool(x, mask, self.pool, self.k))
        x = self.hidden(x)
        return x if pre_logits else self.fc(self.drop(x))


class TextModel(nn.Module):
    """Base of the families: subclasses build `self.stem`/`self.stages` and define `encode`.

    A family's model is built by `registry.build_model`, which passes what only the family
    table knows: `encoder_width`, the channels the head reads (the neck's, else the body's:
    `plan.encoder_width`), and `neck`, a function that builds the neck's encoder (a model
    of the neck's family) or None. A subclass takes them as `**parts` and hands them on,
    so models need no table and the table's string names of models make no import circle.
    """

    def __init__(self, spec, *, encoder_width: int, neck: Callable[[], nn.Module] | None = None,
                 init_std: float | None = None):
        super().__init__()
        if spec.neck and neck is None:
            raise ValueError(f"{spec.name}: the spec has a neck but no function to build it was given")
        self.spec = spec
        self.num_features = heads.num_features(spec, encoder_width)
        self.num_classes = spec.head.num_classes
        self.embed = TextEmbedding(spec.embedding, init_std=init_std)
        self.neck = Neck(neck()) if spec.neck else None  # built here, so a seed gives the same weights as ever
        self.head = ClassifierHead(spec, encoder_width)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, E) embeddings, (B, T) mask (True = a token) -> ((B, T', C) features, (B, T')
        mask); T' < T where a family halves the length. Subclasses implement it."""
        raise NotImplementedError

    def forward_features(self, tokens, mask=None, token_types=None):
        """(B, T) token ids, or (B, T, 1 + chars) with a character CNN -> ((B, T', C) features, (B, T') mask):
        the body's, through the neck when there is one."""
        if mask is None:
            mask = word_ids(tokens) != PAD_ID
        x, mask = self.encode(self.embed(tokens, token_types), mask)
        return (x, mask) if self.neck is None else self.neck(x, mask)

    def forward_head(self, x, mask, pre_logits: bool = False):
        """(B, T', C) features, (B, T') mask -> logits (see ClassifierHead)."""
        return self.head(x, mask, pre_logits=pre_logits)

    def forward(self, tokens, mask=None, token_types=None):
        """(B, T) token ids (0 = padding), optional (B, T) mask and token types -> logits,
        (B, classes) or (B, T, classes) for a tagger."""
        x, mask = self.forward_features(tokens, mask, token_types)
        return self.forward_head(x, mask)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a fresh one for `num_classes` classes (0: none, the model
        returns features), and the CRF with one of that many tags."""
        self.head.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        if self.head.crf is not None:
            self.head.crf = CRF(num_classes) if num_classes else None
        self.num_classes = num_classes

    def body_modules(self) -> list[tuple[str, nn.Module]]:
        """The embedding and encoder modules whose outputs `rdzoo build` shows, in order."""
        return [("embed", self.embed), ("stem", self.stem), *[(f"stages.{i}", s) for i, s in enumerate(self.stages)]]

    def summary_modules(self) -> list[tuple[str, nn.Module]]:
        """The modules whose outputs `rdzoo build` shows, in order: the body's, the neck, the head."""
        return [*self.body_modules(), *([("neck", self.neck)] if self.neck is not None else []), ("head", self.head)]


class Neck(nn.Module):
    """A neck (neck.py): a model of any family over the body's states, (B, T, C) features and
    (B, T) mask -> ((B, T', C') features, (B, T') mask). `encoder` is that family's model of
    the spec's `neck.encoder` (`neck.as_spec`); its embedding and head are dropped here."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        del self.encoder.embed, self.encoder.head  # the body's states are its input; the model's head reads its output

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) body states, (B, T) mask -> the neck family's `encode` of them."""
        return self.encoder.encode(x, mask)
