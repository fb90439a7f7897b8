"""Named entities on WNUT-17: every family as an entity tagger, with and without a CRF.

Each zoo model is trained from scratch on the built-in `wnut17` (3,394 training
sentences of tweets and comments, six entity types in BIO tags) as a tagger
(`head.pool: token`, which tagged data picks) with a character CNN on each word's
spelling beside its lowercased word vector, and once more with `head.crf: true`,
on seeds 0-2; the epoch kept is the one with the best dev entity F1. Each run
appends one JSON line to bench/results/ner.jsonl (a run already there is not
repeated, so an interrupted benchmark resumes), and the summary prints test
entity F1 (exact span and type, micro over entities) as mean and sd over seeds,
and the CRF's effect paired by seed.

    python bench/ner.py --jobs 9 --epochs 8              # 3 models x CRF or not x 3 seeds, 9 at a time
    bash bench/ner_all.sh                                # that, and a 30-trial `ner` search beside it
    python bench/ner.py --models densenet-sent --seeds 0 --epochs 2
    python bench/ner.py --spec best.yaml --tag search    # a spec (an exported search trial), 3 seeds
    python bench/ner.py --models minilm-l6 --crf no --epochs 5 --threads 2   # the pretrained body, fine-tuned
    python bench/ner.py --models densenet-sent --crf yes --epochs 25 --tag 25ep   # rows named densenet-sent-25ep
    python bench/ner.py --summary                        # the table from what is in the results file
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "ner.jsonl"
MODELS = ["resnet-sent", "densenet-sent", "transformer-sent"]
# a character CNN beside lowercased word vectors, and the words seen once left to word-shape classes
NER = ["embedding.char_dim=30", "embedding.max_len=64", "embedding.min_freq=2", "embedding.unknown=shape",
       "head.dropout=0.5", "train.word_dropout=0.05"]
# narrower than the zoo's sentence classifiers, so three seeds of six runs fit on two shared cores
SIZE = {"resnet-sent": ["embedding.dim=100", "encoder.stem_channels=64", "encoder.channels=[128]"],
        "densenet-sent": ["embedding.dim=100", "encoder.stem_channels=64"],
        "transformer-sent": []}
# a pretrained body keeps its own sub-word tokenizer (no character CNN); each word is tagged at its first
# sub-word; Devlin et al.'s (2019) fine-tuning recipe, with batches of 16 for a small data set and warm-up
# over the first half epoch (10% of 5 epochs)
PRETRAINED = {"minilm-l6": ["embedding.max_len=128", "train.batch_size=16", "train.lr=5e-5", "train.warmup_epochs=0.5"]}
SHARED_TASK_BEST = 41.9  # test entity F1 of the best WNUT-17 system (../shared/datasets/wnut17/README.md)


def run(job: dict) -> dict:
    import torch

    torch.set_num_threads(job["threads"])
    from rdzoo import spec
    from rdzoo.text.data import load_data
    from rdzoo.train import fit

    crf = [] if job["crf"] is None else [f"head.crf={'true' if job['crf'] else 'false'}"]  # None: the spec's
    size = SIZE.get(job["model"], []) if job["overrides"] else []  # zoo models only, not a --spec
    overrides = [*job["overrides"], *size, *crf, f"train.seed={job['seed']}"]
    if job["epochs"]:
        overrides.append(f"train.epochs={job['epochs']}")
    s = spec.load(job["model"], overrides)
    fitted = fit(s, load_data(job["data"]))
    m = fitted.metrics
    return {"benchmark": "ner", "model": job["tag"] or job["model"], "family": s.family, "skip": s.skip,
            "crf": s.head.crf, "seed": job["seed"], "overrides": overrides,
            "test_entity_f1": round(100 * m["entity_f1"], 2), "test_precision": round(100 * m["entity_precision"], 2),
            "test_recall": round(100 * m["entity_recall"], 2), "dev_entity_f1": round(100 * m["dev_entity_f1"], 2),
            "per_type_f1": {k: round(100 * v, 1) for k, v in m["entity_f1_per_type"].items()},
            "test_accuracy": round(100 * m["test_accuracy"], 2), "best_epoch": m["best_epoch"], "epochs": m["epochs"],
            "train_seconds": round(m["train_seconds"], 1), "params": m["params"], "threads": job["threads"],
            "device": str(torch.empty(0).device),
            "dev_entity_f1_by_epoch": [round(100 * h["dev_entity_f1"], 1) for h in fitted.history]}


def load(path: Path) -> list[dict]:
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            rows[(row["model"], row["crf"], row["seed"])] = row  # a later line for the same run wins
    return list(rows.values())


def summary(rows: list[dict]) -> str:
    def ms(xs):
        return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{xs[0]:.1f}"

    out = [f"| model | family | CRF | seeds | test entity F1 | precision | recall | dev entity F1 | "
           f"epochs kept | train s | params |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["model"], r["crf"]), []).append(r)
    for (model, crf), g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        g.sort(key=lambda r: r["seed"])
        out.append(f"| `{model}` | {g[0]['family']} | {'yes' if crf else 'no'} | {','.join(str(r['seed']) for r in g)} | "
                   f"{ms([r['test_entity_f1'] for r in g])} | {ms([r['test_precision'] for r in g])} | "
                   f"{ms([r['test_recall'] for r in g])} | {ms([r['dev_entity_f1'] for r in g])} | "
                   f"{','.join(str(r['best_epoch']) for r in g)} | {statistics.mean(r['train_seconds'] for r in g):.0f} | "
                   f"{g[0]['params']:,} |")
    out.append("")
    out.append("CRF minus no CRF, test entity F1 paired by seed:")
    for model in sorted({m for m, _ in groups}):
        on = {r["seed"]: r["test_entity_f1"] for r in groups.get((model, True), [])}
        off = {r["seed"]: r["test_entity_f1"] for r in groups.get((model, False), [])}
        diffs = [on[s] - off[s] for s in sorted(on.keys() & off.keys())]
        if diffs:
            out.append(f"- `{model}`: {', '.join(f'{d:+.1f}' for d in diffs)} (mean {statistics.mean(diffs):+.1f})")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--spec", help="A spec file to run instead of the zoo models (e.g. an exported trial).")
    parser.add_argument("--tag", help="The name the rows of --spec get; after a zoo model's name, a variant's (e.g. 25ep).")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--crf", choices=["both", "yes", "no", "spec"], default="both",
                        help="With and without head.crf, one of them, or as the spec has it.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1, help="Runs in parallel (processes).")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per run.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--data", default="wnut17", help="Entity-tagged data (a built-in name or a folder).")
    parser.add_argument("--summary", action="store_true")
    args = parser.parse_args()
    if args.summary:
        print(summary(load(args.out)))
        return
    models, overrides = ([args.spec], []) if args.spec else (args.models, NER)
    crfs = {"both": [False, True], "yes": [True], "no": [False], "spec": [None]}[args.crf]
    done = {(r["model"], r["crf"], r["seed"]) for r in load(args.out)}
    def name(m):  # the rows' model name: a spec's tag, or a zoo model's name with the tag after it
        return args.tag if args.spec else (f"{m}-{args.tag}" if args.tag else m)

    jobs = [{"model": m, "tag": name(m), "crf": c, "seed": s, "epochs": args.epochs,
             "overrides": PRETRAINED.get(m, overrides), "threads": args.threads, "data": args.data}
            for s in args.seeds for m in models for c in crfs if (name(m), c, s) not in done]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.jobs > 1:
        # spawned, not forked: a parent that imported torch (or set a CUDA default device) stays out of the children
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:  # each row is written as soon as it is done
            rows = (f.result() for f in as_completed([pool.submit(run, job) for job in jobs]))
            for row in rows:
                write(args.out, row)
    else:
        for job in jobs:
            write(args.out, run(job))
    print(summary(load(args.out)))


def write(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
