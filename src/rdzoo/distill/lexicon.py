"""English words' parts of speech, for replacing a word by another of the same part of
speech (Tang et al. 2019's augmentation).

Not a tagger: a lexicon. Each word of the built-in UD English Web Treebank's training
file gets the universal POS tag (UPOS) it carries most often there; a word the treebank
lacks has none and is never replaced (it may still be masked). A lexicon ignores context
("book" is NOUN whatever the sentence), which is enough to pick a plausible stand-in and
costs one pass over 204k words (under a second) instead of training a tagger.
Torch-free.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import lru_cache

from ..text.data import BUILTIN_DIR
from ..text.formats import read_file

UD_EWT_TRAIN = BUILTIN_DIR / "ud-ewt" / "en_ewt-ud-train.conllu.xz"


def most_frequent_tags(words: list[list[str]], tags: list[list[str]]) -> dict[str, str]:
    """Lowercased word -> the tag it carries most often in these tagged sentences (ties: the
    alphabetically first tag, so the same data gives the same lexicon)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for sentence, sentence_tags in zip(words, tags):
        for word, tag in zip(sentence, sentence_tags):
            counts[word.lower()][tag] += 1
    return {word: min(c, key=lambda tag: (-c[tag], tag)) for word, c in counts.items()}


@lru_cache(maxsize=1)
def ud_lexicon() -> dict[str, str]:
    """Lowercased word -> its most frequent UPOS in UD-EWT's training split (read once a process).

    Raises DataError when the built-in file cannot be read."""
    split = read_file(UD_EWT_TRAIN)[0]
    return most_frequent_tags(split.texts, split.labels)
