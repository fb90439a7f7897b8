"""A loaded data set: its splits (`Split`: texts and labels, or word lists and tag lists), and
the report of what the load did beyond reading (`TextData.report`: lines decoded as cp1252,
lines skipped, a split held out, labels named), which every command that reads data prints and
puts in its --json; `check` refuses what cannot be trained or evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError

if TYPE_CHECKING:
    from .lines import Decoding

SPLITS = ("train", "dev", "test")


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
