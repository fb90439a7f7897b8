"""CoNLL-style token-per-line files for named entities: WNUT-17 and CoNLL-2003.

One token a line, its tag in the last column: `token<TAB>tag` (WNUT-17) or
`token POS chunk tag` (CoNLL-2003, space-separated). A line with a tab is split
on tabs (a token may then hold spaces), any other on whitespace. A sentence ends
at a blank line, which includes a line holding only a tab (WNUT-17's train file
ends 2,394 of its sentences that way). `-DOCSTART-` lines are document marks,
not words: they end a sentence and are dropped.

Entity tags are BIO (IOB2: `B-type` opens an entity, `I-type` continues it, `O`
is outside) or IOBES (`E-type` closes, `S-type` is a one-word entity). A tag
sequence that breaks the scheme (an `I-x` or `E-x` that no `B-x`/`I-x` of the
same type precedes, a `B-x`/`I-x` not closed by `I-x`/`E-x` in IOBES) is not
repaired and not kept as given: it is an error naming the file and line, or,
with on_bad_line="skip", its sentence is dropped and counted. (IOB1 files, whose
`I-` starts an entity, break BIO everywhere; convert them to IOB2 first.)
Files whose tags are not entity tags (POS tags, say) are read the same way,
without the checks.
"""

from __future__ import annotations

import re
from collections import Counter

ENTITY_TAG = re.compile(r"^([BIES])-(.+)$")


def is_entity_tagset(tags) -> bool:
    """True when every tag is `O` or `B-/I-/E-/S-type` and at least one is not `O`."""
    tags = set(tags)
    return bool(tags - {"O"}) and all(t == "O" or ENTITY_TAG.match(t) for t in tags)


def scheme(tags) -> str:
    """'iobes' when any E- or S- tag occurs, else 'bio'."""
    return "iobes" if any(t[:2] in ("E-", "S-") for t in tags) else "bio"


def valid_transition(prev: str, tag: str, iobes: bool) -> bool:
    """May `tag` follow `prev` (`O` before the first word and after the last)?"""
    p, t = ENTITY_TAG.match(prev), ENTITY_TAG.match(tag)
    open_ = p is not None and (p[1] in ("B", "I") if iobes else True)  # prev's entity may go on
    if t is not None and t[1] in ("I", "E"):  # a continuation needs an open entity of its type
        return p is not None and p[1] in ("B", "I") and p[2] == t[2]
    # anything else starts afresh, which in IOBES first needs the previous entity closed
    return not (iobes and open_)


def first_break(tags: list[str], iobes: bool) -> int | None:
    """Index of the first tag that breaks the scheme (len(tags) when the last entity is left open), or None."""
    for i, (prev, tag) in enumerate(zip(["O", *tags], [*tags, "O"])):
        if not valid_transition(prev, tag, iobes):
            return i
    return None


def entity_counts(tag_lists) -> Counter:
    """Entities per type (counting B- and S- tags) over a split's tag lists."""
    return Counter(m[2] for tags in tag_lists for t in tags if (m := ENTITY_TAG.match(t)) and m[1] in ("B", "S"))


def read_conll(lines: list[str], where: str, bad) -> tuple[list[list[str]], list[list[str]]]:
    """Lines -> (word lists, tag lists). `bad(where, line, why)` raises or counts (data._Bad)."""
    sentences, tag_lists, starts = [], [], []
    words, tags, start = [], [], 0
    for n, line in enumerate([*lines, ""], 1):
        cols = line.split("\t") if "\t" in line else line.split()
        if not line.strip() or cols[0] == "-DOCSTART-":
            if words:
                sentences.append(words)
                tag_lists.append(tags)
                starts.append(start)
            words, tags = [], []
            continue
        cols = [c.strip() for c in cols]
        if len(cols) < 2 or not cols[0] or not cols[-1]:
            bad(where, n, "expected a token and its tag (`token<TAB>tag`, or columns with the tag last)")
            continue
        if not words:
            start = n
        words.append(cols[0])
        tags.append(cols[-1])
    all_tags = {t for tl in tag_lists for t in tl}
    if not is_entity_tagset(all_tags):
        return sentences, tag_lists
    iobes = scheme(all_tags) == "iobes"
    kept_words, kept_tags = [], []
    for words, tags, start in zip(sentences, tag_lists, starts):
        i = first_break(tags, iobes)
        if i is not None:
            what = f"{tags[i - 1] if i else 'O'} -> {tags[i] if i < len(tags) else 'end of sentence'}"
            bad(where, start + min(i, len(tags) - 1),
                f"malformed {'IOBES' if iobes else 'BIO'} tag sequence ({what}); an entity must open with "
                f"{'B- or S-' if iobes else 'B-'} of its type{' and close with E-' if iobes else ''}")
            continue
        kept_words.append(words)
        kept_tags.append(tags)
    return kept_words, kept_tags


def entity_spans(text: str, tags: list) -> list[dict]:
    """A text's whitespace-separated words tagged `tags` -> its entities as
    {text, type, start, end}, with start and end character offsets into `text` (end exclusive)."""
    from ..metrics import entities

    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    return [{"text": text[words[a][0]:words[b][1]], "type": kind, "start": words[a][0], "end": words[b][1]}
            for kind, a, b in entities(tags)]


def mark_entities(text: str, spans: list[dict]) -> str:
    """The text with each entity written `[words](type)`."""
    out, at = [], 0
    for s in spans:
        out += [text[at:s["start"]], f"[{s['text']}]({s['type']})"]
        at = s["end"]
    return "".join(out + [text[at:]])
