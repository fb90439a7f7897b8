"""Small layers the families share: norm and activation factories, 1D conv
helpers, and the padding rules. Blocks receive `norm_layer`/`act_layer`
callables built here.

Padding never changes what a text's own positions compute (a text scored
alone gives the logits it gets inside a padded batch). Every block carries the
(batch, tokens) padding mask, True at a text's own tokens, and follows four
rules, all implemented here:

- `zero_padding` before every convolution wider than 1: the padded positions
  then look exactly like the zeros a convolution pads a lone text with.
  (1x1 convolutions, activations, skips and LayerNorm act per position and
  need nothing.)
- Every norm takes `(x, mask)`: `MaskedBatchNorm1d` computes its training
  statistics over the valid positions only, so the running statistics, and
  the training-mode outputs, do not depend on how much padding shares the
  batch. In eval mode it uses the running statistics, per position.
- Downsampling by 2 (max pool, average pool, strided convolution) keeps
  position j of the output valid iff input position 2j was valid
  (`downsample_mask`): exactly the ceil(T/2) positions a lone text of T
  tokens has after the same pooling. (Any-valid would add a position for an
  even T whose window only touches the text; all-valid would drop the last
  position of an odd T.)
- Pools see padding as the padding they apply themselves: -inf for max
  pooling (`max_pool_half`), absent from the average (`avg_pool_half`).

The rules hold for right padding, the only kind `text.batching.pad` makes;
with a gap inside a text the convolutions would still see the zeros.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def exporting() -> bool:
    """Whether torch.export is tracing the model (`rdzoo export --format onnx`): the graph it
    writes serves every batch, so it must not branch on values that only a batch knows."""
    is_exporting = getattr(torch.compiler, "is_exporting", None)  # older torch lacks it: its export fails, and says so
    return bool(is_exporting and is_exporting())


def zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C, T) features with the padded positions set to 0; mask is (B, T), True = a token.

    `masked_fill`, not a product: a padded position may hold anything, -inf included."""
    return x.masked_fill(~mask.unsqueeze(1), 0.0)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over the channels of (B, C, T) features, with training statistics
    from the valid positions only (Ioffe and Szegedy 2015, eq. of Algorithm 1, over
    the set of tokens instead of every position).

    Training: the (N, C) valid positions go through nn.BatchNorm1d itself (its mean,
    biased variance for the output, unbiased for the running variance, momentum),
    and padded positions come out 0. Fewer than 2 valid positions (a batch of one
    one-token text) cannot give a variance: they are normalised with the running
    statistics, which are left as they are. Eval: the running statistics, per
    position, as nn.BatchNorm1d. Parameters and buffers are nn.BatchNorm1d's, so
    weights saved from one load into the other.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, T) features, (B, T) mask (True = a token) -> (B, C, T) normalised, padding 0;
        no mask: nn.BatchNorm1d."""
        if mask is None or not (self.training or self.running_mean is None):
            return super().forward(x)
        rows = x.transpose(1, 2)[mask]  # (N, C): the valid positions
        if rows.shape[0] < 2:
            if self.running_mean is None:
                raise ValueError("a batch norm without running statistics needs 2 or more tokens in training")
            normed = F.batch_norm(rows, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        else:
            normed = super().forward(rows)
        out = normed.new_zeros(x.shape[0], x.shape[2], x.shape[1])  # normed's dtype: autocast may change it
        out[mask] = normed
        return out.transpose(1, 2)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, T) tensor. Per position, so padding
    cannot reach a token's statistics; `mask` is accepted and not needed."""

    def forward(self, x, mask=None):
        """(B, C, T) -> (B, C, T), each position normalised over its C channels."""
        return F.layer_norm(x.transpose(1, 2), self.normalized_shape, self.weight, self.bias, self.eps).transpose(1, 2)


class NoNorm(nn.Identity):
    """The `norm: none` placeholder: (x, mask) -> x."""

    def forward(self, x, mask=None):
        """(B, C, T) -> the same tensor."""
        return x


def get_norm_layer(kind: str):
    """A callable channels -> norm module for (B, C, T) tensors, called as norm(x, mask)."""
    if kind == "batch":
        return MaskedBatchNorm1d
    if kind == "layer":
        return ChannelLayerNorm
    return lambda channels: NoNorm()


def get_act_layer(kind: str):
    """`relu`, `gelu`, `silu` or `tanh` -> its nn.Module class (KeyError for another name)."""
    return ACTIVATIONS[kind]


def conv1d(c_in: int, c_out: int, k: int, *, stride: int = 1, bias: bool = False) -> nn.Module:
    """A length-preserving conv, or a halving one with stride 2 (odd kernels)."""
    if stride == 1 and k % 2 == 0:
        # explicit asymmetric padding: padding="same" copies the input for even kernels, with a warning
        return nn.Sequential(nn.ConstantPad1d(((k - 1) // 2, k // 2), 0.0), nn.Conv1d(c_in, c_out, k, bias=bias))
    return nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=bias)


class ConvNormAct(nn.Sequential):
    """conv (padding kept out), norm (statistics of the tokens), act: (B, C, T) -> (B, C', T).

    A Sequential so that its parameters keep the names of the plain
    Sequential(conv, norm, act) it replaces; the conv keeps the length."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, C, T), (B, T) mask -> (B, C', T)."""
        conv, norm, act = self
        return act(norm(conv(zero_padding(x, mask)), mask))


class NormAct(nn.Sequential):
    """norm (statistics of the tokens), act: (B, C, T) -> (B, C, T)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, C, T), (B, T) mask -> (B, C, T)."""
        norm, act = self
        return act(norm(x, mask))


def downsample_mask(mask: torch.Tensor) -> torch.Tensor:
    """The padding mask after halving the length, (B, T) -> (B, ceil(T/2)): output j is
    valid iff input 2j is, the positions a lone text keeps (see the module notes)."""
    return mask[:, ::2]


def max_pool_half(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max pool of width 3, stride 2, padding 1 (DPCNN, VDCNN), (B, C, T) -> (B, C, ceil(T/2)),
    with padded positions as -inf, the value max pooling pads with; returns the new mask too."""
    x = x.masked_fill(~mask.unsqueeze(1), float("-inf"))
    if exporting():  # torch.export fixes max_pool1d's length (torch 2.14); the same pool in 2d keeps it free
        pooled = F.max_pool2d(x.unsqueeze(2), (1, 3), (1, 2), (0, 1)).squeeze(2)
    else:  # 1d: a tenth of 2d's time in inference on the CPU
        pooled = F.max_pool1d(x, 3, 2, 1)
    mask = downsample_mask(mask)
    return zero_padding(pooled, mask), mask


def avg_pool_half(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average of each pair of positions over the tokens among them, (B, C, T) -> (B, C, ceil(T/2)):
    F.avg_pool1d(x, 2, 2, ceil_mode=True) for a lone text, whose odd last position is averaged
    alone; a padded position counts as absent, not as a zero. Returns the new mask too."""
    # one padded position always, and pairs by unfold (which drops a last odd one): no branch on
    # the length's parity, so an exported graph (export.py) serves every length
    x, padded = F.pad(x, (0, 1)), F.pad(mask, (0, 1), value=False)
    valid = padded.unsqueeze(1).unfold(-1, 2, 2)  # (B, 1, ceil(T/2), 2)
    total = zero_padding(x, padded).unfold(-1, 2, 2).sum(-1)
    return total / valid.sum(-1).clamp(min=1), downsample_mask(mask)
