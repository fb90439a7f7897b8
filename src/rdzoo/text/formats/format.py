"""What a data file format is, in one object (`Format`), and what every reader is given:
the lines, where they are from, the bad-line policy (`BadLines`) and the chosen columns
(`Columns`). `formats.register` puts a format in the table that `read_file` reads by suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...errors import DataError
from ..dataset import Skipped, Split


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
