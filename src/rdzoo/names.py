"""The names rdzoo's specs and commands share (families, skip types) and the
did-you-mean helper; light, so the query commands can use them."""

from __future__ import annotations

import difflib
from typing import Iterable

FAMILIES = ("resnet", "densenet", "transformer")
SKIPS = ("none", "residual", "gated", "rezero", "dense", "dwa", "deepnorm")
FAMILY_SKIPS = {
    "resnet": ("none", "residual", "gated", "rezero"),
    "densenet": ("dense",),
    "transformer": ("none", "residual", "gated", "rezero", "dwa", "deepnorm"),
}


def did_you_mean(value, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
