"""Helpers for names users type: did-you-mean hints and natural order; light, so the
query commands can use them at start-up."""

from __future__ import annotations

import difflib
import re
from typing import Iterable


def closest(value, choices: Iterable[str]) -> str | None:
    """The closest of `choices` to `value` (difflib ratio >= 0.6), else None."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(value, choices: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest of `choices` (difflib ratio >= 0.6), else ""."""
    close = closest(value, choices)
    return f"; did you mean {close!r}?" if close else ""


def natural_key(text: str) -> list:
    """Sort key that orders numbers by value: resnet-text-18 before resnet-text-101 (timm's _natural_key)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.lower())]
