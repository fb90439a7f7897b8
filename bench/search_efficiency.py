"""Search efficiency: random search against rdzoo's default sampler and pruner, side by side.

For each seed, runs the default space on the built-in TREC twice, one after the other
in this process: random sampling without pruning, then multivariate TPE with
Hyperband pruning (rdzoo's default). Reports best dev accuracy against wall-clock
time and the time the default needs to reach random search's final best, as a
fraction of random search's time (median over seeds), and plots the curves.

    python bench/search_efficiency.py                 # 3 seeds x 50 trials each (about 40 minutes)
    python bench/search_efficiency.py --quick         # 1 seed x 8 trials, 1 epoch (about 1 minute)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from rdzoo.nas import SearchConfig
from rdzoo.nas.loop import run_trials
from rdzoo.space import load_space
from plotting import pyplot

from rdzoo.text.data import load_data

OUT = Path(__file__).resolve().parent / "results"


def curve(storage: str, study: str) -> list[tuple[float, float]]:
    """(seconds since the first trial started, best dev accuracy so far) after each finished trial."""
    import optuna

    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    start = min(t.datetime_start for t in trials)
    points, best = [], 0.0
    for t in sorted((t for t in trials if t.datetime_complete), key=lambda t: t.datetime_complete):
        if t.state.name == "COMPLETE" and t.value is not None:
            best = max(best, t.value)
        points.append(((t.datetime_complete - start).total_seconds(), best))
    return points


def time_to_reach(points, target: float) -> float | None:
    return next((s for s, best in points if best >= target - 1e-12), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="*", default=None)
    parser.add_argument("--trials", type=int, default=None)
    args = parser.parse_args()
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    trials = args.trials or (8 if args.quick else 50)
    epochs = 1 if args.quick else None
    space, data = load_space("default"), load_data("trec")
    rows, curves = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            result = {"seed": seed}
            for label, sampler, pruner in (("random", "random", "none"), ("default", "tpe", "hyperband")):
                storage = f"sqlite:///{tmp}/{label}-{seed}.db"
                cfg = SearchConfig(space, "trec", label, storage, trials=trials, sampler=sampler, pruner=pruner,
                                   seed=seed, epochs=epochs)
                outcome = run_trials(cfg, data)
                points = curve(storage, label)
                curves[f"{label}-{seed}"] = points
                result[f"{label}_seconds"] = round(outcome.seconds, 1)
                result[f"{label}_best"] = points[-1][1] if points else None
            reach = time_to_reach(curves[f"default-{seed}"], result["random_best"])
            result["default_seconds_to_random_best"] = round(reach, 1) if reach is not None else None
            result["fraction_of_random_time"] = round(reach / result["random_seconds"], 3) if reach is not None else None
            rows.append(result)
            print(json.dumps(result), flush=True)
    fractions = [r["fraction_of_random_time"] for r in rows]
    reached = [f for f in fractions if f is not None]
    summary = {"benchmark": "search_efficiency", "trials": trials, "seeds": seeds, "rows": rows,
               "reached_random_best": f"{len(reached)}/{len(rows)}",
               "median_fraction_of_random_time": statistics.median(f if f is not None else float("inf") for f in fractions)}
    OUT.mkdir(exist_ok=True)
    plot(curves, OUT / ("search_efficiency_quick.png" if args.quick else "search_efficiency.png"))
    print(json.dumps(summary))


def plot(curves, path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in sorted(curves.items()):
        if points:
            xs, ys = zip(*points)
            ax.step(xs, ys, where="post", label=name, color="tab:gray" if name.startswith("random") else "tab:blue",
                    alpha=0.8)
    ax.set_xlabel("wall-clock seconds")
    ax.set_ylabel("best dev accuracy so far")
    ax.set_title("TREC-6, default space: random search vs TPE + Hyperband")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
