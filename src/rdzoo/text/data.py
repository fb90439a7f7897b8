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
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import random
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import DataError
from .limits import MAX_LINE, line_too_long

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "data"
SPLITS = ("train", "dev", "test")
EXTENSIONS = (".txt", ".csv", ".tsv", ".jsonl", ".json", ".conllu", ".conll", "")
COMPRESSED = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
LABEL_NAMES_FILE = "label_names.txt"
LINE_END = re.compile(rb"\r\n|\r|\n")
NEL = "\x85"
MAX_BYTES = 2**31  # a compressed file that grows past this is refused (a decompression bomb)
SHOWN = 5  # line numbers shown in a one-line note; --json lists them all


@dataclass
class Split:
    """One split of a data set: texts and their labels, or (sequence labeling) word lists and
    their tag lists, in file order."""

    texts: list[str]  # or, for sequence labeling, lists of words
    labels: list[str]  # or lists of tags, one a word

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def tagged(self) -> bool:
        """Word lists with a tag a word (sequence labeling), not texts with one label each."""
        return bool(self.labels) and isinstance(self.labels[0], list)

    def subset(self, index: list[int]) -> "Split":
        """A new Split of the examples at `index`, in that order."""
        return Split([self.texts[i] for i in index], [self.labels[i] for i in index])


@dataclass
class Skipped:
    """A line left out with on_bad_line="skip": where it is and why."""

    file: str
    line: int
    why: str


@dataclass
class Decoding:
    """How one file was decoded: the lines (1-based) that were not UTF-8, by the encoding used."""

    file: str
    fallback: dict[str, list[int]] = field(default_factory=dict)  # "cp1252" / "latin-1" -> line numbers
    bom_lines: list[int] = field(default_factory=list)  # lines after the first that began with a BOM

    @property
    def encoding(self) -> str:
        """'utf-8' when every line was UTF-8, else the fallback encoding(s) of the other lines ('cp1252')."""
        return "+".join(["utf-8"] * (not self.fallback) + sorted(self.fallback))

    def notes(self) -> list[str]:
        """One line for each fallback encoding, and one for byte-order marks removed, naming the lines."""
        name = Path(self.file).name
        out = [f"{name}: {len(lines)} line(s) not UTF-8, read as {enc} ({_lines(lines)})"
               for enc, lines in sorted(self.fallback.items())]
        if self.bom_lines:
            out.append(f"{name}: byte-order mark removed at the start of {len(self.bom_lines)} line(s) "
                       f"({_lines(self.bom_lines)})")
        return out


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:SHOWN]))
    return f"line {shown}" if len(numbers) == 1 else f"lines {shown}" + (", ..." if len(numbers) > SHOWN else "")


@dataclass
class TextData:
    """A loaded data set: train, dev and test splits (dev and test may be None), and what the
    loader did to get them (see `report`)."""

    name: str
    train: Split
    dev: Split | None
    test: Split | None
    skipped_lines: list[Skipped] = field(default_factory=list)  # bad lines skipped with on_bad_line="skip"
    notes: list[str] = field(default_factory=list)  # what the loader did: a split held out, labels named, ...
    decoding: list[Decoding] = field(default_factory=list)  # one per file read
    label_order: list[str] | None = None  # named labels in the order of the values they name
    label_values: dict[str, str] | None = None  # the names applied to the labels: {value in the files: name}

    @property
    def skipped(self) -> int:
        """How many bad lines were skipped (on_bad_line="skip")."""
        return len(self.skipped_lines)

    @property
    def tagging(self) -> bool:
        """Sequence labeling (a tag for every word) rather than one label a text."""
        return self.train.tagged

    @property
    def label_names(self) -> list[str]:
        """Label (or tag) names in natural order (named labels: in the order of the values they name, so
        naming them changes no class id); their index is the class id."""
        from ..names import natural_key

        present = label_set(self.train)
        if self.label_order is not None:
            return [name for name in self.label_order if name in present]
        return sorted(present, key=natural_key)

    def sizes(self) -> dict:
        """Examples in each split: {"train", "dev", "test"} -> count, 0 for a missing split."""
        return {s: (len(getattr(self, s)) if getattr(self, s) is not None else 0) for s in SPLITS}

    def report(self) -> dict:
        """What the loader did to the input, for --json: notes, lines skipped (file, line, why) and the
        lines of each file that were not UTF-8."""
        return {
            "notes": self.note_lines(),
            "skipped_lines": self.skipped,
            "skipped": [vars(s) for s in self.skipped_lines],
            "not_utf8": [{"file": d.file, "encoding": enc, "count": len(lines), "lines": lines}
                         for d in self.decoding for enc, lines in sorted(d.fallback.items())],
        }

    def note_lines(self) -> list[str]:
        """The report as one line each, for tables."""
        out = [n for d in self.decoding for n in d.notes()] + list(self.notes)
        if self.skipped_lines:
            first = self.skipped_lines[0]
            out.append(f"{self.skipped} bad line(s) skipped (first: {Path(first.file).name}, line {first.line}: "
                       f"{first.why})")
        return out


# --- reading and decoding ---------------------------------------------------------


def format_of(path: Path) -> str:
    """The format suffix of a file, looking through a compression suffix: d.conllu.xz -> '.conllu'."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it ends in .gz, .xz or .bz2.

    Raises DataError when the file cannot be read, is not valid for its compression, or
    decompresses to more than MAX_BYTES bytes."""
    opener = COMPRESSED.get(path.suffix.lower())
    try:
        if opener is None:
            return path.read_bytes()
        with opener(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (EOFError, lzma.LZMAError) as exc:
        raise DataError(f"cannot read {path}: not a valid {path.suffix} file ({exc})") from None
    if len(raw) > MAX_BYTES:
        raise DataError(f"{path}: decompresses to more than {MAX_BYTES:,} bytes")
    return raw


def _decode_line(raw: bytes) -> tuple[str, str | None]:
    """One line's bytes -> (text, fallback encoding or None when it was UTF-8)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    try:  # the usual encoding of Windows text; 0x81, 0x8D, 0x8F, 0x90 and 0x9D are undefined in it
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"  # every byte is a character


def read_lines(path: Path, nel: bool = True) -> tuple[list[str], Decoding]:
    """A file's lines (without their ends), each decoded on its own, and how they were decoded.

    Lines end at \\r\\n, \\r or \\n, and with nel=True also at NEL (U+0085). A UTF-8 byte-order mark is
    dropped at the start of the file, and of any line (files joined with `cat`), which is reported.
    Raises DataError for a file that cannot be read, is UTF-16/32 or holds NUL bytes (binary)."""
    raw = read_bytes(path)
    where = str(path)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{where}: UTF-16 or UTF-32 text (a byte-order mark {raw[:2].hex(' ')}); rdzoo reads "
                        "UTF-8 (or cp1252) files: save it as UTF-8")
    if b"\x00" in raw[:4096]:
        raise DataError(f"{where}: looks binary (NUL bytes), not a text file")
    decoding = Decoding(where)
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # the UTF-8 byte-order mark
    try:  # the common case in one step; per line only when some line is not UTF-8
        text = raw.decode("utf-8")
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if (not nel or NEL not in text) and "\ufeff" not in text:
            return lines, decoding
        physical = [(line, None) for line in lines]
    except UnicodeDecodeError:
        physical = [_decode_line(line) for line in LINE_END.split(raw)]
        if physical and physical[-1][0] == "":
            physical.pop()
    lines = []
    for text, fallback in physical:
        for piece in (text.split(NEL) if nel and NEL in text else [text]):
            if piece.startswith("\ufeff"):
                piece = piece[1:]
                if lines:
                    decoding.bom_lines.append(len(lines) + 1)
            lines.append(piece)
            if fallback:
                decoding.fallback.setdefault(fallback, []).append(len(lines))
    return lines, decoding


# --- one file ---------------------------------------------------------------------


@dataclass
class Columns:
    """The CSV/TSV columns or JSONL fields that hold the text and the label (None: "text", "label")."""

    text: str | None = None  # CSV column / JSON field holding the text (default "text")
    label: str | None = None  # ... holding the label (default "label")


class _Bad:
    """Raises for a malformed line, or records it as skipped."""

    def __init__(self, mode: str):
        if mode not in ("error", "skip"):
            raise DataError(f"on_bad_line must be 'error' or 'skip', got {mode!r}", "on_bad_line")
        self.mode, self.skipped = mode, []

    def __call__(self, where: str, line: int, why: str) -> None:
        if self.mode == "error":
            raise DataError(f"{where}, line {line}: {why} (use on_bad_line skip to skip such lines)", "on_bad_line")
        self.skipped.append(Skipped(where, line, why))


@contextmanager
def _csv_fields():
    """Let Python's csv read fields as long as a line may be (its default stops at 131,072 characters, which
    would refuse in .csv what .txt, .tsv and .jsonl accept); the process's limit is restored after."""
    before = csv.field_size_limit()
    csv.field_size_limit(max(before, 2**31 - 1))  # a C long on every platform; lines are checked against MAX_LINE
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _blank(line: str) -> bool:
    """A line of white space only holds no record (str.strip's white space: spaces, tabs, NBSP, ...)."""
    return not line.strip()


LABEL_SEP = re.compile(r"[ \t]+")
# a label spelt as a decimal number (JSON's numbers, and a sign, leading zeros or a bare point as other tools write)
NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,18}))?")
NOT_A_VALUE = re.compile(r"[+-]?(?:nan|inf|infinity)|null", re.IGNORECASE)  # as float(), JSON and pandas write them
POSITIONAL = 50  # zeros: a number that would need more of them around its digits is written with an exponent


def label_value(text: str) -> str:
    """A class label as read from any format -> the label it stands for (README, "Data formats", labels).

    White space around it is dropped. A label spelt as a number is that number, written one way, so one
    number is never two classes: an integral value is its integer (`1.0`, `1e0`, `+1`, `01` -> `1`), any
    other the shortest decimal (`1.50` -> `1.5`), each with an exponent only where it saves more than
    POSITIONAL zeros (`1e60` -> `1e+60`). Any
    other label is kept as written (`pos`, `true`). Raises ValueError, saying why, for a label that is
    not a value: empty, NaN, infinite or null. Text is compared in Unicode's composed form (NFC), so `café`
    typed with a combining accent is the class `café` too."""
    text = unicodedata.normalize("NFC", text.strip())
    if not text:
        raise ValueError("empty label")
    if NOT_A_VALUE.fullmatch(text):
        raise ValueError(f"the label {text!r} is not a value (NaN, infinite or null): give the line its class "
                         "or leave the line out")
    m = NUMBER.fullmatch(text)
    if m is None or not (m[2] or m[3]):
        return text
    sign, whole, frac, exp = m[1], m[2], m[3] or "", int(m[4] or 0)
    digits = (whole + frac).lstrip("0")
    if not digits:
        return "0"
    exp -= len(frac)  # value = digits * 10**exp
    kept = digits.rstrip("0")
    exp, digits = exp + len(digits) - len(kept), kept
    sign = "-" if sign == "-" else ""
    point = len(digits) + exp  # where the point goes, counted from the left of the digits
    if 0 <= exp <= POSITIONAL:
        return sign + digits + "0" * exp
    if exp < 0 and -POSITIONAL <= point:
        return sign + (digits[:point] + "." + digits[point:] if point > 0 else "0." + "0" * -point + digits)
    return f"{sign}{digits[0]}{'.' + digits[1:] if len(digits) > 1 else ''}e{point - 1:+d}"


def _label_text_lines(lines, where, bad) -> Split:
    """`label text`: the label is everything before the first space or tab, the text the rest of the line.
    A tab inside the text means the file is tab-separated columns (a .tsv), which is refused per line:
    splitting `the movie\\tpos` at its first space would give the label 'the'."""
    texts, labels = [], []
    for n, line in enumerate(lines, 1):
        if _blank(line):
            continue
        if line_too_long(line):
            bad(where, n, line_too_long(line))
            continue
        label, *rest = LABEL_SEP.split(line.strip(), maxsplit=1)
        text = rest[0] if rest else ""
        if not text:
            bad(where, n, f"expected `label text`, found no text after the label {label!r}")
            continue
        if "\t" in text:
            bad(where, n, f"a tab inside the text after the label {label!r}: a `label text` line is one label, "
                          "a space or tab, then the text; tab-separated columns belong in a .tsv file with a "
                          "header row naming them (e.g. text<TAB>label)")
            continue
        try:
            label = label_value(label)
        except ValueError as exc:
            bad(where, n, str(exc))
            continue
        texts.append(text)
        labels.append(label)
    return Split(texts, labels)


def _fields_hint(cells: list[str], header: list[str]) -> str:
    if len(cells) > len(header) and not cells[-1].strip():
        return " (a trailing separator?)"
    return ""


def _table_rows(lines, where, bad, columns: Columns, delimiter: str) -> tuple[Split, list[str]]:
    """CSV (RFC 4180 quoting, one record a line) or TSV (IANA text/tab-separated-values: no quoting) with a
    header row. Returns the split and notes."""
    text_col, label_col = columns.text or "text", columns.label or "label"
    tsv = delimiter == "\t"

    def cells_of(n: int, line: str) -> list[str] | None:
        """The line's fields, or None when it broke the rule (reported to `bad`, with the lines of a record
        that runs over several: they are left out, not read as records of their own)."""
        nonlocal skip_to
        if tsv:
            return line.split("\t")
        try:  # strict: a quote opens a field only at its start, and a closed quote is followed by , or the end
            return next(csv.reader([line], delimiter=delimiter, strict=True))
        except csv.Error as exc:
            if "end of data" not in str(exc):
                bad(where, n, f"malformed CSV ({exc}); quote a field that holds commas or quotes, as \"a, \"\"b\"\"\"")
                return None
        end = _record_end(lines, n, delimiter, len(header) if header else None)
        if end is None:
            bad(where, n, "a quoted field does not close on its line; rdzoo reads one CSV record a line, so it is "
                          "refused rather than merged with the lines after it")
            return None
        why = (f"a quoted field holds a line end (one record over lines {n}-{end}); rdzoo reads one CSV record a "
               "line: replace line ends inside fields (e.g. by spaces) or use JSONL")
        for k in range(n, end + 1):  # every line of it is named, so none is read as a record of its own
            bad(where, k, why)
        skip_to = end
        return None

    skip_to = 0  # the last line of a record over several lines, left out with it
    header = None
    rows = ((n, line) for n, line in enumerate(lines, 1) if not _blank(line) and n > skip_to)
    for n, line in rows:
        header = cells_of(n, line)
        if header is not None:
            break
    if header is None:
        return Split([], []), []
    header_line = n
    header = [h.strip() for h in header]
    for col, param in ((text_col, "text_col"), (label_col, "label_col")):
        if col not in header:
            raise DataError(f"{where}: no column {col!r} (set it with {param}); the header (line {header_line}) "
                            f"names: {', '.join(header)}", param)
        if header.count(col) > 1:
            raise DataError(f"{where}: the header (line {header_line}) names column {col!r} {header.count(col)} times",
                            param)
    ti, li = header.index(text_col), header.index(label_col)
    texts, labels, quoted = [], [], []
    for n, line in rows:
        if line_too_long(line):
            bad(where, n, line_too_long(line))
            continue
        row = cells_of(n, line)
        if row is None:
            continue
        if len(row) != len(header):
            bad(where, n, f"{len(row)} fields, the header (line {header_line}) has {len(header)}"
                          f"{_fields_hint(row, header)}")
            continue
        text, label = row[ti].strip(), row[li].strip()
        if not text:
            bad(where, n, "empty text")
            continue
        if tsv and (text.startswith('"') or label.startswith('"')):
            quoted.append(n)
        try:
            label = label_value(label)
        except ValueError as exc:
            bad(where, n, str(exc))
            continue
        texts.append(text)
        labels.append(label)
    notes = []
    if quoted:  # a TSV written with CSV quoting: the quotes are data here, and the user should know
        notes.append(f"{Path(where).name}: {len(quoted)} field(s) start with a double quote, kept as part of the "
                     f"text (TSV has no quoting; {_lines(quoted)})")
    return Split(texts, labels), notes


def _record_end(lines: list[str], n: int, delimiter: str, width: int | None, span: int = 100) -> int | None:
    """When line n (1-based) opens a quoted field that closes on a later line, making one well-formed RFC 4180
    record (of `width` fields, once the header is known), the number of its last line; else None."""
    quotes = lines[n - 1].count('"')
    for end in range(n + 1, min(len(lines), n + span) + 1):
        quotes += lines[end - 1].count('"')
        if quotes % 2:
            continue
        try:
            records = list(csv.reader(io.StringIO("\n".join(lines[n - 1:end])), delimiter=delimiter, strict=True))
        except csv.Error:
            return None
        return end if len(records) == 1 and (width is None or len(records[0]) == width) else None
    return None


class _Spelt(str):
    """A JSON number or constant (NaN, Infinity) as spelt in the file: read exactly, whatever its size
    (json's own int() refuses over 4,300 digits, its float() turns 1e400 into inf)."""


def _json_label(value) -> str:
    """A JSON label -> its label (label_value of a string or number as spelt; true -> 'true'). Raises
    ValueError, saying why, for null, an object or an array, or what label_value refuses."""
    if value is None:
        raise ValueError("the label is null, not a value: give the line its class or leave the line out")
    if isinstance(value, (dict, list)):
        raise ValueError(f"the label is a JSON {'object' if isinstance(value, dict) else 'array'}; a label is a "
                         "string or a number")
    return label_value(value if isinstance(value, str) else json.dumps(value))


def _json_lines(lines, where, bad, columns: Columns) -> Split:
    text_key, label_key = columns.text or "text", columns.label or "label"
    texts, labels = [], []
    for n, line in enumerate(lines, 1):
        if _blank(line):
            continue
        if line_too_long(line):
            bad(where, n, line_too_long(line))
            continue
        try:
            obj = json.loads(line, parse_int=_Spelt, parse_float=_Spelt, parse_constant=_Spelt)
        except json.JSONDecodeError as exc:
            hint = ("; a JSON array or an object over several lines is not JSON Lines (one object a line)"
                    if line.strip() in ("[", "{") else "")
            bad(where, n, f"not JSON ({exc.msg}){hint}")
            continue
        except RecursionError:  # Python's json reads nesting only as deep as its recursion limit
            bad(where, n, "JSON nested too deeply to read (arrays or objects inside one another)")
            continue
        if not isinstance(obj, dict) or text_key not in obj or label_key not in obj:
            keys = ", ".join(obj) if isinstance(obj, dict) else f"a JSON {type(obj).__name__}, not an object"
            bad(where, n, f"needs fields {text_key!r} and {label_key!r}; found: {keys}")
            continue
        text = obj[text_key]
        if not isinstance(text, str) or isinstance(text, _Spelt) or not text.strip():
            bad(where, n, "text must be a non-empty string")
            continue
        try:
            label = _json_label(obj[label_key])
        except ValueError as exc:
            bad(where, n, str(exc))
            continue
        texts.append(text.strip())
        labels.append(label)
    return Split(texts, labels)


def _conllu(lines, where, bad) -> Split:
    """CoNLL-U sentences -> (words, UPOS tags). Multiword-token lines (ID `3-4`) and
    empty nodes (`5.1`) are not words to tag; comments start with `#`."""
    words, tags, sentences, sentence_tags = [], [], [], []
    for n, line in enumerate([*lines, ""], 1):
        if _blank(line):
            if words:
                sentences.append(words)
                sentence_tags.append(tags)
            words, tags = [], []
            continue
        if line.startswith("#"):
            continue
        if line_too_long(line):
            bad(where, n, line_too_long(line))
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            hint = " (a trailing tab?)" if len(cols) > 10 and not cols[-1].strip() else ""
            bad(where, n, f"a CoNLL-U word line has 10 tab-separated fields, this one {len(cols)}{hint}")
            continue
        if "-" in cols[0] or "." in cols[0]:
            continue
        if not cols[1] or cols[3] in ("", "_"):
            bad(where, n, "a word line needs FORM and UPOS")
            continue
        words.append(cols[1])
        tags.append(cols[3])
    return Split(sentences, sentence_tags)


def read_file(path: Path, columns: Columns | None = None, on_bad_line: str = "error",
              scheme: str | None = None) -> tuple[Split, list[Skipped], Decoding, list[str]]:
    """One file -> (split, the lines skipped, how it was decoded, notes on what was done).

    The format comes from the suffix (a .gz/.xz/.bz2 suffix is looked through): .conllu, .csv, .tsv,
    .jsonl/.json, else `label text` lines. `scheme` is the task a .conll file's tags are read as ('bio',
    'iobes' or 'plain'; None: inferred from the file, and said in the notes: conll.infer_scheme). Raises
    DataError naming the file and line of a malformed line (with on_bad_line="error"), or for a file that
    cannot be read."""
    columns = columns or Columns()
    bad = _Bad(on_bad_line)
    path = Path(path)
    suffix = format_of(path)
    if suffix not in EXTENSIONS:
        raise DataError(f"{path}: rdzoo cannot read {suffix} files yet; it reads {_known_formats()}")
    lines, decoding = read_lines(path, nel=suffix not in (".jsonl", ".json"))  # JSON strings may hold NEL
    where = str(path)
    notes = []
    if suffix == ".conll":  # token-per-line entity tags (WNUT-17, CoNLL-2003): see conll.py
        if columns.text or columns.label:
            raise DataError(f"{where}: columns do not apply to CoNLL files (the tag is the last column)", "columns")
        from .conll import read_conll

        words, tags, notes = read_conll(lines, where, bad, scheme)
        split = Split(words, tags)
    elif suffix == ".conllu":
        if columns.text or columns.label:
            raise DataError(f"{where}: columns do not apply to CoNLL-U (words are tagged with UPOS)", "columns")
        split = _conllu(lines, where, bad)
    elif suffix in (".csv", ".tsv"):
        with _csv_fields():
            split, notes = _table_rows(lines, where, bad, columns, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".jsonl", ".json"):
        split = _json_lines(lines, where, bad, columns)
    else:
        if columns.text or columns.label:
            raise DataError(f"{where}: columns apply to CSV, TSV and JSONL files, not `label text` lines", "columns")
        split = _label_text_lines(lines, where, bad)
    return split, bad.skipped, decoding, notes


def _known_formats() -> str:
    return ", ".join(e for e in EXTENSIONS if e) + " and `label text` files without a suffix (each may end in " \
        + ", ".join(COMPRESSED) + ")"


# --- label names ----------------------------------------------------------------------


def read_label_names(path: str | Path) -> dict[str, str]:
    """A label-names file -> {label as in the data: name}. One `value name` a line (the name is the rest of
    the line: `0 very negative`); blank lines and lines starting with # are ignored. Raises DataError for a
    value given twice or two values with one name (that would merge two classes)."""
    path = Path(path)
    lines, _ = read_lines(path)
    names: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if _blank(line) or line.lstrip().startswith("#"):
            continue
        value, *rest = LABEL_SEP.split(line.strip(), maxsplit=1)
        if not rest or not rest[0].strip():
            raise DataError(f"{path}, line {n}: expected `value name` (e.g. `0 DESC`), found {line.strip()!r}",
                            "label_names")
        name = rest[0].strip()
        try:
            value = label_value(value)  # as the data's labels are read: `1.0 pos` names the label 1
        except ValueError as exc:
            raise DataError(f"{path}, line {n}: {exc}", "label_names") from None
        if value in names:
            raise DataError(f"{path}, line {n}: label {value!r} is named twice", "label_names")
        if name in names.values():
            raise DataError(f"{path}, line {n}: the name {name!r} is given to two labels; that would merge them",
                            "label_names")
        names[value] = name
    if not names:
        raise DataError(f"{path}: names no labels (expected `value name` lines, e.g. `0 DESC`)", "label_names")
    return names


def _label_mapping(names: dict, where: str) -> dict[str, str]:
    """A {value: name} dict with its values read as labels are (label_value: {1.0: "x"} names the label 1).
    Raises DataError for a value that is not a label, or two values that are one label."""
    out: dict[str, str] = {}
    for value, name in names.items():
        try:
            label = label_value(str(value))
        except ValueError as exc:
            raise DataError(f"{where}: {exc}", "label_names") from None
        if label in out:
            raise DataError(f"{where}: label {label!r} is named twice", "label_names")
        out[label] = str(name)
    return out


def _rename(split: Split | None, names: dict[str, str]) -> Split | None:
    """A split with every label (or tag) replaced by names[label]."""
    if split is None:
        return None
    if split.tagged:
        return Split(split.texts, [[names[t] for t in tags] for tags in split.labels])
    return Split(split.texts, [names[label] for label in split.labels])


def _labels(data: TextData) -> set[str]:
    """The distinct labels (or tags) of every split."""
    return set().union(*(label_set(s) for s in (data.train, data.dev, data.test) if s is not None))


def name_labels(data: TextData, names: dict[str, str], source: str) -> TextData:
    """Every label (or tag) replaced by its name; a label the names do not cover is an error, not left as is.

    `names` maps a label value to its name, `source` (the names' file) is named in the note and the
    error. Raises DataError listing the labels without a name."""
    unnamed = sorted(_labels(data) - names.keys())
    if unnamed:
        raise DataError(f"{data.name}: label(s) {', '.join(map(repr, unnamed[:5]))} have no name in {source}; "
                        f"it names {', '.join(names)}", "label_names")

    from ..names import natural_key

    shown = ", ".join(f"{k} {v}" for k, v in list(names.items())[:8]) + (", ..." if len(names) > 8 else "")
    return replace(data, train=_rename(data.train, names), dev=_rename(data.dev, names),
                   test=_rename(data.test, names), notes=[*data.notes, f"labels named by {source} ({shown})"],
                   label_order=[names[v] for v in sorted(names, key=natural_key)], label_values=dict(names))


def name_as_trained(data: TextData, names: dict | None, known: list[str], source: str) -> TextData:
    """`data` with its labels named as a model knows them, where they stand for the same values.

    `known` are the model's label names, `names` the {value: name} map applied to its labels in training
    (None: none was). A label the model knows stays; one that data named at load (`data.label_values`)
    stands for its value; a value the model knows stays, and one of `names` becomes its name. So a run
    trained on TREC's names evaluates files labelled 0-5, and a run trained on 0-5 the named built-in
    set. Data with a label that maps to nothing the model knows is returned as it is (evaluating it then
    names the unknown labels). Raises DataError for a `names` that gives one value two names."""
    known_set = set(known)
    labels = _labels(data)
    if labels <= known_set:
        return data
    value_of = {name: value for value, name in (data.label_values or {}).items()}
    trained = _label_mapping(names, source) if names else {}
    mapping = {}
    for label in labels:
        value = value_of.get(label, label)
        mapping[label] = label if label in known_set else value if value in known_set else trained.get(value)
    if None in mapping.values():
        return data
    from ..names import natural_key

    pairs = [(k, v) for k, v in sorted(mapping.items(), key=lambda kv: natural_key(kv[0])) if k != v]
    shown = ", ".join(f"{k} {v}" for k, v in pairs[:8]) + (", ..." if len(pairs) > 8 else "")
    return replace(data, train=_rename(data.train, mapping), dev=_rename(data.dev, mapping),
                   test=_rename(data.test, mapping), notes=[*data.notes, f"labels named by {source} ({shown})"],
                   label_order=[n for n in known if n in mapping.values()],
                   label_values={value_of.get(k, k): v for k, v in mapping.items()})


# --- datasets ----------------------------------------------------------------------


def split_off(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """A seeded random (rest, held-out) split with `fraction` held out."""
    index = list(range(len(split)))
    random.Random(seed).shuffle(index)
    n_out = max(1, round(len(index) * fraction))
    return split.subset(sorted(index[n_out:])), split.subset(sorted(index[:n_out]))


def kfold(data: TextData, k: int, seed: int = 0) -> list[TextData]:
    """K train/test folds of the training split (the MR/Subj/CR/MPQA protocol), seeded; each fold
    has no dev split. Labelled texts are stratified (scikit-learn's StratifiedKFold): each class's
    examples, shuffled, are dealt to the folds in turn, so a class of n >= 2 examples is in the
    training part of every fold that tests on it. Every fold is checked before any is trained on.

    Raises DataError unless 2 <= k <= the number of training examples, for a class with a single
    example, or (tagged data, whose sentences are not stratified) a fold whose test sentences hold a
    tag that its training part lacks."""
    if not 2 <= k <= len(data.train):
        raise DataError(f"cannot cross-validate with {k} folds: the training split has {len(data.train)} examples "
                        f"(2 <= K <= {len(data.train)})", "k")
    index = list(range(len(data.train)))
    random.Random(seed).shuffle(index)
    if not data.tagging:
        by_class: dict[str, list[int]] = {}
        for i in index:
            by_class.setdefault(data.train.labels[i], []).append(i)
        single = sorted(c for c, members in by_class.items() if len(members) == 1)
        if single:
            raise DataError(f"cannot cross-validate: class(es) {', '.join(map(repr, single[:5]))} have a single "
                            "example in the training split; each fold trains on the other folds' examples, so "
                            "every class needs at least 2 (leave those lines out, or add examples)", "k")
        index = [i for c in sorted(by_class) for i in by_class[c]]  # dealt in turn: each class over the folds
    folds = [sorted(index[i::k]) for i in range(k)]
    out = []
    for i, held in enumerate(folds):
        rest = sorted(j for f, fold in enumerate(folds) if f != i for j in fold)
        fold = replace(data, name=f"{data.name} (fold {i + 1}/{k})", train=data.train.subset(rest),
                       dev=None, test=data.train.subset(held))
        unseen = sorted(label_set(fold.test) - label_set(fold.train))
        if unseen:
            raise DataError(f"cannot cross-validate with {k} folds (seed {seed}): fold {i + 1} tests on "
                            f"{'tag' if data.tagging else 'label'}(s) {', '.join(map(repr, unseen[:5]))} that its "
                            "training part lacks; use fewer folds or another seed", "k")
        out.append(fold)
    return out


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
        readable = [p for p in hits if format_of(p) in EXTENSIONS]
        if len(readable) > 1:
            raise DataError(f"{folder}: more than one {split} file ({', '.join(h.name for h in readable)})")
        if readable:
            found[split] = readable[0]
        elif hits:  # a split in a format rdzoo does not read: say so rather than ignore it
            raise DataError(f"{folder}: {hits[0].name} is a {format_of(hits[0]) or 'suffix-less'} file, which "
                            f"rdzoo cannot read yet; it reads {_known_formats()}")
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
        mapping = _label_mapping(label_names, where) if isinstance(label_names, dict) else read_label_names(label_names)
        data = name_labels(data, mapping, where)
    return check(data)


def dev_note(data: TextData, fraction: float, seed: int) -> list[str]:
    """The split training makes when the data has no dev split (train.dev_fraction of train, seeded)."""
    if data.dev is not None and len(data.dev):
        return []
    n = max(1, round(len(data.train) * fraction))
    return [f"no dev split: training holds out {n} of {len(data.train)} training examples as dev (seed {seed})"]


def tag_scheme(split: Split) -> str:
    """The task a split's tags were read as: 'bio' or 'iobes' (entity tags), else 'plain'."""
    from .conll import is_entity_tagset, scheme

    tags = label_set(split) if split.tagged else set()
    return scheme(tags) if is_entity_tagset(tags) else "plain"


def label_set(split: Split) -> set[str]:
    """The distinct labels of a split, or the distinct tags of a tagged one."""
    if split.tagged:
        return {tag for tags in split.labels for tag in tags}
    return set(split.labels)


def check(data: TextData) -> TextData:
    """Refuse what cannot be trained or evaluated, with the reason; returns `data` unchanged.

    Raises DataError for an empty training split, a single class, a dev or test split in another
    format than train (tagged vs labelled), or dev/test labels never seen in training."""
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
