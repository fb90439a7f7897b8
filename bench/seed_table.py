"""The ten-seed TREC table and each model's paired difference from Kim's CNN.

Reads what `python bench/accuracy.py --seeds ...` wrote to bench/results/accuracy_seeds*.jsonl
(a later line for the same model and seed replaces an earlier one) and prints, per model,
the mean and standard deviation of test accuracy, then the mean and spread of its difference
from `kim-cnn` on the same seeds with the paired t statistic. The seed also draws the dev
split, so pairing by seed compares models trained on the same examples.

    python bench/seed_table.py
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
BASELINE = "kim-cnn"


def load(data: str = "trec") -> dict[str, dict[int, float]]:
    accuracy: dict[str, dict[int, float]] = {}
    for path in sorted(RESULTS.glob("accuracy_seeds*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("data") == data and "test_accuracies" in row:
                accuracy.setdefault(row["model"], {}).update(zip(row["seeds"], row["test_accuracies"]))
    return accuracy


def main():
    accuracy = load()
    base = accuracy[BASELINE]
    print(f"| model | seeds | test mean | sd | difference from {BASELINE} (mean, sd) | paired t |")
    print("|---|---|---|---|---|---|")
    for model, runs in accuracy.items():
        values = [runs[s] for s in sorted(runs)]
        row = f"| `{model}` | {len(values)} | {statistics.mean(values):.1f} | {statistics.stdev(values):.1f} |"
        if model == BASELINE:
            print(row + " - | - |")
            continue
        seeds = sorted(set(runs) & set(base))
        diffs = [runs[s] - base[s] for s in seeds]
        sd = statistics.stdev(diffs)
        t = statistics.mean(diffs) / (sd / math.sqrt(len(diffs))) if sd else float("inf")
        print(row + f" {statistics.mean(diffs):+.2f}, {sd:.2f} | {t:.2f} (df {len(diffs) - 1}) |")


if __name__ == "__main__":
    main()
