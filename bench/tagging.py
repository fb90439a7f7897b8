"""Part-of-speech tagging on UD English EWT: the three families as word-level taggers.

Each zoo model is trained from scratch on ../shared/datasets/ud-ewt with its own
spec, a tag for every word (`head.pool: token`, which tagging data picks), a
character CNN on each word's spelling (`embedding.char_dim: 30`) beside its
lowercased word vector, the words seen once left to `<unk>`, and room for the
longest sentence; one after another in one process. Prints UPOS accuracy over
words beside the reference rows of the dataset's README and the
most-frequent-tag baseline.

    python bench/tagging.py                       # four models, about 25 minutes on 2 cores
    python bench/tagging.py --models kim-cnn --epochs 2
    python bench/tagging.py --words-only          # word vectors alone, case kept (no character CNN)
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from rdzoo import spec
from rdzoo.text.data import load_data
from rdzoo.train import fit

UD_EWT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "ud-ewt"
# UPOS accuracy (%) from ../shared/datasets/ud-ewt/README.md
PUBLISHED = {"logistic regression on hand features (dev)": 94.2, "BERT-base fine-tuned (dev)": 97.4,
             "spaCy transformer pipeline (test)": 96.9}
MODELS = ["kim-cnn", "resnet-sent", "densenet-sent", "transformer-sent"]
TAGGING = ["embedding.min_freq=2", "embedding.max_len=160", "embedding.char_dim=30"]
WORDS_ONLY = ["embedding.lowercase=false", "embedding.min_freq=2", "embedding.max_len=160"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--words-only", action="store_true")
    args = parser.parse_args()
    data = load_data(UD_EWT)
    train_tags = Counter(t for tags in data.train.labels for t in tags)
    majority = train_tags.most_common(1)[0][0]
    test_tags = [t for tags in data.test.labels for t in tags]
    rows = []
    for name in args.models:
        overrides = WORDS_ONLY if args.words_only else TAGGING
        s = spec.load(name, overrides + ([f"train.epochs={args.epochs}"] if args.epochs else []))
        m = fit(s, data).metrics
        rows.append({"model": name, "family": s.family, "skip": s.skip, "data": "ud-ewt", "overrides": overrides,
                     "test_accuracy": round(100 * m["test_accuracy"], 2), "dev_accuracy": round(100 * m["dev_accuracy"], 2),
                     "macro_f1": round(100 * m["macro_f1"], 1), "epochs": m["epochs"],
                     "train_seconds": round(m["train_seconds"], 1), "tokens_per_second": m["tokens_per_second"],
                     "params": m["params"]})
        print(json.dumps(rows[-1]), flush=True)
    baseline = round(100 * sum(t == majority for t in test_tags) / len(test_tags), 2)
    print(json.dumps({"benchmark": "tagging", "published": PUBLISHED,
                      "most_frequent_tag": {"tag": majority, "test_accuracy": baseline}, "rows": rows}))


if __name__ == "__main__":
    main()
