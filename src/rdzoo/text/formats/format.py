"""What a data file format is, in one object (`Format`), and what every reader is given:
the lines, where they are from, the bad-line policy (`BadLines`) and the chosen columns
(`Columns`), and what readers of one record a line share (`record_lines`, `Examples`).
`formats.register` puts a format in the table that `read_file` reads by suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from ...errors import DataError
from ..dataset import Skipped, Split
from ..limits import line_too_long
from ..lines import blank


@dataclass
class Columns:
    """The CSV/TSV columns or JSONL fields that hold the text and the label (None: "text", "label")."""

    text: str | None = None  # CSV column / JSON field holding the text (default "text")
    label: str | None = None  # ... holding the label (default "label")


@dataclass(frozen=True)
class Format:
    """One data file format. `suffixes`: the file suffixes it is read for (looked up through a
    .gz/.xz/.bz2 suffix; "" is a file without one). `read(lines, where, bad, columns, scheme)`:
    the file's decoded lines (`lines.read_lines`) -> (its Split, notes on what was done), calling
    `bad(where, line, why)` for a line that breaks the format's rule; `scheme` is the entity task
    a token-per-line file's tags are read as (None: inferred). `nel`: NEL (U+0085) ends a line
    (False where strings may hold it, as JSON's do). `no_columns`: why the format takes no
    columns, which refuses them (None: it reads `columns`)."""

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[list[str], str, "BadLines", Columns, "str | None"], "tuple[Split, list[str]]"]
    nel: bool = True
    no_columns: str | None = None


class BadLines:
    """What a reader does with a malformed line, by `on_bad_line`: "error" raises DataError naming
    the file, line and why; "skip" records it (`skipped`, reported by the load) and reading goes on."""

    def __init__(self, mode: str):
        if mode not in ("error", "skip"):
            raise DataError(f"on_bad_line must be 'error' or 'skip', got {mode!r}", "on_bad_line")
        self.mode, self.skipped = mode, []

    def __call__(self, where: str, line: int, why: str) -> None:
        """Line `line` of `where` breaks its format's rule, for the reason `why`."""
        if self.mode == "error":
            raise DataError(f"{where}, line {line}: {why} (use on_bad_line skip to skip such lines)", "on_bad_line")
        self.skipped.append(Skipped(where, line, why))


def record_lines(lines: list[str], where: str, bad: BadLines) -> Iterator[tuple[int, str]]:
    """(line number, line) of each line that may hold a record: blank lines hold none, and a line
    over the one limit of every format (`limits.MAX_LINE`) goes to `bad`."""
    for n, line in enumerate(lines, 1):
        if blank(line):
            continue
        if line_too_long(line):
            bad(where, n, line_too_long(line))
            continue
        yield n, line


class Examples:
    """The examples a reader keeps, in file order: each text with its label as `read_label` reads
    it (`labels.label_value`, or a format's own); a label it refuses (ValueError) makes the line
    bad, reported to `bad` with the reason."""

    def __init__(self, where: str, bad: BadLines, read_label: Callable):
        self.where, self.bad, self.read_label = where, bad, read_label
        self.texts: list[str] = []
        self.labels: list[str] = []

    def add(self, n: int, text: str, label) -> None:
        """Keep line `n`'s example, unless its label is not one."""
        try:
            label = self.read_label(label)
        except ValueError as exc:
            self.bad(self.where, n, str(exc))
            return
        self.texts.append(text)
        self.labels.append(label)

    def split(self) -> Split:
        """The examples kept, as a Split."""
        return Split(self.texts, self.labels)
