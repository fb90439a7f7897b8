"""Parameter counts of the layers rdzoo builds, in plain Python.

The families' plans add these up, so a spec's parameter count is known before
torch is imported (tests check each count against the built model).
"""

from __future__ import annotations


def conv(c_in: int, c_out: int, k: int, bias: bool) -> int:
    """Parameters of a 1D convolution, `c_in` -> `c_out` channels, kernel width `k`."""
    return c_in * c_out * k + (c_out if bias else 0)


def linear(d_in: int, d_out: int) -> int:
    """Parameters of a linear layer with bias, `d_in` -> `d_out` features."""
    return d_in * d_out + d_out


def norm(kind: str, c: int) -> int:
    """Parameters of a norm over `c` channels (`batch` or `layer`: a scale and a shift each; `none`: 0)."""
    return 0 if kind == "none" else 2 * c
