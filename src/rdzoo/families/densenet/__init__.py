"""DenseNet-style 1D conv encoders (Huang et al. 2017), torch-free half: the `encoder:`
section, its rules and its plan.

A dense layer adds `growth_rate` (k) channels; a block of n layers turns c input
channels into c + n*k (eq. 2: each layer reads the concatenation of all before it);
a transition compresses m channels to floor(theta * m) (section 3, "compression")
and halves the length. `plan` computes these widths once; the parameter count,
the checks and `model.py` all read them from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...counts import conv, norm
from ...errors import SpecError
from ...fields import Act, Norm, bounded
from ..family import Family, conv_defaults

if TYPE_CHECKING:
    from ...spec_types import Spec


@dataclass(frozen=True)
class DenseNetEncoder:
    """The `encoder:` section of a densenet spec; widths in channels, kernel sizes in tokens."""

    stem_channels: int = bounded(64, 1, 65536)
    stem_kernel: int = bounded(3, 1, 1024)
    block_config: list[int] = bounded([6, 12, 24, 16], 1, 1000, max_items=64, min_items=1)
    growth_rate: int = bounded(32, 1, 65536)
    bottleneck: int = bounded(4, 0, 64)  # 1x1 conv to bottleneck*growth_rate; 0 = none
    compression: float = bounded(0.5, 0.0, 1.0, lo_open=True)  # theta
    kernel_size: int = bounded(3, 1, 1024)
    skip: str = "dense"
    norm: Norm = "batch"
    act: Act = "relu"
    dropout: float = bounded(0.0, 0.0, 1.0)
    memory_efficient: bool = False  # checkpoint the concatenations


@dataclass(frozen=True)
class DenseBlockPlan:
    """One dense block: `c_in` channels in, `layers` layers, `c_out` = c_in + layers * k out,
    and the width its transition compresses that to (None after the last block)."""

    c_in: int
    layers: int
    c_out: int
    transition: int | None


def plan(enc: DenseNetEncoder) -> list[DenseBlockPlan]:
    """The blocks' widths, from the stem's channels through every block and transition."""
    c = enc.stem_channels
    blocks = []
    for i, layers in enumerate(enc.block_config):
        c_out = c + layers * enc.growth_rate
        last = i == len(enc.block_config) - 1
        transition = None if last else math.floor(c_out * enc.compression)
        blocks.append(DenseBlockPlan(c, layers, c_out, transition))
        c = c_out if last else transition
    return blocks


def width(spec: "Spec") -> int:
    """Channels out of the last dense block."""
    return plan(spec.encoder)[-1].c_out


def encoder_params(spec: "Spec") -> int:
    """Stem, every dense layer (norm, [1x1 bottleneck conv, norm,] k-wide conv), transitions, final norm."""
    enc, e = spec.encoder, spec.embedding.dim
    bias = enc.norm == "none"
    k = enc.growth_rate
    n = conv(e, enc.stem_channels, enc.stem_kernel, bias) + norm(enc.norm, enc.stem_channels)
    for block in plan(enc):
        for j in range(block.layers):
            c_in = block.c_in + j * k
            if enc.bottleneck:
                inner = enc.bottleneck * k
                n += norm(enc.norm, c_in) + conv(c_in, inner, 1, bias) + norm(enc.norm, inner)
                n += conv(inner, k, enc.kernel_size, bias)
            else:
                n += norm(enc.norm, c_in) + conv(c_in, k, enc.kernel_size, bias)
        if block.transition is not None:
            n += norm(enc.norm, block.c_out) + conv(block.c_out, block.transition, 1, bias)
    return n + norm(enc.norm, width(spec))


def validate(spec: "Spec") -> None:
    """No transition may compress a block's output to zero channels."""
    enc = spec.encoder
    for i, block in enumerate(plan(enc)):
        if block.transition is not None and block.transition < 1:
            raise SpecError("encoder.compression", f"{enc.compression:g} compresses the output of dense block {i} "
                                                   "to zero channels")


def shortens(enc: DenseNetEncoder) -> tuple[str, str] | None:
    """Transitions halve the length, so only a single-block densenet can tag tokens."""
    if len(enc.block_config) > 1:
        return "encoder.block_config", "the transitions between dense blocks halve the length; use one block"
    return None


FAMILY = Family("densenet", DenseNetEncoder, ("dense",), "rdzoo.families.densenet.model:DenseNetText",
                encoder_params, width, conv_defaults, "DenseNet-style 1D conv net (Huang et al. 2017)",
                validate=validate, shortens=shortens)
