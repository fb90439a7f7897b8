"""Query and start-up latency: `rdzoo best` against Optuna's own route to the same answer.

Builds databases of 1k, 10k and 100k finished trials in bulk (real Optuna tables
written through SQL inserts, plus rdzoo's results table), then times, side by side:

- `rdzoo best --top 10 --family densenet` end to end (a new process, as a user runs it),
  and the same query in-process (`rdzoo.query.Results(url).best(...)`), like for like
  with Optuna's in-process route;
- Optuna's route in-process: `optuna.load_study` + `get_trials`, filter on the family,
  sort by value; and `trials_dataframe()` + the same filter and sort;
- `rdzoo --help` and `rdzoo list` start-up against `python -c "import torch"`.

    python bench/query_speed.py            # 1k, 10k, 100k trials
    python bench/query_speed.py --quick    # 1k and 10k
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAMILIES = ("resnet", "densenet", "transformer")


def build_db(path: Path, n: int) -> str:
    """A study of n finished trials, written in bulk."""
    import optuna
    import sqlalchemy as sa

    from rdzoo.storage import make_storage
    from rdzoo.store import Store, results

    url = f"sqlite:///{path}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(url)
    optuna.create_study(study_name="bench", storage=storage, direction="maximize")
    study_id = storage.get_study_id_from_name("bench")
    rng = random.Random(0)
    store = Store.open(url, create=True)
    now = datetime.datetime.now()
    trials, values, params, attrs, rows = [], [], [], [], []
    dist = {"family": json.dumps({"name": "CategoricalDistribution", "attributes": {"choices": list(FAMILIES)}}),
            "lr": json.dumps({"name": "FloatDistribution", "attributes": {"log": True, "step": None, "low": 1e-4, "high": 1e-2}})}
    for i in range(n):
        tid = i + 1
        family = rng.choice(FAMILIES)
        acc, p, lr = rng.random(), rng.randint(10**5, 10**7), 10 ** rng.uniform(-4, -2)
        info = {"family": family, "skip": "dense" if family == "densenet" else "residual", "params": p,
                "dev_accuracy": acc, "spec": {"family": family, "encoder": {"layers": 2}}}
        trials.append({"trial_id": tid, "number": i, "study_id": study_id, "state": "COMPLETE",
                       "datetime_start": now, "datetime_complete": now})
        values.append({"trial_id": tid, "objective": 0, "value": acc, "value_type": "FINITE"})
        params.append({"trial_id": tid, "param_name": "family", "param_value": float(FAMILIES.index(family)),
                       "distribution_json": dist["family"]})
        params.append({"trial_id": tid, "param_name": "lr", "param_value": lr, "distribution_json": dist["lr"]})
        attrs.append({"trial_id": tid, "key": "rdzoo", "value_json": json.dumps(info)})
        rows.append({"study": "bench", "study_id": study_id, "trial": i, "trial_id": tid, "datetime_start": now,
                     "state": "COMPLETE", "family": family,
                     "skip": info["skip"], "spec": json.dumps(info["spec"]), "params": p, "dev_accuracy": acc,
                     "test_accuracy": acc, "finished_at": time.time()})
    md = sa.MetaData()
    md.reflect(store.engine, only=["trials", "trial_values", "trial_params", "trial_user_attributes"])
    with store.engine.begin() as conn:
        conn.execute(md.tables["trials"].insert(), trials)
        conn.execute(md.tables["trial_values"].insert(), values)
        conn.execute(md.tables["trial_params"].insert(), params)
        conn.execute(md.tables["trial_user_attributes"].insert(), attrs)
        conn.execute(results.insert(), rows)
    store.engine.dispose()
    # a search commits trial by trial and SQLite checkpoints as it goes; one bulk insert leaves the WAL to fold in
    import sqlite3

    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return url


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def optuna_get_trials(url):
    import optuna

    study = optuna.load_study(study_name="bench", storage=url)
    trials = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
              if t.params.get("family") == "densenet"]
    return sorted(trials, key=lambda t: t.value, reverse=True)[:10]


def optuna_dataframe(url):
    import optuna

    df = optuna.load_study(study_name="bench", storage=url).trials_dataframe()
    df = df[(df["state"] == "COMPLETE") & (df["params_family"] == "densenet")]
    return df.sort_values("value", ascending=False).head(10)


def command(*args):
    return lambda: subprocess.run(args, check=True, capture_output=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [1000, 10000] if args.quick else [1000, 10000, 100000]
    rdzoo = [sys.executable, "-m", "rdzoo.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"{n}.db"
            start = time.perf_counter()
            url = build_db(path, n)
            built = time.perf_counter() - start
            ours = timed(command(*rdzoo, "best", "--top", "10", "--family", "densenet", "--storage", url, "--json"), 5)
            from rdzoo.query import Results

            in_process = timed(lambda: Results(url).best("bench", top=10, family="densenet"), 5)
            theirs = timed(lambda: optuna_get_trials(url), 3 if n < 100000 else 1)
            try:
                import pandas  # noqa: F401

                frame = timed(lambda: optuna_dataframe(url), 3 if n < 100000 else 1)
            except ImportError:
                frame = None
            row = {"trials": n, "build_seconds": round(built, 1), "rdzoo_best_seconds": round(ours, 3),
                   "rdzoo_query_in_process_seconds": round(in_process, 5),
                   "speedup_in_process": round(theirs / in_process),
                   "optuna_get_trials_seconds": round(theirs, 3),
                   "optuna_dataframe_seconds": round(frame, 3) if frame else None,
                   "speedup_vs_get_trials": round(theirs / ours, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        startup = {"rdzoo --help": timed(command(*rdzoo, "--help"), 5),
                   "rdzoo list": timed(command(*rdzoo, "list"), 5),
                   "python -c 'import torch'": timed(command(sys.executable, "-c", "import torch"), 5)}
        startup = {k: round(v, 3) for k, v in startup.items()}
        print(json.dumps(startup), flush=True)
    print(json.dumps({"benchmark": "query_speed", "rows": rows, "startup_seconds": startup}))


if __name__ == "__main__":
    main()
