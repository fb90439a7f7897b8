"""Token-per-line entity files (.conll: WNUT-17, CoNLL-2003), read by `text.conll.read_conll`: the
task (BIO, IOBES or plain tags) inferred from the train file, or given as `scheme`."""

from __future__ import annotations

from ..conll import read_conll
from ..dataset import Split
from .format import BadLines, Columns, Format


def read(lines: list[str], where: str, bad: BadLines, columns: Columns, scheme: str | None) -> tuple[Split, list[str]]:
    """Token-per-line lines -> (word lists and tag lists, notes: the task the tags were read as)."""
    words, tags, notes = read_conll(lines, where, bad, scheme)
    return Split(words, tags), notes


FORMAT = Format("CoNLL", (".conll",), read, no_columns="do not apply to CoNLL files (the tag is the last column)")
