"""The data format table: every file format rdzoo reads, by file suffix, and `read_file`, the one
reader of a file.

A format is registered once (`register(Format(...))`) and then read everywhere: `read_file`
picks it by the file's suffix (looking through .gz, .xz or .bz2), a folder's split files are
found by it, and the error for an unknown suffix lists the table. The built-in formats are
`label text` lines (.txt and no suffix), CSV, TSV, JSON Lines (.jsonl, .json), CoNLL-U and
token-per-line CoNLL, one module each (CSV and TSV share theirs); a new format is one module
and one registration.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..dataset import Skipped, Split
from ..lines import COMPRESSED, Decoding, format_of, read_lines
from . import conll, conllu, delimited, jsonl, txt
from .format import BadLines, Columns, Format

__all__ = ["FORMATS", "Format", "Columns", "BadLines", "register", "read_file", "known_formats"]

FORMATS: dict[str, Format] = {}  # suffix -> format, in the order registered


def register(fmt: Format) -> Format:
    """Add a format to the table under each of its suffixes; raises ValueError if a suffix is taken."""
    taken = [s for s in fmt.suffixes if s in FORMATS]
    if taken:
        raise ValueError(f"{fmt.name}: suffix {taken[0]!r} is already read as {FORMATS[taken[0]].name}")
    FORMATS.update(dict.fromkeys(fmt.suffixes, fmt))
    return fmt


def known_formats() -> str:
    """The suffixes rdzoo reads, for messages: '.txt, .csv, ... and `label text` files without a suffix (...)'."""
    return ", ".join(s for s in FORMATS if s) + " and `label text` files without a suffix (each may end in " \
        + ", ".join(COMPRESSED) + ")"


def read_file(path: Path, columns: Columns | None = None, on_bad_line: str = "error",
              scheme: str | None = None) -> tuple[Split, list[Skipped], Decoding, list[str]]:
    """One file -> (split, the lines skipped, how it was decoded, notes on what was done).

    The format comes from the suffix (a .gz/.xz/.bz2 suffix is looked through) and the table
    (`FORMATS`): .conllu, .conll, .csv, .tsv, .jsonl/.json, `label text` lines (.txt or none).
    `scheme` is the task a .conll file's tags are read as ('bio', 'iobes' or 'plain'; None:
    inferred from the file, and said in the notes: conll.infer_scheme). Raises
    DataError naming the file and line of a malformed line (with on_bad_line="error"), or for a file that
    cannot be read."""
    columns = columns or Columns()
    bad = BadLines(on_bad_line)
    path = Path(path)
    suffix = format_of(path)
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise DataError(f"{path}: rdzoo cannot read {suffix} files yet; it reads {known_formats()}")
    lines, decoding = read_lines(path, nel=fmt.nel)
    where = str(path)
    if fmt.no_columns and (columns.text or columns.label):
        raise DataError(f"{where}: columns {fmt.no_columns}", "columns")
    split, notes = fmt.read(lines, where, bad, columns, scheme)
    return split, bad.skipped, decoding, notes


for _fmt in (txt.FORMAT, delimited.CSV, delimited.TSV, jsonl.FORMAT, conllu.FORMAT, conll.FORMAT):
    register(_fmt)
