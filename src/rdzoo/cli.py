"""The `rdzoo` command. Heavy libraries (torch, timm, optuna) are imported
inside the commands that need them, so `rdzoo --help` and `rdzoo list` start fast."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import SpecError

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


def make_folder(path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create this folder ({exc.strerror or exc})") from None


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


DataOpt = Annotated[str, typer.Option("--data", "-d", help="Built-in name (trec, wnut17, synthetic), a folder with train/dev/test files, or one file.")]
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
    from .text.conll import entity_counts, is_entity_tagset
    from .text.data import builtin_names

    names = [source] if source else builtin_names()
    rows = []
    for name in names:
        d = load_dataset(name, text_col, label_col, on_bad_line)
        rows.append({"name": name, **d.sizes(), "classes": len(d.label_names), "labels": d.label_names,
                     "skipped_lines": d.skipped, "notes": d.notes})
        if d.tagging and is_entity_tagset(d.label_names):  # entities per type and split
            rows[-1]["entities"] = {split: dict(sorted(entity_counts(getattr(d, split).labels).items()))
                                    for split in ("train", "dev", "test") if getattr(d, split) is not None}
    if as_json:
        return emit_json(rows)
    from rich.table import Table

    table = Table("dataset", "train", "dev", "test", "classes", "notes", box=None)
    for r in rows:
        notes = "; ".join(r["notes"] + ([f"{r['skipped_lines']} bad lines skipped"] if r["skipped_lines"] else []))
        table.add_row(r["name"], str(r["train"]), str(r["dev"] or "-"), str(r["test"] or "-"), str(r["classes"]), notes)
    out = console()
    out.print(table)
    for r in rows:
        if "entities" in r:
            splits = list(r["entities"])
            kinds = sorted({k for counts in r["entities"].values() for k in counts})
            counts = Table("entity type", *splits, title=f"{r['name']}: entities", box=None)
            for kind in kinds + ["all"]:
                counts.add_row(kind, *[str(sum(r["entities"][s].values()) if kind == "all" else r["entities"][s].get(kind, 0))
                                       for s in splits])
            out.print(counts)


def metrics_table(title: str, metrics: dict):
    from rich.table import Table

    table = Table("metric", "value", title=title, box=None)
    for key, value in metrics.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, dict):  # per entity type
            value = ", ".join(f"{k} {v:.4f}" for k, v in value.items())
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
    from .errors import WeightsError

    overrides = list(set_ or []) + ([f"train.seed={seed}"] if seed is not None else [])
    s = spec_mod.load(name, overrides)
    if out is not None:
        if cv:
            raise UsageError("--out saves one trained model and --cv trains one per fold; use one of them")
        make_folder(out, "--out")  # before training, not after minutes of it
    dataset = load_dataset(data, text_col, label_col, on_bad_line, seed=s.train.seed)
    from .train import check_optimizer, fit

    check_optimizer(s.train.optimizer)
    progress = not (quiet or as_json)
    unsaved = None
    if cv:
        from statistics import mean, pstdev

        from .text.data import kfold

        folds = [fit(s, fold, epochs=epochs, progress=progress).metrics for fold in kfold(dataset, cv, s.train.seed)]
        accs = [f["test_accuracy"] for f in folds]
        result = {"name": s.name, "data": data, "cv": cv, "test_accuracy": mean(accs), "test_accuracy_std": pstdev(accs),
                  "macro_f1": mean(f["macro_f1"] for f in folds), "epochs": folds[0]["epochs"],
                  "train_seconds": sum(f["train_seconds"] for f in folds), "params": folds[0]["params"], "folds": folds}
        if "entity_f1" in folds[0]:  # entity data: the folds' test entity F1 too
            result.update(entity_f1=mean(f["entity_f1"] for f in folds),
                          entity_f1_std=pstdev(f["entity_f1"] for f in folds))
    else:
        fitted = fit(s, dataset, epochs=epochs, progress=progress)
        result = {"name": s.name, "data": data, **fitted.metrics}
        if out is not None:
            from .runs import save_run

            try:
                save_run(fitted, out, {"data": data, "epochs": epochs or s.train.epochs, "text_col": text_col,
                                       "label_col": label_col})
                result["out"] = str(out)
            except (OSError, WeightsError) as exc:  # a full disk: still report what was trained, then fail
                unsaved = f"could not save the run to {out}: {getattr(exc, 'strerror', None) or exc}"
    if as_json:
        emit_json(result)
    else:
        shown = {k: v for k, v in result.items() if k not in ("folds", "name", "data")}
        console().print(metrics_table(f"{s.name} on {data}", shown))
    if unsaved:
        raise WeightsError(unsaved)


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
            if "entities" in m:  # exact span and type, micro over entities, and F1 per type
                e = m["entities"]
                result.update({f"{split}_entity_precision": e["precision"], f"{split}_entity_recall": e["recall"],
                               f"{split}_entity_f1": e["f1"], f"{split}_entities": e["support"],
                               f"{split}_entity_f1_per_type": {k: v["f1"] for k, v in e["per_type"].items()}})
    if as_json:
        return emit_json(result)
    console().print(metrics_table(f"{run} on {data}", {k: v for k, v in result.items() if k not in ("run", "data")}))


@app.command()
def predict(run: Annotated[Path, typer.Argument(help="A run folder written by `rdzoo train --out`.")],
            texts: Annotated[list[str], typer.Argument(help="One or more sentences.")],
            as_json: JsonOpt = False):
    """Print the predicted label of each sentence (a tagger: each word with its tag; an entity
    tagger: the sentence with its entities marked `[Empire State Building](location)`)."""
    from .runs import load_run
    from .text.conll import is_entity_tagset, mark_entities

    loaded = load_run(run)
    if loaded.tagger and is_entity_tagset(loaded.label_names):
        found = loaded.entities(texts)
        if as_json:
            return emit_json([{"text": t, "entities": spans} for t, spans in zip(texts, found)])
        for t, spans in zip(texts, found):
            sys.stdout.write(mark_entities(t, spans) + "\n")
        return
    labels = loaded.predict(texts)
    if loaded.tagger:
        tagged = [list(zip(t.split(), tags)) for t, tags in zip(texts, labels)]
        if as_json:
            return emit_json([{"text": t, "words": [w for w, _ in pairs], "tags": [g for _, g in pairs]}
                              for t, pairs in zip(texts, tagged)])
        for pairs in tagged:
            sys.stdout.write(" ".join(f"{w}/{g or '_'}" for w, g in pairs) + "\n")
        return
    if as_json:
        return emit_json([{"text": t, "label": l} for t, l in zip(texts, labels)])
    for label in labels:
        sys.stdout.write(f"{label}\n")


StorageOpt = Annotated[str, typer.Option("--storage", help="Database URL (any SQLAlchemy URL Optuna accepts) or a SQLite file path.")]
StudyOpt = Annotated[Optional[str], typer.Option("--study", help="Study name (default: the most recently updated).")]


def parse_duration(text: str | None) -> float | None:
    """'90', '90s', '30m', '1.5h' -> seconds."""
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        raise UsageError(f"--timeout {text!r}: expected seconds or a number with s, m, h or d (e.g. 30m, 1h)") from None
    if seconds <= 0:
        raise UsageError(f"--timeout {text!r}: must be positive")
    return seconds


def parse_count(text: str | None) -> float | None:
    """'2M', '500k', '1.5e6' -> a number."""
    if text is None:
        return None
    units = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9}
    value, scale = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        return float(value) * scale
    except ValueError:
        raise UsageError(f"{text!r} is not a count; use e.g. 2M, 500k or 1500000") from None


class SearchDisplay:
    """Live view of a search: trials done, best so far, the running trial, ETA."""

    def __init__(self, cfg, quiet: bool):
        self.cfg, self.quiet = cfg, quiet
        self.best, self.current = None, "-"
        self.progress, self.started = None, False

    def __enter__(self):
        if not self.quiet:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                     TimeRemainingColumn(), console=console_err())
            self.task = self.progress.add_task(f"search {self.cfg.study}", total=self.cfg.trials, status="")
            self.progress.start()
        return self

    def _update(self, done):
        if self.progress is None:
            return
        if not self.started:  # a resumed study starts part-way: the ETA counts only this run's pace
            self.progress.reset(self.task, completed=done)
            self.started = True
        best = f"best {self.best:.4f}" if isinstance(self.best, float) else "best -"
        self.progress.update(self.task, completed=done, status=f"{best}  running: {self.current}")

    def trial_started(self, number, family, done):
        self.current = f"#{number} {family}"
        self._update(done)

    def trial_finished(self, frozen, info, done, best):
        self.best, self.current = best, "-"
        if frozen.state.name == "FAIL":  # shown under --quiet too (and so from --workers' children): it is a warning
            out = self.progress.console if self.progress is not None else console_err()
            out.print(f"trial {frozen.number} failed: {info.get('error') or 'no recorded error'}",
                      markup=False, highlight=False)
        self._update(done)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()


def console_err():
    from rich.console import Console

    return Console(stderr=True)


@app.command()
def search(space: Annotated[str, typer.Option("--space", "-s", help="A named search space or a YAML file.")] = "default",
           data: DataOpt = "trec",
           trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="Target number of finished trials in the study.")] = 50,
           timeout: Annotated[Optional[str], typer.Option(help="Stop after this long: 3600, 90m, 1h.")] = None,
           study: Annotated[Optional[str], typer.Option("--study", help="Study name (default: SPACE-DATA).")] = None,
           storage: StorageOpt = "sqlite:///rdzoo.db",
           sampler: Annotated[str, typer.Option(help="tpe (multivariate, grouped), random, nsga2 or gp.")] = "tpe",
           pruner: Annotated[str, typer.Option(help="hyperband, median or none.")] = "hyperband",
           seed: Annotated[Optional[int], typer.Option(help="Seed the sampler for a reproducible study.")] = None,
           epochs: Annotated[Optional[int], typer.Option(min=1, help="Override the space's training epochs.")] = None,
           objectives: Annotated[str, typer.Option(help="accuracy, or accuracy plus params, latency or flops: accuracy,params.")] = "accuracy",
           max_params: Annotated[Optional[str], typer.Option("--max-params", help="Refuse sampled specs above this size (e.g. 20M).")] = None,
           workers: Annotated[int, typer.Option("--workers", min=1, help="Local worker processes on the same study.")] = 1,
           n_jobs: Annotated[int, typer.Option("--n-jobs", min=1, help="Threads per worker (Optuna n_jobs).")] = 1,
           heartbeat: Annotated[int, typer.Option(min=1, help="Worker heartbeat seconds; a silent worker's trial is retried after 3x this.")] = 20,
           text_col: TextColOpt = None, label_col: LabelColOpt = None, on_bad_line: BadLineOpt = "error",
           quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display.")] = False,
           top: Annotated[int, typer.Option(help="Best configurations to print at the end.")] = 5,
           as_json: JsonOpt = False):
    """Search architectures with Optuna; every trial is stored in the database."""
    from .space import load_space

    space_obj = load_space(space)
    objective_list = [o.strip() for o in objectives.split(",") if o.strip()]
    from .search import OBJECTIVES, PRUNERS, SAMPLERS

    for name, value, allowed in (("--sampler", sampler, SAMPLERS), ("--pruner", pruner, PRUNERS)):
        if value not in allowed:
            raise UsageError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    if not objective_list or objective_list[0] != "accuracy" or any(o not in OBJECTIVES for o in objective_list) \
            or len(set(objective_list)) != len(objective_list):
        raise UsageError(f"--objectives {objectives!r}: start with accuracy, then any of params, latency, flops")
    data_label = data if "/" not in data and not data.endswith((".txt", ".csv", ".tsv", ".jsonl")) else Path(data).stem
    study_name = study or f"{space_obj.name}-{data_label}"
    if workers > 1:
        return _spawn_workers(workers, study_name, storage, top, as_json)
    dataset = load_dataset(data, text_col, label_col, on_bad_line)
    threads = os.environ.get("RDZOO_THREADS")
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    from .search import SearchConfig, run_search

    cfg = SearchConfig(space_obj, data, study_name, storage, trials=trials, timeout=parse_duration(timeout),
                       sampler=sampler, pruner=pruner, seed=seed, epochs=epochs, objectives=objective_list,
                       max_params=parse_count(max_params) or 2e9, n_jobs=n_jobs, heartbeat=heartbeat)
    with SearchDisplay(cfg, quiet or as_json) as display:
        outcome = run_search(cfg, dataset, display)
    if outcome["interrupted"]:
        console_err().print(f"stopped: {outcome['finished']} finished trials are kept in {storage}; "
                            "run the same command to continue")
    _print_best(storage, study_name, top, as_json, outcome=outcome)
    if outcome["interrupted"]:
        raise typer.Exit(130)


def _spawn_workers(workers, study_name, storage, top, as_json):
    """Start N copies of this command as worker processes on one study, and wait."""
    import subprocess

    from .search import default_workers_threads

    args, skip = [], False
    for a in sys.argv[1:]:  # drop --workers N / --workers=N from the workers' command line
        if skip:
            skip = False
            continue
        if a == "--workers":
            skip = True
            continue
        if a.startswith("--workers="):
            continue
        args.append(a)
    env = {**os.environ, "RDZOO_THREADS": str(default_workers_threads(workers))}
    worker_args = [sys.executable, "-m", "rdzoo.cli", *args, "--study", study_name, "--quiet", "--top", "0"]
    procs = [subprocess.Popen(worker_args, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    codes = []
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.wait()
        raise
    if any(c not in (0, 130) for c in codes):
        console_err().print(f"workers exited with {codes}")
    _print_best(storage, study_name, top, as_json)
    if any(c not in (0, 130) for c in codes):
        raise typer.Exit(1)


def _print_best(storage, study, top, as_json, outcome=None):
    if top <= 0:
        return
    from .query import Results

    rows = Results(storage).best(study, top=top)
    if as_json:
        return emit_json({**(outcome or {}), "best": [_public(r) for r in rows]})
    console().print(best_table(rows, f"best of study {study}"))


def _public(row: dict) -> dict:
    keep = ("trial", "state", "family", "skip", "params", "flops", "latency_ms", "dev_accuracy", "test_accuracy",
            "macro_f1", "dev_entity_f1", "entity_f1", "train_seconds", "epochs", "objective_values", "spec")
    return {k: row[k] for k in keep}


def best_table(rows, title):
    from rich.table import Table

    def cell(value, fmt=".4f"):
        return f"{value:{fmt}}" if value is not None else "-"

    entity = any(r.get("dev_entity_f1") is not None for r in rows)  # entity-tagged data: entity F1 columns too
    table = Table("#", "trial", "family", "skip", "params", "FLOPs", "ms", "dev acc", "test acc",
                  *(("dev entity F1", "test entity F1") if entity else ()), "train s", title=title, box=None)
    for rank, r in enumerate(rows, 1):
        table.add_row(str(rank), str(r["trial"]), r["family"] or "-", r["skip"] or "-", human(r["params"] or 0),
                      human(r["flops"] or 0), cell(r["latency_ms"], ".1f"), cell(r["dev_accuracy"]),
                      cell(r["test_accuracy"]), *((cell(r["dev_entity_f1"]), cell(r["entity_f1"])) if entity else ()),
                      cell(r["train_seconds"], ".1f"))
    return table if rows else "no completed trials match"


def _resolve_study(store, study):
    if study:
        if not store.has_study(study):
            from .names import did_you_mean

            names = store.study_names()
            raise UsageError(f"no study {study!r} in {store.url}{did_you_mean(study, names) or '; studies: ' + ', '.join(names)}")
        return study
    latest = store.latest_study()
    if latest is None:
        raise UsageError(f"no finished trials in {store.url}; run `rdzoo search` first")
    return latest


@app.command()
def studies(storage: StorageOpt = "sqlite:///rdzoo.db", as_json: JsonOpt = False):
    """The studies in the database: trials, best dev accuracy, last update."""
    import datetime

    from .query import Results

    rows = Results(storage).summary()
    if as_json:
        return emit_json(rows)
    from rich.table import Table

    table = Table("study", "complete", "pruned", "failed", "best dev acc", "last update", box=None)
    for r in rows:
        when = datetime.datetime.fromtimestamp(r["last_update"]).strftime("%Y-%m-%d %H:%M:%S")
        best = f"{r['best_dev_accuracy']:.4f}" if r["best_dev_accuracy"] is not None else "-"
        table.add_row(r["study"], str(r["complete"]), str(r["pruned"]), str(r["failed"]), best, when)
    console().print(table if rows else f"no studies in {storage}")


@app.command()
def best(study: StudyOpt = None, storage: StorageOpt = "sqlite:///rdzoo.db",
         top: Annotated[int, typer.Option("--top", "-n", min=1, help="How many to show.")] = 5,
         family: Annotated[Optional[str], typer.Option(help="resnet, densenet or transformer.")] = None,
         skip: Annotated[Optional[str], typer.Option(help="Only this skip type.")] = None,
         max_params: Annotated[Optional[str], typer.Option("--max-params", help="At most this many parameters (2M, 500k).")] = None,
         min_accuracy: Annotated[Optional[float], typer.Option("--min-accuracy", help="At least this dev accuracy.")] = None,
         sort: Annotated[Optional[str], typer.Option(help="dev_accuracy, test_accuracy, dev_entity_f1, entity_f1, params, flops, latency_ms, train_seconds (default: dev_entity_f1 for entity data, else dev_accuracy).")] = None,
         pareto: Annotated[bool, typer.Option("--pareto", help="The Pareto front of a multi-objective study.")] = False,
         as_json: JsonOpt = False):
    """The best configurations of a study, with filters."""
    from .names import FAMILIES, SKIPS, did_you_mean
    from .query import SORTABLE, Results

    for name, value, allowed in (("--family", family, FAMILIES), ("--skip", skip, SKIPS), ("--sort", sort, SORTABLE)):
        if value is not None and value not in allowed:
            raise UsageError(f"{name} {value!r} is not one of: {', '.join(allowed)}{did_you_mean(value, allowed)}")
    store = Results(storage)
    study = _resolve_study(store, study)
    filters = dict(family=family, skip=skip, max_params=parse_count(max_params), min_accuracy=min_accuracy)
    if pareto:
        objectives = store.objectives(study)
        if len(objectives) < 2:
            raise UsageError(f"study {study!r} has one objective; --pareto needs a search run with --objectives accuracy,params")
        rows = store.pareto(study, objectives, **filters)[:top]
        title = f"Pareto front of {study} ({', '.join(objectives)})"
    else:
        rows = store.best(study, top=top, sort=sort, **filters)
        title = f"best of study {study}"
    if as_json:
        return emit_json([_public(r) for r in rows])
    console().print(best_table(rows, title))


@app.command()
def export(study: StudyOpt = None, storage: StorageOpt = "sqlite:///rdzoo.db",
           trial: Annotated[Optional[int], typer.Option("--trial", "-t", help="Export this trial.")] = None,
           best_: Annotated[bool, typer.Option("--best", help="Export the best trial (by dev accuracy).")] = False,
           out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the spec here (default: print it).")] = None,
           name: Annotated[Optional[str], typer.Option(help="The exported spec's name.")] = None):
    """Write a trial's spec as YAML that `rdzoo build` and `rdzoo train` accept."""
    from .query import Results
    from .spec import from_dict

    if (trial is None) == (not best_):
        raise UsageError("pass --best or --trial N (one of them)")
    store = Results(storage)
    study = _resolve_study(store, study)
    if best_:
        rows = store.best(study, top=1)
        if not rows:
            raise UsageError(f"study {study!r} has no completed trial yet")
        row = rows[0]
    else:
        row = store.trial(study, trial)
        if row is None:
            raise UsageError(f"study {study!r} has no recorded trial {trial}")
    if row["state"] != "COMPLETE":
        console_err().print(f"note: trial {row['trial']} ended {row['state']}" + (f" ({row['error']})" if row["error"] else ""))
    spec_dict = dict(row["spec"])
    spec_dict["name"] = name or (out.stem if out else spec_dict.get("name", f"{study}-trial-{row['trial']}"))
    acc = f"dev accuracy {row['dev_accuracy']:.4f}, " if row["dev_accuracy"] is not None else ""
    spec_dict["description"] = f"trial {row['trial']} of study {study} ({acc}{row['params'] or 0:,} parameters)"
    text = from_dict(spec_dict).to_yaml()
    if out is None:
        sys.stdout.write(text)
        return
    make_folder(out.parent, "-o")
    try:
        out.write_text(text)
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot write ({exc.strerror or exc})") from None
    console_err().print(f"wrote {out}: trial {row['trial']}, {row['family']}, {row['params']:,} parameters")


def main() -> None:
    from .errors import DataError, StoreError, TrainingError, WeightsError

    try:
        app(standalone_mode=True)
    except (SpecError, UsageError) as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(2)
    except DataError as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(2)
    except (WeightsError, TrainingError, StoreError) as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("rdzoo: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
