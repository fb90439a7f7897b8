"""ResNet-style 1D conv encoders over token sequences.

Stages of basic (two k-wide convs) or bottleneck (1 -> k -> 1, expansion 4)
blocks, post- or pre-activation (He et al. 2015, 2016), with downsampling
between stages by max pooling (VDCNN, DPCNN) or a strided first conv. A
multi-width stem with no stages is Kim's (2014) CNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import plan
from ..skips import make_skip
from .base import TextModel
from .layers import conv1d, get_act_layer, get_norm_layer


class ResBlock(nn.Module):
    def __init__(self, b: plan.ResBlockPlan, enc, norm_layer, act_layer):
        super().__init__()
        bias = enc.norm == "none"
        self.preact = enc.preact
        k = enc.kernel_size
        if enc.block == "basic":
            widths, kernels, strides = [b.c_in, b.width, b.width], [k, k], [b.stride, 1]
        else:
            widths, kernels, strides = [b.c_in, b.width, b.width, b.c_out], [1, k, 1], [1, b.stride, 1]
        self.convs = nn.ModuleList(
            conv1d(c_in, c_out, kk, stride=s, bias=bias)
            for c_in, c_out, kk, s in zip(widths, widths[1:], kernels, strides))
        self.norms = nn.ModuleList(norm_layer(c) for c in (widths[:-1] if enc.preact else widths[1:]))
        self.act = act_layer()
        self.drop = nn.Dropout(enc.dropout)
        self.shortcut = None
        if b.project:
            self.shortcut = nn.Sequential(nn.Conv1d(b.c_in, b.c_out, 1, stride=b.stride, bias=bias), norm_layer(b.c_out))
        self.skip = make_skip(enc.skip, b.c_out, "channels_first")
        if enc.zero_init_last and enc.skip != "none" and not enc.preact and isinstance(self.norms[-1], nn.BatchNorm1d):
            nn.init.zeros_(self.norms[-1].weight)  # each block starts as the identity (timm's zero_init_last)

    def forward(self, x):  # (B, C, T)
        fx = x
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if self.preact:
                fx = conv(self.act(norm(fx)))
            else:
                fx = norm(conv(fx))
                if i < last:
                    fx = self.act(fx)
            if i < last:
                fx = self.drop(fx)
        shortcut = x if self.shortcut is None else self.shortcut(x)
        y = self.skip(shortcut, fx)
        return y if self.preact else self.act(y)


class Stem(nn.Module):
    """One conv per kernel width, outputs concatenated: (B, E, T) -> (B, n*C, T)."""

    def __init__(self, enc, c_in: int, norm_layer, act_layer):
        super().__init__()
        bias = enc.norm == "none"
        self.convs = nn.ModuleList(
            nn.Sequential(conv1d(c_in, enc.stem_channels, k, bias=bias), norm_layer(enc.stem_channels), act_layer())
            for k in enc.stem_kernels)

    def forward(self, x):
        outs = [conv(x) for conv in self.convs]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


class ResNetText(TextModel):
    def __init__(self, spec):
        super().__init__(spec)
        enc = spec.encoder
        norm_layer, act_layer = get_norm_layer(enc.norm), get_act_layer(enc.act)
        self.stem = Stem(enc, spec.embedding.dim, norm_layer, act_layer) if enc.stem_channels else nn.Identity()
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResBlock(b, enc, norm_layer, act_layer) for b in blocks)) for blocks in plan.resnet_plan(enc, spec.embedding.dim))
        self.pool_between = enc.downsample == "pool"
        self.stride_between = enc.downsample == "stride"
        width = plan.resnet_width(spec)
        # pre-activation nets end with norm + act (He et al. 2016)
        self.final = nn.Sequential(norm_layer(width), act_layer()) if enc.preact and enc.stages else nn.Identity()

    def encode(self, x, mask):
        m = mask.unsqueeze(1)  # (B, 1, T)
        x = self.stem(x.transpose(1, 2)) * m  # (B, C, T)
        for i, stage in enumerate(self.stages):
            if i > 0 and self.pool_between:
                x = F.max_pool1d(x, 3, 2, 1)  # halves the length (DPCNN, VDCNN)
                mask = mask[:, ::2]  # the same ceil(T/2) positions
            elif i > 0 and self.stride_between:
                mask = mask[:, ::2]
            x = stage(x) * mask.unsqueeze(1)
        return self.final(x).transpose(1, 2), mask  # (B, T', C)
