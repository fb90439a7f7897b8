"""What a change to the models costs in time: training steps and inference of zoo models under
two rdzoo source trees, side by side in one run (written to time the padding masks).

Each round times every model under both trees, alternating, each in a fresh process; a batch
is 50 texts of 4 to 30 tokens (TREC's range) padded to the longest. Prints per model the
median seconds per training step (forward, backward, AdamW) and per inference batch, and the
ratio after / before of the medians over rounds. One thread per process.

    git archive <commit> | tar -x -C /tmp/before     # the tree to compare against
    python bench/mask_cost.py --before /tmp/before/src --after src
    python bench/mask_cost.py --before /tmp/before/src --after src --models kim-cnn --rounds 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

MODELS = ["kim-cnn", "resnet-sent", "densenet-sent", "vdcnn-9"]


def worker(src: str, name: str, steps: int) -> dict:
    sys.path.insert(0, src)
    import torch

    torch.set_num_threads(1)  # one thread: on a shared machine, spinning threads make timings noise

    from rdzoo import spec
    from rdzoo.registry import build_model
    from rdzoo.text.batching import pad

    torch.manual_seed(0)
    s = spec.load(name, {"embedding.vocab_size": 8000, "embedding.max_len": 256})
    model = build_model(s)
    g = torch.Generator().manual_seed(0)
    scale = 5 if s.embedding.kind == "char" else 1  # characters: five per word
    batches = []
    for _ in range(4):
        lengths = torch.randint(4, 31, (50,), generator=g) * scale
        batches.append(pad([torch.randint(1, 8000 if scale == 1 else 128, (int(n),), generator=g).tolist()
                            for n in lengths]))
    labels = torch.randint(0, s.head.num_classes, (50,), generator=g)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)

    def train_step(tokens):
        model.train()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(tokens), labels).backward()
        opt.step()

    def infer(tokens):
        model.eval()
        with torch.inference_mode():
            model(tokens)

    out = {}
    for what, fn in (("train_step_s", train_step), ("inference_s", infer)):
        for tokens in batches:  # warm-up: every shape once
            fn(tokens)
        start = time.perf_counter()
        for i in range(steps):
            fn(batches[i % len(batches)])
        out[what] = (time.perf_counter() - start) / steps
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="src folder of the tree to compare against")
    parser.add_argument("--after", required=True, help="src folder of the changed tree")
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--worker", nargs=2, metavar=("SRC", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.steps)))
        return
    times = {(m, t): [] for m in args.models for t in ("before", "after")}
    for _ in range(args.rounds):
        for m in args.models:
            for tree in ("before", "after"):
                src = getattr(args, tree)
                run = subprocess.run([sys.executable, __file__, "--before", "-", "--after", "-", "--steps", str(args.steps),
                                      "--worker", src, m], capture_output=True, text=True, check=True)
                times[m, tree].append(json.loads(run.stdout.splitlines()[-1]))
                print(json.dumps({"model": m, "tree": tree, **times[m, tree][-1]}), flush=True)  # kept if cut short
    rows = []
    for m in args.models:
        row = {"model": m}
        for what in ("train_step_s", "inference_s"):
            before = statistics.median(r[what] for r in times[m, "before"])
            after = statistics.median(r[what] for r in times[m, "after"])
            row.update({f"{what}_before": round(before, 4), f"{what}_after": round(after, 4),
                        f"{what.removesuffix('_s')}_ratio": round(after / before, 3)})
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"benchmark": "mask_cost", "rounds": args.rounds, "steps": args.steps, "rows": rows}))


if __name__ == "__main__":
    main()
