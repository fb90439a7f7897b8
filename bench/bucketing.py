"""Length-bucketed batches (`train.bucket: true`, the default) against random ones (`false`):
seconds per epoch and test accuracy, side by side, on the CPU with one thread.

    nice python bench/bucketing.py                      # writes bench/results/bucketing.jsonl

Each (model, data, seed) trains twice, once each way, in a fresh process each (the order
alternates by seed); a run records the CPU seconds (process time: steadier than wall time
on a shared machine) and wall seconds of each epoch (the first includes building the
vocabulary, the same both ways), the share of padding positions in one epoch of its batches
(drawn as seed 0 draws them), and its test accuracy. The summary gives, per model and data, the CPU seconds per epoch both ways,
their ratio (bucketed / random), and the paired test accuracy difference (bucketed - random)
over the seeds, then the mean and standard deviation of those differences over all pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

MODELS = ["kim-cnn", "densenet-sent", "transformer-sent"]
DATA = ["trec", "sst2"]
ONE_FIT = """
import json, sys, time
import torch
torch.set_num_threads(1)
from rdzoo import spec
from rdzoo.text.batching import batches
from rdzoo.text.data import load_data
from rdzoo.train import fit
name, data_name, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
s = spec.load(name, overrides)
data = load_data(data_name)
marks = [(time.process_time(), time.perf_counter())]
result = fit(s, data, on_epoch=lambda epoch, score: marks.append((time.process_time(), time.perf_counter())))
cpu = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
wall = [b[1] - a[1] for a, b in zip(marks, marks[1:])]
# the padding of one epoch's batches as the loop draws them (its ids and batch size, the order of seed 0)
ids = result.tokenizer.encode_batch(list(data.train.texts))
real = padded = 0
for tokens, _, _ in batches(ids, None, s.train.batch_size, shuffle=True, bucket=s.train.bucket):
    words = tokens[..., 0] if tokens.dim() == 3 else tokens
    real += int((words != 0).sum())
    padded += words.numel()
print(json.dumps({"cpu_epochs": cpu, "wall_epochs": wall, "padding": 1 - real / padded,
                  "test_accuracy": result.metrics["test_accuracy"], "dev_accuracy": result.metrics["dev_accuracy"]}))
"""


def one_fit(src: str, name: str, data: str, overrides: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", ONE_FIT, name, data, json.dumps(overrides)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(rows: list[dict]) -> dict:
    """Per (model, data): CPU s/epoch both ways, their ratio, the paired accuracy differences."""
    table, diffs = [], []
    for model in MODELS:
        for data in DATA:
            runs = {(r["seed"], r["bucket"]): r for r in rows if r["model"] == model and r["data"] == data}
            seeds = sorted({seed for seed, _ in runs if (seed, True) in runs and (seed, False) in runs})
            if not seeds:
                continue
            per_epoch = {b: statistics.mean(statistics.mean(runs[(s, b)]["cpu_epochs"]) for s in seeds)
                         for b in (True, False)}
            wall = {b: statistics.mean(statistics.mean(runs[(s, b)]["wall_epochs"]) for s in seeds)
                    for b in (True, False)}
            d = [runs[(s, True)]["test_accuracy"] - runs[(s, False)]["test_accuracy"] for s in seeds]
            diffs += d
            table.append({"model": model, "data": data, "seeds": seeds,
                          "cpu_s_epoch_bucketed": round(per_epoch[True], 2),
                          "cpu_s_epoch_random": round(per_epoch[False], 2),
                          "cpu_ratio": round(per_epoch[True] / per_epoch[False], 3),
                          "wall_ratio": round(wall[True] / wall[False], 3),
                          "padding_bucketed": round(statistics.mean(runs[(s, True)]["padding"] for s in seeds), 3),
                          "padding_random": round(statistics.mean(runs[(s, False)]["padding"] for s in seeds), 3),
                          "test_acc_bucketed": [runs[(s, True)]["test_accuracy"] for s in seeds],
                          "test_acc_random": [runs[(s, False)]["test_accuracy"] for s in seeds],
                          "acc_diff": [round(x, 4) for x in d]})
    return {"benchmark": "bucketing", "rows": table, "pairs": len(diffs),
            "acc_diff_mean": round(statistics.mean(diffs), 4) if diffs else None,
            "acc_diff_sd": round(statistics.stdev(diffs), 4) if len(diffs) > 1 else None,
            "cpu_ratio_mean": round(statistics.mean(r["cpu_ratio"] for r in table), 3) if table else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--data", nargs="+", default=DATA)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "bucketing.jsonl"))
    parser.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"))
    args = parser.parse_args()
    rows = []
    with open(args.out, "w") as out:
        for seed in args.seeds:
            for model in args.models:
                for data in args.data:
                    order = [True, False] if seed % 2 == 0 else [False, True]  # alternate who goes first
                    for bucket in order:
                        overrides = {"train.epochs": args.epochs, "train.seed": seed, "train.bucket": bucket}
                        row = {"model": model, "data": data, "seed": seed, "bucket": bucket, "epochs": args.epochs,
                               **one_fit(args.src, model, data, overrides)}
                        rows.append(row)
                        out.write(json.dumps(row) + "\n")
                        out.flush()
                        print(json.dumps(row), flush=True)
        summary = summarize(rows)
        out.write(json.dumps(summary) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
