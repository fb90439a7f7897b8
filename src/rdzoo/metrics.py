"""Classification metrics. Written out because they are a few lines each and
scikit-learn would be a large dependency for two functions. Tag lists (one a
text) are scored over their words."""

from __future__ import annotations

from collections import Counter


def flat(seqs: list) -> list:
    return [x for s in seqs for x in s] if seqs and isinstance(seqs[0], list) else seqs


def accuracy(gold: list, pred: list) -> float:
    gold, pred = flat(gold), flat(pred)
    return sum(g == p for g, p in zip(gold, pred)) / max(len(gold), 1)


def macro_f1(gold: list, pred: list, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or pred."""
    gold, pred = flat(gold), flat(pred)
    tp = Counter(g for g, p in zip(gold, pred) if g == p)
    fp = Counter(p for g, p in zip(gold, pred) if g != p)
    fn = Counter(g for g, p in zip(gold, pred) if g != p)
    scores = [2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]) for c in range(num_classes) if tp[c] + fp[c] + fn[c]]
    return sum(scores) / max(len(scores), 1)
