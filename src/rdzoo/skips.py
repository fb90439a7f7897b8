"""The skip types, shared by every family that combines a branch with its input.

`make_skip(kind, channels, layout)` returns a module whose `forward(x, fx)`
combines the block input `x` with the branch output `fx` (same shape). The
dense (DenseNet) and dwa (DenseFormer) skips span whole blocks and stacks, so
they live in their families; this module holds the per-block rules.
"""

from __future__ import annotations


import torch
from torch import nn

GATE_BIAS = -2.0  # highway: the gate starts mostly closed, so a block starts near the identity


class NoSkip(nn.Module):
    """y = F(x)"""

    def forward(self, x, fx):
        return fx


class Residual(nn.Module):
    """y = x + F(x) (He et al. 2015)"""

    def forward(self, x, fx):
        return x + fx


class Gated(nn.Module):
    """y = g * F(x) + (1 - g) * x, g = sigmoid(W x + b) (Srivastava et al. 2015).

    `layout` says where the channels are: "channels_first" (B, C, T) for
    convolutions, "channels_last" (B, T, C) for transformers.
    """

    def __init__(self, channels: int, layout: str):
        super().__init__()
        if layout == "channels_first":
            self.gate = nn.Conv1d(channels, channels, 1)
        else:
            self.gate = nn.Linear(channels, channels)
        nn.init.constant_(self.gate.bias, GATE_BIAS)

    def forward(self, x, fx):
        g = torch.sigmoid(self.gate(x))
        return x + g * (fx - x)


class ReZero(nn.Module):
    """y = x + a * F(x), a starts at 0 (Bachlechner et al. 2020)."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1))

    def forward(self, x, fx):
        return x + self.alpha * fx


class DeepNormSkip(nn.Module):
    """alpha * x + F(x), the inside of DeepNet's LN(alpha * x + F(x)) (Wang et al. 2022)."""

    def __init__(self, layers: int):
        super().__init__()
        self.alpha = deepnorm_alpha(layers)

    def forward(self, x, fx):
        return x * self.alpha + fx


def deepnorm_alpha(layers: int) -> float:
    return (2 * layers) ** 0.25


def deepnorm_beta(layers: int) -> float:
    return (8 * layers) ** -0.25


def make_skip(kind: str, channels: int, layout: str = "channels_last", layers: int = 1) -> nn.Module:
    if kind == "none":
        return NoSkip()
    if kind in ("residual", "dwa"):  # dwa keeps residual blocks and averages across them
        return Residual()
    if kind == "gated":
        return Gated(channels, layout)
    if kind == "rezero":
        return ReZero()
    if kind == "deepnorm":
        return DeepNormSkip(layers)
    raise ValueError(f"no per-block skip rule for {kind!r}")  # spec validation prevents this


__all__ = ["make_skip", "deepnorm_alpha", "deepnorm_beta"]
