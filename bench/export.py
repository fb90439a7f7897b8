"""Deployment: a trained model under PyTorch, onnxruntime fp32 and onnxruntime int8, side by side.

Trains a spec (or takes a run folder), exports it with `rdzoo export`'s functions
(rdzoo.export: fp32, then onnxruntime's dynamic int8 quantisation), and reports for
each of the three: test accuracy (the int8 row's change from fp32 is what quantisation
costs), the file size (PyTorch's: its fp32 tensors), and one sentence's latency (batch 1,
one thread, the median of --repeats runs) at the test split's median length in tokens
(or --tokens), with its ratio to PyTorch's and to onnxruntime fp32's.
Every row is printed and appended to bench/results/export.jsonl. Needs the onnx extra
(pip install -e '.[onnx]').

    OMP_NUM_THREADS=1 nice python bench/export.py --spec kim-cnn --data trec --epochs 3
    python bench/export.py --run runs/kim            # a run folder from `rdzoo train --out`
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from rdzoo import export, profile
from rdzoo.text.data import load_data

RESULTS = Path(__file__).resolve().parent / "results" / "export.jsonl"


class OnnxModel(torch.nn.Module):
    """An onnxruntime session in the place of a model, for train.evaluate: the forward is the
    session's, the head (its pooling and CRF) the PyTorch model's."""

    def __init__(self, path, model):
        super().__init__()
        self.spec, self.head, self.sess = model.spec, model.head, export.session(path)

    def forward(self, tokens):
        return torch.from_numpy(export.run(self.sess, tokens))


def trained(args):
    """(model, tokenizer, label names, spec name, data name, epochs): the run given, or a fresh one."""
    if args.run:
        from rdzoo.runs import load_run

        run = load_run(args.run)
        data = run.config.get("data_path") or run.config.get("data") or args.data
        return run.model, run.tokenizer, run.label_names, run.model.spec.name, data, run.config.get("epochs")
    from rdzoo import spec as spec_mod
    from rdzoo.train import fit

    s = spec_mod.load(args.spec, [f"train.seed={args.seed}"])
    fitted = fit(s, load_data(args.data), epochs=args.epochs, device="cpu", precision="fp32")
    return fitted.model.eval(), fitted.tokenizer, fitted.label_names, s.name, args.data, args.epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="kim-cnn")
    parser.add_argument("--data", default="trec")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", help="A run folder to take instead of training --spec.")
    parser.add_argument("--repeats", type=int, default=200, help="Timed runs per latency (the median is reported).")
    parser.add_argument("--tokens", type=int, help="Sentence length of the latencies (default: the test split's median).")
    args = parser.parse_args()
    export.need_onnx()
    from rdzoo.train import evaluate

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        model, tokenizer, label_names, name, data_name, epochs = trained(args)
        test = load_data(data_name).test
        lengths = sorted(len(ids) for ids in tokenizer.encode_batch(test.texts))
        tokens = min(args.tokens or int(statistics.median(lengths)), model.spec.embedding.max_len)
        fp32 = export.to_onnx(model, scratch / "fp32.onnx", label_names)
        diff = export.check(model, fp32)
        int8 = export.quantize_int8(fp32, scratch / "int8.onnx")
        variants = [("pytorch", model, None), ("onnxruntime fp32", OnnxModel(fp32, model), fp32),
                    ("onnxruntime int8", OnnxModel(int8, model), int8)]
        rows = []
        for variant, runner, path in variants:
            scores = evaluate(runner, tokenizer, test, label_names)
            ms = (profile.sentence_latency_ms(model, tokens, repeats=args.repeats) if path is None else
                  export.sentence_latency_ms(path, model.spec, tokens, repeats=args.repeats))
            size = path.stat().st_size if path is not None else sum(
                t.numel() * t.element_size() for t in model.state_dict().values())
            rows.append({"bench": "export", "spec": name, "data": Path(str(data_name)).name, "epochs": epochs,
                         "variant": variant, "test_accuracy": round(scores["accuracy"], 4), "test_n": scores["n"],
                         "sentence_tokens": tokens, "threads": 1, "latency_ms": round(ms, 4), "bytes": size})
    base, onnx32 = rows[0], rows[1]
    for row in rows:
        row["accuracy_change_vs_fp32"] = round(row["test_accuracy"] - onnx32["test_accuracy"], 4)
        row["latency_vs_pytorch"] = round(row["latency_ms"] / base["latency_ms"], 3)
        row["latency_vs_onnxruntime_fp32"] = round(row["latency_ms"] / onnx32["latency_ms"], 3)
        row["size_vs_fp32"] = round(row["bytes"] / onnx32["bytes"], 3)
        row.update({"max_abs_diff_fp32": diff, "torch": torch.__version__, "onnxruntime": _version("onnxruntime"),
                    "cpu": platform.processor() or platform.machine(), "repeats": args.repeats})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        for row in rows:
            print(json.dumps(row), flush=True)
            f.write(json.dumps(row) + "\n")
    length = "--tokens" if args.tokens else "the test split's median"
    print(f"\n{name} on {rows[0]['data']} ({epochs} epochs), one sentence of {tokens} tokens ({length}), "
          f"batch 1, 1 thread; fp32 ONNX within {diff:.1e} of PyTorch")
    print(f"{'variant':<18} {'test acc':>8} {'vs fp32':>8} {'ms':>8} {'vs torch':>8} {'vs ort32':>8} {'MB':>7}")
    for r in rows:
        print(f"{r['variant']:<18} {100 * r['test_accuracy']:>7.2f}% {100 * r['accuracy_change_vs_fp32']:>+7.2f}  "
              f"{r['latency_ms']:>8.3f} {r['latency_vs_pytorch']:>7.2f}x {r['latency_vs_onnxruntime_fp32']:>7.2f}x "
              f"{r['bytes'] / 1e6:>7.2f}")


def _version(module: str) -> str:
    from importlib.metadata import version

    return version(module)


if __name__ == "__main__":
    main()
