"""A small seeded sentiment task with negation, generated on the fly for fast tests.

Each sentence holds filler words and one sentiment word, sometimes preceded by
"not" (which flips it) and by an intensifier; the label is the resulting
polarity. A bag of words cannot solve the negated cases; a model that sees
word pairs can reach ~100%.
"""

from __future__ import annotations

import random

POSITIVE = "good great fine superb lovely brilliant charming delightful solid fun".split()
NEGATIVE = "bad awful poor dull boring clumsy weak tedious bland messy".split()
FILLER = ("the a this that movie film plot story cast acting script ending scene music pace it was is "
          "felt seemed quite rather overall honestly really mostly and but with of for").split()
INTENSIFIERS = "very truly so".split()


def _sentence(rng: random.Random) -> tuple[str, str]:
    positive = rng.random() < 0.5
    negated = rng.random() < 0.4
    phrase = [rng.choice(POSITIVE if positive else NEGATIVE)]
    if rng.random() < 0.3:
        phrase.insert(0, rng.choice(INTENSIFIERS))
    if negated:
        phrase.insert(0, "not")
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 10))]
    at = rng.randint(0, len(words))
    words[at:at] = phrase
    return " ".join(words), "pos" if positive != negated else "neg"


def make_synthetic(n_train: int = 2000, n_dev: int = 300, n_test: int = 500,
                   seed: int = 0) -> dict[str, tuple[list[str], list[str]]]:
    """The task's splits, seeded: {"train"|"dev"|"test": (sentences, labels "pos"/"neg")};
    `data.load_data("synthetic")` wraps them as a TextData."""
    rng = random.Random(seed)

    def split(n: int) -> tuple[list[str], list[str]]:
        pairs = [_sentence(rng) for _ in range(n)]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    return {"train": split(n_train), "dev": split(n_dev), "test": split(n_test)}
