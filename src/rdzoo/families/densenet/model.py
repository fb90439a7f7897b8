"""DenseNet-style 1D conv encoders (Huang et al. 2017) over token sequences: the model, built
from the plan in `densenet/__init__.py`.

A dense layer returns only its `growth_rate` new channels; the block keeps the
list and concatenates; a transition (norm, act, 1x1 conv to floor(theta * m)
channels, average pool 2) compresses between blocks. `memory_efficient`
recomputes the concatenation + norm + act + 1x1 conv in the backward pass
(Pleiss et al. 2017), as torchvision's `_DenseLayer` does.
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint as cp
from torch import nn

from ..base import TextModel
from ..layers import ConvNormAct, NoNorm, NormAct, avg_pool_half, conv1d, get_act_layer, get_norm_layer, zero_padding
from . import plan


class DenseLayer(nn.Module):
    """norm, act, [1x1 conv to `bottleneck` * k, norm, act,] k-wide conv to k = `growth_rate`
    new channels: a list of (B, C_i, T) features with sum C_i = `c_in`, and the (B, T) mask
    -> (B, k, T). Padding is zeroed before the k-wide conv and kept out of the norms'
    statistics; `bias` is for convs with no norm after them."""

    def __init__(self, c_in: int, growth_rate: int, *, bottleneck: int = 4, kernel_size: int = 3,
                 dropout: float = 0.0, memory_efficient: bool = False, bias: bool = False, norm_layer, act_layer):
        super().__init__()
        k = growth_rate
        inner = bottleneck * k if bottleneck else c_in
        self.norm1, self.act1 = norm_layer(c_in), act_layer()
        self.conv1 = nn.Conv1d(c_in, inner, 1, bias=bias) if bottleneck else None
        self.norm2 = norm_layer(inner) if bottleneck else NoNorm()
        self.act2 = act_layer() if bottleneck else nn.Identity()
        self.conv2 = conv1d(inner, k, kernel_size, bias=bias)
        self.drop = nn.Dropout(dropout)
        self.memory_efficient = memory_efficient

    def bottleneck(self, mask: torch.Tensor, *features: torch.Tensor) -> torch.Tensor:
        """concat(features) -> norm, act [, 1x1 conv]: the part `memory_efficient` recomputes in
        the backward pass (Pleiss et al. 2017); (B, c_in, T) -> (B, bottleneck * k or c_in, T)."""
        x = self.act1(self.norm1(torch.cat(features, 1), mask))
        return x if self.conv1 is None else self.conv1(x)

    def forward(self, features: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        """The features so far, [(B, C_i, T)], and the (B, T) mask -> the k new channels, (B, k, T)."""
        if self.memory_efficient and torch.is_grad_enabled() and any(f.requires_grad for f in features):
            x = cp.checkpoint(self.bottleneck, mask, *features, use_reentrant=False)
        else:
            x = self.bottleneck(mask, *features)
        return self.drop(self.conv2(zero_padding(self.act2(self.norm2(x, mask)), mask)))


class DenseBlock(nn.Module):
    """`layers` dense layers, each reading the concatenation of all before it:
    (B, c_in, T), (B, T) mask -> (B, c_in + layers * growth_rate, T). `layer_args` go to DenseLayer."""

    def __init__(self, c_in: int, layers: int, growth_rate: int, **layer_args):
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(c_in + i * growth_rate, growth_rate, **layer_args) for i in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, c_in, T), (B, T) mask -> (B, c_in + layers * growth_rate, T)."""
        features = [x]
        for layer in self.layers:
            features.append(layer(features, mask))
        return torch.cat(features, 1)


class Transition(nn.Module):
    """norm, act, 1x1 conv to `c_out` channels, average pool 2 over the tokens:
    (B, c_in, T), (B, T) -> (B, c_out, ceil(T/2)) and its mask."""

    def __init__(self, c_in: int, c_out: int, *, bias: bool = False, norm_layer, act_layer):
        super().__init__()
        self.norm, self.act = norm_layer(c_in), act_layer()
        self.conv = nn.Conv1d(c_in, c_out, 1, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, c_in, T), (B, T) mask -> ((B, c_out, ceil(T/2)), its (B, ceil(T/2)) mask)."""
        return avg_pool_half(self.conv(self.act(self.norm(x, mask))), mask)


class DenseNetText(TextModel):
    """Embedding, stem, dense blocks with transitions between them (the plan's widths), a final
    norm + act, and the shared head; (B, T) ids -> logits. See `TextModel` for the interface."""

    def __init__(self, spec, **parts):
        super().__init__(spec, **parts)
        enc = spec.encoder
        norm_layer, act_layer = get_norm_layer(enc.norm), get_act_layer(enc.act)
        bias = enc.norm == "none"
        self.stem = ConvNormAct(
            conv1d(spec.embedding.dim, enc.stem_channels, enc.stem_kernel, bias=bias),
            norm_layer(enc.stem_channels), act_layer())
        blocks = plan(enc)
        layer_args = dict(bottleneck=enc.bottleneck, kernel_size=enc.kernel_size, dropout=enc.dropout,
                          memory_efficient=enc.memory_efficient, bias=bias, norm_layer=norm_layer, act_layer=act_layer)
        self.stages = nn.ModuleList(DenseBlock(b.c_in, b.layers, enc.growth_rate, **layer_args) for b in blocks)
        self.transitions = nn.ModuleList(
            Transition(b.c_out, b.transition, bias=bias, norm_layer=norm_layer, act_layer=act_layer)
            for b in blocks if b.transition is not None)
        self.final = NormAct(norm_layer(blocks[-1].c_out), act_layer())

    def encode(self, x, mask):
        """(B, T, E) embeddings, (B, T) mask -> ((B, T', C) features, (B, T') mask), T' = T
        halved once per transition."""
        x = self.stem(x.transpose(1, 2), mask)  # (B, C, T)
        for i, block in enumerate(self.stages):
            x = block(x, mask)
            if i < len(self.transitions):
                x, mask = self.transitions[i](x, mask)  # halves the length
        return zero_padding(self.final(x, mask), mask).transpose(1, 2), mask  # (B, T', C)

    def body_modules(self):
        """(name, module) pairs whose outputs `rdzoo build` shows: blocks and transitions in turn."""
        out = [("embed", self.embed), ("stem", self.stem)]
        for i, block in enumerate(self.stages):
            out.append((f"stages.{i}", block))
            if i < len(self.transitions):
                out.append((f"transitions.{i}", self.transitions[i]))
        return out
