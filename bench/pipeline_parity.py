"""Two checkouts of rdzoo, one seeded search: the same trials, values, verdict and report numbers?

Runs, for each source tree, a tiny seeded search with its final stage on the synthetic data
through the command line (`rdzoo search ... --json`, then `best --json`, `report --json` and
`export --best`), trains the exported spec once more with a fixed seed and keeps its logits on
the test split. Then compares the two runs:

- every key the old JSON has is in the new one with an equal value (timings aside: latency,
  training seconds, peak memory, wall time, paths), and lists the keys only the new one has;
- the verdicts (ranking, means, sds, paired differences, calls, recommendation) are equal;
- the logits are bit-identical (torch.equal).

    python bench/pipeline_parity.py --old /tmp/old/src --new src
    python bench/pipeline_parity.py --old /tmp/old/src --new src --out bench/results/pipeline_parity.json

The old tree is another checkout's `src`, e.g. `git archive 94f95e1 | tar -x -C /tmp/old`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SPACE = """name: parity
fixed:
  embedding: {dim: 16, vocab_size: 400, max_len: 24}
  train: {epochs: 2, batch_size: 64, lr: 0.01}
choose:
  train.lr: {float: [0.003, 0.03], log: true}
  family:
    resnet:
      encoder.stem_channels: {choice: [8, 16]}
      encoder.stages: {choice: [[1], [1, 1]]}
      encoder.channels: 16
      encoder.skip: {choice: [none, residual, gated, rezero]}
    densenet:
      encoder.stem_channels: 16
      encoder.block_config: {choice: [[2], [2, 2]]}
      encoder.growth_rate: {int: [4, 12], step: 4}
"""
BASELINE = """name: parity-kim
family: resnet
embedding: {kind: word, dim: 16, max_len: 24}
encoder: {stem_channels: 16, stem_kernels: [3, 4], stages: [], channels: [], skip: none, norm: none}
head: {pool: max, dropout: 0.5}
train: {epochs: 2, batch_size: 64, lr: 0.01}
"""
# what differs from run to run whatever the code: clocks, memory, the temporary folder
TIMING = {"latency_ms", "train_seconds", "peak_memory", "seconds", "elapsed_seconds", "storage", "files", "next",
          "finished_at", "datetime_start", "run", "out", "name", "description"}
LOGITS = """
import sys, torch
from rdzoo import spec
from rdzoo.text.data import load_data
from rdzoo.train import fit
s = spec.load(sys.argv[1], ["train.seed=0"])
data = load_data("synthetic")
result = fit(s, data)
model = result.model.eval()
tokens = [result.tokenizer.encode(t) for t in data.test.texts[:200]]
from rdzoo.text.batching import pad
with torch.no_grad():
    torch.save(model(pad(tokens)), sys.argv[2])
"""


def rdzoo(src: Path, folder: Path, *args: str) -> str:
    """Run `rdzoo ARGS` with `src` first on the path; its standard output."""
    # a search without a teacher in both versions (an older one ignores RDZOO_TEACHER)
    env = {**os.environ, "PYTHONPATH": str(src.resolve()), "OMP_NUM_THREADS": "1", "COLUMNS": "200",
           "RDZOO_TEACHER": "none"}
    done = subprocess.run([sys.executable, "-m", "rdzoo.cli", *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"rdzoo {' '.join(args)} failed with {src}:\n{done.stderr[-3000:]}")
    return done.stdout


def run_version(src: Path, folder: Path, trials: int) -> dict:
    """The search's, best's and report's JSON and the retrained spec's logits file for one source tree."""
    (folder / "space.yaml").write_text(SPACE)
    (folder / "base.yaml").write_text(BASELINE)
    where = ["--storage", "sqlite:///s.db", "--study", "t"]
    search = json.loads(rdzoo(src, folder, "search", "--space", "space.yaml", "--data", "synthetic", "--trials",
                              str(trials), "--seed", "0", "--pruner", "median", "--final", "2", "--final-seeds", "2",
                              "--baseline", "base.yaml", "--timeout", "none", "--json", "--quiet", *where))
    best = json.loads(rdzoo(src, folder, "best", "--top", "100", "--json", *where))
    report = json.loads(rdzoo(src, folder, "report", "--json", *where))
    rdzoo(src, folder, "export", "--best", "-o", "rec.yaml", *where)
    env = {**os.environ, "PYTHONPATH": str(src.resolve()), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", LOGITS, "rec.yaml", "logits.pt"], cwd=folder, env=env, check=True,
                   timeout=3600)
    return {"search": search, "best": best, "report": report, "logits": folder / "logits.pt"}


def compare(old, new, path: str = "") -> tuple[list[str], list[str]]:
    """(differences, keys only the new one has) between two JSON values, timings left out."""
    diffs, added = [], []
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            if key in TIMING:
                continue
            if key not in new:
                diffs.append(f"{path}.{key}: missing in the new output")
                continue
            d, a = compare(value, new[key], f"{path}.{key}")
            diffs += d
            added += a
        added += [f"{path}.{key}" for key in new if key not in old]
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{path}: {len(old)} items, now {len(new)}"], added
        for i, (a, b) in enumerate(zip(old, new)):
            d, x = compare(a, b, f"{path}[{i}]")
            diffs += d
            added += x
    elif old != new:
        diffs.append(f"{path}: {old!r} -> {new!r}")
    return diffs, added


def main() -> None:
    """Run both trees and print (and with --out, write) what differs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the old source tree (its src folder)")
    parser.add_argument("--new", type=Path, default=Path("src"), help="the new source tree")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--out", type=Path, help="write the comparison here as JSON")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for side, src in (("old", args.old), ("new", args.new)):
            folder = Path(tmp) / side
            folder.mkdir()
            results[side] = run_version(src, folder, args.trials)
        old, new = results["old"], results["new"]
        out = {"trials": args.trials}
        for part in ("search", "best", "report"):
            diffs, added = compare(old[part], new[part], part)
            out[part] = {"differences": diffs, "added_keys": sorted(set(added))}
        out["verdict_equal"] = not compare(old["search"]["verdict"], new["search"]["verdict"])[0]
        out["recommended"] = [old["search"]["verdict"]["recommended"]["contender"],
                              new["search"]["verdict"]["recommended"]["contender"]]
        out["trial_values"] = [[r["trial"], r["dev_accuracy"]] for r in new["best"] if r["stage"] == "search"]
        out["logits_identical"] = bool(torch.equal(torch.load(old["logits"]), torch.load(new["logits"])))
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
