"""Accuracy of zoo models trained from scratch, beside the published CNN-rand rows.

Trains each model with its own spec's settings on the built-in TREC-6 (and Kim's
CNN on SST-2 from ../shared/datasets), one after another in one process, and
prints test accuracy, macro-F1, training time and training tokens per second.

    python bench/accuracy.py             # the full table (about 10 minutes on 2 cores)
    python bench/accuracy.py --quick     # Kim's CNN on TREC for 3 epochs (~15 s)
    python bench/accuracy.py --seeds 0 1 2 --models kim-cnn:trec transformer-sent:trec   # mean and spread over seeds

With --seeds each model trains once per seed (the seed also draws the dev split)
and the row reports the mean test accuracy with the lowest and highest run.
"""

from __future__ import annotations

import argparse
import json
import statistics

from rdzoo import spec
from rdzoo.train import fit

from bench_data import PUBLISHED
from bench_data import load as load_dataset

FULL = [("kim-cnn", "trec"), ("resnet-sent", "trec"), ("densenet-sent", "trec"), ("densenet-sent-char", "trec"),
        ("transformer-sent", "trec"),
        ("resnet-text-18", "trec"), ("densenet-text-tiny", "trec"), ("transformer-text-tiny", "trec"),
        ("kim-cnn", "sst2")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", nargs="*", help="name:data pairs, e.g. kim-cnn:trec")
    parser.add_argument("--seeds", type=int, nargs="*", help="train once per seed instead of with the spec's own")
    args = parser.parse_args()
    runs = [tuple(m.split(":")) for m in args.models] if args.models else FULL
    if args.quick:
        runs = [("kim-cnn", "trec")]
    datasets = {}
    rows = []
    for name, data in runs:
        if data not in datasets:
            datasets[data] = load_dataset(data)
        s = spec.load(name, ["train.epochs=3"] if args.quick else [])
        if args.seeds:
            rows.append(seed_row(s, name, data, datasets[data], args.seeds))
            print(json.dumps(rows[-1]), flush=True)
            continue
        m = fit(s, datasets[data]).metrics
        row = {"model": name, "family": s.family, "skip": s.skip, "data": data,
               "test_accuracy": round(100 * m["test_accuracy"], 1), "macro_f1": round(100 * m["macro_f1"], 1),
               "dev_accuracy": round(100 * m["dev_accuracy"], 1), "epochs": m["epochs"],
               "train_seconds": round(m["train_seconds"], 1), "tokens_per_second": m["tokens_per_second"],
               "params": m["params"], "cnn_rand": PUBLISHED[data]["CNN-rand (Kim 2014)"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"benchmark": "accuracy", "published": PUBLISHED, "rows": rows}))


def seed_row(s, name: str, data_name: str, data, seeds: list[int]) -> dict:
    tests, devs, seconds = [], [], []
    for seed in seeds:
        m = fit(spec.load(s, [f"train.seed={seed}"]), data).metrics
        tests.append(round(100 * m["test_accuracy"], 1))
        devs.append(round(100 * m["dev_accuracy"], 1))
        seconds.append(m["train_seconds"])
    return {"model": name, "family": s.family, "skip": s.skip, "data": data_name, "seeds": seeds,
            "test_accuracy_mean": round(statistics.mean(tests), 2), "test_accuracy_min": min(tests),
            "test_accuracy_max": max(tests), "test_accuracies": tests, "dev_accuracy_mean": round(statistics.mean(devs), 2),
            "train_seconds_median": round(statistics.median(seconds), 1),
            "cnn_rand": PUBLISHED[data_name]["CNN-rand (Kim 2014)"]}


if __name__ == "__main__":
    main()
