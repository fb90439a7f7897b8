"""Token embeddings with optional positions, token types, character CNN, LayerNorm and dropout."""

from __future__ import annotations

import math

import torch
from torch import nn

from .tokenize import CHAR_BUCKETS, PAD_ID

KIM_BOUND = 0.25
WORD_INIT_STD = KIM_BOUND / math.sqrt(3)  # the std of U[-0.25, 0.25]


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """The fixed positions of Vaswani et al. (2017), (length, dim)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return table


class TextEmbedding(nn.Module):
    """The spec's embedding section as a module: token ids -> (batch, tokens, channels) vectors.

    Word vectors (the pad row zero), plus, as the spec asks, a character CNN's vector of each word,
    learned or sinusoidal positions (Vaswani et al. 2017, section 3.5) and token types (Devlin et al.
    2019), then LayerNorm and dropout. Tables start as U[-0.25, 0.25] (Kim 2014), or N(0, init_std)
    when `init_std` is given; sinusoidal positions are scaled to the words' RMS.
    """

    def __init__(self, emb, init_std: float | None = None):
        super().__init__()
        self.max_len = emb.max_len
        self.positions = emb.positions
        self.word = nn.Embedding(emb.vocab_size, emb.dim, padding_idx=PAD_ID)
        if emb.positions == "learned":
            self.position = nn.Embedding(emb.max_len, emb.dim)
        elif emb.positions == "sinusoidal":
            self.register_buffer("position_table", sinusoidal_table(emb.max_len, emb.dim), persistent=False)
            # the table's entries have RMS 1/sqrt(2); bring them to the words' scale, as Vaswani et al.
            # do the other way round (words times sqrt(d)). Unscaled, the positions drown 0.02-std words.
            self.position_scale = math.sqrt(2) * (WORD_INIT_STD if init_std is None else init_std)
        self.token_type = nn.Embedding(emb.token_types, emb.dim) if emb.token_types else None
        self.spelling = CharCNN(emb.char_dim, emb.dim) if emb.char_dim else None
        self.norm = nn.LayerNorm(emb.dim) if emb.norm else nn.Identity()
        self.drop = nn.Dropout(emb.dropout)
        for module in (self.word, getattr(self, "position", None), self.token_type):
            if module is None:
                continue
            if init_std is None:
                # Kim's (2014) random vectors: U[-0.25, 0.25]; N(0, 1) scored 4 points lower on TREC here
                nn.init.uniform_(module.weight, -KIM_BOUND, KIM_BOUND)
            else:
                nn.init.normal_(module.weight, std=init_std)
        with torch.no_grad():
            self.word.weight[PAD_ID].zero_()

    def forward(self, tokens: torch.Tensor, token_types: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (batch, tokens) ids, or (batch, tokens, 1 + characters) with a character CNN (the word's
        id, then its characters'); token_types (batch, tokens) ids, None for type 0 everywhere ->
        (batch, tokens, channels). Raises ValueError for more tokens than max_len with positions, or
        ids of the wrong rank for this model."""
        T = tokens.shape[1]  # tokens: (B, T), or (B, T, 1 + characters) with a character CNN
        if T > self.max_len and self.positions in ("learned", "sinusoidal"):
            raise ValueError(f"sequence of {T} tokens is longer than embedding.max_len {self.max_len}")
        if (tokens.dim() == 3) != (self.spelling is not None):
            raise ValueError(f"ids of shape {tuple(tokens.shape)}: this model reads "
                             f"{'(B, T, 1 + characters)' if self.spelling is not None else '(B, T)'} ids, "
                             "as its tokenizer gives them")
        x = self.word(tokens[..., 0] if self.spelling is not None else tokens)  # (B, T, C)
        if self.spelling is not None:
            x = x + self.spelling(tokens[..., 1:])
        if self.positions == "learned":
            x = x + self.position.weight[:T]
        elif self.positions == "sinusoidal":
            x = x + self.position_scale * self.position_table[:T]
        if self.token_type is not None:
            x = x + (self.token_type.weight[0] if token_types is None else self.token_type(token_types))
        return self.drop(self.norm(x))


class CharCNN(nn.Module):
    """A word's vector from its characters: embed, convolve (width 3), max over the word
    (Ma and Hovy 2016). Unseen words still get their spelling: suffixes, capitals, digits."""

    def __init__(self, char_dim: int, dim: int):
        super().__init__()
        self.char = nn.Embedding(CHAR_BUCKETS, char_dim, padding_idx=PAD_ID)
        self.conv = nn.Conv1d(char_dim, dim, 3, padding=1)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        """chars (batch, tokens, characters) ids, 0 for padding -> (batch, tokens, dim); a token
        with no characters gets zeros."""
        B, T, L = chars.shape  # (B, T, L) character ids -> (B, T, dim)
        present = (chars.reshape(B * T, 1, L) != PAD_ID)
        # padding characters enter the conv as the zeros a lone word is padded with (the pad row of
        # the table is zero only as long as nothing writes to it) and leave the max as -inf
        x = self.char(chars.reshape(B * T, L)).transpose(1, 2).masked_fill(~present, 0.0)
        x = self.conv(x).masked_fill(~present, float("-inf")).max(-1).values  # (B*T, dim)
        return x.masked_fill(~present.any(-1), 0.0).reshape(B, T, -1)
