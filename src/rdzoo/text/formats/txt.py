"""`label text` lines (the Kim 2014 / sent-conv-torch format): .txt files and files without a suffix."""

from __future__ import annotations

from ..dataset import Split
from ..labels import LABEL_SEP, label_value
from .format import BadLines, Columns, Examples, Format, record_lines


def read(lines: list[str], where: str, bad: BadLines, columns: Columns, scheme: str | None) -> tuple[Split, list[str]]:
    """`label text`: the label is everything before the first space or tab, the text the rest of the line.
    A tab inside the text means the file is tab-separated columns (a .tsv), which is refused per line:
    splitting `the movie\\tpos` at its first space would give the label 'the'."""
    examples = Examples(where, bad, label_value)
    for n, line in record_lines(lines, where, bad):
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
        examples.add(n, text, label)
    return examples.split(), []


FORMAT = Format("label text", (".txt", ""), read, no_columns="apply to CSV, TSV and JSONL files, not `label text` lines")
