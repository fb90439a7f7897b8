"""The training loop before and after a change, on the CPU: the same `train.fit` runs, alternating
between two source trees, one process each, one thread each.

    git archive OLD_COMMIT src zoo search_spaces | tar -x -C /tmp/before
    python bench/loop_speed.py --before /tmp/before/src            # against this checkout's src/

Reports, per model, the mean CPU seconds of a fit (process time: steadier than wall time on a
shared machine), the tokens per second fit reports, their after/before ratios, and each run's
test accuracy (the same numbers show the change left the arithmetic alone).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CONFIGS = [
    ("kim-cnn", {"embedding.dim": 32, "encoder.stem_channels": 32, "train.epochs": 1, "train.batch_size": 32,
                 "train.lr": 1e-2}),
    ("transformer-text-tiny", {"encoder.d_model": 64, "encoder.heads": 2, "train.lr": 2e-3, "train.epochs": 1,
                               "train.batch_size": 32}),
]
ONE_FIT = """
import json, sys, time
import torch
torch.set_num_threads(1)
from rdzoo import spec
from rdzoo.text.data import load_data
from rdzoo.train import fit
s = spec.load(sys.argv[1], json.loads(sys.argv[2]))
data = load_data("synthetic")
cpu, wall = time.process_time(), time.perf_counter()
m = fit(s, data).metrics
print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                  "tokens_per_second": m["tokens_per_second"], "test_accuracy": m["test_accuracy"]}))
"""


def one_fit(src: str, name: str, overrides: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", ONE_FIT, name, json.dumps(overrides)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the src/ folder of the old tree")
    parser.add_argument("--after", default=str(Path(__file__).resolve().parents[1] / "src"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict = {}
    for r in range(args.rounds):
        for name, overrides in CONFIGS:
            order = [("before", args.before), ("after", args.after)]
            for label, src in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
                row = one_fit(src, name, overrides)
                runs.setdefault((name, label), []).append(row)
                print(json.dumps({"model": name, "tree": label, **row}), flush=True)
    rows = []
    for name, _ in CONFIGS:
        b, a = runs[(name, "before")], runs[(name, "after")]
        cpu_b, cpu_a = (statistics.mean(x["cpu"] for x in v) for v in (b, a))
        tps_b, tps_a = (statistics.mean(x["tokens_per_second"] for x in v) for v in (b, a))
        rows.append({"model": name, "rounds": args.rounds, "cpu_s_before": round(cpu_b, 3),
                     "cpu_s_after": round(cpu_a, 3), "cpu_after_over_before": round(cpu_a / cpu_b, 3),
                     "tok_s_after_over_before": round(tps_a / tps_b, 3),
                     "accuracy_before": [x["test_accuracy"] for x in b], "accuracy_after": [x["test_accuracy"] for x in a]})
    print(json.dumps({"benchmark": "loop_speed", "rows": rows}))


if __name__ == "__main__":
    main()
