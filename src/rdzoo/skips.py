"""The skip types: how a block's input x and its branch F(x) combine, one object each.

A `SkipType` holds everything a skip means, for every family that supports it:
its rule, its parameter cost, and what it changes around the block (a norm it
replaces, the LayerNorm position it needs, DeepNet's initialisation gain, a
depth-weighted average over the stack). Torch-free, so validation and `rdzoo
list` read it at start-up; `SKIP_TYPES` is the table. The rule as a module (the
one that combines x and F(x)) sits beside the families' other layers, in
`families.skip_layers.RULES` under the same name, which imports this table and not
the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def _no_params(channels: int) -> int:
    return 0


@dataclass(frozen=True)
class SkipType:
    """One skip type. `rule` is the formula and `source` its paper (its module, where a block
    has one, is `families.skip_layers.RULES[name]`; a dense block concatenates its layers itself);
    `params(channels)` is one rule's parameter count for
    C-channel features; `replaces_norm`: the rule stands in for the block's LayerNorm
    (ReZero); `one_per_layer`: a transformer layer's two sublayers share one rule;
    `norm_position`: the LayerNorm position the rule needs (None: any); `init_gain(layers)`:
    the Xavier gain for the value, output and feed-forward weights of an N-layer stack (None:
    the family's own init); `stack_params(layers)`: parameters added once per stack (the
    DenseFormer weights)."""

    name: str
    rule: str
    source: str
    params: Callable[[int], int] = _no_params
    replaces_norm: bool = False
    one_per_layer: bool = False
    norm_position: str | None = None
    init_gain: Callable[[int], float] | None = None
    stack_params: Callable[[int], int] = _no_params


def deepnorm_alpha(layers: int) -> float:
    """DeepNet's residual scale for an N-layer encoder, alpha = (2N)^(1/4) (Wang et al. 2022, table 1)."""
    return (2 * layers) ** 0.25


def deepnorm_beta(layers: int) -> float:
    """DeepNet's init gain for an N-layer encoder, beta = (8N)^(-1/4) (Wang et al. 2022, table 1)."""
    return (8 * layers) ** -0.25


SKIP_TYPES: dict[str, SkipType] = {s.name: s for s in (
    SkipType("none", "y = F(x)", "a plain stack"),
    SkipType("residual", "y = x + F(x)", "He et al. 2015, eq. 1"),
    SkipType("gated", "y = g * F(x) + (1 - g) * x, g = sigmoid(W x + b)", "Srivastava et al. 2015 (highway), eq. 3",
             params=lambda c: c * c + c),
    SkipType("rezero", "y = x + a * F(x), a = 0 at init, no norm", "Bachlechner et al. 2020, eq. 3",
             params=lambda c: 1, replaces_norm=True, one_per_layer=True),
    SkipType("dense", "x_l = H_l([x_0, ..., x_(l-1)])", "Huang et al. 2017, eq. 2"),
    # DenseFormer keeps residual blocks and averages every earlier block's output after each one
    SkipType("dwa", "x_i = sum_j alpha_ij * y_j over the embedding and blocks 1..i", "Pagliardini et al. 2024, eq. 1",
             stack_params=lambda n: n * (n + 3) // 2),  # block i weighs i + 1 earlier outputs and itself
    SkipType("deepnorm", "y = LN(alpha * x + F(x)), init gain beta", "Wang et al. 2022 (DeepNet), eq. 2",
             norm_position="post", init_gain=deepnorm_beta),
)}


def get_skip(name: str) -> SkipType:
    """The skip type called `name`; KeyError for an unknown name (specs check names before this)."""
    return SKIP_TYPES[name]
