"""Length-bucketed batches of padded token ids."""

from __future__ import annotations

import random

import torch

BUCKET = 50  # sort within windows of 50 batches: little padding, still well shuffled


def pad(seqs: list[list[int]]) -> torch.Tensor:
    out = torch.zeros(len(seqs), max(len(s) for s in seqs), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def batches(ids: list[list[int]], labels: list[int] | None, batch_size: int, shuffle: bool = False,
            rng: random.Random | None = None):
    """Yield (tokens (B, T), labels (B,) or None) with similar lengths in a batch."""
    index = list(range(len(ids)))
    if shuffle:
        rng = rng or random.Random(0)
        rng.shuffle(index)
        window = batch_size * BUCKET
        index = [i for w in range(0, len(index), window)
                 for i in sorted(index[w: w + window], key=lambda i: len(ids[i]))]
        groups = [index[i: i + batch_size] for i in range(0, len(index), batch_size)]
        rng.shuffle(groups)
    else:
        index.sort(key=lambda i: len(ids[i]))
        groups = [index[i: i + batch_size] for i in range(0, len(index), batch_size)]
    for group in groups:
        y = None if labels is None else torch.tensor([labels[i] for i in group], dtype=torch.long)
        yield pad([ids[i] for i in group]), y, group
