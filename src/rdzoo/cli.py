"""The `rdzoo` command. Heavy libraries (torch, timm, optuna) are imported
inside the commands that need them, so `rdzoo --help` and `rdzoo list` start fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .spec import SpecError

app = typer.Typer(
    help="A model zoo and architecture search for NLP encoders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a spec key: key.path=value (repeatable).")]


class UsageError(Exception):
    """Bad input from the user: one line on stderr, exit status 2."""


def human(n: float) -> str:
    """12345678 -> '12.3M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


def console():
    from rich.console import Console

    return Console()


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@app.command("list")
def list_cmd(pattern: Annotated[str, typer.Argument(help="fnmatch pattern, e.g. 'densenet*'.")] = "*",
             as_json: JsonOpt = False):
    """List the named models in the zoo with family, skip type and parameter count."""
    from . import plan, registry, spec

    rows = []
    for name in registry.list_models(pattern):
        s = spec.load(name)
        rows.append({"name": name, "family": s.family, "skip": s.skip, "params": plan.count_params(s),
                     "description": s.description})
    if as_json:
        return emit_json(rows)
    from rich.table import Table

    cells = [(r["name"], r["family"], r["skip"], human(r["params"])) for r in rows]
    widths = [max([len(column)] + [len(c[i]) for c in cells]) for i, column in enumerate(("name", "family", "skip", "params"))]
    out = console()
    room = max(out.width - sum(widths) - 2 * 5, 10)  # the description gets what the other columns leave
    table = Table("name", "family", "skip", "params", "description", box=None)
    for r, c in zip(rows, cells):
        text = r["description"]
        table.add_row(*c, text if len(text) <= room else text[: room - 1] + "…")
    out.print(table if rows else f"no model matches {pattern!r}")


@app.command()
def show(name: Annotated[str, typer.Argument(help="Zoo name or spec file.")], set_: SetOpt = None,
         as_json: JsonOpt = False):
    """Print the fully resolved spec (defaults filled in, bases merged) as YAML."""
    from . import spec

    s = spec.load(name, set_ or [])
    if as_json:
        return emit_json(s.to_dict())
    sys.stdout.write(s.to_yaml())


@app.command()
def build(name: Annotated[str, typer.Argument(help="Zoo name or spec file.")], set_: SetOpt = None,
          out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Save the initial weights as .safetensors.")] = None,
          batch: Annotated[int, typer.Option(min=1, help="Dummy batch size for the latency.")] = 8,
          seq_len: Annotated[Optional[int], typer.Option(min=1, help="Sequence length (default: min(max_len, 128)).")] = None,
          as_json: JsonOpt = False):
    """Build a model, run a dummy batch, and print stages, parameters, FLOPs and latency."""
    from . import spec

    s = spec.load(name, set_ or [])
    import torch

    from . import profile
    from .families import build_model

    torch.manual_seed(0)
    model = build_model(s).eval()
    length = seq_len or min(s.embedding.max_len, 128)
    if length > s.embedding.max_len and s.embedding.positions in ("learned", "sinusoidal"):
        raise UsageError(f"--seq-len {length} is longer than embedding.max_len {s.embedding.max_len}")
    one = profile.dummy_batch(s, 1, length)
    tokens = profile.dummy_batch(s, batch, length)
    stages = profile.stage_shapes(model, tokens)
    result = {
        "name": s.name, "family": s.family, "skip": s.skip,
        "params": profile.count_params(model),
        "flops": profile.flops(model, one),
        "seq_len": length, "batch": batch,
        "latency_ms": round(profile.latency(model, tokens, repeats=3) * 1000, 3),
        "output_shape": stages[-1]["output_shape"],
        "stages": stages,
    }
    if out is not None:
        from .weights import save

        result["out"] = str(save(model, out))
    if as_json:
        return emit_json(result)
    from rich.table import Table

    table = Table("module", "type", "output shape", "params", title=f"{s.name} ({s.family}, skip: {s.skip})")
    for row in stages:
        table.add_row(row["name"], row["type"], "x".join(map(str, row["output_shape"])), human(row["params"]))
    c = console()
    c.print(table)
    c.print(f"params {result['params']:,}  |  FLOPs/sequence ({length} tokens) {human(result['flops'])}  |  "
            f"latency {result['latency_ms']:.1f} ms for a batch of {batch}")
    if out is not None:
        c.print(f"saved {out}")


DataOpt = Annotated[str, typer.Option("--data", "-d", help="Built-in name (trec, synthetic), a folder with train/dev/test files, or one file.")]
TextColOpt = Annotated[Optional[str], typer.Option("--text-col", help="CSV/TSV column or JSONL field with the text (default: text).")]
LabelColOpt = Annotated[Optional[str], typer.Option("--label-col", help="CSV/TSV column or JSONL field with the label (default: label).")]
BadLineOpt = Annotated[str, typer.Option("--on-bad-line", help="error: stop at a malformed line; skip: skip and count it.")]


def load_dataset(data: str, text_col=None, label_col=None, on_bad_line="error", seed=0):
    from .text.data import Columns, load_data

    return load_data(data, Columns(text_col, label_col), on_bad_line=on_bad_line, seed=seed)


@app.command()
def data(source: Annotated[Optional[str], typer.Argument(help="A dataset to inspect (default: list the built-in ones).")] = None,
         text_col: TextColOpt = None, label_col: LabelColOpt = None, on_bad_line: BadLineOpt = "error",
         as_json: JsonOpt = False):
    """List the built-in datasets with their sizes, or inspect one dataset."""
    from .text.data import builtin_names

    names = [source] if source else builtin_names()
    rows = []
    for name in names:
        d = load_dataset(name, text_col, label_col, on_bad_line)
        rows.append({"name": name, **d.sizes(), "classes": len(d.label_names), "labels": d.label_names,
                     "skipped_lines": d.skipped, "notes": d.notes})
    if as_json:
        return emit_json(rows)
    from rich.table import Table

    table = Table("dataset", "train", "dev", "test", "classes", "notes", box=None)
    for r in rows:
        notes = "; ".join(r["notes"] + ([f"{r['skipped_lines']} bad lines skipped"] if r["skipped_lines"] else []))
        table.add_row(r["name"], str(r["train"]), str(r["dev"] or "-"), str(r["test"] or "-"), str(r["classes"]), notes)
    console().print(table)


def metrics_table(title: str, metrics: dict):
    from rich.table import Table

    table = Table("metric", "value", title=title, box=None)
    for key, value in metrics.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        table.add_row(key, str(value))
    return table


@app.command()
def train(name: Annotated[str, typer.Argument(help="Zoo name or spec file.")],
          data: DataOpt = "trec", set_: SetOpt = None,
          epochs: Annotated[Optional[int], typer.Option(min=1, help="Override train.epochs.")] = None,
          out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Save the run (weights, tokenizer, metrics) here.")] = None,
          cv: Annotated[Optional[int], typer.Option("--cv", min=2, help="K-fold cross-validation on the training split.")] = None,
          seed: Annotated[Optional[int], typer.Option(help="Override train.seed.")] = None,
          text_col: TextColOpt = None, label_col: LabelColOpt = None, on_bad_line: BadLineOpt = "error",
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
          as_json: JsonOpt = False):
    """Train a model on text data (built-in TREC-6 by default) and report accuracy."""
    from . import spec as spec_mod

    overrides = list(set_ or []) + ([f"train.seed={seed}"] if seed is not None else [])
    s = spec_mod.load(name, overrides)
    dataset = load_dataset(data, text_col, label_col, on_bad_line, seed=s.train.seed)
    from .train import check_optimizer, fit

    check_optimizer(s.train.optimizer)
    progress = not (quiet or as_json)
    if cv:
        from statistics import mean, pstdev

        from .text.data import kfold

        folds = [fit(s, fold, epochs=epochs, progress=progress).metrics for fold in kfold(dataset, cv, s.train.seed)]
        accs = [f["test_accuracy"] for f in folds]
        result = {"name": s.name, "data": data, "cv": cv, "test_accuracy": mean(accs), "test_accuracy_std": pstdev(accs),
                  "macro_f1": mean(f["macro_f1"] for f in folds), "epochs": folds[0]["epochs"],
                  "train_seconds": sum(f["train_seconds"] for f in folds), "params": folds[0]["params"], "folds": folds}
    else:
        fitted = fit(s, dataset, epochs=epochs, progress=progress)
        result = {"name": s.name, "data": data, **fitted.metrics}
        if out is not None:
            from .runs import save_run

            save_run(fitted, out, {"data": data, "epochs": epochs or s.train.epochs, "text_col": text_col,
                                   "label_col": label_col})
            result["out"] = str(out)
    if as_json:
        return emit_json(result)
    shown = {k: v for k, v in result.items() if k not in ("folds", "name", "data")}
    console().print(metrics_table(f"{s.name} on {data}", shown))


@app.command("eval")
def eval_cmd(run: Annotated[Path, typer.Argument(help="A run folder written by `rdzoo train --out`.")],
             data: DataOpt = "trec", text_col: TextColOpt = None, label_col: LabelColOpt = None,
             on_bad_line: BadLineOpt = "error", as_json: JsonOpt = False):
    """Evaluate a saved run on a dataset's dev and test splits."""
    from .runs import load_run

    loaded = load_run(run)
    dataset = load_dataset(data, text_col, label_col, on_bad_line)
    result = {"run": str(run), "data": data}
    for split in ("dev", "test"):
        part = getattr(dataset, split)
        if part is not None and len(part):
            m = loaded.evaluate(part)
            result.update({f"{split}_accuracy": m["accuracy"], f"{split}_macro_f1": m["macro_f1"], f"{split}_n": m["n"]})
    if as_json:
        return emit_json(result)
    console().print(metrics_table(f"{run} on {data}", {k: v for k, v in result.items() if k not in ("run", "data")}))


@app.command()
def predict(run: Annotated[Path, typer.Argument(help="A run folder written by `rdzoo train --out`.")],
            texts: Annotated[list[str], typer.Argument(help="One or more sentences.")],
            as_json: JsonOpt = False):
    """Print the predicted label of each sentence."""
    from .runs import load_run

    labels = load_run(run).predict(texts)
    if as_json:
        return emit_json([{"text": t, "label": l} for t, l in zip(texts, labels)])
    for label in labels:
        sys.stdout.write(f"{label}\n")


def main() -> None:
    from .errors import TrainingError
    from .text.data import DataError
    from .weights import WeightsError

    try:
        app(standalone_mode=True)
    except (SpecError, UsageError) as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(2)
    except DataError as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(2)
    except (WeightsError, TrainingError) as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("rdzoo: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
