"""CoNLL-U (Universal Dependencies): one word a line, tagged with its UPOS; a split of word lists and
tag lists."""

from __future__ import annotations

from ..dataset import Split
from ..limits import line_too_long
from ..lines import blank
from .format import BadLines, Columns, Format


def read(lines: list[str], where: str, bad: BadLines, columns: Columns, scheme: str | None) -> tuple[Split, list[str]]:
    """CoNLL-U sentences -> (words, UPOS tags). Multiword-token lines (ID `3-4`) and
    empty nodes (`5.1`) are not words to tag; comments start with `#`."""
    words, tags, sentences, sentence_tags = [], [], [], []
    for n, line in enumerate([*lines, ""], 1):
        if blank(line):
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
    return Split(sentences, sentence_tags), []


FORMAT = Format("CoNLL-U", (".conllu",), read, no_columns="do not apply to CoNLL-U (words are tagged with UPOS)")
