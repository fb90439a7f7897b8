"""Delimited columns with a header row: CSV (RFC 4180 quoting, one record a line) and TSV (IANA
text/tab-separated-values: no quoting), the text and label in the chosen columns (`Columns`)."""

from __future__ import annotations

import csv
import io
from contextlib import contextmanager
from pathlib import Path

from ...errors import DataError
from ..dataset import Split
from ..labels import label_value
from ..limits import line_too_long
from ..lines import blank, shown_lines
from .format import BadLines, Columns, Examples, Format


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
    rows = ((n, line) for n, line in enumerate(lines, 1) if not blank(line) and n > skip_to)
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
    examples, quoted = Examples(where, bad, label_value), []
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
        examples.add(n, text, label)
    notes = []
    if quoted:  # a TSV written with CSV quoting: the quotes are data here, and the user should know
        notes.append(f"{Path(where).name}: {len(quoted)} field(s) start with a double quote, kept as part of the "
                     f"text (TSV has no quoting; {shown_lines(quoted)})")
    return examples.split(), notes


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


def read_csv(lines: list[str], where: str, bad: BadLines, columns: Columns, scheme: str | None) -> tuple[Split, list[str]]:
    """CSV lines -> (split, notes); see `_table_rows`."""
    with _csv_fields():
        return _table_rows(lines, where, bad, columns, ",")


def read_tsv(lines: list[str], where: str, bad: BadLines, columns: Columns, scheme: str | None) -> tuple[Split, list[str]]:
    """TSV lines -> (split, notes, such as fields that start with a quote); see `_table_rows`."""
    with _csv_fields():
        return _table_rows(lines, where, bad, columns, "\t")


CSV = Format("CSV", (".csv",), read_csv)
TSV = Format("TSV", (".tsv",), read_tsv)
