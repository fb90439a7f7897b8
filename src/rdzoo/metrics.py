"""Classification metrics. Written out because they are a few lines each and
scikit-learn would be a large dependency for two functions. Tag lists (one a
text) are scored over their words."""

from __future__ import annotations

from collections import Counter


def flat(seqs: list, tagging: bool) -> list:
    """For `tagging`, a list of per-text tag lists -> one list of all their words' tags; else (one
    label a text) the list as it is."""
    return [x for s in seqs for x in s] if tagging else seqs


def accuracy(gold: list, pred: list, tagging: bool = False) -> float:
    """Fraction (0 to 1) of labels, or of words for `tagging`'s tag lists, where pred equals gold; 0.0
    when empty."""
    gold, pred = flat(gold, tagging), flat(pred, tagging)
    return sum(g == p for g, p in zip(gold, pred)) / max(len(gold), 1)


def macro_f1(gold: list, pred: list, num_classes: int, tagging: bool = False) -> float:
    """Unweighted mean of per-class F1 over the classes present in gold or pred (over words for
    `tagging`'s tag lists)."""
    gold, pred = flat(gold, tagging), flat(pred, tagging)
    tp = Counter(g for g, p in zip(gold, pred) if g == p)
    fp = Counter(p for g, p in zip(gold, pred) if g != p)
    fn = Counter(g for g, p in zip(gold, pred) if g != p)
    scores = [2 * tp[c] / (2 * tp[c] + fp[c] + fn[c]) for c in range(num_classes) if tp[c] + fp[c] + fn[c]]
    return sum(scores) / max(len(scores), 1)


# --- entities ------------------------------------------------------------------------
# Entity (span) scores as conlleval and seqeval's default mode compute them: written out
# because seqeval imports scikit-learn (2 s here) for these few lines; tests/test_ner.py
# checks every case against seqeval. The chunk rules are conlleval's (Tjong Kim Sang 2000),
# which read an `I-x` with no open `x` entity as the start of one.


def _split_tag(tag) -> tuple[str, str]:
    """'B-person' -> ('B', 'person'); 'O' (and an untagged word, None) -> ('O', '')."""
    if not tag or tag == "O":
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return (prefix, kind) if kind else (prefix, "")


def _ends(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    return (prev in ("E", "S") or (prev in ("B", "I") and tag in ("B", "S", "O"))
            or (prev != "O" and prev_type != kind))


def _starts(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    return (tag in ("B", "S") or (prev in ("E", "S", "O") and tag in ("E", "I"))
            or (tag != "O" and prev_type != kind))


def entities(tags: list) -> list[tuple[str, int, int]]:
    """One sentence's BIO/IOBES tags -> its entities as (type, first word, last word), inclusive."""
    out, prev, prev_type, begin = [], "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        kind_tag, kind = _split_tag(tag)
        if _ends(prev, kind_tag, prev_type, kind):
            out.append((prev_type, begin, i - 1))
        if _starts(prev, kind_tag, prev_type, kind):
            begin = i
        prev, prev_type = kind_tag, kind
    return out


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p, r = tp / n_pred if n_pred else 0.0, tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": n_gold}


def entity_scores(gold: list[list], pred: list[list]) -> dict:
    """Exact-match entity precision, recall and F1, micro over all entities and per type.

    gold, pred: a tag list a sentence (tag names; None for a word the model did not tag).
    An entity is right only when its type and both ends match (CoNLL-2003's measure).
    Returns {"precision", "recall", "f1", "support", "per_type": {type: {...}}}, fractions in [0, 1].
    """
    g = {(s, *e) for s, tags in enumerate(gold) for e in entities(tags)}
    p = {(s, *e) for s, tags in enumerate(pred) for e in entities(tags)}
    per_type = {}
    for kind in sorted({e[1] for e in g | p}):
        gk, pk = {e for e in g if e[1] == kind}, {e for e in p if e[1] == kind}
        per_type[kind] = _prf(len(gk & pk), len(pk), len(gk))
    return {**_prf(len(g & p), len(p), len(g)), "per_type": per_type}
