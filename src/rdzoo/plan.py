"""Stage arithmetic for every family, in plain Python.

The families build their layers from these plans, and `count_params` adds the
same plans up, so a spec's parameter count is known before torch is imported
(`rdzoo list` shows it instantly and `max_params` refuses absurd specs without
allocating). The tests check that the count equals the built model's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .spec import Spec
from .text.tokenize import CHAR_BUCKETS


def conv(c_in: int, c_out: int, k: int, bias: bool) -> int:
    return c_in * c_out * k + (c_out if bias else 0)


def linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def norm(kind: str, c: int) -> int:
    return 0 if kind == "none" else 2 * c


@dataclass(frozen=True)
class ResBlockPlan:
    c_in: int
    width: int  # inner width (bottleneck) or output width (basic)
    c_out: int
    stride: int
    project: bool  # a 1x1 projection on the shortcut


def resnet_plan(enc, embed_dim: int) -> list[list[ResBlockPlan]]:
    """Blocks per stage with their widths; the first block of a stage changes width or length."""
    c = enc.stem_channels * len(enc.stem_kernels) or embed_dim
    stages = []
    for i, (depth, width) in enumerate(zip(enc.stages, enc.channels)):
        c_out = width * (4 if enc.block == "bottleneck" else 1)
        blocks = []
        for j in range(depth):
            stride = 2 if (enc.downsample == "stride" and i > 0 and j == 0) else 1
            project = enc.skip != "none" and (c != c_out or stride != 1)
            blocks.append(ResBlockPlan(c, width, c_out, stride, project))
            c = c_out
        stages.append(blocks)
    return stages


def resnet_block_params(enc, b: ResBlockPlan) -> int:
    bias = enc.norm == "none"
    k = enc.kernel_size
    if enc.block == "basic":
        n = conv(b.c_in, b.width, k, bias) + conv(b.width, b.width, k, bias)
        norms = [b.c_in, b.width] if enc.preact else [b.width, b.width]
    else:
        n = conv(b.c_in, b.width, 1, bias) + conv(b.width, b.width, k, bias) + conv(b.width, b.c_out, 1, bias)
        norms = [b.c_in, b.width, b.width] if enc.preact else [b.width, b.width, b.c_out]
    n += sum(norm(enc.norm, c) for c in norms)
    if b.project:
        n += conv(b.c_in, b.c_out, 1, bias) + norm(enc.norm, b.c_out)
    if enc.skip == "gated":
        n += conv(b.c_out, b.c_out, 1, True)
    elif enc.skip == "rezero":
        n += 1
    return n


def resnet_width(spec: Spec) -> int:
    enc = spec.encoder
    if enc.stages:
        return enc.channels[-1] * (4 if enc.block == "bottleneck" else 1)
    return enc.stem_channels * len(enc.stem_kernels)


def resnet_params(spec: Spec) -> int:
    enc, e = spec.encoder, spec.embedding.dim
    n = 0
    if enc.stem_channels:
        bias = enc.norm == "none"
        n += sum(conv(e, enc.stem_channels, k, bias) + norm(enc.norm, enc.stem_channels) for k in enc.stem_kernels)
    n += sum(resnet_block_params(enc, b) for stage in resnet_plan(enc, e) for b in stage)
    if enc.preact and enc.stages:
        n += norm(enc.norm, resnet_width(spec))
    return n


def densenet_plan(enc) -> tuple[list[tuple[int, int]], int]:
    """(input width, layers) of each dense block, and the final width."""
    c = enc.stem_channels
    blocks = []
    for i, layers in enumerate(enc.block_config):
        blocks.append((c, layers))
        c += layers * enc.growth_rate
        if i < len(enc.block_config) - 1:
            c = math.floor(c * enc.compression)
    return blocks, c


def densenet_params(spec: Spec) -> int:
    enc, e = spec.encoder, spec.embedding.dim
    bias = enc.norm == "none"
    k = enc.growth_rate
    n = conv(e, enc.stem_channels, enc.stem_kernel, bias) + norm(enc.norm, enc.stem_channels)
    blocks, final = densenet_plan(enc)
    for i, (c, layers) in enumerate(blocks):
        for j in range(layers):
            c_in = c + j * k
            if enc.bottleneck:
                inner = enc.bottleneck * k
                n += norm(enc.norm, c_in) + conv(c_in, inner, 1, bias) + norm(enc.norm, inner) + conv(inner, k, enc.kernel_size, bias)
            else:
                n += norm(enc.norm, c_in) + conv(c_in, k, enc.kernel_size, bias)
        if i < len(blocks) - 1:
            c_out = c + layers * k
            n += norm(enc.norm, c_out) + conv(c_out, math.floor(c_out * enc.compression), 1, bias)
    return n + norm(enc.norm, final)


def transformer_params(spec: Spec) -> int:
    enc = spec.encoder
    d, depth = enc.d_model, enc.layers
    layer = 4 * linear(d, d)  # q, k, v (fused into one matrix) and the output projection
    layer += linear(d, enc.ff) + linear(enc.ff, d)
    if enc.skip == "rezero":
        layer += 1  # one scalar per layer and no LayerNorm (Bachlechner et al. 2020)
    else:
        layer += 2 * 2 * d
    if enc.skip == "gated":
        layer += 2 * linear(d, d)
    n = depth * layer
    if enc.skip == "dwa":
        n += depth * (depth + 3) // 2  # block i averages i + 1 earlier outputs
    if enc.norm_position == "pre" and enc.skip != "rezero":
        n += 2 * d  # the final LayerNorm of a pre-LN stack
    if enc.stem_kernel:
        n += d * d * enc.stem_kernel + d
    if enc.cls_token:
        n += d
    if enc.pooler:
        n += linear(d, d)
    return n


def embedding_params(spec: Spec) -> int:
    emb = spec.embedding
    n = emb.vocab_size * emb.dim + emb.token_types * emb.dim
    if emb.positions == "learned":
        n += emb.max_len * emb.dim
    if emb.norm:
        n += 2 * emb.dim
    if emb.char_dim:  # character table and the width-3 convolution (embedding.CharCNN)
        n += CHAR_BUCKETS * emb.char_dim + 3 * emb.char_dim * emb.dim + emb.dim
    return n


def encoder_width(spec: Spec) -> int:
    if spec.family == "resnet":
        return resnet_width(spec)
    if spec.family == "densenet":
        return densenet_plan(spec.encoder)[1]
    return spec.encoder.d_model


def head_widths(spec: Spec) -> list[int]:
    """Widths from the pooled features to the logits (the last is num_classes or absent)."""
    head = spec.head
    widths = [encoder_width(spec) * (head.k if head.pool == "kmax" else 1), *head.hidden]
    if head.num_classes:
        widths.append(head.num_classes)
    return widths


def has_crf(spec: Spec) -> bool:
    """A CRF sits on a tagger's tag scores: head.crf with head.pool token and a classifier."""
    return spec.head.crf and spec.head.pool == "token" and spec.head.num_classes > 0


def head_params(spec: Spec) -> int:
    widths = head_widths(spec)
    n = sum(linear(a, b) for a, b in zip(widths, widths[1:]))
    if has_crf(spec):  # transition scores between tags, and start and end scores (crf.CRF)
        k = spec.head.num_classes
        n += k * k + 2 * k
    return n


def num_features(spec: Spec) -> int:
    """Width of the pre-logits features (after pooling and hidden layers)."""
    head = spec.head
    return head.hidden[-1] if head.hidden else head_widths(spec)[0]


ENCODER_PARAMS = {"resnet": resnet_params, "densenet": densenet_params, "transformer": transformer_params}


def count_params(spec: Spec) -> int:
    return embedding_params(spec) + ENCODER_PARAMS[spec.family](spec) + head_params(spec)
