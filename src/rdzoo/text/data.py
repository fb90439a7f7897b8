"""Text data: built-in sets and loaders for the formats people have.

Classification: `label text` lines (the Kim 2014 / sent-conv-torch format),
CSV or TSV with chosen columns, JSONL with chosen fields. Sequence labeling:
CoNLL-U (Universal Dependencies), one word a line, tagged with its UPOS; such a
split holds word lists and tag lists instead of texts and labels. Either as a
folder with train/dev/test files (UD's `*-ud-train.conllu` names too), or one
file that is split here (seeded). Files are decoded as UTF-8,
falling back to cp1252 and then latin-1 per file; \\r\\n, \\r and NEL (U+0085)
end lines. A malformed line is an error naming file and line, or is skipped
and counted with on_bad_line="skip".
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import DataError

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "data"
SPLITS = ("train", "dev", "test")
EXTENSIONS = (".txt", ".csv", ".tsv", ".jsonl", ".json", ".conllu", ".conll", "")
LINE_END = re.compile(r"\r\n|\r|\n|\x85")
MAX_LINE = 1_000_000  # characters; a longer "line" is a binary or broken file


@dataclass
class Split:
    texts: list[str]  # or, for sequence labeling, lists of words
    labels: list[str]  # or lists of tags, one a word

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def tagged(self) -> bool:
        """Word lists with a tag a word (sequence labeling), not texts with one label each."""
        return bool(self.labels) and isinstance(self.labels[0], list)

    def subset(self, index: list[int]) -> "Split":
        return Split([self.texts[i] for i in index], [self.labels[i] for i in index])


@dataclass
class TextData:
    name: str
    train: Split
    dev: Split | None
    test: Split | None
    skipped: int = 0  # bad lines skipped with on_bad_line="skip"
    notes: list[str] = field(default_factory=list)

    @property
    def tagging(self) -> bool:
        """Sequence labeling (a tag for every word) rather than one label a text."""
        return self.train.tagged

    @property
    def label_names(self) -> list[str]:
        """Sorted label (or tag) names; their index is the class id."""
        from ..registry import natural_key

        return sorted(label_set(self.train), key=natural_key)

    def sizes(self) -> dict:
        return {s: (len(getattr(self, s)) if getattr(self, s) is not None else 0) for s in SPLITS}


# --- decoding ------------------------------------------------------------------


def decode(raw: bytes, where: str) -> tuple[str, str]:
    """Bytes -> (text, encoding): UTF-8 (BOM allowed), else cp1252, else latin-1."""
    if b"\x00" in raw[:4096]:
        raise DataError(f"{where}: looks binary (NUL bytes), not a text file")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding), encoding.replace("-sig", "")
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1"), "latin-1"


def read_lines(path: Path) -> tuple[list[str], str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    text, encoding = decode(raw, str(path))
    lines = LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines, encoding


# --- one file ---------------------------------------------------------------------


@dataclass
class Columns:
    text: str | None = None  # CSV column / JSON field holding the text (default "text")
    label: str | None = None  # ... holding the label (default "label")


class _Bad:
    """Counts or raises for malformed lines."""

    def __init__(self, mode: str):
        if mode not in ("error", "skip"):
            raise DataError(f"on_bad_line must be 'error' or 'skip', got {mode!r}")
        self.mode, self.count = mode, 0

    def __call__(self, where: str, line: int, why: str) -> None:
        if self.mode == "error":
            raise DataError(f"{where}, line {line}: {why} (use --on-bad-line skip to skip such lines)")
        self.count += 1


def _label_text_lines(lines, where, bad) -> Split:
    texts, labels = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            bad(where, n, f"line of {len(line):,} characters")
            continue
        label, _, text = line.strip().partition(" ")
        text = text.strip()
        if not text:
            bad(where, n, "expected `label text`, found no text after the label")
            continue
        texts.append(text)
        labels.append(label)
    return Split(texts, labels)


def _table_rows(lines, where, bad, columns: Columns, delimiter: str) -> Split:
    text_col, label_col = columns.text or "text", columns.label or "label"
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return Split([], [])
    header = [h.strip() for h in header]
    for col, flag in ((text_col, "--text-col"), (label_col, "--label-col")):
        if col not in header:
            raise DataError(f"{where}: no column {col!r} (set it with {flag}); columns are: {', '.join(header)}")
    ti, li = header.index(text_col), header.index(label_col)
    texts, labels = [], []
    try:
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                bad(where, reader.line_num, f"{len(row)} fields, the header has {len(header)}")
                continue
            text, label = row[ti].strip(), row[li].strip()
            if not text or not label:
                bad(where, reader.line_num, f"empty {'text' if not text else 'label'}")
                continue
            texts.append(text)
            labels.append(label)
    except csv.Error as exc:
        raise DataError(f"{where}, line {reader.line_num}: malformed CSV ({exc})") from None
    return Split(texts, labels)


def _json_lines(lines, where, bad, columns: Columns) -> Split:
    text_key, label_key = columns.text or "text", columns.label or "label"
    texts, labels = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad(where, n, f"not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict) or text_key not in obj or label_key not in obj:
            keys = ", ".join(obj) if isinstance(obj, dict) else type(obj).__name__
            bad(where, n, f"needs fields {text_key!r} and {label_key!r} (--text-col/--label-col); found: {keys}")
            continue
        text, label = obj[text_key], obj[label_key]
        if not isinstance(text, str) or not text.strip() or isinstance(label, (dict, list)) or label is None:
            bad(where, n, "text must be a non-empty string and label a string or number")
            continue
        texts.append(text.strip())
        labels.append(str(label))
    return Split(texts, labels)


def _conllu(lines, where, bad) -> Split:
    """CoNLL-U sentences -> (words, UPOS tags). Multiword-token lines (ID `3-4`) and
    empty nodes (`5.1`) are not words to tag; comments start with `#`."""
    words, tags, sentences, sentence_tags = [], [], [], []
    for n, line in enumerate([*lines, ""], 1):
        if not line.strip():
            if words:
                sentences.append(words)
                sentence_tags.append(tags)
            words, tags = [], []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            bad(where, n, f"a CoNLL-U word line has 10 tab-separated fields, this one {len(cols)}")
            continue
        if "-" in cols[0] or "." in cols[0]:
            continue
        if not cols[1] or cols[3] in ("", "_"):
            bad(where, n, "a word line needs FORM and UPOS")
            continue
        words.append(cols[1])
        tags.append(cols[3])
    return Split(sentences, sentence_tags)


def read_file(path: Path, columns: Columns | None = None, on_bad_line: str = "error") -> tuple[Split, int, str]:
    """One file -> (split, bad lines skipped, encoding used)."""
    columns = columns or Columns()
    bad = _Bad(on_bad_line)
    lines, encoding = read_lines(path)
    where = str(path)
    suffix = path.suffix.lower()
    if suffix == ".conll":  # token-per-line entity tags (WNUT-17, CoNLL-2003): see conll.py
        if columns.text or columns.label:
            raise DataError(f"{where}: --text-col/--label-col do not apply to CoNLL files (the tag is the last column)")
        from .conll import read_conll

        split = Split(*read_conll(lines, where, bad))
    elif suffix == ".conllu":
        if columns.text or columns.label:
            raise DataError(f"{where}: --text-col/--label-col do not apply to CoNLL-U (words are tagged with UPOS)")
        split = _conllu(lines, where, bad)
    elif suffix in (".csv", ".tsv"):
        split = _table_rows(lines, where, bad, columns, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".jsonl", ".json"):
        split = _json_lines(lines, where, bad, columns)
    else:
        if columns.text or columns.label:
            raise DataError(f"{where}: --text-col/--label-col apply to CSV, TSV and JSONL files, not `label text` lines")
        split = _label_text_lines(lines, where, bad)
    return split, bad.count, encoding


# --- datasets ----------------------------------------------------------------------


def split_off(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """A seeded random (rest, held-out) split with `fraction` held out."""
    index = list(range(len(split)))
    random.Random(seed).shuffle(index)
    n_out = max(1, round(len(index) * fraction))
    return split.subset(sorted(index[n_out:])), split.subset(sorted(index[:n_out]))


def kfold(data: TextData, k: int, seed: int = 0) -> list[TextData]:
    """K train/test folds of the training split (the MR/Subj/CR/MPQA protocol)."""
    if not 2 <= k <= len(data.train):
        raise DataError(f"--cv {k}: needs 2 <= K <= {len(data.train)} (the number of examples)")
    index = list(range(len(data.train)))
    random.Random(seed).shuffle(index)
    folds = [sorted(index[i::k]) for i in range(k)]
    out = []
    for i, held in enumerate(folds):
        rest = sorted(j for f, fold in enumerate(folds) if f != i for j in fold)
        out.append(replace(data, name=f"{data.name} (fold {i + 1}/{k})", train=data.train.subset(rest),
                           dev=None, test=data.train.subset(held)))
    return out


def _find_split_files(folder: Path) -> dict[str, Path]:
    found = {}
    for split in SPLITS:
        names = [split + ext for ext in EXTENSIONS] + ([f"valid{ext}" for ext in EXTENSIONS] if split == "dev" else [])
        hits = [folder / n for n in names if (folder / n).is_file()]
        hits += sorted(folder.glob(f"*-ud-{split}.conllu"))  # Universal Dependencies' names
        if len(hits) > 1:
            raise DataError(f"{folder}: more than one {split} file ({', '.join(h.name for h in hits)})")
        if hits:
            found[split] = hits[0]
    return found


def builtin_names() -> list[str]:
    return ["trec", "wnut17", "synthetic"]


def load_data(source: str | Path = "trec", columns: Columns | None = None, on_bad_line: str = "error",
              seed: int = 0, test_fraction: float = 0.1) -> TextData:
    """A built-in name, a folder with train/dev/test files, or one file (split 90/10, seeded)."""
    source = str(source)
    if source == "synthetic":
        from .synthetic import make_synthetic

        return check(make_synthetic(seed=seed))
    path = BUILTIN_DIR / source if source in builtin_names() else Path(source).expanduser()
    if path.is_dir():
        files = _find_split_files(path)
        if "train" not in files:
            raise DataError(f"{path}: no train file (expected train.txt, train.csv, train.tsv, train.jsonl, "
                            "train.conllu, train.conll or *-ud-train.conllu)")
        splits, skipped, notes = {}, 0, []
        for split, file in files.items():
            splits[split], n, encoding = read_file(file, columns, on_bad_line)
            skipped += n
            if encoding != "utf-8":
                notes.append(f"{file.name}: decoded as {encoding}")
        data = TextData(path.name, splits["train"], splits.get("dev"), splits.get("test"), skipped, notes)
    elif path.is_file():
        split, skipped, encoding = read_file(path, columns, on_bad_line)
        if not len(split):
            raise DataError(f"{path}: no examples")
        train, test = split_off(split, test_fraction, seed)
        if not len(train):
            raise DataError(f"{path}: {len(split)} example(s) are too few; the test split held out of a file "
                            "without one takes them all")
        notes = [f"no test split: held out {len(test)} examples (seed {seed})"]
        if encoding != "utf-8":
            notes.append(f"{path.name}: decoded as {encoding}")
        data = TextData(path.stem, train, None, test, skipped, notes)
    else:
        from ..names import did_you_mean

        hint = did_you_mean(source, builtin_names()) or f"; built-in datasets: {', '.join(builtin_names())}"
        raise DataError(f"no such dataset or file: {source}{hint}")
    return check(data)


def label_set(split: Split) -> set[str]:
    if split.tagged:
        return {tag for tags in split.labels for tag in tags}
    return set(split.labels)


def check(data: TextData) -> TextData:
    """Refuse what cannot be trained or evaluated, with the reason."""
    if not len(data.train):
        raise DataError(f"{data.name}: the training split is empty")
    classes = label_set(data.train)
    if len(classes) < 2:
        raise DataError(f"{data.name}: the training split has a single class ({next(iter(classes))!r}); "
                        "classification needs at least two")
    for name in ("dev", "test"):
        split = getattr(data, name)
        if split is None:
            continue
        if len(split) and split.tagged != data.tagging:
            kinds = {True: "tagged words", False: "labelled texts"}
            raise DataError(f"{data.name}: the {name} split holds {kinds[not data.tagging]}, the training split "
                            f"{kinds[data.tagging]}; give every split in one format")
        unseen = sorted(label_set(split) - classes)
        if unseen:
            shown = ", ".join(map(repr, unseen[:5]))
            raise DataError(f"{data.name}: {name} labels never seen in training: {shown}")
    return data
