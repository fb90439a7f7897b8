"""A spec's sections as frozen dataclasses: `Embedding`, the family's encoder section (its own
dataclass, in its family), `Neck`, `Head`, `Train` with `Distill`, and `Spec`, the whole.

The fields' types, ranges (`fields.bounded`) and defaults are the schema that `spec.py`'s
loader checks dicts against; the families are typed against these classes and sit above
them, the loader above the families. Torch- and family-free.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from .fields import BIG, bounded
from .yamlio import dump_yaml


@dataclass(frozen=True)
class Embedding:
    """The `embedding:` section: how text becomes vectors (tokenizer kind, width `dim` in
    features, vocabulary cap, `max_len` in tokens, positions, a character CNN, a checkpoint's
    table)."""
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
    # a checkpoint folder (or pkg:module/folder) whose input embeddings start the word vectors, or a
    # Model2Vec folder whose static table does
    pretrained: str | None = None
    freeze: bool = False  # the embedding gets no updates


@dataclass(frozen=True)
class Head:
    """The `head:` section: pooling over tokens (or `token`: a tag per token), hidden widths,
    dropout, `num_classes` (set from the data), a tagger's CRF."""
    # None: the family's default; token: no pooling, logits for every token (sequence labeling)
    pool: Literal["max", "mean", "first", "kmax", "token"] | None = None
    k: int = bounded(8, 1, 4096)  # for kmax
    hidden: list[int] = bounded([], 1, 1_000_000, max_items=16)
    dropout: float = bounded(0.0, 0.0, 1.0)
    num_classes: int = bounded(2, 0, 1_000_000)  # 0: no classifier; set from data
    crf: bool = False  # a tagger's linear-chain CRF over the tag scores (crf.py); ignored unless pool is token


@dataclass(frozen=True)
class Distill:
    """The `train.distill:` section: a student learns from a teacher's logits (rdzoo.distill).

    loss = alpha * soft + (1 - alpha) * hard. `soft` is `mse`, the mean squared difference
    between the student's and the teacher's logits (Tang et al. 2019's objective, the squared
    distance, here divided by the number of classes so its scale does not grow with them), or
    `kl`, T^2 * KL(softmax(teacher / T) || softmax(student / T)) (Hinton et al. 2015, whose
    T^2 keeps the gradients' scale as T changes). `hard` is the usual loss on the gold labels,
    over the examples that have one (augmented copies and unlabelled text have none). The
    transfer set (Tang et al. 2019's augmentation) adds `augment_copies` copies of each training
    text: each word masked with chance `p_mask`, else replaced by a word of the same part of
    speech with chance `p_pos`; then, with chance `p_ngram`, only a random 1- to
    `ngram_max`-gram of it kept (classifiers only: a tagger's copies keep every word)."""
    loss: Literal["mse", "kl"] = "mse"
    temperature: float | None = bounded(None, 0.0, 1000.0, lo_open=True)  # None: 1 for mse (which takes no other), 2 for kl
    alpha: float = bounded(0.5, 0.0, 1.0)  # the soft loss's weight
    augment_copies: int = bounded(0, 0, 1000)  # Tang et al. use 20; each copy adds an epoch's worth of steps
    p_mask: float = bounded(0.1, 0.0, 1.0)
    p_pos: float = bounded(0.1, 0.0, 1.0)
    p_ngram: float = bounded(0.25, 0.0, 1.0)
    ngram_max: int = bounded(5, 1, 1000)


DISTILL_TEMPERATURE = {"mse": 1.0, "kl": 2.0}  # the default temperature of each soft loss


@dataclass(frozen=True)
class Train:
    """The `train:` section: the complete training recipe (epochs, batch size in texts, peak lr,
    timm optimizer name, schedule and warm-up in epochs, regularisers, early stopping, seed)."""
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
    bucket: bool = True  # batches of similar lengths (batching.batches' bucket iterator); false: random batches
    distill: Distill | None = None  # a student's settings (--teacher); None: the gold labels alone


@dataclass(frozen=True)
class Neck:
    """The `neck:` section: `family`, a name in the family table, and `encoder`, that family's
    encoder section (its frozen dataclass, defaults filled in); `neck.py` reads it as a spec."""

    family: str
    encoder: Any


@dataclass(frozen=True, kw_only=True)
class Spec:
    """One text encoder, complete: family (a name in `families.FAMILIES`), embedding, the
    family's encoder section, head and training recipe. Frozen and validated: build one with
    `spec.load` or `spec.from_dict`, change one with `spec.load(spec, overrides)`."""
    name: str = "custom"
    family: str  # a name in the family table (families.FAMILIES)
    description: str = ""
    pretrained: str | None = None  # a checkpoint folder (or pkg:module/folder) whose weights the body starts from
    embedding: Embedding = field(default_factory=Embedding)
    encoder: Any = None  # the family's encoder section (Family.encoder)
    neck: Neck | None = None  # a small encoder of any family between the body and the head (neck.py)
    head: Head = field(default_factory=Head)
    train: Train = field(default_factory=Train)

    @property
    def skip(self) -> str:
        """The encoder's skip type (a name in `skips.SKIP_TYPES`)."""
        return self.encoder.skip

    def to_dict(self) -> dict:
        """The spec as plain nested dicts and lists (what YAML and JSON hold)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The spec as YAML text that `load` reads back to an equal spec."""
        return dump_yaml(self.to_dict())
