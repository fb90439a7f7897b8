"""ResNet-style 1D conv encoders over token sequences: the model, built from the plan in
`resnet/__init__.py` (which says what the blocks and stages are)."""

from __future__ import annotations

import torch
from torch import nn

from ..skip_layers import skip_rule
from ..base import TextModel
from ..layers import (ConvNormAct, NormAct, conv1d, downsample_mask, get_act_layer, get_norm_layer, max_pool_half,
                      zero_padding)
from . import plan
from . import width as output_width


class ResBlock(nn.Module):
    """A residual block over (B, C, T) features: two k-wide convs ("basic") or 1x1, k-wide,
    1x1 ("bottleneck"), post-activation (He et al. 2015) or pre-activation (He et al. 2016).

    `c_in` -> `c_out` channels, `width` the inner (bottleneck) or output (basic) width;
    `stride` 2 halves the length in the first k-wide conv; `project` puts a 1x1 conv and a
    norm on the shortcut; `skip` names a skip type of `skips.SKIP_TYPES`; `bias` is for
    convs with no norm after them. Padding is zeroed before every k-wide conv and kept out
    of the norms' statistics (`layers`), so a text's outputs do not depend on its batch.
    """

    def __init__(self, c_in: int, width: int, c_out: int, *, stride: int = 1, project: bool = False,
                 block: str = "basic", kernel_size: int = 3, preact: bool = False, skip: str = "residual",
                 dropout: float = 0.0, zero_init_last: bool = True, bias: bool = False, norm_layer, act_layer):
        super().__init__()
        self.preact = preact
        k = kernel_size
        if block == "basic":
            widths, kernels, strides = [c_in, width, width], [k, k], [stride, 1]
        else:
            widths, kernels, strides = [c_in, width, width, c_out], [1, k, 1], [1, stride, 1]
        self.kernels, self.strides = kernels, strides
        self.convs = nn.ModuleList(
            conv1d(a, b, kk, stride=s, bias=bias)
            for a, b, kk, s in zip(widths, widths[1:], kernels, strides))
        self.norms = nn.ModuleList(norm_layer(c) for c in (widths[:-1] if preact else widths[1:]))
        self.act = act_layer()
        self.drop = nn.Dropout(dropout)
        self.shortcut = None
        if project:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=bias), norm_layer(c_out))
        self.skip = skip_rule(skip, c_out, "channels_first")
        if zero_init_last and skip != "none" and not preact and isinstance(self.norms[-1], nn.BatchNorm1d):
            nn.init.zeros_(self.norms[-1].weight)  # each block starts as the identity (timm's zero_init_last)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C_in, T) features, (B, T) mask -> (B, C_out, T') and its (B, T') mask (T' = ceil(T/2) with stride 2)."""
        fx, m = x, mask
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if self.preact:
                fx = self.act(norm(fx, m))
            fx = conv(zero_padding(fx, m) if self.kernels[i] > 1 else fx)
            if self.strides[i] > 1:
                m = downsample_mask(m)
            if not self.preact:
                fx = norm(fx, m)
                if i < last:
                    fx = self.act(fx)
            if i < last:
                fx = self.drop(fx)
        shortcut = x
        if self.shortcut is not None:
            conv, norm = self.shortcut
            shortcut = norm(conv(x), m)  # a 1x1 conv: no position reaches another
        y = self.skip(shortcut, fx)
        return (y if self.preact else self.act(y)), m


class Stage(nn.Sequential):
    """Residual blocks in a row, each given and giving the mask: (B, C, T), (B, T) -> (B, C', T'), (B, T')."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, T), (B, T) mask -> ((B, C', T'), (B, T') mask)."""
        for block in self:
            x, mask = block(x, mask)
        return x, mask


class Stem(nn.Module):
    """One conv + norm + act per kernel width, outputs concatenated: (B, E, T), (B, T) -> (B, n*C, T)."""

    def __init__(self, c_in: int, channels: int, kernels: list[int], *, bias: bool = False, norm_layer, act_layer):
        super().__init__()
        self.convs = nn.ModuleList(
            ConvNormAct(conv1d(c_in, channels, k, bias=bias), norm_layer(channels), act_layer()) for k in kernels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, E, T) embeddings, (B, T) mask -> (B, len(kernels) * channels, T)."""
        outs = [conv(x, mask) for conv in self.convs]
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


class ResNetText(TextModel):
    """Embedding, stem, stages of residual blocks (the plan's widths), halving the length between
    stages, and the shared head; (B, T) ids -> logits. See `TextModel` for the interface."""

    def __init__(self, spec, **parts):
        super().__init__(spec, **parts)
        enc = spec.encoder
        norm_layer, act_layer = get_norm_layer(enc.norm), get_act_layer(enc.act)
        bias = enc.norm == "none"
        self.stem = Stem(spec.embedding.dim, enc.stem_channels, enc.stem_kernels, bias=bias,
                         norm_layer=norm_layer, act_layer=act_layer) if enc.stem_channels else nn.Identity()
        self.stages = nn.ModuleList(
            Stage(*(ResBlock(b.c_in, b.width, b.c_out, stride=b.stride, project=b.project, block=enc.block,
                             kernel_size=enc.kernel_size, preact=enc.preact, skip=enc.skip, dropout=enc.dropout,
                             zero_init_last=enc.zero_init_last, bias=bias, norm_layer=norm_layer, act_layer=act_layer)
                    for b in blocks))
            for blocks in plan(enc, spec.embedding.dim))
        self.pool_between = enc.downsample == "pool"
                # pre-activation nets end with norm + act (He et al. 2016)
        self.final = NormAct(norm_layer(output_width(spec)), act_layer()) if enc.preact and enc.stages else None

    def encode(self, x, mask):
        """(B, T, E) embeddings, (B, T) mask -> ((B, T', C) features, (B, T') mask), T' = T
        halved between stages unless downsample is none."""
        x = x.transpose(1, 2)  # (B, C, T)
        if isinstance(self.stem, Stem):
            x = self.stem(x, mask)
        for i, stage in enumerate(self.stages):
            if i > 0 and self.pool_between:
                x, mask = max_pool_half(x, mask)  # halves the length (DPCNN, VDCNN)
            x, mask = stage(x, mask)  # with downsample: stride, its first block halves the length
        if self.final is not None:
            x = self.final(x, mask)
        return zero_padding(x, mask).transpose(1, 2), mask  # (B, T', C)
