"""The skip rules as modules: `forward(x, fx)` combines a block's input x with its branch
output F(x) (same shape). `RULES` maps each skip type of `skips.SKIP_TYPES` that has a
per-block rule to its class, and `skip_rule(name, channels, layout, layers)` builds one;
`layout` says where the channels are, "channels_first" (B, C, T) for convolutions or
"channels_last" (B, T, C) for transformers, and `layers` is the stack's depth (DeepNet's alpha).
"""

from __future__ import annotations

import torch
from torch import nn

from ..skips import deepnorm_alpha

GATE_BIAS = -2.0  # highway: the gate starts mostly closed, so a block starts near the identity


class SkipRule(nn.Module):
    """Base of the rules; families find them with isinstance (e.g. to leave their weights to
    the rule's own initialisation)."""

    def __init__(self, channels: int, layout: str = "channels_last", layers: int = 1):
        super().__init__()

    def forward(self, x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
        """x, F(x) of the same shape -> the block output, that shape."""
        raise NotImplementedError


class NoSkip(SkipRule):
    """y = F(x)"""

    def forward(self, x, fx):
        """x, F(x) -> F(x)."""
        return fx


class Residual(SkipRule):
    """y = x + F(x) (He et al. 2015, eq. 1)"""

    def forward(self, x, fx):
        """x, F(x) -> x + F(x)."""
        return x + fx


class Gated(SkipRule):
    """y = g * F(x) + (1 - g) * x, g = sigmoid(W x + b) (Srivastava et al. 2015, eq. 3): a 1x1
    conv (channels_first) or a linear layer (channels_last) of C x C + C parameters, its
    bias starting at GATE_BIAS."""

    def __init__(self, channels: int, layout: str = "channels_last", layers: int = 1):
        super().__init__(channels, layout, layers)
        if layout == "channels_first":
            self.gate = nn.Conv1d(channels, channels, 1)
        else:
            self.gate = nn.Linear(channels, channels)
        nn.init.constant_(self.gate.bias, GATE_BIAS)

    def forward(self, x, fx):
        """x, F(x) -> x + g * (F(x) - x), the gate g computed from x per position and channel."""
        g = torch.sigmoid(self.gate(x))
        return x + g * (fx - x)


class ReZero(SkipRule):
    """y = x + a * F(x), one scalar a starting at 0 (Bachlechner et al. 2020, eq. 3)."""

    def __init__(self, channels: int = 0, layout: str = "channels_last", layers: int = 1):
        super().__init__(channels, layout, layers)
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x, fx):
        """x, F(x) -> x + a * F(x)."""
        return x + self.alpha * fx


class DeepNormSkip(SkipRule):
    """alpha * x + F(x), the inside of DeepNet's LN(alpha * x + F(x)), alpha = (2N)^(1/4) for
    N = `layers` (Wang et al. 2022, eq. 2 and table 1)."""

    def __init__(self, channels: int = 0, layout: str = "channels_last", layers: int = 1):
        super().__init__(channels, layout, layers)
        self.alpha = deepnorm_alpha(layers)

    def forward(self, x, fx):
        """x, F(x) -> alpha * x + F(x)."""
        return x * self.alpha + fx


# skip type (skips.SKIP_TYPES) -> its per-block rule; DenseFormer's dwa keeps residual blocks (the
# depth-weighted averages are the transformer's own), a dense block concatenates and has none
RULES: dict[str, type[SkipRule]] = {"none": NoSkip, "residual": Residual, "gated": Gated, "rezero": ReZero,
                                    "dwa": Residual, "deepnorm": DeepNormSkip}


def skip_rule(name: str, channels: int, layout: str = "channels_last", layers: int = 1) -> SkipRule:
    """The rule of skip type `name` as a module whose `forward(x, fx)` returns the block output, for
    (B, T, C) features (`channels_last`) or (B, C, T) (`channels_first`) with C = `channels`, in a
    stack of `layers` blocks. Raises ValueError for a skip that has no per-block rule (dense)."""
    if name not in RULES:
        raise ValueError(f"the {name} skip has no per-block rule: its family combines the layers")
    return RULES[name](channels, layout, layers)
