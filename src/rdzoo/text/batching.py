"""Length-bucketed batches of padded token ids."""

from __future__ import annotations

import random

import torch

BUCKET = 50  # sort within windows of 50 batches: little padding, still well shuffled
IGNORE = -100  # the tag of a padding position: cross_entropy's ignore_index


def word_ids(tokens: torch.Tensor) -> torch.Tensor:
    """(B, T) word ids of a batch, also of one whose tokens carry their characters (B, T, 1 + chars)."""
    return tokens[..., 0] if tokens.dim() == 3 else tokens


def pad(seqs: list[list[int]] | list[list[list[int]]], value: int = 0) -> torch.Tensor:
    """(B, T) ids; tokens that carry their characters give (B, T, 1 + the longest word's characters)."""
    if isinstance(seqs[0][0], list):
        T, width = max(len(s) for s in seqs), max(2, max(len(tok) for s in seqs for tok in s))
        return torch.tensor([[tok + [value] * (width - len(tok)) for tok in s] + [[value] * width] * (T - len(s))
                             for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), max(len(s) for s in seqs)), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def batches(ids: list[list[int]], labels: list[int] | list[list[int]] | None, batch_size: int,
            shuffle: bool = False, rng: random.Random | None = None, bucket: bool = True):
    """Yield (tokens (B, T), labels (B,) or, for tag lists, (B, T) padded with IGNORE, or None,
    indices), each batch padded to its longest text.

    Unshuffled, the texts go in order of length. Shuffled with `bucket` (the bucket iterator
    of torchtext, fairseq and AllenNLP): the texts are shuffled, sorted by length within
    windows of BUCKET batches, cut into batches, and the batches shuffled, so a batch holds
    texts of similar lengths (little padding) and the order still changes each epoch.
    Shuffled without `bucket`: random batches. `rng` (default Random(0)) draws both orders."""
    index = list(range(len(ids)))
    if shuffle:
        rng = rng or random.Random(0)
        rng.shuffle(index)
        if bucket:
            window = batch_size * BUCKET
            index = [i for w in range(0, len(index), window)
                     for i in sorted(index[w: w + window], key=lambda i: len(ids[i]))]
        groups = [index[i: i + batch_size] for i in range(0, len(index), batch_size)]
        if bucket:
            rng.shuffle(groups)
    else:
        index.sort(key=lambda i: len(ids[i]))
        groups = [index[i: i + batch_size] for i in range(0, len(index), batch_size)]
    for group in groups:
        if labels is None:
            y = None
        elif isinstance(labels[group[0]], list):
            y = pad([labels[i] for i in group], IGNORE)
        else:
            y = torch.tensor([labels[i] for i in group], dtype=torch.long)
        yield pad([ids[i] for i in group]), y, group
