"""DenseNet-style 1D conv encoders (Huang et al. 2017) over token sequences.

A dense layer returns only its `growth_rate` new channels; the block keeps the
list and concatenates; a transition (norm, act, 1x1 conv to floor(theta * m)
channels, average pool 2) compresses between blocks. `memory_efficient`
recomputes the concatenation + norm + act + 1x1 conv in the backward pass
(Pleiss et al. 2017), as torchvision's `_DenseLayer` does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch import nn

from .. import plan
from .base import TextModel
from .layers import conv1d, downsample_mask, get_act_layer, get_norm_layer


class DenseLayer(nn.Module):
    def __init__(self, c_in: int, enc, norm_layer, act_layer):
        super().__init__()
        bias = enc.norm == "none"
        k = enc.growth_rate
        inner = enc.bottleneck * k if enc.bottleneck else c_in
        self.norm1, self.act1 = norm_layer(c_in), act_layer()
        self.conv1 = nn.Conv1d(c_in, inner, 1, bias=bias) if enc.bottleneck else None
        self.norm2 = norm_layer(inner) if enc.bottleneck else nn.Identity()
        self.act2 = act_layer() if enc.bottleneck else nn.Identity()
        self.conv2 = conv1d(inner, k, enc.kernel_size, bias=bias)
        self.drop = nn.Dropout(enc.dropout)
        self.memory_efficient = enc.memory_efficient

    def bottleneck(self, *features: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.norm1(torch.cat(features, 1)))
        return x if self.conv1 is None else self.conv1(x)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.memory_efficient and torch.is_grad_enabled() and any(f.requires_grad for f in features):
            x = cp.checkpoint(self.bottleneck, *features, use_reentrant=False)
        else:
            x = self.bottleneck(*features)
        return self.drop(self.conv2(self.act2(self.norm2(x))))


class DenseBlock(nn.Module):
    def __init__(self, c_in: int, layers: int, enc, norm_layer, act_layer):
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(c_in + i * enc.growth_rate, enc, norm_layer, act_layer) for i in range(layers))

    def forward(self, x):  # (B, C, T) -> (B, C + layers * k, T)
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Module):
    def __init__(self, c_in: int, compression: float, enc, norm_layer, act_layer):
        super().__init__()
        self.norm, self.act = norm_layer(c_in), act_layer()
        self.conv = nn.Conv1d(c_in, math.floor(c_in * compression), 1, bias=enc.norm == "none")

    def forward(self, x):  # halves the length
        return F.avg_pool1d(self.conv(self.act(self.norm(x))), 2, 2, ceil_mode=True)


class DenseNetText(TextModel):
    def __init__(self, spec):
        super().__init__(spec)
        enc = spec.encoder
        norm_layer, act_layer = get_norm_layer(enc.norm), get_act_layer(enc.act)
        self.stem = nn.Sequential(
            conv1d(spec.embedding.dim, enc.stem_channels, enc.stem_kernel, bias=enc.norm == "none"),
            norm_layer(enc.stem_channels), act_layer())
        blocks, width = plan.densenet_plan(enc)
        self.stages = nn.ModuleList(DenseBlock(c, n, enc, norm_layer, act_layer) for c, n in blocks)
        self.transitions = nn.ModuleList(
            Transition(c + n * enc.growth_rate, enc.compression, enc, norm_layer, act_layer) for c, n in blocks[:-1])
        self.final = nn.Sequential(norm_layer(width), act_layer())

    def encode(self, x, mask):
        x = self.stem(x.transpose(1, 2)) * mask.unsqueeze(1)  # (B, C, T)
        for i, block in enumerate(self.stages):
            x = block(x)
            if i < len(self.transitions):
                x = self.transitions[i](x * mask.unsqueeze(1))
                mask = downsample_mask(mask)
        return self.final(x).transpose(1, 2), mask  # (B, T', C)

    def summary_modules(self):
        out = [("embed", self.embed), ("stem", self.stem)]
        for i, block in enumerate(self.stages):
            out.append((f"stages.{i}", block))
            if i < len(self.transitions):
                out.append((f"transitions.{i}", self.transitions[i]))
        return out + [("head", self.head)]
