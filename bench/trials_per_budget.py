"""Trials a search finishes in a fixed budget: this checkout against an older one, side by side.

    python bench/trials_per_budget.py --data trec --budget 8m --old 06c7555 --variants none teacher

Each pair runs `rdzoo search --trials 50 --no-final --seed 0 --timeout BUDGET` at once, one
process a core (taskset, one thread each; `--cores 0 0` puts both on one core, which they
share), each in a fresh folder: the old code (a git
worktree of the revision `--old`, made under bench/out/old-REV if missing) and this checkout
with `--teacher none` (`none`) or with the default teacher already fine-tuned and kept
(`teacher`: `--teacher-dir` names a folder that holds it, e.g. the main job's `teachers/`, so
the budget is the students', as in a rerun). Both read the same clock, so the ratio of their
finished trials is the figure; the counts alone depend on the machine. Each row (one search)
goes to bench/results/trials_per_budget.jsonl: finished trials (complete, pruned), failures,
the start models among them, and the wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN = "import sys; from rdzoo.cli import main; sys.argv[0] = 'rdzoo'; main()"


def old_tree(rev: str) -> Path:
    """A worktree of `rev` under bench/out (made once)."""
    tree = HERE / "out" / f"old-{rev}"
    if not (tree / "src").is_dir():
        subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", str(tree), rev], check=True)
    return tree


def start(src: Path, folder: Path, args: list[str], core: int | None) -> subprocess.Popen:
    """`rdzoo search ARGS` from `src` in `folder`, on one core with one thread."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pin = ["taskset", "-c", str(core)] if core is not None and sys.platform.startswith("linux") else []
    return subprocess.Popen([*pin, sys.executable, "-c", RUN, "search", *args], cwd=folder, env=env,
                            stdout=open(folder / "out.txt", "w"), stderr=open(folder / "err.txt", "w"))


def counts(db: Path) -> dict:
    """Trials by state, and how many of the finished ones were start models (user attr `start`)."""
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM trials GROUP BY state").fetchall())
        starts = conn.execute("SELECT COUNT(DISTINCT t.trial_id) FROM trials t JOIN trial_user_attributes a "
                              "ON a.trial_id = t.trial_id WHERE a.key = 'start' AND t.state IN "
                              "('COMPLETE', 'PRUNED')").fetchone()[0]
    return {"complete": states.get("COMPLETE", 0), "pruned": states.get("PRUNED", 0),
            "failed": states.get("FAIL", 0), "finished": states.get("COMPLETE", 0) + states.get("PRUNED", 0),
            "start_models": starts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="trec")
    parser.add_argument("--budget", default="8m", help="--timeout of every search")
    parser.add_argument("--old", default="06c7555", help="the older revision")
    parser.add_argument("--variants", nargs="+", default=["none"], choices=["none", "teacher"],
                        help="this checkout's runs, each beside one run of the old code")
    parser.add_argument("--teacher-dir", default=None, help="for `teacher`: a folder holding the kept teacher")
    parser.add_argument("--cores", type=int, nargs=2, default=[0, 1],
                        help="the cores of the old and the new run (the same core twice: they share it)")
    parser.add_argument("--results", default=str(HERE / "results" / "trials_per_budget.jsonl"))
    args = parser.parse_args()

    common = ["--data", args.data, "--trials", "50", "--no-final", "--seed", "0", "--timeout", args.budget,
              "--quiet", "--storage", "sqlite:///s.db"]
    trees = {"old": old_tree(args.old) / "src", "new": HERE.parent / "src"}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for variant in args.variants:
        if variant == "teacher" and args.teacher_dir is None:
            parser.error("--variants teacher needs --teacher-dir (a folder holding the kept teacher)")
        new_args = ["--teacher", "none"] if variant == "none" else \
            ["--teacher-dir", str(Path(args.teacher_dir).resolve())]
        runs = {"old": (trees["old"], common), "new": (trees["new"], [*common, *new_args])}
        folders = {k: HERE / "out" / "trials_per_budget" / f"{stamp}-{args.data}-{variant}-{k}" for k in runs}
        began = time.perf_counter()
        procs = {k: start(src, folders[k], a, core) for core, (k, (src, a)) in zip(args.cores, runs.items())}
        walls = {}
        while len(walls) < len(procs):
            for k, p in procs.items():
                if k not in walls and p.poll() is not None:
                    walls[k] = round(time.perf_counter() - began, 1)
            time.sleep(1)
        rows = []
        for k in runs:
            row = {"part": "trials_per_budget", "data": args.data, "budget": args.budget, "pair": variant,
                   "code": k if k == "new" else f"old {args.old}", "teacher": variant == "teacher" and k == "new",
                   "exit": procs[k].returncode, "wall_seconds": walls[k], **counts(folders[k] / "s.db"),
                   "threads": 1, "cores": args.cores, "date": time.strftime("%Y-%m-%d")}
            rows.append(row)
            print(json.dumps(row), flush=True)
        with open(args.results, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        old, new = rows
        print(f"{args.data} {variant}: new finished {new['finished']} trials, old {old['finished']} "
              f"(ratio {new['finished'] / max(old['finished'], 1):.2f}) in --timeout {args.budget}")


if __name__ == "__main__":
    main()
