"""Tokenizers: word-level, character-level, BPE (the `tokenizers` library), and a
checkpoint's own sub-word tokenizer (kind: pretrained).

The vocabulary is built from the training split only. Id 0 is padding and id 1
is the unknown token in every kind. Sequences are cut to `max_len` ids.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)  # words, and punctuation as separate tokens
# Characters hash into fixed buckets (id 0 is padding): no character vocabulary to fit or store, so
# the parameter count needs no data; distinct letters of one script do not collide.
CHAR_BUCKETS = 1024
WORD_CHARS = 20  # a longer word keeps its first and last 10 characters


def char_ids(word: str) -> list[int]:
    """A word's character ids, each hashed into 1..CHAR_BUCKETS-1 (0 is padding); a word longer
    than WORD_CHARS keeps its first and last WORD_CHARS // 2 characters."""
    if len(word) > WORD_CHARS:
        word = word[: WORD_CHARS // 2] + word[-WORD_CHARS // 2:]
    return [1 + ord(c) % (CHAR_BUCKETS - 1) for c in word]


def word_shape(word: str) -> str:
    """The class an unseen word falls back to: digits, symbols, capitals, a hyphen and the
    last two letters, the cues unknown-word classes in parsers and taggers use (Petrov et al. 2006)."""
    if any(c.isdigit() for c in word):
        shape = "num"
    elif not any(c.isalpha() for c in word):
        shape = "sym"
    else:
        shape = "CAPS" if word.isupper() and len(word) > 1 else "Cap" if word[0].isupper() else "low"
    suffix = word[-2:].lower() if shape in ("CAPS", "Cap", "low") and len(word) > 3 else ""
    return f"<unk:{shape}{'-' if '-' in word else ''}:{suffix}>"


class Tokenizer:
    """A vocabulary-based tokenizer (the word and char kinds): text -> pieces -> ids, id 0 padding and 1
    unknown. `shapes` maps an unseen word to its `word_shape` class when the vocabulary has it;
    `chars` makes each id a list, the token's id then its characters' ids (see `encode`)."""

    kind = ""

    def __init__(self, vocab: list[str], max_len: int, lowercase: bool = True, shapes: bool = False,
                 chars: bool = False):
        self.vocab, self.max_len, self.lowercase, self.shapes, self.chars = vocab, max_len, lowercase, shapes, chars
        self.index = {tok: i for i, tok in enumerate(vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def pieces(self, text: str) -> list[str]:
        """A text's tokens, before lookup; each kind defines it (NotImplementedError here)."""
        raise NotImplementedError

    def split(self, text: str | list[str], lowercase: bool | None = None) -> list[str]:
        """A text's pieces, or a list of words as they are (one piece each), lowercased if
        `lowercase` (the tokenizer's setting when None)."""
        lowercase = self.lowercase if lowercase is None else lowercase
        if isinstance(text, list):  # words given (sequence labeling): one id a word keeps the tags aligned
            if self.kind != "word":
                raise words_need_word_kind(self.kind)
            return [w.lower() for w in text] if lowercase else list(text)
        return self.pieces(text.lower() if lowercase else text)

    def encode(self, text: str | list[str]) -> list[int] | list[list[int]]:
        """Token ids; with `chars`, a list a token: its id, then its characters' (in their case)."""
        pieces = self.split(text)[: self.max_len]
        ids = [self._id(p) for p in pieces]
        if not self.chars:
            return ids or [UNK_ID]  # an empty text still yields one (unknown) token
        spelled = self.split(text, lowercase=False)[: self.max_len] if self.lowercase else pieces
        if len(spelled) != len(pieces):  # lowercasing changed the split (rare Unicode): spell the lowercase
            spelled = pieces
        return [[i, *char_ids(w)] for i, w in zip(ids, spelled)] or [[UNK_ID]]

    def _id(self, piece: str) -> int:
        i = self.index.get(piece)
        if i is None:
            i = self.index.get(word_shape(piece), UNK_ID) if self.shapes else UNK_ID
        return i

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """`encode` of each text (or list of words), unpadded."""
        return [self.encode(t) for t in texts]

    def to_dict(self) -> dict:
        """The tokenizer as JSON-ready data (kind, settings, vocabulary); `tokenizer_from_dict` reads it back."""
        return {"kind": self.kind, "max_len": self.max_len, "lowercase": self.lowercase, "shapes": self.shapes,
                "chars": self.chars, "vocab": self.vocab}

    @classmethod
    def fit(cls, texts: list[str], vocab_size: int, min_freq: int, max_len: int, lowercase: bool,
            shapes: bool = False, chars: bool = False):
        """Build the vocabulary from the training texts: PAD, UNK, then the pieces seen at least
        `min_freq` times, most frequent first (ties alphabetical), at most `vocab_size` entries. With
        `shapes`, the shape classes of the pieces left out follow (a class whose left-out pieces
        occur at least `min_freq` times in all), beyond `vocab_size`."""
        counts = Counter()
        probe = cls([PAD, UNK], max_len, lowercase)
        for text in texts:
            counts.update(probe.split(text))
        # most frequent first, ties alphabetical: the same data always gives the same ids
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        vocab = [PAD, UNK, *ranked[: max(vocab_size - 2, 0)]]
        if shapes:  # the shape classes of the words left out: those stand for words never seen
            kept, rare = set(vocab), Counter()
            for t, c in counts.items():
                if t not in kept:
                    rare[word_shape(t)] += c
            vocab += sorted(shape for shape, c in rare.items() if c >= min_freq)
        return cls(vocab, max_len, lowercase, shapes, chars)


class WordTokenizer(Tokenizer):
    """Words and punctuation marks as tokens (the regular expression WORD)."""

    kind = "word"

    def pieces(self, text: str) -> list[str]:
        """'Don't stop.' -> ['Don', "'", 't', 'stop', '.']."""
        return WORD.findall(text)


class CharTokenizer(Tokenizer):
    """Characters as tokens, spaces included."""

    kind = "char"

    def pieces(self, text: str) -> list[str]:
        """'ab c' -> ['a', 'b', ' ', 'c']."""
        return list(text)


class BPETokenizer:
    """Byte-pair encoding trained with Hugging Face `tokenizers` on the training split."""

    kind = "bpe"

    def __init__(self, backend, max_len: int):
        self.backend, self.max_len = backend, max_len
        self.backend.enable_truncation(max_len)

    def __len__(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """A text's BPE ids, cut to max_len; [UNK_ID] for a text with none."""
        return self.backend.encode(text).ids or [UNK_ID]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """`encode` of each text, unpadded (the backend encodes the batch in parallel)."""
        return [e.ids or [UNK_ID] for e in self.backend.encode_batch(texts)]

    def to_dict(self) -> dict:
        """The tokenizer as JSON-ready data: kind, max_len, and the backend's own tokenizer.json."""
        return {"kind": "bpe", "max_len": self.max_len, "backend": json.loads(self.backend.to_str())}

    @classmethod
    def fit(cls, texts: list[str], vocab_size: int, min_freq: int, max_len: int, lowercase: bool):
        """Train BPE merges on the training texts (Sennrich et al. 2016): NFKC (and lowercase)
        normalisation, whitespace pre-splitting, at most `vocab_size` tokens with PAD and UNK at ids
        0 and 1, merges seen fewer than `min_freq` times left out."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import models, normalizers, pre_tokenizers, trainers

        backend = HFTokenizer(models.BPE(unk_token=UNK))
        backend.normalizer = normalizers.Sequence([normalizers.NFKC()] + ([normalizers.Lowercase()] if lowercase else []))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_freq, special_tokens=[PAD, UNK],
                                      show_progress=False)
        backend.train_from_iterator(texts, trainer=trainer)
        return cls(backend, max_len)


class PretrainedTokenizer:
    """A checkpoint's own sub-word tokenizer (WordPiece for BERT): its tokenizer.json through
    the `tokenizers` library, or one built from its vocab.txt as BERT's tokenizer is. The ids
    carry [CLS] and [SEP]; sequences are cut to `max_len` ids, specials included. [PAD] must
    be id 0 (checked), as rdzoo pads with 0."""

    kind = "pretrained"

    def __init__(self, backend, max_len: int):
        self.backend, self.max_len = backend, max_len
        backend.no_padding()  # rdzoo's batches pad; a checkpoint's tokenizer.json may pad to a fixed length
        backend.enable_truncation(max_len)
        pad = backend.token_to_id("[PAD]")
        if pad not in (None, PAD_ID):
            raise ValueError(f"the checkpoint's tokenizer has [PAD] at id {pad}; rdzoo pads with id {PAD_ID}")

    @classmethod
    def from_folder(cls, folder: Path, max_len: int, lowercase: bool = True) -> "PretrainedTokenizer":
        """The tokenizer of a checkpoint folder: its tokenizer.json, else a WordPiece tokenizer built
        from its vocab.txt (`lowercase` applies only then). Raises ValueError when [PAD] is not id 0."""
        from tokenizers import Tokenizer as HFTokenizer

        folder = Path(folder)
        if (folder / "tokenizer.json").is_file():
            backend = HFTokenizer.from_file(str(folder / "tokenizer.json"))
        else:  # vocab.txt alone: the tokenizer BERT's authors describe, built by `tokenizers`
            from tokenizers.implementations import BertWordPieceTokenizer

            backend = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=lowercase)._tokenizer
        return cls(backend, max_len)

    def __len__(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, text: str | list[str]) -> list[int]:
        """Ids of a text, or of a list of words (tagging data: each word split into sub-words)."""
        return self.backend.encode(text, is_pretokenized=isinstance(text, list)).ids

    def encode_batch(self, texts: list) -> list[list[int]]:
        """`encode` of each text, or of each list of words (tagging data), unpadded."""
        if texts and isinstance(texts[0], list):
            return [e.ids for e in self.backend.encode_batch(texts, is_pretokenized=True)]
        return [e.ids for e in self.backend.encode_batch(texts)]

    def word_starts(self, words: list[list[str]]) -> list[list[int]]:
        """For each list of words, the position of each word's first sub-word, the token whose
        state tags the word (Devlin et al. 2019, section 5.3); words cut off by max_len have none."""
        out = []
        for enc in self.backend.encode_batch(words, is_pretokenized=True):
            starts, seen = [], set()
            for pos, w in enumerate(enc.word_ids):
                if w is not None and w not in seen:
                    seen.add(w)
                    starts.append(pos)
            out.append(starts)
        return out

    def piece_ids(self, word: str) -> list[int]:
        """A word's sub-word ids without [CLS]/[SEP] (for a word's vector from its pieces)."""
        return self.backend.encode(word, add_special_tokens=False).ids

    def to_dict(self) -> dict:
        """The tokenizer as JSON-ready data: kind, max_len, and the backend's own tokenizer.json."""
        return {"kind": "pretrained", "max_len": self.max_len, "backend": json.loads(self.backend.to_str())}


KINDS = {"word": WordTokenizer, "char": CharTokenizer, "bpe": BPETokenizer, "pretrained": PretrainedTokenizer}


def words_need_word_kind(kind: str):
    """The SpecError for word lists (tagging data) given to a tokenizer of `kind` that splits words."""
    from ..errors import SpecError

    return SpecError("embedding.kind", f"{kind!r} splits words into pieces; tagging data gives a tag a word, so it "
                                       "needs kind: word")


def fit_tokenizer(embedding, texts: list, tagging: bool = False):
    """A tokenizer fitted to the training texts, or to word lists for `tagging` data: the spec's
    embedding section chooses the kind, the cap on the vocabulary and the length; kind pretrained
    loads the checkpoint's own.

    Raises SpecError for a kind other than word with tagging data (also when a word list reaches
    a char tokenizer unannounced), or a checkpoint not found."""
    if embedding.kind == "pretrained":  # the checkpoint's tokenizer as it is: nothing is fitted
        from ..checkpoint import locate

        return PretrainedTokenizer.from_folder(locate(embedding.pretrained), embedding.max_len, embedding.lowercase)
    if tagging and embedding.kind != "word":
        raise words_need_word_kind(embedding.kind)
    if embedding.kind != "word":
        return KINDS[embedding.kind].fit(texts, embedding.vocab_size, embedding.min_freq, embedding.max_len,
                                         embedding.lowercase)
    return WordTokenizer.fit(texts, embedding.vocab_size, embedding.min_freq, embedding.max_len, embedding.lowercase,
                             shapes=embedding.unknown == "shape", chars=embedding.char_dim > 0)


def tokenizer_from_dict(data: dict):
    """A tokenizer from its `to_dict` data. Raises ValueError for data of no known kind (and
    KeyError for a missing max_len)."""
    if data.get("kind") in ("bpe", "pretrained"):
        from tokenizers import Tokenizer as HFTokenizer

        cls = BPETokenizer if data["kind"] == "bpe" else PretrainedTokenizer
        return cls(HFTokenizer.from_str(json.dumps(data["backend"])), data["max_len"])
    cls = KINDS.get(data.get("kind"))
    if cls is None or not isinstance(data.get("vocab"), list):
        raise ValueError(f"not an rdzoo tokenizer file (kind {data.get('kind')!r})")
    return cls(data["vocab"], data["max_len"], data.get("lowercase", True), data.get("shapes", False),
               data.get("chars", False))


def save_tokenizer(tokenizer, path: Path) -> None:
    """Write the tokenizer's `to_dict` to `path` as JSON."""
    path.write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False))


def load_tokenizer(path: Path):
    """Read a tokenizer that `save_tokenizer` wrote. Raises OSError when the file cannot be read,
    ValueError (json's included) when it is not an rdzoo tokenizer."""
    return tokenizer_from_dict(json.loads(path.read_text()))
