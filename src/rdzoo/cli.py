"""The `rdzoo` command. Heavy libraries (torch, timm, optuna) are imported
inside the commands that need them, so `rdzoo --help` and `rdzoo list` start fast."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .display import human
from .errors import SpecError

def _click_metavars() -> None:
    """Help names what an option takes as click does (TEXT, INTEGER, PATH) and nothing after a
    flag. typer 0.2x prints `<bool>` after flags and `<list[str]>` after repeatable options, as
    if they took those values; its `display_type_rich` is the one place both help styles ask."""
    from typer import core

    names = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "int range": "INTEGER",
             "float range": "FLOAT", "bool": "BOOLEAN"}

    def display(self, ctx):
        if self.metavar is not None:
            return self.metavar
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        label = self.display_type(ctx).strip("<>")  # "int range", "list[str]", "path", "a|b"
        if label.startswith("list[") and label.endswith("]"):  # repeatable: one value a time
            label = label[5:-1]
        return names.get(label, label.upper() if "|" not in label else f"[{label}]")

    def usage_name(self):  # `NAME`, `[NAME]`, `TEXTS...` on the usage line, not `{name}`
        name = (self.metavar or self.name or "").upper()
        return (name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")

    for cls in (core.TyperOption, core.TyperArgument):
        if hasattr(cls, "display_type_rich"):
            cls.display_type_rich = display
    if hasattr(core.TyperArgument, "_usage_display_name"):
        core.TyperArgument._usage_display_name = usage_name


_click_metavars()

app = typer.Typer(
    help="A model zoo and architecture search for NLP encoders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N or mps.")]
PrecisionOpt = Annotated[str, typer.Option("--precision", help="auto (bf16 on a GPU that has it, fp16 on an older "
                                                               "GPU, fp32 on the CPU), fp32, bf16 or fp16.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a spec key: key.path=value (repeatable).")]


class UsageError(Exception):
    """Bad input from the user: one line on stderr, exit status 2."""


def console():
    """A rich Console on stdout (imported here: rich stays out of `rdzoo --help`). Written to a
    file or a pipe with no COLUMNS set, tables get 200 columns instead of rich's 80, so that a
    log keeps every cell whole."""
    from rich.console import Console

    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(width=200) if piped else Console()


def make_folder(path: Path, option: str) -> None:
    """Create `path` and its parents; UsageError naming `option` when it cannot be created."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create this folder ({exc.strerror or exc})") from None


def emit_json(obj) -> None:
    """Write `obj` as indented JSON to stdout (values JSON lacks, such as paths, as strings)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def where_to_run(device: str, precision: str):
    """--device and --precision -> (torch.device, Precision); DeviceError (exit 2) for one that is not there."""
    from .device import resolve_device, resolve_precision

    dev = resolve_device(device)
    return dev, resolve_precision(precision, dev)


def _version(value: bool) -> None:
    if not value:
        return
    from .device import env_info

    info = env_info()
    gpus = [f"{d['device']} {d['name']}" for d in info["devices"] if d["device"] != "cpu"]
    sys.stdout.write(f"rdzoo {info['rdzoo']}, torch {info['torch']}, CUDA {info['cuda'] or 'none (CPU build)'}, "
                     f"devices: {'; '.join(['cpu', *gpus])}, optuna {info['optuna'] or 'not installed'}\n")
    raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the versions of rdzoo, torch, CUDA and Optuna, and the devices.")] = False):
    """A model zoo and architecture search for NLP encoders."""


@app.command()
def env(as_json: JsonOpt = False):
    """What rdzoo runs on: versions of rdzoo, Python, torch, CUDA, cuDNN and Optuna, and every device it sees."""
    from .device import env_info, human_bytes

    info = env_info()
    if as_json:
        return emit_json(info)
    from rich.table import Table

    c = console()
    c.print(f"rdzoo {info['rdzoo']}  python {info['python']}  torch {info['torch']}  "
            f"CUDA {info['cuda'] or 'none (a CPU-only build)'}  cuDNN {info['cudnn'] or '-'}  "
            f"optuna {info['optuna'] or 'not installed'}  timm {info['timm'] or 'not installed'}")
    table = Table("device", "name", "memory", "compute capability", "bf16", box=None)
    for d in info["devices"]:
        table.add_row(d["device"], d["name"], human_bytes(d.get("memory")), d.get("capability", "-"),
                      "yes" if d["bf16"] else "no")
    c.print(table)
    c.print(f"--device auto runs on {info['auto_device']}")


@app.command("list")
def list_cmd(pattern: Annotated[str, typer.Argument(help="fnmatch pattern, e.g. 'densenet*'.")] = "*",
             as_json: JsonOpt = False):
    """List the named models in the zoo with family, skip type and parameter count."""
    from . import plan, registry, spec

    rows = []
    for name in registry.list_models(pattern):
        try:
            s = spec.load(name)
        except SpecError as exc:  # a pretrained entry whose checkpoint is not installed: listed with the reason
            rows.append({"name": name, "family": "-", "skip": "-", "params": None, "description": exc.message})
            continue
        rows.append({"name": name, "family": s.family, "skip": s.skip, "params": plan.count_params(s),
                     "vocab_size": s.embedding.vocab_size, "description": s.description})
    if as_json:
        return emit_json(rows)
    from rich.table import Table

    heads = ("name", "family", "skip", "params", "vocab")
    cells = [(r["name"], r["family"], r["skip"], "-" if r["params"] is None else human(r["params"]), human(r["vocab_size"])) for r in rows]
    widths = [max([len(column)] + [len(c[i]) for c in cells]) for i, column in enumerate(heads)]
    out = console()
    room = max(out.width - sum(widths) - 2 * 6, 10)  # the description gets what the other columns leave
    table = Table(*heads, "description", box=None)
    for r, c in zip(rows, cells):
        text = r["description"]
        table.add_row(*c, text if len(text) <= room else text[: room - 1] + "…")
    out.print(table if rows else f"no model matches {pattern!r}")
    if rows:  # the embedding table is most of a small model: it shrinks with the data's vocabulary
        out.print("params assume the spec's vocabulary (vocab: embedding.vocab_size); trained on data with "
                  "fewer words, the model has fewer", markup=False, highlight=False)


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
          device: DeviceOpt = "cpu", precision: PrecisionOpt = "auto",
          as_json: JsonOpt = False):
    """Build a model, run a dummy batch, and print stages, parameters, FLOPs and latency (on --device): a
    batch's, and one sentence's on one thread (the median of 20 passes of 32 tokens, fewer if
    embedding.max_len is shorter)."""
    from . import spec

    s = spec.load(name, set_ or [])
    import torch

    from . import profile
    from .registry import create_model

    dev, prec = where_to_run(device, precision)
    model = create_model(s, seed=0).eval()  # with a checkpoint's weights, so that --out saves them
    length = seq_len or min(s.embedding.max_len, 128)
    if length > s.embedding.max_len and s.embedding.positions in ("learned", "sinusoidal"):
        raise UsageError(f"--seq-len {length} is longer than embedding.max_len {s.embedding.max_len}")
    one = profile.dummy_batch(s, 1, length)
    tokens = profile.dummy_batch(s, batch, length)
    stages = profile.stage_shapes(model, tokens)
    flops = profile.flops(model, one)
    model, tokens = model.to(dev), tokens.to(dev)
    with prec.autocast():
        latency = profile.latency(model, tokens, repeats=3)
        sentence_ms = profile.sentence_latency_ms(model)
    result = {
        "name": s.name, "family": s.family, "skip": s.skip,
        "params": profile.count_params(model),
        "flops": flops,
        "seq_len": length, "batch": batch,
        "latency_ms": round(latency * 1000, 3), "device": str(dev), "precision": prec.name,
        # deployment latency: one sentence of typical length on one thread
        "sentence_latency_ms": round(sentence_ms, 3),
        "sentence_tokens": min(profile.SENTENCE_TOKENS, s.embedding.max_len),
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
            f"latency {result['latency_ms']:.1f} ms for a batch of {batch}, {result['sentence_latency_ms']:.2f} ms "
            f"per sentence ({result['sentence_tokens']} tokens, 1 thread) on {dev} ({prec.name})")
    if out is not None:
        c.print(f"saved {out}")


DataOpt = Annotated[str, typer.Option("--data", "-d", help="Built-in name (trec, sst2, ud-ewt, wnut17, synthetic: `rdzoo data`), a folder with train/dev/test files, or one file.")]
TextColOpt = Annotated[Optional[str], typer.Option("--text-col", help="CSV/TSV column or JSONL field with the text (default: text).")]
LabelColOpt = Annotated[Optional[str], typer.Option("--label-col", help="CSV/TSV column or JSONL field with the label (default: label).")]
BadLineOpt = Annotated[str, typer.Option("--on-bad-line", help="error: stop at a malformed line; skip: skip and count it.")]
LabelNamesOpt = Annotated[Optional[Path], typer.Option("--label-names", help="A file of `value name` lines naming the labels (a folder's label_names.txt by default).")]


def load_dataset(data: str, text_col=None, label_col=None, on_bad_line="error", seed=0, label_names=None):
    """`--data` with its column, bad-line and label-name options -> TextData (DataError on bad input)."""
    from .text.data import Columns, load_data

    return load_data(data, Columns(text_col, label_col), on_bad_line=on_bad_line, seed=seed, label_names=label_names)


def data_report(dataset, train_cfg=None) -> dict:
    """What the loader did (lines not UTF-8, lines skipped, splits held out), for a command's --json;
    with a spec's train settings, the dev split that training holds out too."""
    from .text.data import dev_note

    report = dataset.report()
    if train_cfg is not None:
        report["notes"] += dev_note(dataset, train_cfg.dev_fraction, train_cfg.seed)
    return report


def _space_train(space_obj):
    """The train settings a search space fixes, for the note on the dev split trials hold out."""
    from .spec import Train

    fixed = space_obj.fixed.get("train") if isinstance(space_obj.fixed, dict) else None
    fixed = fixed if isinstance(fixed, dict) else {}
    return Train(**{k: fixed[k] for k in ("dev_fraction", "seed") if k in fixed})


def distill_rows(info: dict | None) -> dict:
    """What a student learnt from, as rows of a metrics table: each teacher (its run, whether it
    was fine-tuned now, its dev score), the transfer set's sizes and the cached outputs' file."""
    if not info:
        return {}
    rows = {}
    for i, t in enumerate(info["teachers"]):
        dev = f", dev {t['dev_score']:.4f}" if isinstance(t["dev_score"], (int, float)) else ""
        rows["teacher" if i == 0 else f"teacher ({i + 1})"] = \
            f"{t['teacher']} -> {t['run']}{' (fine-tuned now)' if t['fine_tuned'] else ''}{dev}"
    size = info["transfer"]
    rows["transfer set"] = (f"{size['transfer_texts']} texts: {size['train']} training, {size['augmented']} augmented, "
                            f"{size['unlabeled']} unlabelled")
    rows["teacher outputs"] = info["targets"]
    return rows


def report_rows(report: dict) -> dict:
    """The report's notes as rows of a metrics table: data, data (2), ..."""
    return {("data" if i == 0 else f"data ({i + 1})"): note for i, note in enumerate(report["notes"])}


@app.command()
def data(source: Annotated[Optional[str], typer.Argument(help="A dataset to inspect (default: list the built-in ones).")] = None,
         text_col: TextColOpt = None, label_col: LabelColOpt = None, on_bad_line: BadLineOpt = "error",
         label_names: LabelNamesOpt = None, seed: Annotated[int, typer.Option(help="Seed of the split held out of one file.")] = 0,
         as_json: JsonOpt = False):
    """List the built-in datasets with their sizes, or inspect one dataset."""
    from .errors import DataError
    from .text.conll import entity_counts, is_entity_tagset
    from .text.data import builtin_names

    rows = []
    for name in ([source] if source else builtin_names()):
        try:
            d = load_dataset(name, text_col, label_col, on_bad_line, seed=seed, label_names=label_names)
        except DataError as exc:
            if source:  # the one dataset asked for: its error is the answer
                raise
            rows.append({"name": name, "error": in_cli_terms(exc)})  # a listing shows every built-in, readable or not
            continue
        report = d.report()
        entity = d.tagging and is_entity_tagset(d.label_names)
        rows.append({"name": name, **d.sizes(), "classes": len(d.label_names), "labels": d.label_names,
                     "task": "entity tagging" if entity else "tagging" if d.tagging else "classification", **report})
        if entity:  # entities per type and split
            rows[-1]["entities"] = {split: dict(sorted(entity_counts(getattr(d, split).labels).items()))
                                    for split in ("train", "dev", "test") if getattr(d, split) is not None}
    if as_json:
        return emit_json(rows)
    from rich.table import Table

    table = Table("dataset", "train", "dev", "test", "classes", "notes", box=None)
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], "-", "-", "-", "-", f"cannot be read: {r['error']}")
            continue
        table.add_row(r["name"], str(r["train"]), str(r["dev"] or "-"), str(r["test"] or "-"), str(r["classes"]),
                      "; ".join(r["notes"]))
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
    """A two-column rich table of metric -> value, fractions to 4 places."""
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
          label_names: LabelNamesOpt = None,
          overwrite: Annotated[bool, typer.Option("--overwrite", help="Let --out replace a run already in its folder.")] = False,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
          device: DeviceOpt = "auto", precision: PrecisionOpt = "auto",
          teacher: Annotated[Optional[list[str]], typer.Option("--teacher", help="Learn from this teacher too: a run folder, or a zoo name or spec to fine-tune on the training split first (repeatable: their mean logits).")] = None,
          unlabeled: Annotated[Optional[Path], typer.Option("--unlabeled", help="In-domain text without labels, one a line, for the teacher to label (with --teacher).")] = None,
          teacher_dir: Annotated[Path, typer.Option("--teacher-dir", help="Where teachers fine-tuned by --teacher are kept and found again.")] = Path("runs/teachers"),
          targets: Annotated[Optional[str], typer.Option("--targets", "--targets-dir", help="Where the teachers' outputs are cached: a folder, or a storage URL (as --storage) whose database keeps them for every worker of a study (default: the folder TEACHER_RUN/targets).")] = None,
          as_json: JsonOpt = False):
    """Train a model on text data (built-in TREC-6 by default) and report accuracy; with --teacher,
    as a student of a teacher's logits (train.distill)."""
    from . import spec as spec_mod
    from .errors import WeightsError

    overrides = list(set_ or []) + ([f"train.seed={seed}"] if seed is not None else [])
    s = spec_mod.load(name, overrides)
    dev, prec = where_to_run(device, precision)
    if cv and teacher:
        raise UsageError("--cv trains one model per fold and --teacher one student; use one of them")
    if s.train.distill is not None and not teacher:
        raise UsageError("train.distill is set: it is a student's recipe; name its teacher with --teacher "
                         "RUN (a run folder, a zoo name or a spec)")
    if unlabeled is not None and not teacher:
        raise UsageError("--unlabeled texts are labelled by a teacher; name one with --teacher")
    if out is not None:
        if cv:
            raise UsageError("--out saves one trained model and --cv trains one per fold; use one of them")
        from .runs import check_out

        try:
            check_out(out, overwrite)  # before training, not after minutes of it
        except FileExistsError as exc:  # the library's terms in the command's: --out, --overwrite
            raise UsageError(f"--out {str(exc).replace('overwrite=True', '--overwrite')}") from None
        make_folder(out, "--out")
    dataset = load_dataset(data, text_col, label_col, on_bad_line, seed=s.train.seed, label_names=label_names)
    report = data_report(dataset, None if cv else s.train)
    if cv:
        report["notes"].append(f"--cv {cv}: {cv} folds of the {len(dataset.train)} training examples (seed "
                               f"{s.train.seed}); each fold trains on the rest and holds {s.train.dev_fraction:.0%} "
                               "of it out as dev")
    from .train import check_optimizer, cross_validate, fit

    check_optimizer(s.train.optimizer)
    split = None
    if out is not None:  # the files' sha256 taken now, right after they were read
        from .text.heldout import SplitRecord

        split = SplitRecord.of(dataset, s.train.dev_fraction, s.train.seed)
    progress = not (quiet or as_json)
    unsaved = None
    if cv:
        result = {"name": s.name, "data": data,
                  **cross_validate(s, dataset, cv, epochs=epochs, progress=progress, device=dev, precision=prec),
                  "data_report": report}
    else:
        distilled = None
        if teacher:
            from .distill.augment import read_unlabeled
            from .distill.student import fit_student

            extra = None
            if unlabeled is not None:
                extra, notes = read_unlabeled(unlabeled, dataset.tagging)
                report["notes"] += notes
            fitted, distilled = fit_student(s, dataset, teacher, unlabeled=extra, teacher_dir=teacher_dir,
                                            targets=targets, epochs=epochs, progress=progress, device=dev,
                                            precision=prec)
        else:
            fitted = fit(s, dataset, epochs=epochs, progress=progress, device=dev, precision=prec)
        result = {"name": s.name, "data": data, **fitted.metrics, "data_report": report}
        if distilled is not None:
            result["distill"] = distilled
        if out is not None:
            from .runs import save_run
            from .text.data import builtin_names, read_label_names

            # what `rdzoo eval RUN` reads the data with again: columns, label names, the held-out split's seed
            config = {"data": data, "data_path": None if data in builtin_names() else str(Path(data).expanduser().resolve()),
                      "epochs": epochs or s.train.epochs, "text_col": text_col, "label_col": label_col,
                      "on_bad_line": on_bad_line, "label_names": read_label_names(label_names) if label_names else None,
                      "label_values": dataset.label_values,  # whichever names were applied (a folder's own too)
                      "data_seed": s.train.seed, "data_report": report,
                      **({"distill": distilled} if distilled is not None else {})}
            try:
                save_run(fitted, out, config, overwrite=overwrite, split=split)
                result["out"] = str(out)
            except (OSError, WeightsError) as exc:  # a full disk: still report what was trained, then fail
                unsaved = f"could not save the run to {out}: {getattr(exc, 'strerror', None) or exc}"
    if as_json:
        emit_json(result)
    else:
        shown = {k: v for k, v in result.items() if k not in ("folds", "name", "data", "data_report", "distill")}
        console().print(metrics_table(f"{s.name} on {data}", {**shown, **distill_rows(result.get("distill")),
                                                              **report_rows(report)}))
    if unsaved:
        raise WeightsError(unsaved)


@app.command("eval")
def eval_cmd(run: Annotated[Path, typer.Argument(help="A run folder written by `rdzoo train --out`.")],
             data: Annotated[Optional[str], typer.Option("--data", "-d", help="A dataset as for train (default: the run's).")] = None,
             text_col: TextColOpt = None, label_col: LabelColOpt = None,
             on_bad_line: Annotated[Optional[str], typer.Option("--on-bad-line", help="error or skip (default: as the run was trained).")] = None,
             label_names: LabelNamesOpt = None, device: DeviceOpt = "auto", precision: PrecisionOpt = "auto",
             as_json: JsonOpt = False):
    """Evaluate a saved run on a dataset's dev and test splits; what is not given (columns, label names, the
    seed of a split held out of one file) is read as the run was trained. Examples the run trained on are
    never scored as held out: its own unchanged data gives its own test split, changed data the examples
    it never trained on, other data its splits less those (the `held out` row says which)."""
    from .runs import load_run, load_split
    from .text.heldout import held_out, same_source

    loaded = load_run(run).to(*where_to_run(device, precision))
    from .text.data import name_as_trained

    cfg = loaded.config
    own = data is None or same_source(data, cfg.get("data"), cfg.get("data_path"))
    data = data or cfg.get("data_path") or cfg.get("data") or "trec"  # a file: found from any folder
    dataset = load_dataset(data, text_col or cfg.get("text_col"), label_col or cfg.get("label_col"),
                           on_bad_line or cfg.get("on_bad_line") or "error", seed=cfg.get("data_seed", 0),
                           label_names=label_names)
    if label_names is None:  # labels in the values the run's names came from (TREC's 0-5): named as in training
        dataset = name_as_trained(dataset, _trained_label_values(cfg), loaded.label_names, "the run's label names")
    if not any(getattr(dataset, split) is not None and len(getattr(dataset, split)) for split in ("dev", "test")):
        from .errors import DataError

        raise DataError(f"{data}: no dev or test split to evaluate on (a folder needs a dev or test file; one "
                        "file has a test split held out)")
    scored = held_out(dataset, load_split(loaded), data, own)
    report = data_report(dataset)
    result = {"run": str(run), "data": data, "held_out": scored.to_json(), "data_report": report}
    for split in ("dev", "test"):
        part = getattr(scored, split)
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
    shown = {k: v for k, v in result.items() if k not in ("run", "data", "held_out", "data_report")}
    console().print(metrics_table(f"{run} on {data}", {**shown, "held out": scored.note, **report_rows(report)}))


def _trained_label_values(cfg: dict) -> dict | None:
    """The {value: name} map a run's labels were named with in training: recorded in its config.json, or, for a
    run that predates the record, the --label-names it was given or its built-in data's label_names.txt."""
    from .text.data import BUILTIN_DIR, LABEL_NAMES_FILE, builtin_names, read_label_names

    recorded = cfg.get("label_values") or cfg.get("label_names")
    builtin = cfg.get("data") if cfg.get("data") in builtin_names() and not cfg.get("data_path") else None
    if recorded is None and builtin and (BUILTIN_DIR / builtin / LABEL_NAMES_FILE).is_file():
        return read_label_names(BUILTIN_DIR / builtin / LABEL_NAMES_FILE)
    return recorded


@app.command()
def predict(run: Annotated[Path, typer.Argument(help="A run folder written by `rdzoo train --out`.")],
            texts: Annotated[list[str], typer.Argument(help="One or more sentences.")],
            device: DeviceOpt = "cpu", precision: PrecisionOpt = "auto",
            as_json: JsonOpt = False):
    """Print the predicted label of each sentence (a tagger: each word with its tag; an entity
    tagger: the sentence with its entities marked `[Empire State Building](location)`)."""
    from .runs import load_run
    from .text.conll import is_entity_tagset, mark_entities

    loaded = load_run(run).to(*where_to_run(device, precision))
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


def console_err():
    """A rich Console on stderr, for progress and messages that must not mix with --json."""
    from rich.console import Console

    return Console(stderr=True)


SEARCH_HELP = (
    "Search architectures with Optuna; every trial is stored in the database.\n\n"
    "After the trials, a final stage retrains the --final best distinct architectures and the --baseline at "
    "their full recipe with --final-seeds fresh seeds each (the same seeds for all), stores the runs in the "
    "companion study SPACE-DATA-final, and ends with a verdict: the recommended spec (best mean dev accuracy), "
    "its dev and test mean and sd, and its test difference from the baseline paired by seed. Running the same "
    "command again resumes the trials, then the final stage.\n\n"
    "Latency (ms) is the median of at least 20 timed forward passes on one thread, after 3 warm-up passes, of "
    "a batch of 32 sequences of 64 tokens (fewer if embedding.max_len is shorter); FLOPs (one sequence) and "
    "parameters are exact counts.")


@app.command(help=SEARCH_HELP)
def search(ctx: typer.Context,
           space: Annotated[str, typer.Option("--space", "-s", help="A named search space or a YAML file.")] = "default",
           data: DataOpt = "trec",
           trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="Target number of finished trials in the study.")] = 50,
           timeout: Annotated[str, typer.Option(help="Time for the whole search, final stage included: 3600, 90m, 1h, or none. The trials stop early enough for the final stage to fit (estimated from its contenders' recorded training times).")] = "20m",
           study: Annotated[Optional[str], typer.Option("--study", help="Study name (default: SPACE-DATA).")] = None,
           storage: StorageOpt = "sqlite:///rdzoo.db",
           sampler: Annotated[str, typer.Option(help="tpe (multivariate, grouped), random, nsga2 or gp.")] = "tpe",
           pruner: Annotated[str, typer.Option(help="hyperband, median or none.")] = "hyperband",
           seed: Annotated[Optional[int], typer.Option(help="Seed the sampler for a reproducible study.")] = None,
           epochs: Annotated[Optional[int], typer.Option(min=1, help="Override the space's training epochs.")] = None,
           objectives: Annotated[str, typer.Option(help="accuracy, or accuracy plus params, latency, flops or memory: accuracy,params.")] = "accuracy",
           max_params: Annotated[Optional[str], typer.Option("--max-params", help="Refuse sampled specs above this size (e.g. 20M).")] = None,
           max_memory: Annotated[Optional[str], typer.Option("--max-memory", help="Prune trials whose peak memory passes this after an epoch (e.g. 8GB).")] = None,
           workers: Annotated[int, typer.Option("--workers", min=1, help="Local worker processes on the same study; on a GPU machine, one GPU each.")] = 1,
           gpus: Annotated[Optional[str], typer.Option("--gpus", help="The GPUs the workers take in turn, e.g. 0,2,3 (default: all).")] = None,
           device: DeviceOpt = "auto", precision: PrecisionOpt = "auto",
           n_jobs: Annotated[int, typer.Option("--n-jobs", min=1, help="Threads per worker (Optuna n_jobs).")] = 1,
           heartbeat: Annotated[int, typer.Option(min=1, help="Worker heartbeat seconds; a silent worker's trial is retried after 3x this.")] = 20,
           text_col: TextColOpt = None, label_col: LabelColOpt = None, on_bad_line: BadLineOpt = "error",
           label_names: LabelNamesOpt = None,
           quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display.")] = False,
           top: Annotated[int, typer.Option(help="Best configurations to print at the end.")] = 5,
           final: Annotated[int, typer.Option("--final", min=1, help="Final stage: retrain this many of the best distinct architectures.")] = 3,
           final_seeds: Annotated[int, typer.Option("--final-seeds", min=1, help="Seeds per contender in the final stage (the same seeds for all, so differences are paired).")] = 3,
           baseline: Annotated[str, typer.Option("--baseline", help="Zoo model or spec file the final stage compares with, or none.")] = "kim-cnn",
           no_final: Annotated[bool, typer.Option("--no-final", help="Skip the final stage (trials only).")] = False,
           as_json: JsonOpt = False):
    """Search architectures with Optuna; the help text is SEARCH_HELP."""
    from .space import load_space

    space_obj = load_space(space)
    objective_list = [o.strip() for o in objectives.split(",") if o.strip()]
    from .search import OBJECTIVES, PRUNERS, SAMPLERS

    for name, value, allowed in (("--sampler", sampler, SAMPLERS), ("--pruner", pruner, PRUNERS)):
        if value not in allowed:
            raise UsageError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    if not objective_list or objective_list[0] != "accuracy" or any(o not in OBJECTIVES for o in objective_list) \
            or len(set(objective_list)) != len(objective_list):
        raise UsageError(f"--objectives {objectives!r}: start with accuracy, then any of params, latency, flops, memory")
    from .device import parse_bytes, parse_gpus, worker_devices

    memory_cap = parse_bytes(max_memory)
    import torch

    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = worker_devices(workers, device, gpu_count, parse_gpus(gpus))
    where_to_run(devices[0], precision)  # a device or precision that is not there: one error before any work
    from .search import SearchConfig, default_study, run_search
    from .workers import FINAL_BY_PARENT, THREADS, WORKER_INDEX

    study_name = study or default_study(space_obj.name, data)
    base_name = None if baseline.lower() == "none" else baseline
    if base_name is not None and not no_final:
        from .spec import load as load_spec

        load_spec(base_name)  # a misspelt baseline fails now, not after the trials
    cfg = SearchConfig(space_obj, data, study_name, storage, trials=trials,
                       timeout=None if timeout.lower() == "none" else parse_duration(timeout),
                       sampler=sampler, pruner=pruner, seed=seed, epochs=epochs, objectives=objective_list,
                       max_params=parse_count(max_params) or 2e9, n_jobs=n_jobs, heartbeat=heartbeat,
                       device=devices[0], precision=precision, max_memory=memory_cap,
                       worker=int(os.environ.get(WORKER_INDEX, "0")))
    run_final = not no_final and len(objective_list) == 1
    # a --workers child runs no final stage itself, but its trials leave time for the parent's
    final_follows = not no_final or os.environ.get(FINAL_BY_PARENT) == "1"
    if final_follows and len(objective_list) == 1 and cfg.timeout is not None:
        cfg.reserve = _final_reserve(final, final_seeds, base_name, epochs)
    dataset = report = None
    if workers > 1:
        from .display import make_display
        from .workers import run_workers

        # the parent shows every trial; quiet, the workers print their failures
        display = make_display(cfg, quiet or as_json, silent=quiet or as_json)
        options = _given_options(ctx, leave_out=("workers", "device", "gpus", "study", "quiet", "top", "no_final"))
        outcome, code, codes = run_workers(options, devices, cfg, display, final_follows=run_final)
        if any(c not in (0, 130) for c in codes):
            console_err().print(f"workers exited with {codes}")
        if outcome is None:  # no study was opened: the workers said why
            raise typer.Exit(code or 1)
        if code or outcome["interrupted"] or not run_final:
            _finish_search(cfg, outcome, display, top, as_json)
            raise typer.Exit(130 if outcome["interrupted"] else code)
    else:
        code = 0
        dataset = load_dataset(data, text_col, label_col, on_bad_line, label_names=label_names)
        report = data_report(dataset, _space_train(space_obj))
        threads = os.environ.get(THREADS)
        if threads:
            torch.set_num_threads(int(threads))
        from .display import make_display
        from .errors import TrainingError

        display = make_display(cfg, quiet or as_json)
        try:
            with display:
                outcome = run_search(cfg, dataset, display)
        except TrainingError as exc:  # every trial failing: the summary, then the error
            if getattr(exc, "outcome", None) is None:
                raise
            _finish_search(cfg, exc.outcome, display, top, as_json, report)
            raise
        if outcome["interrupted"]:
            _finish_search(cfg, outcome, display, top, as_json, report)
            raise typer.Exit(130)
    if run_final:
        if dataset is None:
            dataset = load_dataset(data, text_col, label_col, on_bad_line, label_names=label_names)
        outcome["final"] = _final_stage(cfg, dataset, final, final_seeds, base_name, quiet or as_json)
    _finish_search(cfg, outcome, display, top, as_json, report)


def _final_reserve(k, seeds, baseline, epochs):
    """study -> the seconds to keep for its final stage (checked before and during each trial): what
    it would take now, plus a typical trial once per seed, in case the next trial becomes a contender."""
    from .final import estimate_seconds
    from .search import typical_trial_seconds

    base = None
    if baseline:
        from .spec import load as load_spec

        base = load_spec(baseline, [f"train.epochs={epochs}"] if epochs else []).to_dict()
    return lambda study: estimate_seconds(study, k, seeds, base) + seeds * typical_trial_seconds(study)


def _final_stage(cfg, dataset, k, seeds, baseline, quiet):
    """Run (or resume) the final stage; Ctrl-C keeps the finished runs and says how to go on."""
    from .final import run_final

    status = None if quiet else console_err()

    def on_run(done, total, contender, seed):
        if status is not None:
            status.print(f"final stage {done + 1}/{total}: {contender.label}, seed {seed}", highlight=False)

    try:
        return run_final(cfg, dataset, k=k, seeds=seeds, baseline=baseline, on_run=on_run, deadline=cfg.deadline)
    except KeyboardInterrupt:
        console_err().print(f"stopped in the final stage: its finished runs are kept in {cfg.storage}; "
                            "run the same command to continue")
        raise typer.Exit(130) from None


def _finish_search(cfg, outcome, display, top, as_json, data_report=None):
    """The end of a search: the summary (why it stopped, trials by state, the best, the final
    stage's verdict, what to run next), the final ranking and the best configurations, as text
    on stdout or as one JSON object."""
    from .display import count_states, summary, summary_lines
    from .final import render_verdict
    from .query import DEFAULT_STORAGE, Results

    store = Results(cfg.storage)
    rows = store.best(cfg.study, top=max(top, 1))
    verdict = study_verdict(store, cfg.study)
    counts = count_states(display.study) if display.study is not None else \
        {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    s = summary(outcome, cfg, counts, display.ran, rows[0] if rows else None,
                None if cfg.storage == DEFAULT_STORAGE else cfg.storage)
    if as_json:
        return emit_json({**outcome, "summary": s, "best": [_public(r) for r in rows[:top]],
                          "verdict": _public_verdict(verdict) if verdict else None,
                          **({"data_report": data_report} if data_report else {})})
    shown = render_verdict(verdict).splitlines() if verdict is not None or outcome.get("final") else None
    cut = (outcome.get("final") or {}).get("cut")
    if cut:
        shown.append(f"final stage: seed{'s' if len(cut) > 1 else ''} {', '.join(map(str, cut))} left out to end by "
                     "--timeout; run the same command with a longer --timeout to add them")
    sys.stdout.write("\n".join(summary_lines(s, shown)) + "\n")
    if verdict is not None:
        console().print(final_table(verdict, f"final stage of {cfg.study} (mean +- sd over seeds; * recommended)"))
    if top > 0:
        console().print(best_table(rows[:top], f"best of study {cfg.study}"))
    for note in (data_report or {}).get("notes", []):
        console().print(f"data: {note}", markup=False, highlight=False)


def _given_options(ctx, leave_out=()) -> list[str]:
    """The options given on this command line (not their defaults) as arguments again, each by
    its first name, but those named in `leave_out`: what each worker of `search --workers` gets."""
    args = []
    for p in ctx.command.params:  # by the source's name: typer may bring a click of its own, with its own enum
        if p.name in leave_out or getattr(ctx.get_parameter_source(p.name), "name", None) != "COMMANDLINE":
            continue
        value = ctx.params[p.name]
        if getattr(p, "is_flag", False):
            args.append(p.opts[0] if value else p.secondary_opts[0])
        else:
            for v in (value if p.multiple else [value]):
                args += [p.opts[0], str(v)]
    return args


def study_verdict(store, study):
    """The final stage's verdict of a study from the results table, or None before one ran."""
    from .final import verdict

    final_rows = store.final(study)
    if not final_rows:
        return None
    return verdict(final_rows, store.best(study, top=10**9))


FINAL_FIELDS = ("contender", "baseline", "trial", "family", "skip", "params", "flops", "latency_ms", "dev_mean",
                "dev_sd", "test_mean", "test_sd", "seeds", "n", "train_seconds", "vs_baseline", "spec")


def _public_final(c: dict, v: dict) -> dict:
    # the means repeated under the columns of single trials (dev_accuracy or, on entity data,
    # dev_entity_f1 and entity_f1), so that a reader of single trials reads these too
    from .storage import SCORE_COLUMNS

    dev_key, test_key = SCORE_COLUMNS[v["score"]]
    return {"stage": "final", **{k: c[k] for k in FINAL_FIELDS}, dev_key: c["dev_mean"], test_key: c["test_mean"],
            "recommended": c is v["recommended"]}


def _public_verdict(v: dict) -> dict:
    return {"recommended": _public_final(v["recommended"], v), "baseline": v["baseline"],
            "kept_baseline": v["kept_baseline"], "score": v["score"],
            "ranking": [_public_final(c, v) for c in v["ranking"]], "skips": v["skips"]}


def _public(row: dict) -> dict:
    """A results row for --json: every column but the bookkeeping ones (a new column shows up by
    itself), with `stage` "search" for a search trial."""
    hidden = ("study", "study_id", "trial_id", "datetime_start", "error", "finished_at")
    return {**{k: v for k, v in row.items() if k not in hidden}, "stage": row.get("stage") or "search"}


def neck_of(row: dict) -> str | None:
    """A row's neck as `family/skip` (`resnet/gated`), "-" for none; None when its spec is not known."""
    spec = row.get("spec")
    if not isinstance(spec, dict):
        return None
    neck = spec.get("neck")
    return f"{neck.get('family')}/{(neck.get('encoder') or {}).get('skip')}" if isinstance(neck, dict) else "-"


def final_table(v: dict, title: str):
    """The final stage's ranking: mean +- sd over seeds, and the paired difference from the baseline;
    the recommended contender's rank carries a *."""
    from rich.table import Table

    from .final import _pm

    short = "F1" if v.get("score") == "entity F1" else "acc"
    necks = any(neck_of(c) not in (None, "-") for c in v["ranking"])
    table = Table("#", "contender", "family", "skip", *(("neck",) if necks else ()), "params", "ms", f"dev {short} %",
                  f"test {short} %", "seeds",
                  "vs baseline (test)", title=title, box=None)
    for rank, c in enumerate(v["ranking"], 1):
        vs = c["vs_baseline"]
        if vs is None or vs["test_diff"] is None:
            versus = "-"
        elif c["baseline"]:
            versus = "baseline"
        else:
            sd = f" sd {100 * vs['test_diff_sd']:.1f}" if vs["test_diff_sd"] is not None else ""
            versus = f"{100 * vs['test_diff']:+.1f}{sd} {vs['call']}"
        table.add_row(f"{rank}*" if c is v["recommended"] else str(rank), c["contender"], c["family"] or "-",
                      c["skip"] or "-", *((neck_of(c) or "-",) if necks else ()), human(c["params"] or 0),
                      f"{c['latency_ms']:.1f}" if c["latency_ms"] is not None else "-",
                      _pm(c["dev_mean"], c["dev_sd"]), _pm(c["test_mean"], c["test_sd"]), str(c["n"]), versus)
    return table


def best_table(rows, title):
    """The best trials as a rich table that fits 80 columns: params, FLOPs, latency, memory, scores."""
    from rich.table import Table

    # one space between columns and none at the edges: the table fits 80 columns whole
    # instead of cutting "transformer" to "transfo…"
    from .device import human_bytes

    def cell(value, fmt=".4f"):
        return f"{value:{fmt}}" if value is not None else "-"

    entity = any(r.get("dev_entity_f1") is not None for r in rows)  # entity-tagged data: entity F1 columns too
    necks = any(neck_of(r) not in (None, "-") for r in rows)  # a neck column where some trial has one
    table = Table("#", "trial", "family", "skip", *(("neck",) if necks else ()), "params", "FLOPs", "ms", "memory",
                  "dev acc", "test acc",
                  *(("dev entity F1", "test entity F1") if entity else ()), "train s",
                  title=title, box=None, collapse_padding=True, pad_edge=False)
    for column in table.columns[2:4]:
        column.no_wrap, column.overflow = True, "fold"
    for rank, r in enumerate(rows, 1):
        table.add_row(str(rank), str(r["trial"]), r["family"] or "-", r["skip"] or "-", *((neck_of(r) or "-",) if necks else ()),
                      human(r["params"] or 0),
                      human(r["flops"] or 0), cell(r["latency_ms"], ".1f"), human_bytes(r["peak_memory"]),
                      cell(r["dev_accuracy"]), cell(r["test_accuracy"]),
                      *((cell(r["dev_entity_f1"]), cell(r["entity_f1"])) if entity else ()),
                      cell(r["train_seconds"], ".1f"))
    return table if rows else "no completed trials match"


def _resolve_study(store, study):
    from .storage import shown_url

    if study:
        if not store.has_study(study):
            from .names import did_you_mean

            names = store.study_names()
            raise UsageError(f"no study {study!r} in {shown_url(store.storage)}{did_you_mean(study, names) or '; studies: ' + ', '.join(names)}")
        return study
    latest = store.latest_study()
    if latest is None:
        raise UsageError(f"no trials in {shown_url(store.storage)}; run `rdzoo search` first")
    return latest


@app.command()
def studies(storage: StorageOpt = "sqlite:///rdzoo.db", as_json: JsonOpt = False):
    """The studies Optuna holds: trials by state, best dev score (entity F1 on entity data), last update."""
    import datetime

    from .query import Results

    rows = Results(storage).summary()
    if as_json:  # ISO 8601 with the UTC offset, as the table's date but unambiguous
        return emit_json([{**r, "last_update": datetime.datetime.fromtimestamp(r["last_update"]).astimezone()
                           .isoformat(timespec="seconds") if isinstance(r["last_update"], (int, float)) else
                           r["last_update"]} for r in rows])
    from rich.table import Table

    table = Table("study", "complete", "pruned", "failed", "running", "waiting", "best dev", "last update", box=None)
    for r in rows:
        when = (datetime.datetime.fromtimestamp(r["last_update"]).strftime("%Y-%m-%d %H:%M:%S")
                if r["last_update"] is not None else "-")
        best = (f"{r['best_dev_entity_f1']:.4f} F1" if r["best_dev_entity_f1"] is not None  # what its search maximised
                else f"{r['best_dev_accuracy']:.4f} acc" if r["best_dev_accuracy"] is not None
                else f"{r['best_value']:.4g} value" if r.get("best_value") is not None else "-")  # Optuna's value
        table.add_row(r["study"], *(str(r[k]) for k in ("complete", "pruned", "failed", "running", "waiting")), best, when)
    console().print(table if rows else f"no studies in {storage}")


@app.command()
def best(study: StudyOpt = None, storage: StorageOpt = "sqlite:///rdzoo.db",
         top: Annotated[int, typer.Option("--top", "-n", min=1, help="How many to show.")] = 5,
         family: Annotated[Optional[str], typer.Option(help="resnet, densenet or transformer.")] = None,
         skip: Annotated[Optional[str], typer.Option(help="Only this skip type.")] = None,
         max_params: Annotated[Optional[str], typer.Option("--max-params", help="At most this many parameters (2M, 500k).")] = None,
         min_accuracy: Annotated[Optional[float], typer.Option("--min-accuracy", help="At least this dev score (entity F1 for entity data; a fraction).")] = None,
         max_memory: Annotated[Optional[str], typer.Option("--max-memory", help="At most this peak memory (8GB, 512MB).")] = None,
         sort: Annotated[Optional[str], typer.Option(help="dev_accuracy, test_accuracy, dev_entity_f1, entity_f1, params, flops, latency_ms, train_seconds, peak_memory (default: dev_entity_f1 for entity data, else dev_accuracy).")] = None,
         pareto: Annotated[bool, typer.Option("--pareto", help="The Pareto front of a multi-objective study.")] = False,
         as_json: JsonOpt = False):
    """The best configurations of a study, with filters."""
    from .families import FAMILIES
    from .names import did_you_mean
    from .skips import SKIP_TYPES
    from .query import SORTABLE, Results

    for name, value, allowed in (("--family", family, FAMILIES), ("--skip", skip, SKIP_TYPES), ("--sort", sort, SORTABLE)):
        if value is not None and value not in allowed:
            raise UsageError(f"{name} {value!r} is not one of: {', '.join(allowed)}{did_you_mean(value, allowed)}")
    store = Results(storage)
    study = _resolve_study(store, study)
    from .device import parse_bytes

    filters = dict(family=family, skip=skip, max_params=parse_count(max_params), min_accuracy=min_accuracy,
                   max_memory=parse_bytes(max_memory))
    if pareto:
        objectives = store.objectives(study)
        if len(objectives) < 2:
            raise UsageError(f"study {study!r} has one objective; --pareto needs a search run with --objectives accuracy,params")
        rows = store.pareto(study, objectives, **filters)[:top]
        title = f"Pareto front of {study} ({', '.join(objectives)})"
    else:
        rows = store.best(study, top=top, sort=sort, **filters)
        title = f"best of study {study}"
    if not rows:
        store.check_results(study)  # a study of Optuna's own (no rdzoo results): one line, not an empty table
    # the final stage's ranking (whole studies only: a filter selects single trials)
    verdict = None if pareto or any(v is not None for v in filters.values()) else study_verdict(store, study)
    if as_json:
        head = [_public_final(c, verdict) for c in verdict["ranking"]] if verdict else []
        return emit_json(head + [_public(r) for r in rows])
    if verdict:
        console().print(final_table(verdict, f"final stage of {study} (mean +- sd over seeds; * recommended)"))
    console().print(best_table(rows, title))


EXPORT_FORMATS = ("spec", "onnx")


@app.command()
def export(run: Annotated[Optional[Path], typer.Argument(help="A run folder written by `rdzoo train --out`, instead of a study's trial.")] = None,
           study: StudyOpt = None, storage: StorageOpt = "sqlite:///rdzoo.db",
           trial: Annotated[Optional[int], typer.Option("--trial", "-t", help="Export this trial.")] = None,
           best_: Annotated[bool, typer.Option("--best", help="Export the final stage's recommended spec (the best mean dev accuracy over seeds if it beats the baseline's beyond the seeds' noise, else the baseline); without a final stage, the best trial.")] = False,
           out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the spec here (default: print it); the ONNX file (default: RUN/model.onnx).")] = None,
           name: Annotated[Optional[str], typer.Option(help="The exported spec's name.")] = None,
           format_: Annotated[str, typer.Option("--format", "-f", help="spec: the spec as YAML; onnx: a run's trained model as ONNX, checked against PyTorch under onnxruntime and timed (pip install 'rdzoo\\[onnx]').")] = "spec",
           quantize: Annotated[Optional[str], typer.Option("--quantize", help="int8: write the ONNX model with onnxruntime's dynamic quantisation (int8 weights).")] = None,
           tokens: Annotated[Optional[int], typer.Option("--tokens", min=1, help="Tokens of the sentence the ONNX latencies are timed on (default 32, at most embedding.max_len).")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print the trial and its spec as JSON (the file, with -o, stays YAML); with --format onnx, the checks, sizes and latencies.")] = False):
    """Write a trial's (or a run's) spec as YAML that `rdzoo build` and `rdzoo train` accept, or a
    trained run as an ONNX model (--format onnx) with its latency under PyTorch and onnxruntime."""
    if format_ not in EXPORT_FORMATS:
        raise UsageError(f"--format {format_!r} is not one of: {', '.join(EXPORT_FORMATS)}")
    if quantize is not None and (quantize != "int8" or format_ != "onnx"):
        raise UsageError(f"--quantize {quantize!r}: only int8, with --format onnx")
    if tokens is not None and format_ != "onnx":
        raise UsageError("--tokens sets the length the ONNX latencies are timed on: use it with --format onnx")
    if run is not None:
        if trial is not None or best_:
            raise UsageError(f"{run} is a run folder and --trial/--best pick a study's trial: pass one of them")
        if format_ == "onnx":
            return _export_onnx(run, out, quantize, tokens, as_json)
        return _export_run_spec(run, out, name, as_json)
    if format_ == "onnx":
        raise UsageError("--format onnx exports a trained run's weights, which a study's trial does not keep: "
                         "rdzoo export RUN --format onnx -o model.onnx (RUN from `rdzoo train SPEC --out RUN`)")
    from .query import Results
    from .spec import from_dict

    if (trial is None) == (not best_):
        raise UsageError("pass --best or --trial N (one of them), or a run folder")
    store = Results(storage)
    study = _resolve_study(store, study)
    verdict = study_verdict(store, study) if best_ else None
    if verdict:  # the final stage's recommendation, not the luckiest single trial
        rec = verdict["recommended"]
        spec_dict = dict(rec["spec"])
        spec_dict["name"] = name or (out.stem if out else f"{study}-recommended")
        spec_dict["description"] = (f"{rec['contender']} of study {study}, recommended by its final stage: dev "
                                    f"{verdict['score']} {100 * rec['dev_mean']:.1f}%, test {100 * rec['test_mean']:.1f}% mean over "
                                    f"{rec['n']} seeds ({rec['params']:,} parameters)")
        summary = {"study": study, "stage": "final", "contender": rec["contender"], "family": rec["family"],
                   "skip": rec["skip"], "params": rec["params"], "dev_mean": rec["dev_mean"],
                   "test_mean": rec["test_mean"], "seeds": rec["seeds"]}
        return _write_export(from_dict(spec_dict), out, f"{rec['contender']}, {rec['family']}, "
                             f"{rec['params']:,} parameters (final stage's recommendation)", summary, as_json)
    if best_:
        rows = store.best(study, top=1)
        if not rows:
            store.check_results(study)
            raise UsageError(f"study {study!r} has no completed trial yet")
        row = rows[0]
    else:
        row = store.trial(study, trial)
        if row is None:
            state = store.trial_state(study, trial)
            raise UsageError(f"study {study!r} has no trial {trial}" if state is None else
                             f"trial {trial} of study {study!r} is {state} and has no results to export")
    if row["state"] != "COMPLETE":
        console_err().print(f"note: trial {row['trial']} ended {row['state']}" + (f" ({row['error']})" if row["error"] else ""))
    spec_dict = dict(row["spec"])
    spec_dict["name"] = name or (out.stem if out else spec_dict.get("name", f"{study}-trial-{row['trial']}"))
    acc = f"dev accuracy {row['dev_accuracy']:.4f}, " if row["dev_accuracy"] is not None else ""
    spec_dict["description"] = f"trial {row['trial']} of study {study} ({acc}{row['params'] or 0:,} parameters)"
    exported = from_dict(spec_dict)
    summary = {"study": study, "stage": "search", **{k: row[k] for k in ("trial", "state", "family", "skip", "params",
                                                                         "dev_accuracy", "test_accuracy")}}
    _write_export(exported, out, f"trial {row['trial']}, {row['family']}, {row['params']:,} parameters", summary,
                  as_json)


def _export_run_spec(run: Path, out, name, as_json: bool) -> None:
    """A run folder's trained spec (from its weights file's metadata) written as `export` writes a trial's."""
    from .errors import WeightsError
    from .spec import SpecError, from_dict
    from .weights import read_metadata

    if not (run / "model.safetensors").is_file():
        raise WeightsError(f"{run}: not a run folder (no model.safetensors); train one with `rdzoo train ... --out {run}`")
    try:
        spec_dict = json.loads(read_metadata(run / "model.safetensors")["spec"])
        spec_dict["name"] = name or (out.stem if out else spec_dict.get("name") or run.name)
        exported = from_dict(spec_dict)
    except (ValueError, SpecError) as exc:
        raise WeightsError(f"{run}: the spec in its weights is invalid: {exc}") from None
    _write_export(exported, out, f"the spec of run {run}", {"run": str(run), "stage": "run"}, as_json)


def _export_onnx(run: Path, out, quantize, tokens, as_json: bool) -> None:
    """`rdzoo export RUN --format onnx`: write the run's model as ONNX (int8 with --quantize), check it
    against PyTorch, and print its size and one sentence's latency under PyTorch and onnxruntime."""
    import tempfile

    from . import export as onnx_export
    from .device import human_bytes

    onnx_export.need_onnx()  # before loading anything: one line naming the extra
    from . import profile
    from .runs import load_run

    loaded = load_run(run)
    model, spec = loaded.model, loaded.model.spec
    out = out or run / "model.onnx"
    make_folder(out.parent, "-o")
    length = min(tokens or profile.SENTENCE_TOKENS, spec.embedding.max_len)
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "fp32.onnx" if quantize else out  # -o holds the model asked for
        try:
            onnx_export.to_onnx(model, fp32, loaded.label_names)
            if quantize:
                onnx_export.quantize_int8(fp32, out)
        except OSError as exc:
            raise UsageError(f"-o {out}: cannot write ({exc.strerror or exc})") from None
        diff = onnx_export.check(model, fp32)
        ms = {"pytorch": profile.sentence_latency_ms(model, length),
              "onnxruntime": onnx_export.sentence_latency_ms(fp32, spec, length)}
        size = {"fp32": fp32.stat().st_size}
        if quantize:
            ms["onnxruntime_int8"] = onnx_export.sentence_latency_ms(out, spec, length)
            size["int8"] = out.stat().st_size
    tagger = spec.head.pool == "token"
    result = {"run": str(run), "out": str(out), "format": "onnx", "quantize": quantize,
              "input": {"name": onnx_export.INPUT, "shape": ["batch", "tokens", *(["characters"] if spec.embedding.char_dim else [])]},
              "output": {"name": onnx_export.OUTPUT, "shape": ["batch", *(["tokens"] if tagger else []), spec.head.num_classes]},
              "max_abs_diff": diff, "sentence_tokens": length, "threads": 1,
              "latency_ms": {k: round(v, 4) for k, v in ms.items()}, "bytes": size}
    if as_json:
        return emit_json(result)
    shape = lambda part: " x ".join(map(str, result[part]["shape"]))  # noqa: E731
    lines = [f"wrote {out}: {spec.name} ({spec.family}){' int8' if quantize else ''}, input {onnx_export.INPUT} "
             f"({shape('input')}) ids from {run / 'tokenizer.json'}, 0 = padding; output {onnx_export.OUTPUT} ({shape('output')})",
             f"onnxruntime's fp32 logits match PyTorch's within {diff:.1e} on padded batches",
             f"per sentence ({length} tokens, batch 1, 1 thread, median): PyTorch {ms['pytorch']:.3f} ms, onnxruntime "
             f"fp32 {ms['onnxruntime']:.3f} ms ({ms['onnxruntime'] / ms['pytorch']:.2f}x)"]
    if quantize:
        lines.append(f"int8: {human_bytes(size['fp32'])} -> {human_bytes(size['int8'])} ({size['int8'] / size['fp32']:.2f}x), "
                     f"onnxruntime {ms['onnxruntime']:.3f} -> {ms['onnxruntime_int8']:.3f} ms per sentence "
                     f"({ms['onnxruntime_int8'] / ms['onnxruntime']:.2f}x)")
    if tagger and spec.head.crf:
        lines.append("a CRF tagger: the logits are per-word scores; its transition, start and end scores are in the "
                     "file's metadata (rdzoo.crf) for Viterbi decoding")
    for line in lines:
        console().print(line, markup=False, highlight=False)


def _write_export(exported, out, what: str, summary: dict, as_json: bool) -> None:
    """Write an exported spec to `out` (stdout when None); --json prints `summary`, the file and the spec."""
    text = exported.to_yaml()
    summary = {**summary, "out": str(out) if out else None}
    if out is None:
        if as_json:
            return emit_json({**summary, "spec": exported.to_dict()})
        sys.stdout.write(text)
        return
    make_folder(out.parent, "-o")
    try:
        out.write_text(text)
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot write ({exc.strerror or exc})") from None
    if as_json:
        return emit_json({**summary, "spec": exported.to_dict()})
    console_err().print(f"wrote {out}: {what}")


@app.command()
def report(study: StudyOpt = None, storage: StorageOpt = "sqlite:///rdzoo.db",
           out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The HTML file (default: report.html, unless only --json or --png is asked for).")] = None,
           png: Annotated[Optional[Path], typer.Option("--png", help="Also write each figure as a PNG image into this folder (needs matplotlib).")] = None,
           top: Annotated[int, typer.Option("--top", "-n", min=1, help="Trials in the top table.")] = 10,
           as_json: Annotated[bool, typer.Option("--json", help="Print the numbers behind the figures as JSON.")] = False):
    """Write one self-contained HTML report of a study: history, importances, accuracy against size and latency, skip types, top trials."""
    from . import report as rep
    from .query import Results

    results = Results(storage)
    if study is None:
        study = _resolve_study(results, study)
    elif study not in (names := rep.study_names(storage)):  # Optuna's names: a study without trials too
        from .names import did_you_mean

        raise UsageError(f"no study {study!r} in {results.url}{did_you_mean(study, names) or '; studies: ' + ', '.join(names)}")
    if out is None and not (as_json or png):
        out = Path("report.html")
    if out is not None:
        rep._need_plotly()  # before reading the study: say what to install at once
        make_folder(out.parent, "-o")
    data = rep.load(storage, study)
    nums = rep.numbers(data, top)
    written = []
    if out is not None:
        try:
            written.append(rep.write_html(data, nums, out))
        except OSError as exc:
            raise UsageError(f"-o {out}: cannot write ({exc.strerror or exc})") from None
    if png is not None:
        try:
            written.extend(rep.write_png(data, nums, png))
        except OSError as exc:
            raise UsageError(f"--png {png}: cannot write ({exc.strerror or exc})") from None
    if as_json:
        return emit_json({**nums, "files": [str(p) for p in written]})
    c = nums["counts"]
    console_err().print(f"study {study}: {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed trials",
                        markup=False, highlight=False)
    for path in written:
        sys.stdout.write(f"wrote {path}\n")


@app.command()
def dashboard(storage: StorageOpt = "sqlite:///rdzoo.db",
              host: Annotated[str, typer.Option(help="Address to listen on (localhost only by default).")] = "127.0.0.1",
              port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8080):
    """Start optuna-dashboard on the study database (pip install 'rdzoo\\[dashboard]')."""
    from .errors import MissingExtra
    from .query import Results, shown_url

    try:
        import optuna_dashboard
    except ImportError:
        raise MissingExtra("rdzoo dashboard runs optuna-dashboard, which is not installed: "
                           "pip install 'rdzoo[dashboard]'") from None
    Results(storage)  # a missing or foreign database: one clear error before the server starts
    from .search import make_storage, quiet_optuna

    quiet_optuna()
    console_err().print(f"optuna-dashboard on http://{host}:{port}/dashboard/ for {shown_url(storage)} (Ctrl-C to stop)",
                        markup=False, highlight=False)
    optuna_dashboard.run_server(make_storage(storage), host=host, port=port)


# a library parameter that an error names (search.SearchConfig's fields for a SpecError; device.py's
# and the data loaders' parameters for a DeviceError or DataError) -> the option that sets it
OPTION_OF = {"sampler": "--sampler", "pruner": "--pruner", "objectives": "--objectives", "study": "--study",
             "storage": "--storage", "teachers": "--teacher", "targets": "--targets",
             "device": "--device", "precision": "--precision", "gpus": "--gpus", "max_memory": "--max-memory",
             "source": "--data", "text_col": "--text-col", "label_col": "--label-col",
             "columns": "--text-col/--label-col", "on_bad_line": "--on-bad-line", "label_names": "--label-names",
             "unlabeled": "--unlabeled"}


def in_cli_terms(exc: Exception) -> str:
    """A library error in the command line's terms: a parameter named by its option. A SpecError at a
    parameter gets the option before its message; a DeviceError or DataError (errors.ParamError) the
    option in place of the message's first mention of its `param`."""
    import re

    if isinstance(exc, SpecError) and exc.path in OPTION_OF:
        return f"{OPTION_OF[exc.path]}: {exc.message}"
    param = getattr(exc, "param", None)
    if param in OPTION_OF:  # a whole word: not inside a path, a longer name or an option
        word = re.compile(rf"(?<![\w./-]){re.escape(param)}(?![\w/-])")
        return word.sub(lambda _: OPTION_OF[param], str(exc), count=1)
    return str(exc)


def main() -> None:
    """The `rdzoo` entry point: runs the app and turns rdzoo's errors into one line on stderr,
    exit 2 for usage errors and 1 for failures; standard output that cannot be written (a full
    disk) is one such line too, and a closed pipe exits 1 without a word."""
    from .errors import DataError, DeviceError, ExportError, MissingExtra, StoreError, TrainingError, WeightsError

    try:
        try:
            app(standalone_mode=True)
        except SystemExit:
            sys.stdout.flush()  # what is still buffered fails here, inside this boundary, not at interpreter exit
            raise
    except (SpecError, UsageError, DeviceError) as exc:
        sys.stderr.write(f"rdzoo: error: {in_cli_terms(exc)}\n")
        sys.exit(2)
    except DataError as exc:
        sys.stderr.write(f"rdzoo: error: {in_cli_terms(exc)}\n")
        sys.exit(2)
    except (WeightsError, TrainingError, StoreError, MissingExtra, ExportError) as exc:
        sys.stderr.write(f"rdzoo: error: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("rdzoo: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:  # the reader has gone (`rdzoo list | head -1`): quiet, as the Python docs advise
        _drop_output()
        sys.exit(1)
    except OSError as exc:  # standard output on a full disk (a write to a named file carries its name)
        if exc.filename is not None or exc.errno not in OUTPUT_ERRNOS:
            raise
        _drop_output()
        sys.stderr.write(f"rdzoo: error: cannot write to standard output ({exc.strerror})\n")
        sys.exit(1)


# what a write to standard output raises when it cannot go on: a full disk or quota, a file over its size
# limit, a device error
OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _drop_output() -> None:
    """Point standard output at devnull, so that the flush at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    main()
