"""Held-out parts of a data set, seeded: a test split held out of one file (`split_off`), the
dev split training holds out of train (`dev_note` says so; `data_report` adds it to the loader's report), and K cross-validation folds of the
training split (`kfold`).
"""

from __future__ import annotations

import random
from dataclasses import replace

from ..errors import DataError
from .dataset import Split, TextData, label_set


def split_off(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """A seeded random (rest, held-out) split with `fraction` held out."""
    index = list(range(len(split)))
    random.Random(seed).shuffle(index)
    n_out = max(1, round(len(index) * fraction))
    return split.subset(sorted(index[n_out:])), split.subset(sorted(index[:n_out]))


def data_report(data: TextData, train_cfg=None) -> dict:
    """What the loader did (lines not UTF-8, lines skipped, splits held out), for a command's --json;
    with a spec's train settings (`spec.Train`), the dev split that training holds out too."""
    report = data.report()
    if train_cfg is not None:
        report["notes"] += dev_note(data, train_cfg.dev_fraction, train_cfg.seed)
    return report


def dev_note(data: TextData, fraction: float, seed: int) -> list[str]:
    """The split training makes when the data has no dev split (train.dev_fraction of train, seeded)."""
    if data.dev is not None and len(data.dev):
        return []
    n = max(1, round(len(data.train) * fraction))
    return [f"no dev split: training holds out {n} of {len(data.train)} training examples as dev (seed {seed})"]


def kfold(data: TextData, k: int, seed: int = 0) -> list[TextData]:
    """K train/test folds of the training split (the MR/Subj/CR/MPQA protocol), seeded; each fold
    has no dev split. Labelled texts are stratified (scikit-learn's StratifiedKFold): each class's
    examples, shuffled, are dealt to the folds in turn, so a class of n >= 2 examples is in the
    training part of every fold that tests on it. Every fold is checked before any is trained on.

    Raises DataError unless 2 <= k <= the number of training examples, for a class with a single
    example, or (tagged data, whose sentences are not stratified) a fold whose test sentences hold a
    tag that its training part lacks."""
    if not 2 <= k <= len(data.train):
        raise DataError(f"cannot cross-validate with {k} folds: the training split has {len(data.train)} examples "
                        f"(2 <= K <= {len(data.train)})", "k")
    index = list(range(len(data.train)))
    random.Random(seed).shuffle(index)
    if not data.tagging:
        by_class: dict[str, list[int]] = {}
        for i in index:
            by_class.setdefault(data.train.labels[i], []).append(i)
        single = sorted(c for c, members in by_class.items() if len(members) == 1)
        if single:
            raise DataError(f"cannot cross-validate: class(es) {', '.join(map(repr, single[:5]))} have a single "
                            "example in the training split; each fold trains on the other folds' examples, so "
                            "every class needs at least 2 (leave those lines out, or add examples)", "k")
        index = [i for c in sorted(by_class) for i in by_class[c]]  # dealt in turn: each class over the folds
    folds = [sorted(index[i::k]) for i in range(k)]
    out = []
    for i, held in enumerate(folds):
        rest = sorted(j for f, fold in enumerate(folds) if f != i for j in fold)
        fold = replace(data, name=f"{data.name} (fold {i + 1}/{k})", train=data.train.subset(rest),
                       dev=None, test=data.train.subset(held))
        unseen = sorted(label_set(fold.test) - label_set(fold.train))
        if unseen:
            raise DataError(f"cannot cross-validate with {k} folds (seed {seed}): fold {i + 1} tests on "
                            f"{'tag' if data.tagging else 'label'}(s) {', '.join(map(repr, unseen[:5]))} that its "
                            "training part lacks; use fewer folds or another seed", "k")
        out.append(fold)
    return out
