"""Small layers the families share: norm and activation factories, 1D conv
helpers, masks. Blocks receive `norm_layer`/`act_layer` callables built here."""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, T) tensor."""

    def forward(self, x):
        return F.layer_norm(x.transpose(1, 2), self.normalized_shape, self.weight, self.bias, self.eps).transpose(1, 2)


def get_norm_layer(kind: str):
    """A callable channels -> norm module for (B, C, T) tensors."""
    if kind == "batch":
        return nn.BatchNorm1d
    if kind == "layer":
        return ChannelLayerNorm
    return lambda channels: nn.Identity()


def get_act_layer(kind: str):
    return ACTIVATIONS[kind]


def conv1d(c_in: int, c_out: int, k: int, *, stride: int = 1, bias: bool = False) -> nn.Module:
    """A length-preserving conv, or a halving one with stride 2 (odd kernels)."""
    if stride == 1 and k % 2 == 0:
        # explicit asymmetric padding: padding="same" copies the input for even kernels, with a warning
        return nn.Sequential(nn.ConstantPad1d(((k - 1) // 2, k // 2), 0.0), nn.Conv1d(c_in, c_out, k, bias=bias))
    return nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=bias)


def downsample_mask(mask: torch.Tensor) -> torch.Tensor:
    """The padding mask after a ceil-mode pool of width and stride 2, (B, T) -> (B, ceil(T/2))."""
    pooled = F.max_pool1d(mask.unsqueeze(1).float(), 2, 2, ceil_mode=True)
    return pooled.squeeze(1) > 0


