"""Training batches: bucketed by length (`train.bucket: true`, the default) or random
(`false`), both seeded."""

import random

import pytest

from rdzoo import spec
from rdzoo.errors import SpecError
from rdzoo.text import batching
from rdzoo.text.batching import batches
from rdzoo.text.data import TextData, load_data
from rdzoo.train import fit


def lengths_and_ids(n: int = 1000, seed: int = 3) -> list[list[int]]:
    draw = random.Random(seed)
    return [[1] * draw.randint(1, 60) for _ in range(n)]


def groups(ids, batch_size, seed, **kwargs):
    return [g for _, _, g in batches(ids, None, batch_size, shuffle=True, rng=random.Random(seed), **kwargs)]


def padding(ids, gs) -> int:
    """Padding positions over all batches: each batch is as long as its longest text."""
    return sum(max(len(ids[i]) for i in g) * len(g) - sum(len(ids[i]) for i in g) for g in gs)


def test_the_default_batches_are_the_bucket_iterator_unchanged():
    """Shuffle, sort within windows of BUCKET batches, cut, shuffle the batches: the order
    training has always drawn for a seed."""
    ids, size = lengths_and_ids(), 16
    for seed in (0, 1):
        rng = random.Random(seed)
        index = list(range(len(ids)))
        rng.shuffle(index)
        window = size * batching.BUCKET
        index = [i for w in range(0, len(index), window)
                 for i in sorted(index[w: w + window], key=lambda i: len(ids[i]))]
        expected = [index[i: i + size] for i in range(0, len(index), size)]
        rng.shuffle(expected)
        assert groups(ids, size, seed) == expected == groups(ids, size, seed, bucket=True)


def test_unbucketed_batches_are_random_seeded_and_pad_more():
    ids, size = lengths_and_ids(), 16
    plain = groups(ids, size, 0, bucket=False)
    index = list(range(len(ids)))
    random.Random(0).shuffle(index)
    assert plain == [index[i: i + size] for i in range(0, len(index), size)]
    assert plain == groups(ids, size, 0, bucket=False) != groups(ids, size, 1, bucket=False)
    assert sorted(i for g in plain for i in g) == list(range(len(ids)))
    # texts of mixed lengths share a batch: several times the padding of bucketed ones
    assert padding(ids, plain) > 5 * padding(ids, groups(ids, size, 0))


def test_train_bucket_is_a_checked_spec_key_and_changes_only_the_batches(monkeypatch):
    assert spec.load("kim-cnn").train.bucket is True
    assert spec.load("kim-cnn", {"train.bucket": False}).train.bucket is False
    with pytest.raises(SpecError, match="train.bucket"):
        spec.load("kim-cnn", {"train.bucket": "sometimes"})
    data = load_data("synthetic")
    data = TextData("small", data.train.__class__(data.train.texts[:300], data.train.labels[:300]), data.dev, None)
    seen = []
    real = batching.batches

    def spy(*args, **kwargs):
        seen.append(kwargs.get("bucket"))
        return real(*args, **kwargs)

    monkeypatch.setattr("rdzoo.train.batches", spy)
    small = {"embedding.dim": 16, "encoder.stem_channels": 16, "train.epochs": 1, "train.batch_size": 32}
    bucketed = fit(spec.load("kim-cnn", small), data)
    assert seen[0] is True
    seen.clear()
    plain = fit(spec.load("kim-cnn", {**small, "train.bucket": False}), data)
    assert seen[0] is False
    assert plain.history[0]["loss"] != bucketed.history[0]["loss"]  # other batches, same data and seed
