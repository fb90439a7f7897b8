"""CoNLL-style token-per-line files for named entities: WNUT-17 and CoNLL-2003.

One token a line, its tag in the last column: `token<TAB>tag` (WNUT-17) or
`token POS chunk tag` (CoNLL-2003, space-separated). A line with a tab is split
on tabs (a token may then hold spaces), any other on whitespace. A sentence ends
at a blank line, which includes a line holding only a tab (WNUT-17's train file
ends 2,394 of its sentences that way). `-DOCSTART-` lines are document marks,
not words: they end a sentence and are dropped.

Entity tags are BIO (IOB2: `B-type` opens an entity, `I-type` continues it, `O`
is outside) or IOBES (`E-type` closes, `S-type` is a one-word entity). Which
task a file is read as is decided by most of its tags, so one stray value does
not change it (`infer_scheme`): entity data when some tag opens an entity
(`B-`/`S-`) and most distinct tags, or most words' tags, are `O` or
`B-/I-/E-/S-type`; IOBES when `E-`/`S-` tags are at least as many as `B-` tags
(every IOBES entity has one), else BIO. In entity data a tag outside the scheme
(`0` for `O`, an `S-x` in BIO) or a tag sequence that breaks it (an `I-x` or
`E-x` that no `B-x`/`I-x` of the same type precedes, a `B-x`/`I-x` not closed
by `I-x`/`E-x` in IOBES) is not repaired and not kept as given: it is an error
naming the file and line, or, with on_bad_line="skip", its sentence is dropped
and counted. (IOB1 files, whose `I-` starts an entity, break BIO everywhere;
convert them to IOB2 first.) Files whose tags are not entity tags (POS tags,
say) are read the same way, without the checks. A data set's dev and test
files are read as its train file was (data.load_data).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from .limits import line_too_long

ENTITY_TAG = re.compile(r"^([BIES])-(.+)$")


SCHEMES = {"bio": "BI", "iobes": "BIES"}  # the prefixes each scheme's tags may have, besides O


def is_entity_tagset(tags) -> bool:
    """True when every tag is `O` or `B-/I-/E-/S-type` and some tag opens an entity (`B-` or `S-`)."""
    tags = set(tags)
    return any(t[:2] in ("B-", "S-") for t in tags) and all(t == "O" or ENTITY_TAG.match(t) for t in tags)


def in_scheme(tag: str, name: str) -> bool:
    """Whether `tag` is a tag of the scheme `name` ('bio' or 'iobes'): `O`, or an allowed prefix and a type."""
    m = ENTITY_TAG.match(tag)
    return tag == "O" or (m is not None and m[1] in SCHEMES[name])


def infer_scheme(tag_lists) -> tuple[str, str]:
    """A file's tag lists -> (scheme, why): 'bio' or 'iobes' for entity data, 'plain' for other tags, and the
    reason in words. Entity data: some tag is `B-` or `S-`, and most distinct tags or most words' tags are
    `O` or `B-/I-/E-/S-type`, so a few stray tags do not make it plain tagging. IOBES when `E-`/`S-` tags are
    at least as many as `B-` tags (every IOBES entity has one `E-` or `S-`), else BIO."""
    words = Counter(t for tags in tag_lists for t in tags)
    like = {t for t in words if t == "O" or ENTITY_TAG.match(t)}
    n_like, n_words = sum(words[t] for t in like), sum(words.values())
    counts = f"{len(like)} of {len(words)} distinct tags and {n_like:,} of {n_words:,} words are O or B-/I-/E-/S-type"
    opens = sum(words[t] for t in like if t[:2] in ("B-", "S-"))
    if not opens:
        return "plain", f"tagging without entity scores: no tag opens an entity (B- or S-); {counts}"
    if 2 * len(like) <= len(words) and 2 * n_like <= n_words:
        return "plain", f"tagging without entity scores: {counts}, not most of either"
    closes = sum(words[t] for t in like if t[:2] in ("E-", "S-"))
    name = "iobes" if closes >= sum(words[t] for t in like if t[:2] == "B-") else "bio"
    return name, f"entity tagging ({name.upper()}): {counts}"


def tag_hint(tag: str) -> str:
    """Why a tag outside the scheme may be a slip: '0' for 'O', a lower-case prefix."""
    if tag == "0":
        return " (the digit zero; outside is the letter O)"
    if tag.lower() == "o" or (len(tag) > 2 and tag[1] in "-_" and tag[0].lower() in "bies"):
        return " (tags are case-sensitive: O, B-type, ...)" if tag[1:2] != "_" else " (B-type: a hyphen)"
    return ""


def scheme(tags) -> str:
    """'iobes' when any E- or S- tag occurs, else 'bio' (for a read data set's tag names, which hold no tag
    outside their scheme; a file's tags are read with infer_scheme)."""
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


def read_conll(lines: list[str], where: str, bad,
               scheme: str | None = None) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """Lines -> (word lists, tag lists, notes). `bad(where, line, why)` raises or counts (formats.BadLines).

    `scheme` ('bio', 'iobes' or 'plain') is the task the tags are read as; None infers it from this file
    (infer_scheme) and says so in the notes."""
    sentences, tag_lists, line_lists = [], [], []
    words, tags, numbers = [], [], []
    for n, line in enumerate([*lines, ""], 1):
        cols = line.split("\t") if "\t" in line else line.split()
        if not line.strip() or cols[0] == "-DOCSTART-":
            if words:
                sentences.append(words)
                tag_lists.append(tags)
                line_lists.append(numbers)
            words, tags, numbers = [], [], []
            continue
        if line_too_long(line):
            bad(where, n, line_too_long(line))
            continue
        cols = [c.strip() for c in cols]
        if len(cols) < 2 or not cols[0] or not cols[-1]:
            bad(where, n, "expected a token and its tag (`token<TAB>tag`, or columns with the tag last)")
            continue
        words.append(cols[0])
        tags.append(cols[-1])
        numbers.append(n)
    notes = []
    if scheme is None:
        scheme, why = infer_scheme(tag_lists)
        notes.append(f"{Path(where).name}: {why}")
    if scheme == "plain":
        return sentences, tag_lists, notes
    iobes, shown = scheme == "iobes", scheme.upper()
    allowed = "O, " + ", ".join(f"{p}-type" for p in SCHEMES[scheme])
    kept_words, kept_tags = [], []
    for words, tags, numbers in zip(sentences, tag_lists, line_lists):
        stray = next((i for i, t in enumerate(tags) if not in_scheme(t, scheme)), None)
        if stray is not None:
            bad(where, numbers[stray], f"tag {tags[stray]!r} is not a {shown} tag ({allowed}){tag_hint(tags[stray])}; "
                                       f"the data is read as {shown} entity tags")
            continue
        i = first_break(tags, iobes)
        if i is not None:
            what = f"{tags[i - 1] if i else 'O'} -> {tags[i] if i < len(tags) else 'end of sentence'}"
            bad(where, numbers[min(i, len(tags) - 1)],
                f"malformed {shown} tag sequence ({what}); an entity must open with "
                f"{'B- or S-' if iobes else 'B-'} of its type{' and close with E-' if iobes else ''}")
            continue
        kept_words.append(words)
        kept_tags.append(tags)
    return kept_words, kept_tags, notes


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
