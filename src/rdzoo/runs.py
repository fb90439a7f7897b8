"""A trained run on disk: weights, tokenizer, training config and metrics.

    runs/r18/
      model.safetensors   weights, with the spec and label names in the metadata
      tokenizer.json      the vocabulary built from the training split
      config.json         what was trained on, and how: the data, its columns, label names, the seed
                          of a split held out of one file, and what the loader reported
      metrics.json        dev/test accuracy, macro-F1, time, parameters
      split.json          what the run was split from: each data file's sha256 and each split's
                          example hashes (text.heldout.SplitRecord), which `rdzoo eval` checks

A folder that holds a run is not written over unless asked (overwrite=True,
`rdzoo train --out DIR --overwrite`), as Hugging Face's Trainer and timm refuse to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .weights import WeightsError, read_metadata


@dataclass
class Run:
    """A trained model ready to predict: the model, its tokenizer, label (or tag) names, and the run
    folder and config.json it came from (None and {} for one built in memory)."""

    model: object
    tokenizer: object
    label_names: list[str]
    path: Path | None = None
    config: dict = field(default_factory=dict)  # config.json: data, text_col, label_col, label_names, ...
    precision: object = None  # a device.Precision; None: fp32

    def to(self, device, precision=None) -> "Run":
        """Move the model to a torch.device and predict at `precision` there; returns self."""
        self.model.to(device)
        self.precision = precision
        return self

    @property
    def tagger(self) -> bool:
        """Whether the model tags each word (POS, entities) rather than labelling a whole text."""
        from .predict import is_tagger

        return is_tagger(self.model)

    def predict(self, texts: list[str]) -> list:
        """A label a text; a tagger gives a tag for each whitespace-separated word (None past max_len)."""
        from .predict import predict_ids, word_starts

        if not self.tagger:
            return [self.label_names[i] for i in predict_ids(self.model, self.tokenizer.encode_batch(texts),
                                                             precision=self.precision)]
        words = [t.split() for t in texts]
        pred = predict_ids(self.model, self.tokenizer.encode_batch(words), words=[len(w) for w in words],
                           precision=self.precision, starts=word_starts(self.tokenizer, words, tagging=True))
        return [[self.label_names[i] if i >= 0 else None for i in tags] for tags in pred]

    def entities(self, texts: list[str]) -> list[list[dict]]:
        """An entity tagger's entities in each text: {text, type, start, end}, character offsets (end exclusive)."""
        from .text.conll import entity_spans

        return [entity_spans(t, tags) for t, tags in zip(texts, self.predict(texts))]

    def describe(self, texts: list[str]) -> list[dict]:
        """What `rdzoo predict` gives for each text: {text, label}; a tagger's {text, words, tags}
        (a tag None past max_len); an entity tagger's {text, entities} (`entities`)."""
        from .text.conll import is_entity_tagset

        if self.tagger and is_entity_tagset(self.label_names):
            return [{"text": t, "entities": spans} for t, spans in zip(texts, self.entities(texts))]
        labels = self.predict(texts)
        if self.tagger:
            pairs = [list(zip(t.split(), tags)) for t, tags in zip(texts, labels)]
            return [{"text": t, "words": [w for w, _ in p], "tags": [g for _, g in p]} for t, p in zip(texts, pairs)]
        return [{"text": t, "label": label} for t, label in zip(texts, labels)]

    def evaluate(self, split) -> dict:
        """The model's metrics on a text.dataset.Split (accuracy and macro-F1 as fractions; entity scores for
        an entity tagger) and `n`, the texts or words scored, as train.evaluate computes them.

        Raises TrainingError for labels the model was not trained on, or tagged data for a classifier
        (and the reverse)."""
        from .train import evaluate

        return evaluate(self.model, self.tokenizer, split, self.label_names, self.precision)


RUN_FILES = ("model.safetensors", "tokenizer.json", "config.json", "metrics.json", "split.json")
SPLIT_FILE = "split.json"


def check_out(out: str | Path, overwrite: bool = False) -> None:
    """Refuse a folder that already holds something unless overwrite: an earlier run is not lost silently.

    Raises FileExistsError naming what is there (or that a file stands where the folder would be)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: a file, not a folder")
    if overwrite or not out.is_dir():
        return
    inside = sorted(p.name for p in out.iterdir())
    if inside:
        what = "a run" if any(name in RUN_FILES for name in inside) else "files"
        shown = ", ".join(inside[:4]) + (", ..." if len(inside) > 4 else "")
        raise FileExistsError(f"{out} already holds {what} ({shown}); choose another folder or pass "
                              "overwrite=True to replace it")


def save_run(result, out: str | Path, config: dict, overwrite: bool = False, split=None) -> Path:
    """Write a trained run (the layout above) to a new or empty folder, or over one with overwrite=True;
    `split`, a text.heldout.SplitRecord, is written to split.json and named in config.json.

    Raises FileExistsError for a folder that holds files, OSError/WeightsError when writing fails."""
    from .text.tokenize import save_tokenizer
    from .weights import save

    out = Path(out)
    check_out(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    save(result.model, out / "model.safetensors", extra={"label_names": result.label_names})
    save_tokenizer(result.tokenizer, out / "tokenizer.json")
    if split is not None:  # before config.json, which names it: a config that names it means it was written
        (out / SPLIT_FILE).write_text(json.dumps(split.to_json()))
        config = {**config, "split": SPLIT_FILE}
    (out / "config.json").write_text(json.dumps({**config, "spec": result.spec.to_dict()}, indent=2))
    (out / "metrics.json").write_text(json.dumps({**result.metrics, "history": result.history}, indent=2))
    return out


def load_run(path: str | Path) -> Run:
    """Read a run folder (the layout above) into a Run on the CPU, in eval mode.

    Raises WeightsError when the folder has no model.safetensors, the weights or tokenizer are
    missing or damaged, or config.json cannot be read (a missing config.json reads as {})."""
    from .text.tokenize import load_tokenizer
    from .weights import load

    path = Path(path)
    if not (path / "model.safetensors").is_file():
        raise WeightsError(f"{path}: not a run folder (no model.safetensors); train one with `rdzoo train ... --out {path}`")
    metadata = read_metadata(path / "model.safetensors")
    model = load(path / "model.safetensors")
    try:
        tokenizer = load_tokenizer(path / "tokenizer.json")
        label_names = json.loads(metadata["label_names"])
    except (OSError, KeyError, ValueError) as exc:
        raise WeightsError(f"{path}: incomplete run folder ({exc})") from None
    try:
        config = json.loads((path / "config.json").read_text())
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: unreadable config.json ({exc})") from None
    return Run(model, tokenizer, label_names, path, config if isinstance(config, dict) else {})


def load_split(run: Run):
    """The run's split record (text.heldout.SplitRecord), or None for a run saved without one (an older
    rdzoo, or one built in memory).

    Raises WeightsError when config.json names a split.json that is missing or damaged."""
    from .text.heldout import SplitRecord

    if run.path is None or "split" not in run.config:
        return None
    path = run.path / SPLIT_FILE
    try:
        return SplitRecord.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        raise WeightsError(f"{run.path}: incomplete run folder (config.json names {SPLIT_FILE}, which is missing)") from None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: damaged split record ({exc})") from None


def trained_spec(run: str | Path) -> dict:
    """The spec a run folder was trained with, read from its weights file's metadata (complete:
    vocabulary and classes filled in), as a spec dict.

    Raises WeightsError when the folder holds no model.safetensors or its spec is invalid."""
    from .spec import SpecError, from_dict

    run = Path(run)
    if not (run / "model.safetensors").is_file():
        raise WeightsError(f"{run}: not a run folder (no model.safetensors); train one with `rdzoo train ... --out {run}`")
    try:
        spec = json.loads(read_metadata(run / "model.safetensors")["spec"])
        return from_dict(spec).to_dict()
    except (ValueError, KeyError, SpecError) as exc:
        raise WeightsError(f"{run}: the spec in its weights is invalid: {exc}") from None


def evaluate_run(run: Run, data: str | None = None, text_col: str | None = None, label_col: str | None = None,
                 on_bad_line: str | None = None, label_names=None) -> tuple[dict, str]:
    """`rdzoo eval`: score a run on a dataset's dev and test splits, reading what is not given
    (the data, columns, bad-line rule, label names, the seed of a split held out of one file) as
    the run was trained. Examples the run trained on are never scored as held out
    (text.heldout.held_out). Returns the result (accuracy, macro-F1 and n per split, entity
    precision, recall, F1 and F1 per type for an entity tagger, `held_out`, `data_report`) and
    the one-line note on what was scored.

    Raises DataError for data without a dev or test split, or that cannot be read."""
    from .errors import DataError
    from .text.data import Columns, load_data, name_as_trained
    from .text.heldout import held_out, same_source

    cfg = run.config
    own = data is None or same_source(data, cfg.get("data"), cfg.get("data_path"))
    data = data or cfg.get("data_path") or cfg.get("data") or "trec"  # a file: found from any folder
    dataset = load_data(data, Columns(text_col or cfg.get("text_col"), label_col or cfg.get("label_col")),
                        on_bad_line=on_bad_line or cfg.get("on_bad_line") or "error", seed=cfg.get("data_seed", 0),
                        label_names=label_names)
    if label_names is None:  # labels in the values the run's names came from (TREC's 0-5): named as in training
        dataset = name_as_trained(dataset, trained_label_values(cfg), run.label_names, "the run's label names")
    if not any(getattr(dataset, split) is not None and len(getattr(dataset, split)) for split in ("dev", "test")):
        raise DataError(f"{data}: no dev or test split to evaluate on (a folder needs a dev or test file; one "
                        "file has a test split held out)")
    scored = held_out(dataset, load_split(run), data, own)
    result = {"run": str(run.path), "data": data, "held_out": scored.to_json(), "data_report": dataset.report()}
    for split in ("dev", "test"):
        part = getattr(scored, split)
        if part is not None and len(part):
            m = run.evaluate(part)
            result.update({f"{split}_accuracy": m["accuracy"], f"{split}_macro_f1": m["macro_f1"], f"{split}_n": m["n"]})
            if "entities" in m:  # exact span and type, micro over entities, and F1 per type
                e = m["entities"]
                result.update({f"{split}_entity_precision": e["precision"], f"{split}_entity_recall": e["recall"],
                               f"{split}_entity_f1": e["f1"], f"{split}_entities": e["support"],
                               f"{split}_entity_f1_per_type": {k: v["f1"] for k, v in e["per_type"].items()}})
    return result, scored.note


def trained_label_values(cfg: dict) -> dict | None:
    """The {value: name} map a run's labels were named with in training: recorded in its config.json, or, for a
    run that predates the record, the --label-names it was given or its built-in data's label_names.txt."""
    from .text.data import BUILTIN_DIR, LABEL_NAMES_FILE, builtin_names, read_label_names

    recorded = cfg.get("label_values") or cfg.get("label_names")
    builtin = cfg.get("data") if cfg.get("data") in builtin_names() and not cfg.get("data_path") else None
    if recorded is None and builtin and (BUILTIN_DIR / builtin / LABEL_NAMES_FILE).is_file():
        return read_label_names(BUILTIN_DIR / builtin / LABEL_NAMES_FILE)
    return recorded
