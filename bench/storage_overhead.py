"""Storage overhead: rdzoo's per-trial bookkeeping over Optuna's own, side by side.

Runs trials whose objective does no work, twice on fresh SQLite databases with the
same storage settings rdzoo uses (WAL, heartbeats): once with Optuna alone, once
with rdzoo's bookkeeping (the target check, the trial's worker and result
attributes, and the results-table row written from the trial callback). Reports
milliseconds per trial for each and the difference.

    python bench/storage_overhead.py            # 300 trials each, 3 repeats
    python bench/storage_overhead.py --quick    # 60 trials each, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import optuna

from rdzoo.nas import SearchConfig
from rdzoo.nas.loop import quiet_optuna
from rdzoo.nas.objective import Objective
from rdzoo.records import ACCURACY, TrialRecord
from rdzoo.space import load_space
from rdzoo.storage import make_storage
from rdzoo.store import Store

INFO = {"family": "resnet", "skip": "residual", "spec": {"family": "resnet", "encoder": {"stages": [1, 1]}},
        "params": 123456, "flops": 7890000, "latency_ms": 3.2, "dev_accuracy": 0.9, "test_accuracy": 0.89,
        "macro_f1": 0.88, "train_seconds": 4.2, "epochs": 4}


def run(url: str, trials: int, bookkeeping: bool) -> float:
    storage = make_storage(url)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study_id = storage.get_study_id_from_name("s")
    cfg = SearchConfig(load_space("default"), "none", "s", url, trials=10**9)
    objective = Objective(cfg, None, ACCURACY)
    store = Store.open(url, create=True) if bookkeeping else None

    def plain(trial):
        return trial.suggest_float("x", 0, 1)

    def ours(trial):
        objective._check_target(trial)
        trial.set_user_attr("rdzoo", INFO)
        return trial.suggest_float("x", 0, 1)

    def record(study_, frozen):  # as the search's trial callback writes a row
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        store.record(TrialRecord.from_trial(frozen, study=study_.study_name, study_id=study_id, trial_id=trial_id))

    start = time.perf_counter()
    if bookkeeping:
        study.optimize(ours, n_trials=trials, callbacks=[record])
    else:
        study.optimize(plain, n_trials=trials)
    return (time.perf_counter() - start) / trials * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    trials, repeats = (60, 1) if args.quick else (300, 3)
    quiet_optuna()
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # interleaved, so load drifts hit both alike
            plain.append(run(f"sqlite:///{tmp}/plain{i}.db", trials, False))
            ours.append(run(f"sqlite:///{tmp}/ours{i}.db", trials, True))
    result = {"benchmark": "storage_overhead", "trials": trials, "repeats": repeats,
              "optuna_ms_per_trial": round(statistics.median(plain), 2),
              "rdzoo_ms_per_trial": round(statistics.median(ours), 2),
              "overhead_ms_per_trial": round(statistics.median(ours) - statistics.median(plain), 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
