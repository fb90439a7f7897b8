"""The transfer set a student learns from: the training texts, augmented copies of them,
and unlabelled in-domain text (Tang et al. 2019, "data augmentation for distillation").

A copy of a text goes word by word (whitespace-separated words; a tagger's words as they
are): with chance `p_mask` the word is masked, else with chance `p_pos` it is replaced by
another word of the same part of speech drawn from the training texts (each occurrence
equally likely, so common words come up as often as they occur); then, with chance
`p_ngram`, only a random n-gram of the copy is kept, n uniform in 1..`ngram_max` (at most
the copy's length). A tagger's copies skip the n-gram step, so every copy keeps its word
count: a 1- to 5-word window is little context to tag in, and the teacher tags each copy as
it is anyway. Copies and unlabelled texts have no gold label: only the teacher's logits
teach on them.

A masked word is `MASK`, a private-use character no tokenizer has seen: a rdzoo tokenizer
reads it as `<unk>` (Tang et al.'s mask for a non-BERT student), and `for_tokenizer` writes
it as `[MASK]` for a BERT-family tokenizer that has one. Parts of speech come from the
data's own UPOS tags (tagged data with UPOS tags), else from `lexicon.ud_lexicon`. Seeded:
the same texts, settings and seed give the same copies. Torch-free.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

MASK = "\ue000"  # a masked word (Unicode private use: in no vocabulary)
UPOS = frozenset("ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split())
AUGMENT_KEYS = ("augment_copies", "p_mask", "p_pos", "p_ngram", "ngram_max")


@dataclass
class TransferSet:
    """The texts a student trains on, in order: the training texts (with their gold labels),
    then the augmented copies (copy k = 0, 1, ... of text i at n_train * (k + 1) + i), then
    the unlabelled texts. `labels[i]` is None where a text has no gold
    label. `vocab_texts` are what the student's vocabulary is built from: the training and
    unlabelled texts, not the copies (so a masked word stays unknown to it)."""

    texts: list  # strings, or lists of words (tagging data); MASK marks a masked word
    labels: list  # a label (or tag list) for a training text, None for a copy or an unlabelled text
    n_train: int
    n_copies: int  # augmented copies in all
    n_unlabeled: int
    settings: dict = field(default_factory=dict)  # the augmentation settings and seed that made it

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def vocab_texts(self) -> list:
        """The training and unlabelled texts (the copies left out)."""
        return self.texts[: self.n_train] + self.texts[self.n_train + self.n_copies:]

    def texts_for(self, tokenizer) -> list:
        """The texts as `tokenizer` should read them (`for_tokenizer`)."""
        return for_tokenizer(self.texts, tokenizer)

    def summary(self) -> dict:
        """Sizes for a report: {"transfer_texts", "train", "augmented", "unlabeled"}."""
        return {"transfer_texts": len(self), "train": self.n_train, "augmented": self.n_copies,
                "unlabeled": self.n_unlabeled}


def mask_token(tokenizer) -> str:
    """How `tokenizer` should see a masked word: its `[MASK]` if it is a checkpoint's tokenizer
    that has one (Tang et al. 2019 mask BERT's input so), else MASK, which every rdzoo
    vocabulary reads as unknown."""
    backend = getattr(tokenizer, "backend", None)
    if getattr(tokenizer, "kind", "") == "pretrained" and backend.token_to_id("[MASK]") is not None:
        return "[MASK]"
    return MASK


def for_tokenizer(texts: list, tokenizer) -> list:
    """`texts` (strings or word lists) with MASK written as `mask_token(tokenizer)`."""
    token = mask_token(tokenizer)
    if token == MASK:
        return texts
    return [[token if w == MASK else w for w in t] if isinstance(t, list) else t.replace(MASK, token) for t in texts]


def words_of(text) -> list[str]:
    """A text's words: a tagger's list as it is, else the text split at white space."""
    return list(text) if isinstance(text, list) else text.split()


def upos_tagged(labels: list, tagging: bool) -> bool:
    """Whether `labels` are tag lists (`tagging` data) whose tags are all UPOS tags (part-of-speech data)."""
    return tagging and bool(labels) and {t for tags in labels for t in tags} <= UPOS


def parts_of_speech(texts: list, labels: list, lexicon: dict[str, str] | None,
                    tagging: bool = False) -> list[list[str | None]]:
    """Each word's part of speech: the data's own tag when `labels` are UPOS tag lists (`tagging`
    data), else the lexicon's tag for the lowercased word (None for a word it lacks, and for every
    word without a lexicon)."""
    if upos_tagged(labels, tagging):
        return [list(tags) for tags in labels]
    return [[(lexicon or {}).get(w.lower()) for w in words_of(t)] for t in texts]


def augment(words: list[str], pos: list[str | None], pools: dict[str, list[str]], rng: random.Random,
            settings, ngrams: bool) -> list[str]:
    """One augmented copy of a text's words (the rules in the module's docstring); `pools`:
    part of speech -> the training words that carry it, one entry an occurrence."""
    out = []
    for word, tag in zip(words, pos):
        u = rng.random()
        if u < settings.p_mask:
            out.append(MASK)
        elif u < settings.p_mask + settings.p_pos and pools.get(tag):
            out.append(rng.choice(pools[tag]))
        else:
            out.append(word)
    if ngrams and out and rng.random() < settings.p_ngram:
        n = rng.randint(1, min(settings.ngram_max, len(out)))
        start = rng.randint(0, len(out) - n)
        out = out[start: start + n]
    return out


def transfer_set(texts: list, labels: list, settings, seed: int, unlabeled: list | None = None,
                 lexicon: dict[str, str] | None = None, tagging: bool = False) -> TransferSet:
    """The transfer set of training `texts` (strings, or word lists for `tagging` data) and their
    `labels`: the texts, then `settings.augment_copies` rounds of copies (round k holds one
    copy of every text, in order), then `unlabeled` texts as they are. `settings` is a
    `spec.Distill`; `lexicon` (default: `lexicon.ud_lexicon()`, read only when needed) gives
    a word's part of speech where the labels are not UPOS tags."""
    copies_in_all = settings.augment_copies * len(texts)
    out_texts, out_labels = list(texts), list(labels)
    if copies_in_all:
        if lexicon is None and settings.p_pos > 0 and not upos_tagged(labels, tagging):
            from .lexicon import ud_lexicon

            lexicon = ud_lexicon()
        pos = parts_of_speech(texts, labels, lexicon, tagging)
        pools: dict[str, list[str]] = defaultdict(list)
        for t, tags in zip(texts, pos):
            for word, tag in zip(words_of(t), tags):
                if tag is not None:
                    pools[tag].append(word)
        rng = random.Random(seed)
        for _ in range(settings.augment_copies):
            for t, tags in zip(texts, pos):
                words = augment(words_of(t), tags, pools, rng, settings, ngrams=not tagging)
                out_texts.append(words if tagging else " ".join(words))
                out_labels.append(None)
    unlabeled = list(unlabeled or [])
    out_texts += unlabeled
    out_labels += [None] * len(unlabeled)
    # the seed only draws copies: without them, one set (and one cache key) serves every seed
    return TransferSet(out_texts, out_labels, len(texts), copies_in_all, len(unlabeled),
                       {**{k: getattr(settings, k) for k in AUGMENT_KEYS}, "seed": seed if copies_in_all else None})


def read_unlabeled(path: str | Path, tagged: bool) -> tuple[list, list[str]]:
    """In-domain unlabelled text, one text a line (for tagging data, words separated by white
    space) -> (texts, notes on the reading: lines not UTF-8, blank lines left out). Lines are
    read and decoded as every rdzoo loader reads them (`text.lines.read_lines`).

    Raises DataError for a file that cannot be read or holds no text."""
    from ..text.lines import read_lines

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"unlabeled {path}: no such file (one text a line)", "unlabeled")
    lines, decoding = read_lines(path)
    texts = [line.split() if tagged else line.strip() for line in lines if line.strip()]
    if not texts:
        raise DataError(f"unlabeled {path}: no text in it (one text a line)", "unlabeled")
    notes = decoding.notes()
    blank = len(lines) - len(texts)
    if blank:
        notes.append(f"{path.name}: {blank} blank line(s) hold no text and were left out")
    return texts, notes
