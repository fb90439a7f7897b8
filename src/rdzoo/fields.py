"""The field helpers every spec section uses: ranges checked on load, and the shared choices.

Torch-free and import-light: the spec, the families' encoder sections and the
search spaces read them at start-up.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any, Literal

BIG = 1_000_000  # upper bound for sizes: far beyond any sane width or depth

Norm = Literal["batch", "layer", "none"]
Act = Literal["relu", "gelu", "silu", "tanh"]


def bounded(default: Any, lo: float | None = None, hi: float | None = None, *,
            lo_open: bool = False, max_items: int = 256, min_items: int = 0) -> Any:
    """A dataclass field whose value must lie in [lo, hi] ((lo, hi] with `lo_open`), checked
    by `spec.from_dict`; for a list, each item is checked and from `min_items` to `max_items`
    items are allowed."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "max_items": max_items, "min_items": min_items}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)
