"""What a trained model predicts: a class id a text, or a tag id a word.

`predict_ids` runs a model over encoded texts in length-sorted batches where its weights are
(a tagger's word tags from its CRF's Viterbi path, or from each word's first sub-word:
`word_starts`); `is_tagger`, `model_device` and `crf_of` read what a model is. `train.py`
scores dev and test with them, `runs.Run.predict` a saved run, and `distill.targets` a teacher.
"""

from __future__ import annotations

import torch

from .device import Precision, to_device
from .text.batching import batches, word_ids
from .text.tokenize import PAD_ID

EVAL_BATCH = 256


def is_tagger(model) -> bool:
    """Whether the model tags every token (head pool `token`)."""
    return getattr(model.head, "pool", None) == "token"


def model_device(model) -> torch.device:
    """The device the model's parameters are on."""
    return next(model.parameters()).device


def crf_of(model):
    """The tagger's CRF (crf.CRF), or None."""
    return getattr(model.head, "crf", None)


@torch.inference_mode()
def predict_ids(model, ids: list[list[int]], batch_size: int = EVAL_BATCH, words: list[int] | None = None,
                precision: Precision | None = None, starts: list[list[int]] | None = None) -> list:
    """A class id a text; for a tagger, a list a text with a tag id for each of its `words`
    (-1 past embedding.max_len, where the model sees nothing). Runs where the model's weights
    are, at `precision` (default fp32); the predictions are read back once, at the end.
    `starts`: the position of each word's first sub-word, whose tag is the word's (a sub-word
    tokenizer's `word_starts`)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    autocast = precision.autocast if precision is not None else Precision("fp32", device.type).autocast
    crf, out = crf_of(model), []
    for tokens, _, group in batches(ids, None, batch_size):
        with autocast():
            logits = model(to_device(tokens, device))
        if crf is not None:  # Viterbi over the allowed transitions
            out.append((group, crf.decode(logits.float(), to_device(word_ids(tokens) != PAD_ID, device))))
        else:
            out.append((group, logits.argmax(-1)))
    pred, tagger = [0] * len(ids), is_tagger(model)
    for group, ids_out in out:
        for i, p in zip(group, ids_out if isinstance(ids_out, list) else ids_out.tolist()):
            if tagger and starts is not None:
                n = len(starts[i]) if words is None else words[i]
                p = [p[j] for j in starts[i]] + [-1] * (n - len(starts[i]))
            elif tagger:
                n = len(ids[i]) if words is None else words[i]
                p = p[: min(len(ids[i]), n)] + [-1] * (n - len(ids[i]))
            pred[i] = p
    model.train(was_training)
    return pred


def tag_names(pred: list[list[int]], label_names: list[str]) -> list[list]:
    """Tag ids -> tag names (None for -1, a word past max_len)."""
    return [[label_names[i] if i >= 0 else None for i in tags] for tags in pred]


def word_starts(tokenizer, texts: list, tagging: bool) -> list[list[int]] | None:
    """Where each word's first sub-word sits, for `tagging` data's lists of words and a sub-word
    tokenizer; None when a token is a word (word tokenizers) or the data is not tagging data."""
    if not tagging or not texts or not hasattr(tokenizer, "word_starts"):
        return None
    return tokenizer.word_starts(texts)
