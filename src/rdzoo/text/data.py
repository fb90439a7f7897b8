"""Text data: built-in sets and loaders for the formats people have.

Classification: `label text` lines (the Kim 2014 / sent-conv-torch format),
CSV or TSV with chosen columns, JSONL with chosen fields. Sequence labeling:
CoNLL-U (Universal Dependencies), one word a line, tagged with its UPOS; such a
split holds word lists and tag lists instead of texts and labels. Either as a
folder with train/dev/test files (UD's `*-ud-train.conllu` names too), or one
file that is split here (seeded). Any of these may be compressed (.gz, .xz,
.bz2). The rules every loader keeps (README, "Data formats"):

- A line ends at \\n, \\r\\n or \\r, and (outside JSONL, whose strings may hold
  it) at NEL (U+0085). Each line is decoded on its own: UTF-8, else cp1252,
  else latin-1; the lines that were not UTF-8 are named in the report.
- One line is one record: nothing merges two lines or splits one silently.
  A line that breaks its format's rule is an error naming file and line, or
  with on_bad_line="skip" is skipped and reported with file, line and reason.
  Blank lines (white space only) hold no record; white space around a text
  or a label is not part of it.
- A label is read by one rule in every format (label_value): a label spelt
  as a number is that number written one way (1.0, 1e0, +1 -> 1), so one
  value is never two classes; one that is not a value (empty, null, NaN,
  infinite) is a bad line.
- A format's rules decide what is valid, not a parser's default limit: the one
  limit on a line, MAX_LINE characters, is the same in every format.
- Whatever a loader did beyond reading (lines decoded as cp1252, lines
  skipped, a split held out, labels named by a label_names.txt) is in
  TextData's report, which every command that reads data prints and puts in
  its --json.

This module finds a data set (a built-in name, a folder's split files, one file) and loads
it; the parts are modules of their own: `dataset` (Split, TextData and its report, check),
`lines` (reading and decoding), `formats` (the format table and `read_file`, one module a
format), `labels` (label values and names), `folds` (held-out splits, k-fold). Their public
names are re-exported here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import DataError
from .dataset import SPLITS, Skipped, Split, TextData, check, label_set
from .folds import data_report, dev_note, kfold, split_off
from .formats import FORMATS, BadLines, Columns, Format, known_formats, read_file, register
from .labels import (LABEL_NAMES_FILE, label_mapping, label_value, name_as_trained, name_labels,
                     read_label_names)
from .limits import MAX_LINE
from .lines import COMPRESSED, Decoding, format_of, read_lines

__all__ = ["BUILTIN_DIR", "builtin_names", "describe", "load_data", "tag_scheme", "DataError", "SPLITS", "Skipped", "Split",
           "TextData", "check", "label_set", "data_report", "dev_note", "kfold", "split_off", "FORMATS", "BadLines", "Columns",
           "Format", "known_formats", "read_file", "register", "LABEL_NAMES_FILE", "label_mapping", "label_value",
           "name_as_trained", "name_labels", "read_label_names", "MAX_LINE", "COMPRESSED", "Decoding", "format_of",
           "read_lines"]

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "data"


def _split_of(path: Path, split: str) -> bool:
    """Whether a file's name makes it this split: train.csv, dev.txt / valid.jsonl, en_ewt-ud-test.conllu.xz."""
    name = path.name
    if Path(name).suffix.lower() in COMPRESSED:
        name = name[: -len(Path(name).suffix)]
    stem = name[: -len(Path(name).suffix)] if Path(name).suffix else name
    return stem in ((split, "valid") if split == "dev" else (split,)) or \
        (name.endswith(f"-ud-{split}.conllu"))


def _find_split_files(folder: Path) -> dict[str, Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    found = {}
    for split in SPLITS:
        hits = [p for p in files if _split_of(p, split)]
        readable = [p for p in hits if format_of(p) in FORMATS]
        if len(readable) > 1:
            raise DataError(f"{folder}: more than one {split} file ({', '.join(h.name for h in readable)})")
        if readable:
            found[split] = readable[0]
        elif hits:  # a split in a format rdzoo does not read: say so rather than ignore it
            raise DataError(f"{folder}: {hits[0].name} is a {format_of(hits[0]) or 'suffix-less'} file, which "
                            f"rdzoo cannot read yet; it reads {known_formats()}")
    return found


def builtin_names() -> list[str]:
    """Every folder under rdzoo/data is a built-in dataset; synthetic is generated."""
    names = sorted(p.name for p in BUILTIN_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    return names + ["synthetic"]


def load_data(source: str | Path = "trec", columns: Columns | None = None, on_bad_line: str = "error",
              seed: int = 0, test_fraction: float = 0.1, label_names: str | Path | dict | None = None) -> TextData:
    """A built-in name, a folder with train/dev/test files, or one file (split 90/10, seeded).

    label_names: a `value name` file or a {value: name} dict naming the labels (or tags); a folder's own
    label_names.txt is used when it is not given. Raises DataError with the file, line and reason."""
    source = str(source)
    if source == "synthetic":
        from .synthetic import make_synthetic

        splits = make_synthetic(seed=seed)
        return check(TextData("synthetic", *(Split(*splits[name]) for name in SPLITS)))
    path = BUILTIN_DIR / source if source in builtin_names() else Path(source).expanduser()
    skipped, decodings, notes = [], [], []

    def read(file: Path, scheme: str | None = None, split_name: str | None = None) -> Split:
        split, bad, decoding, file_notes = read_file(file, columns, on_bad_line, scheme)
        skipped.extend(bad)
        decodings.append(decoding)
        notes.extend(file_notes)
        if split_name and not len(split):  # a split that is there but empty: named now, not found out after training
            why = f" ({len(bad)} bad line(s) skipped)" if bad else ""
            hint = "" if split_name == "train" else f"; remove it to have no {split_name} split"
            raise DataError(f"{file}: the {split_name} file holds no examples{why}{hint}")
        return split

    if path.is_dir():
        files = _find_split_files(path)
        if "train" not in files:
            raise DataError(f"{path}: no train file (expected train.txt, train.csv, train.tsv, train.jsonl, "
                            "train.conllu, train.conll or *-ud-train.conllu, optionally compressed: .gz, .xz, .bz2)")
        splits = {"train": read(files["train"], split_name="train")}
        scheme = tag_scheme(splits["train"])  # dev and test are read as train is: one task for the data set
        splits.update({split: read(file, scheme, split) for split, file in files.items() if split != "train"})
        data = TextData(path.name, splits["train"], splits.get("dev"), splits.get("test"))
        if label_names is None and (path / LABEL_NAMES_FILE).is_file():
            label_names = path / LABEL_NAMES_FILE
    elif path.is_file():
        split = read(path)
        if not len(split):
            raise DataError(f"{path}: no examples" + (f" ({len(skipped)} bad line(s) skipped)" if skipped else ""))
        train, test = split_off(split, test_fraction, seed)
        if not len(train):
            raise DataError(f"{path}: {len(split)} example(s) are too few; the test split held out of a file "
                            "without one takes them all")
        notes.append(f"no test split: held out {len(test)} of {len(split)} examples as test (seed {seed})")
        data = TextData(path.name.split(".")[0] or path.name, train, None, test)
    else:
        from ..names import did_you_mean

        hint = did_you_mean(source, builtin_names()) or f"; built-in datasets: {', '.join(builtin_names())}"
        raise DataError(f"no such dataset or file: {source}{hint}", "source")
    data = replace(data, skipped_lines=skipped, decoding=decodings, notes=notes)
    if label_names is not None:
        where = "the given label names" if isinstance(label_names, dict) else Path(label_names).name
        mapping = label_mapping(label_names, where) if isinstance(label_names, dict) else read_label_names(label_names)
        data = name_labels(data, mapping, where)
    return check(data)


def tag_scheme(split: Split) -> str:
    """The task a split's tags were read as: 'bio' or 'iobes' (entity tags), else 'plain'."""
    from .conll import is_entity_tagset, scheme

    tags = label_set(split) if split.tagged else set()
    return scheme(tags) if is_entity_tagset(tags) else "plain"


def describe(name: str, data: TextData) -> dict:
    """What `rdzoo data` shows of a loaded data set: its sizes, classes (or tags), the task it is read
    as (classification, tagging, entity tagging) with the load report, and for entity data the
    entities of each type in each split."""
    from .conll import entity_counts, is_entity_tagset

    entity = data.tagging and is_entity_tagset(data.label_names)
    row = {"name": name, **data.sizes(), "classes": len(data.label_names), "labels": data.label_names,
           "task": "entity tagging" if entity else "tagging" if data.tagging else "classification", **data.report()}
    if entity:
        row["entities"] = {split: dict(sorted(entity_counts(getattr(data, split).labels).items()))
                           for split in ("train", "dev", "test") if getattr(data, split) is not None}
    return row
