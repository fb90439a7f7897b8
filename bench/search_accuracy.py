"""Does the search's answer beat the zoo? The default search with its final stage, per dataset.

For each dataset this does what `rdzoo search --trials 50 --seed 0` does (the
default space, which starts from the zoo's sentence models; TPE; Hyperband over
epochs; then the final stage: the 3 best distinct architectures and `kim-cnn`
retrained with seeds 1-3), and then trains the zoo's other sentence models
(`*-sent`) with the same seeds, so that the recommended model is compared,
paired by seed, with `kim-cnn` and with every `*-sent` model (the best of them
chosen by mean dev accuracy, as a user without the test set would choose).

    python bench/search_accuracy.py                               # TREC and SST-2, one after the other
    python bench/search_accuracy.py --data trec --timeout none    # all 50 trials, however long they take
    python bench/search_accuracy.py --quick                       # TREC, 4 trials of 1 epoch, 1 seed (plumbing)

The study database is kept (`--storage-dir`, default bench/out/search_db/, ignored by git),
so an interrupted run resumes where it stopped. One JSON line per dataset goes
to stdout and to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from statistics import mean, stdev

sys.path.insert(0, str(Path(__file__).resolve().parent))

SENT = ("resnet-sent", "densenet-sent", "densenet-sent-char", "transformer-sent")


def load_dataset(name: str, sst2: str | None):
    """A built-in dataset by name, or the SST-2 folder given with --sst2."""
    from rdzoo.text.data import load_data

    return load_data(Path(sst2) if name == "sst2" and sst2 else name)


def paired(a: dict[int, dict], b: dict[int, dict]) -> dict:
    """Mean and sd of a - b over the seeds both ran (test and dev accuracy, in points)."""
    seeds = sorted(set(a) & set(b))
    out = {"n": len(seeds)}
    for metric in ("test", "dev"):
        d = [100 * (a[s][f"{metric}_accuracy"] - b[s][f"{metric}_accuracy"]) for s in seeds]
        out[f"{metric}_diff"] = round(mean(d), 2) if d else None
        out[f"{metric}_diff_sd"] = round(stdev(d), 2) if len(d) > 1 else None
    return out


def summary(runs: dict[int, dict]) -> dict:
    test = [100 * r["test_accuracy"] for r in runs.values()]
    dev = [100 * r["dev_accuracy"] for r in runs.values()]
    return {"test_mean": round(mean(test), 2), "test_sd": round(stdev(test), 2) if len(test) > 1 else None,
            "dev_mean": round(mean(dev), 2), "dev_sd": round(stdev(dev), 2) if len(dev) > 1 else None,
            "n": len(runs), "test_by_seed": {s: round(100 * r["test_accuracy"], 1) for s, r in sorted(runs.items())}}


def by_seed(rows: list[dict]) -> dict[int, dict]:
    return {r["seed"]: r for r in rows}


def zoo_runs(name: str, seeds: list[int], data, epochs: int | None, cache: Path) -> dict[int, dict]:
    """Train a zoo model with each seed (cached in a JSONL file, so a rerun skips what is done)."""
    from rdzoo import spec
    from rdzoo.train import fit

    done = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            if r["model"] == name:
                done[r["seed"]] = r
    for s in seeds:
        if s in done:
            continue
        overrides = [f"train.seed={s}"] + ([f"train.epochs={epochs}"] if epochs else [])
        m = fit(spec.load(name, overrides), data).metrics
        done[s] = {"model": name, "seed": s, "dev_accuracy": m["dev_accuracy"], "test_accuracy": m["test_accuracy"],
                   "train_seconds": m["train_seconds"], "params": m["params"]}
        with cache.open("a") as f:
            f.write(json.dumps(done[s]) + "\n")
    return {s: done[s] for s in seeds}


def make_config(name: str, args):
    from rdzoo.nas import FinalStage, SearchConfig
    from rdzoo.nas.final import reserve
    from rdzoo.space import load_space

    args.storage_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{args.storage_dir}/{name}.db"
    cfg = SearchConfig(load_space("default"), name, f"default-{name}", storage, trials=args.trials, seed=args.seed,
                       epochs=args.epochs, timeout=args.timeout, final=FinalStage(args.final, args.final_seeds, "kim-cnn"))
    if args.timeout is not None:  # as `rdzoo search` does: the final stage fits in the same time
        cfg.reserve = reserve(cfg)
    return cfg


def run_set(name: str, args) -> dict | None:
    """The stages that `args.stage` names, then (stage all or report) the dataset's JSON row."""
    from rdzoo.nas.final import final_seeds, run_final
    from rdzoo.nas.loop import run_trials

    data = load_dataset(name, args.sst2)
    cfg = make_config(name, args)
    times = args.storage_dir / f"{name}-seconds.json"
    spent = json.loads(times.read_text()) if times.exists() else {}

    def timed(stage, fn):
        t0 = time.perf_counter()
        out = fn()
        spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - t0
        times.write_text(json.dumps(spent))
        return out

    if args.stage in ("all", "trials"):
        timed("trials", lambda: run_trials(cfg, data))
    if args.stage in ("all", "final"):
        timed(f"final{args.only_seed or ''}", lambda: run_final(
            cfg, data, only_seeds=[args.only_seed] if args.only_seed else None))
    if args.stage in ("all", "zoo"):
        seeds = final_seeds(args.final_seeds)
        models = args.models or SENT
        if models == ["best"]:  # the *-sent model whose start trial scored best on dev
            models = [best_sent_start(cfg)]
        for model in models:
            timed(f"zoo-{model}", lambda: zoo_runs(model, seeds, data, args.epochs, args.storage_dir / f"{name}-zoo-{model}.jsonl"))
    if args.stage not in ("all", "report"):
        return None
    return report(name, cfg, args, spent)


def best_sent_start(cfg) -> str:
    import optuna

    study = optuna.load_study(study_name=cfg.study, storage=cfg.storage)
    starts = [t for t in study.trials if t.user_attrs.get("start") in SENT and t.state.name == "COMPLETE"]
    return max(starts, key=lambda t: t.value).user_attrs["start"]


def report(name: str, cfg, args, spent: dict) -> dict:
    from rdzoo.nas.verdict import of_study
    from rdzoo.query import Results

    store = Results(cfg.storage)
    study = cfg.study
    final_rows = [r.to_json() for r in store.final(study)]
    v = of_study(store, study).to_json()
    rec, seeds = v["recommended"], v["recommended"]["seeds"]
    rec_runs = by_seed([r for r in final_rows if r["contender"] == rec["contender"]])
    kim_runs = by_seed([r for r in final_rows if r["baseline"]])
    top = v["ranking"][0]
    top_runs = by_seed([r for r in final_rows if r["contender"] == top["contender"]])
    sent = {}
    if not args.no_sent:
        for model in SENT:
            cache = args.storage_dir / f"{name}-zoo-{model}.jsonl"
            if cache.exists():
                runs = by_seed([json.loads(line) for line in cache.read_text().splitlines()])
                sent[model] = {s: runs[s] for s in seeds if s in runs}
    best_sent = max(sent, key=lambda m: mean(r["dev_accuracy"] for r in sent[m].values())) if sent else None
    trials = [s.to_json() for s in Results(cfg.storage).summary()]
    finished = next((t["complete"] + t["pruned"] for t in trials if t["study"] == study), None)
    final_s = sum(v_ for k, v_ in spent.items() if k.startswith("final"))
    return {
        "data": name, "trials": args.trials, "finished_trials": finished, "seed": args.seed,
        "trial_timeout_s": args.timeout, "threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_at_end": round(os.getloadavg()[0], 1),
        "seconds": {k: round(x, 1) for k, x in spent.items()},
        "search_and_final_minutes": round((spent.get("trials", 0.0) + final_s) / 60, 1),
        "final_seeds": seeds,
        "recommended": {"contender": rec["contender"], "family": rec["family"], "skip": rec["skip"],
                        "params": rec["params"], "latency_ms": rec["latency_ms"], **summary(rec_runs)},
        # the baseline stays recommended unless the best found beats it on dev beyond the seeds' noise
        "kept_baseline": v["kept_baseline"],
        "best_found": {"contender": top["contender"], **summary(top_runs), "vs_kim_cnn": paired(top_runs, kim_runs)},
        "kim-cnn": summary(kim_runs), "vs_kim_cnn": paired(rec_runs, kim_runs),
        "ranking": [{"contender": c["contender"], "dev_mean": round(100 * c["dev_mean"], 2),
                     "test_mean": round(100 * c["test_mean"], 2), "n": c["n"]} for c in v["ranking"]],
        "skips": {f: w["skip"] for f, w in v["skips"].items()},
        "sent": {m: summary(r) for m, r in sent.items() if r},
        "best_sent_by_dev": best_sent,
        "vs_best_sent": paired(rec_runs, sent[best_sent]) if best_sent else None,
        "vs_each_sent": {m: paired(rec_runs, r) for m, r in sent.items() if r},
        "spec": rec["spec"],
    }


def main():
    from rdzoo.cli import parse_duration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=["trec", "sst2"], choices=["trec", "sst2"])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", default="30m", help="Time for trials and final stage, as `rdzoo search --timeout` "
                        "(default 30m, its default; none: no limit).")
    parser.add_argument("--epochs", type=int, default=None, help="Override every model's epochs (plumbing checks).")
    parser.add_argument("--final", type=int, default=3)
    parser.add_argument("--final-seeds", type=int, default=3)
    parser.add_argument("--no-sent", action="store_true", help="Skip training the *-sent models with the final seeds.")
    parser.add_argument("--sst2", default=None, help="An SST-2 folder to use instead of the built-in one.")
    parser.add_argument("--storage-dir", type=Path, default=Path(__file__).resolve().parent / "out" / "search_db")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "search_accuracy.jsonl")
    parser.add_argument("--stage", default="all", choices=["all", "trials", "final", "zoo", "report"],
                        help="Run one stage only (to spread a benchmark over processes); all runs every stage.")
    parser.add_argument("--only-seed", type=int, default=None, help="--stage final: this final seed only.")
    parser.add_argument("--models", nargs="*", default=None, help="--stage zoo: these zoo models only.")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.data, args.trials, args.epochs, args.final, args.final_seeds = ["trec"], 4, 1, 1, 1
    args.timeout = None if args.timeout == "none" else parse_duration(args.timeout)
    for name in args.data:
        row = run_set(name, args)
        if row is None:
            continue
        print(json.dumps(row), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
