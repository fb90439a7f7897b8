"""Skip types head to head: the same architecture with each skip type its family
supports, at increasing depth, trained on TREC-6 and SST-2 with several seeds.

For ResNet, depth is the number of residual blocks (two convs each) in one stage of
width 64; for the transformer, the number of layers (d 64, 2 heads); DenseNet has one
skip type, `dense`, and its depth is the number of layers in one dense block (k 16).
Every run trains for 3 epochs at lr 1e-3 (--epochs to change): enough for a trainable
configuration to leave chance well behind, short enough for the whole grid to be run.
A run "converged" when its dev accuracy beat the majority class by 5 points.
Prints one JSON row per run and a summary; writes a plot of accuracy against depth.

    python bench/skip_types.py                                  # depths 8 16 32 64, 3 seeds, both datasets, 3 epochs
    python bench/skip_types.py --depths 4 8 16 --seeds 0 --data trec --epochs 4
    python bench/skip_types.py --quick                          # depths 2 4, TREC, 1 seed, 2 epochs
    python bench/skip_types.py --resume old.jsonl ... > new.jsonl   # reuse old.jsonl's runs, add the rest
    python bench/skip_types.py --families transformer --skips rezero dwa   # a part of the grid

The full protocol takes many hours on 2 cores; --resume builds it up over several runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import Counter
from pathlib import Path

from rdzoo import spec
from rdzoo.families import FAMILIES
from rdzoo.skips import SKIP_TYPES

FAMILY_SKIPS = {name: family.skips for name, family in FAMILIES.items()}
from rdzoo.train import fit

from bench_data import load as load_dataset
from plotting import pyplot

OUT = Path(__file__).resolve().parent / "results"


def make_spec(family: str, skip: str, depth: int, epochs: int, seed: int):
    emb = {"dim": 64, "vocab_size": 8000, "max_len": 64}
    train = {"epochs": epochs, "batch_size": 64, "lr": 1e-3, "seed": seed}
    if family == "resnet":
        encoder = {"stem_channels": 64, "stages": [depth], "channels": [64], "skip": skip}
    elif family == "densenet":
        encoder = {"stem_channels": 32, "block_config": [depth], "growth_rate": 16, "bottleneck": 4, "skip": "dense"}
    else:
        encoder = {"layers": depth, "d_model": 64, "heads": 2, "ff": 128, "skip": skip, "dropout": 0.1}
        emb = {"vocab_size": 8000, "max_len": 64}
    return spec.from_dict({"name": f"{family}-{skip}-{depth}", "family": family, "embedding": emb,
                           "encoder": encoder, "head": {"dropout": 0.3}, "train": train})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--depths", type=int, nargs="*", default=[8, 16, 32, 64])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--data", nargs="*", default=["trec", "sst2"])
    parser.add_argument("--families", nargs="*", default=list(FAMILY_SKIPS))
    parser.add_argument("--skips", nargs="*", choices=list(SKIP_TYPES),
                        help="only these skip types (default: every one the family supports)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--resume", type=Path, help="an earlier run's output: its runs are kept, not repeated")
    args = parser.parse_args()
    if args.quick:
        args.depths, args.seeds, args.data, args.epochs = [2, 4], [0], ["trec"], 2
    rows = earlier_rows(args.resume, args.epochs) if args.resume else []
    done = {run_key(r) for r in rows}
    for row in rows:
        print(json.dumps(row), flush=True)
    for data_name in args.data:
        data = load_dataset(data_name)
        majority = Counter(data.train.labels).most_common(1)[0][1] / len(data.train)
        for family in args.families:
            for skip in FAMILY_SKIPS[family]:
                if args.skips and skip not in args.skips:
                    continue
                for depth in args.depths:
                    for seed in args.seeds:
                        if (data_name, family, skip, depth, seed) in done:
                            continue
                        s = make_spec(family, skip, depth, args.epochs, seed)
                        row = {"data": data_name, "family": family, "skip": skip, "depth": depth, "seed": seed}
                        try:
                            m = fit(s, data).metrics
                            row |= {"dev_accuracy": round(m["dev_accuracy"], 4), "test_accuracy": round(m["test_accuracy"], 4),
                                    "converged": m["dev_accuracy"] > majority + 0.05, "seconds": m["train_seconds"]}
                        except Exception as exc:  # a diverged run is a result here, not a crash
                            row |= {"error": str(exc).splitlines()[0], "converged": False}
                        row["epochs"] = args.epochs
                        rows.append(row)
                        print(json.dumps(row), flush=True)
    summary = {}
    for r in rows:
        key = f"{r['data']}/{r['family']}/{r['skip']}/{r['depth']}"
        summary.setdefault(key, []).append(r.get("test_accuracy", 0.0))
    summary = {k: round(statistics.mean(v), 4) for k, v in summary.items()}
    OUT.mkdir(exist_ok=True)
    stem = "skip_types_quick" if args.quick else "skip_types"
    plot(rows, OUT / f"{stem}.png")
    (OUT / f"{stem}.md").write_text(table(rows))
    print(json.dumps({"benchmark": "skip_types", "mean_test_accuracy": summary,
                      "converged": f"{sum(r['converged'] for r in rows)}/{len(rows)}"}))


def run_key(row: dict) -> tuple:
    return row["data"], row["family"], row["skip"], row["depth"], row["seed"]


def earlier_rows(path: Path, epochs: int) -> list[dict]:
    """The per-run rows of an earlier output, refusing runs trained for a different number of epochs."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.startswith('{"data"')]
    other = {r.get("epochs") for r in rows} - {epochs}
    if other:
        raise SystemExit(f"{path}: runs of {sorted(other, key=str)} epochs; this run trains {epochs} (--epochs)")
    return rows


def table(rows) -> str:
    """The README's table: mean test accuracy (%) per skip type and depth, with the seed count
    in brackets where fewer than three ran."""
    runs = {}
    for r in rows:
        runs.setdefault((r["data"], r["family"], r["skip"], r["depth"]), []).append(r.get("test_accuracy", 0.0))
    columns = sorted({(data, depth) for data, _, _, depth in runs}, key=lambda c: (c[0] != "trec", c[1]))
    names = {"trec": "TREC", "sst2": "SST-2"}
    lines = ["| family / skip | " + " | ".join(f"{names.get(d, d)} {depth}" for d, depth in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for family, skips in FAMILY_SKIPS.items():
        for skip in skips:
            cells = []
            for data, depth in columns:
                acc = runs.get((data, family, skip, depth))
                seeds = f" ({len(acc)})" if acc and len(acc) < 3 else ""
                cells.append(f"{100 * statistics.mean(acc):.1f}{seeds}" if acc else "-")
            lines.append(f"| {family} / {skip} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    panels = sorted({(r["data"], r["family"]) for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for ax, (data, family) in zip(axes[0], panels):
        for skip in FAMILY_SKIPS[family]:
            pts = {}
            for r in rows:
                if (r["data"], r["family"], r["skip"]) == (data, family, skip):
                    pts.setdefault(r["depth"], []).append(r.get("test_accuracy", 0.0))
            if pts:
                depths = sorted(pts)
                ax.plot(depths, [statistics.mean(pts[d]) for d in depths], marker="o", label=skip)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{family} on {data}")
        ax.set_xlabel("depth")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
