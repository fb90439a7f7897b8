"""Accuracy of the architecture rdzoo's search finds, per dataset, beside the published rows.

For each dataset: search the default space with its default sampler and pruner
(what `rdzoo search --trials 50 --seed 0` does), take the best trial by dev
accuracy, and report its test accuracy as the search recorded it, the search's
wall-clock time, and the test accuracy of the exported spec retrained from
scratch for `--retrain-epochs` (the 4-epoch budget of a trial is a search
setting, not a training recipe).

    python bench/search_accuracy.py                      # TREC and SST-2, 50 trials each (about 12 minutes)
    python bench/search_accuracy.py --quick              # TREC, 4 trials of 1 epoch (about 1 minute)
"""

from __future__ import annotations

import argparse
import json
import tempfile

from rdzoo import spec
from rdzoo.query import Results
from rdzoo.search import SearchConfig, run_search
from rdzoo.space import load_space
from rdzoo.train import fit

from bench_data import PUBLISHED
from bench_data import load as load_dataset


def search_best(data_name: str, data, trials: int, epochs: int | None, seed: int, tmp: str) -> tuple[dict, float]:
    storage = f"sqlite:///{tmp}/{data_name}.db"
    cfg = SearchConfig(load_space("default"), data_name, f"default-{data_name}", storage, trials=trials, seed=seed,
                       epochs=epochs)
    outcome = run_search(cfg, data)
    return Results(storage).best(cfg.study, top=1)[0], outcome["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", nargs="*", default=["trec", "sst2"], choices=["trec", "sst2"])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    args = parser.parse_args()
    epochs = None
    if args.quick:
        args.data, args.trials, args.retrain_epochs, epochs = ["trec"], 4, 1, 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for data_name in args.data:
            data = load_dataset(data_name)
            best, seconds = search_best(data_name, data, args.trials, epochs, args.seed, tmp)
            found = spec.from_dict(best["spec"]).replace([f"train.epochs={args.retrain_epochs}"])
            retrained = fit(found, data).metrics
            row = {"data": data_name, "trials": args.trials, "search_seconds": round(seconds, 1),
                   "best_trial": best["trial"], "family": best["family"], "skip": best["skip"],
                   "params": best["params"], "search_dev_accuracy": round(100 * best["dev_accuracy"], 1),
                   "search_test_accuracy": round(100 * best["test_accuracy"], 1),
                   "retrain_epochs": args.retrain_epochs,
                   "retrained_test_accuracy": round(100 * retrained["test_accuracy"], 1),
                   "retrained_dev_accuracy": round(100 * retrained["dev_accuracy"], 1),
                   "retrain_seconds": round(retrained["train_seconds"], 1), "published": PUBLISHED[data_name],
                   "spec": found.to_dict()}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"benchmark": "search_accuracy", "rows": rows}))


if __name__ == "__main__":
    main()
