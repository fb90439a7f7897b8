"""ResNet-style 1D conv encoders, torch-free half: the `encoder:` section, its rules and its plan.

Stages of basic (two k-wide convs) or bottleneck (1 -> k -> 1, expansion 4) residual
blocks, post- or pre-activation (He et al. 2015, 2016), halving the length between
stages by max pooling (DPCNN, VDCNN) or a strided first conv. A multi-width stem
with no stages is Kim's (2014) CNN. `model.py` builds the network from `plan`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ...counts import conv, norm
from ...errors import SpecError
from ...fields import Act, Norm, bounded
from ...skips import get_skip
from ..family import Family, conv_defaults

if TYPE_CHECKING:
    from ...spec_types import Spec

SKIPS = ("none", "residual", "gated", "rezero")


@dataclass(frozen=True)
class ResNetEncoder:
    """The `encoder:` section of a resnet spec; widths in channels, kernel sizes in tokens."""

    stem_channels: int = bounded(64, 0, 65536)  # 0: the embedding feeds the stages
    stem_kernels: list[int] = bounded([3], 1, 1024, max_items=16, min_items=1)
    stages: list[int] = bounded([2, 2, 2, 2], 1, 1000, max_items=64)  # blocks per stage
    channels: list[int] | int = bounded([64, 128, 256, 512], 1, 65536, max_items=64)
    block: Literal["basic", "bottleneck"] = "basic"
    kernel_size: int = bounded(3, 1, 1024)
    preact: bool = False
    downsample: Literal["pool", "stride", "none"] = "pool"
    skip: str = "residual"
    norm: Norm = "batch"
    act: Act = "relu"
    dropout: float = bounded(0.0, 0.0, 1.0)
    zero_init_last: bool = True  # each residual branch starts as zero


@dataclass(frozen=True)
class ResBlockPlan:
    """One residual block: `c_in` -> `c_out` channels, `width` the inner (bottleneck) or output
    (basic) width, `stride` 2 halves the length, `project` puts a 1x1 conv on the shortcut."""

    c_in: int
    width: int
    c_out: int
    stride: int
    project: bool


def stem_width(enc: ResNetEncoder) -> int:
    """Channels out of the stem: one `stem_channels` conv per stem kernel, concatenated (0: no stem)."""
    return enc.stem_channels * len(enc.stem_kernels)


def plan(enc: ResNetEncoder, embed_dim: int) -> list[list[ResBlockPlan]]:
    """Blocks per stage with their widths; the first block of a stage changes width or length."""
    c = stem_width(enc) or embed_dim
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


def block_params(enc: ResNetEncoder, b: ResBlockPlan) -> int:
    """Parameters of one block: its convs and norms, the shortcut's projection, the skip rule's own."""
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
    return n + get_skip(enc.skip).params(b.c_out)


def width(spec: "Spec") -> int:
    """Channels of the last stage's output (the stem's with no stages)."""
    enc = spec.encoder
    if enc.stages:
        return enc.channels[-1] * (4 if enc.block == "bottleneck" else 1)
    return stem_width(enc)


def encoder_params(spec: "Spec") -> int:
    """Stem, blocks and (pre-activation) final norm."""
    enc, e = spec.encoder, spec.embedding.dim
    n = 0
    if enc.stem_channels:
        bias = enc.norm == "none"
        n += sum(conv(e, enc.stem_channels, k, bias) + norm(enc.norm, enc.stem_channels) for k in enc.stem_kernels)
    n += sum(block_params(enc, b) for stage in plan(enc, e) for b in stage)
    if enc.preact and enc.stages:
        n += norm(enc.norm, width(spec))
    return n


def resolve(spec: "Spec") -> "Spec":
    """Conv defaults, and one width for every stage when `channels` is a single integer."""
    enc = spec.encoder
    if isinstance(enc.channels, int):
        enc = dataclasses.replace(enc, channels=[enc.channels] * len(enc.stages))
    return conv_defaults(spec, enc)


def validate(spec: "Spec") -> None:
    """One width per stage, an odd kernel for strided downsampling, a stem or a stage."""
    enc = spec.encoder
    if len(enc.channels) != len(enc.stages):
        raise SpecError("encoder.channels", f"has {len(enc.channels)} widths but encoder.stages has {len(enc.stages)} "
                                            "stages; give one width per stage or a single integer")
    if enc.downsample == "stride" and enc.kernel_size % 2 == 0:
        raise SpecError("encoder.kernel_size", f"{enc.kernel_size} is even; downsample: stride needs an odd kernel "
                                               "(or use downsample: pool)")
    if enc.stem_channels == 0 and not enc.stages:
        raise SpecError("encoder.stages", "a resnet with no stem (stem_channels: 0) needs at least one stage")


def shortens(enc: ResNetEncoder) -> tuple[str, str] | None:
    """Downsampling between stages halves the length, so such a resnet cannot tag tokens."""
    if len(enc.stages) > 1 and enc.downsample != "none":
        return "encoder.downsample", f"{enc.downsample!r} halves the length between stages; use none"
    return None


FAMILY = Family("resnet", ResNetEncoder, SKIPS, "rdzoo.families.resnet.model:ResNetText", encoder_params, width,
                resolve, "ResNet-style 1D conv net (He et al. 2015)", validate=validate, shortens=shortens)
