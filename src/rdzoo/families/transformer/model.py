"""Transformer encoders with a choice of skip rule around each sublayer: the model
(`transformer/__init__.py` holds the encoder section and its rules).

Pre-LN, x + F(LN(x)), or post-LN, LN(x + F(x)) (Xiong et al. 2020); the skip
rule replaces the plain sum: none, residual, gated (highway), rezero (no
LayerNorm), deepnorm (post-LN with alpha and beta-scaled init, Wang et al.
2022) and dwa (DenseFormer's depth-weighted average of every earlier block's
output, Pagliardini et al. 2024). Attention runs through
`F.scaled_dot_product_attention` with the padding mask. Dropout is drawn only
on the sublayer outputs (and on attention weights when `attn_dropout` > 0),
as BERT does: fewer masks, faster CPU training steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...skips import get_skip
from ..base import TextModel
from ..layers import exporting, get_act_layer, zero_padding
from ..skip_layers import SkipRule, skip_rule

INIT_STD = 0.02  # BERT's and GPT-2's initializer range


def rotary_tables(length: int, head_dim: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of rotary positions (Su et al. 2021), each (T, head_dim / 2)."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate q or k by their positions' angles (Su et al. 2021, eq. 34): (B, H, T, hd) and
    (T, hd/2) cos and sin tables -> (B, H, T, hd)."""
    x1, x2 = x.chunk(2, dim=-1)  # (B, H, T, hd/2) each
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    """Multi-head scaled dot-product self-attention, softmax(QK^T / sqrt(hd)) V (Vaswani et al.
    2017, eq. 1) through F.scaled_dot_product_attention; q, k, v from one fused linear."""
    def __init__(self, d: int, heads: int, attn_dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)  # q, k and v in one matmul
        self.proj = nn.Linear(d, d)
        self.attn_dropout = attn_dropout

    def forward(self, x, attn_mask, rotary=None):
        """(B, T, d), (B, 1, 1, T) attention mask (True = attend; None = no padding), optional
        rotary tables -> (B, T, d)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, T, hd)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class FeedForward(nn.Module):
    """The position-wise feed-forward network, fc2(act(fc1(x))) (Vaswani et al. 2017, eq. 2):
    d -> ff -> d features."""
    def __init__(self, d: int, ff: int, act_layer):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, ff), act_layer(), nn.Linear(ff, d)

    def forward(self, x):
        """(B, T, d) -> (B, T, d)."""
        return self.fc2(self.act(self.fc1(x)))


class ConvStem(nn.Module):
    """A convolution over the embeddings, (B, T, C) in and out: each token starts as
    an n-gram feature, the early-convolution stem that helps transformers train on
    little data (Xiao et al. 2021; CvT, Wu et al. 2021)."""

    def __init__(self, d: int, kernel: int, act_layer):
        super().__init__()
        self.conv = nn.Conv1d(d, d, kernel, padding=kernel // 2)  # an even kernel gives T + 1: cut to T
        self.act = act_layer()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, C) embeddings, (B, T) mask -> (B, T, C); padding is zeroed first, as a lone text is padded."""
        y = self.conv(zero_padding(x.transpose(1, 2), mask))
        return self.act(y[..., : x.shape[1]]).transpose(1, 2)


class Layer(nn.Module):
    """One encoder layer, attention then feed-forward, each inside the `skip` rule, with
    LayerNorm before (`pre`) or after; `depth` is the stack's layer count (DeepNet's alpha).
    (B, T, d) features and the (B, 1, 1, T) attention mask (True = a token, None = no
    padding) -> (B, T, d). LayerNorm and the feed-forward act per position, and attention
    reads no padded key, so padding cannot reach a token."""

    def __init__(self, d: int, heads: int, ff: int, *, skip: str = "residual", depth: int = 1, pre: bool = True,
                 act: str = "gelu", dropout: float = 0.0, attn_dropout: float = 0.0, norm_eps: float = 1e-5):
        super().__init__()
        self.attn = Attention(d, heads, attn_dropout)
        self.ff = FeedForward(d, ff, get_act_layer(act))
        self.pre = pre
        rule = get_skip(skip)
        self.norm1 = nn.Identity() if rule.replaces_norm else nn.LayerNorm(d, eps=norm_eps)
        self.norm2 = nn.Identity() if rule.replaces_norm else nn.LayerNorm(d, eps=norm_eps)
        self.skip1 = skip_rule(skip, d, "channels_last", depth)
        # ReZero has one scalar per layer, shared by both sublayers (Bachlechner et al. 2020)
        self.skip2 = self.skip1 if rule.one_per_layer else skip_rule(skip, d, "channels_last", depth)
        self.drop = nn.Dropout(dropout)
        # a plain residual layer is exactly nn.TransformerEncoderLayer, whose inference kernel it can use
        self.fusable = skip == "residual" and act in ("gelu", "relu")
        self.gelu = act == "gelu"

    def forward(self, x, attn_mask, rotary=None):
        """(B, T, d) features, (B, 1, 1, T) attention mask or None, optional rotary tables ->
        (B, T, d)."""
        # the fused kernel has no ONNX form: an export traces the layer-by-layer path
        if self.fusable and rotary is None and not self.training and not torch.is_grad_enabled() and not exporting():
            return self.fused_forward(x, attn_mask)
        if self.pre:
            x = self.skip1(x, self.drop(self.attn(self.norm1(x), attn_mask, rotary)))
            return self.skip2(x, self.drop(self.ff(self.norm2(x))))
        x = self.norm1(self.skip1(x, self.drop(self.attn(x, attn_mask, rotary))))
        return self.norm2(self.skip2(x, self.drop(self.ff(x))))

    def fused_forward(self, x, attn_mask):
        """Inference through PyTorch's fused encoder-layer kernel, the one nn.TransformerEncoderLayer
        uses in eval mode (one C++ call per layer instead of a dozen Python-level ops)."""
        padding = None if attn_mask is None else ~attn_mask[:, 0, 0, :]  # (B, T), True = ignore
        return torch._transformer_encoder_layer_fwd(
            x, x.shape[-1], self.attn.heads, self.attn.qkv.weight, self.attn.qkv.bias,
            self.attn.proj.weight, self.attn.proj.bias, self.gelu, self.pre,
            self.norm1.eps, self.norm1.weight, self.norm1.bias, self.norm2.weight, self.norm2.bias,
            self.ff.fc1.weight, self.ff.fc1.bias, self.ff.fc2.weight, self.ff.fc2.bias,
            padding, None if padding is None else 1)


class TransformerText(TextModel):
    """Embedding, optional conv stem and [CLS], `layers` encoder layers (with DenseFormer's
    depth-weighted averages for skip dwa), a pre-LN stack's final LayerNorm, and the shared
    head; (B, T) ids -> logits. Linear weights start at N(0, 0.02) as BERT's, except a skip
    rule's own (its init) and DeepNet's gains. See `TextModel` for the interface."""

    def __init__(self, spec, **parts):
        super().__init__(spec, init_std=INIT_STD, **parts)
        enc = spec.encoder
        skip = get_skip(enc.skip)
        d = enc.d_model
        if isinstance(self.embed.norm, nn.LayerNorm):
            self.embed.norm.eps = enc.norm_eps  # BERT's embedding LayerNorm has the layers' eps
        self.rotary = spec.embedding.positions == "rotary"
        self.stem_kernel = enc.stem_kernel
        # ReZero has no LayerNorm to lift the 0.02-scale embeddings to unit size: scale them by
        # sqrt(d) as Vaswani et al. do; without it the model learns at a fraction of the pace.
        # Normalised inputs (embedding.norm, a neck's) are unit-sized already.
        self.input_scale = math.sqrt(d) if skip.replaces_norm and not spec.embedding.norm else 1.0
        self.head_dim = d // enc.heads
        self.cls = nn.Parameter(torch.zeros(1, 1, d)) if enc.cls_token else None
        self.stem = ConvStem(d, enc.stem_kernel, get_act_layer(enc.act)) if enc.stem_kernel else nn.Identity()
        self.stages = nn.ModuleList(
            Layer(d, enc.heads, enc.ff, skip=enc.skip, depth=enc.layers, pre=enc.norm_position == "pre", act=enc.act,
                  dropout=enc.dropout, attn_dropout=enc.attn_dropout, norm_eps=enc.norm_eps)
            for _ in range(enc.layers))
        self.dwa = None
        if enc.skip == "dwa":
            # alpha_i weighs the embedding and blocks 1..i; it starts as [0, ..., 0, 1] (a plain transformer)
            self.dwa = nn.ParameterList(
                nn.Parameter(F.one_hot(torch.tensor(i + 1), i + 2).float()) for i in range(enc.layers))
        pre_ln = enc.norm_position == "pre" and not skip.replaces_norm
        self.norm = nn.LayerNorm(d, eps=enc.norm_eps) if pre_ln else nn.Identity()
        self._init_weights(enc, skip)

    def _init_weights(self, enc, skip):
        # a skip rule's own weights (the highway gate) keep the rule's initialisation
        own = {id(m) for rule in self.modules() if isinstance(rule, SkipRule) for m in rule.modules()}
        for module in self.modules():
            if isinstance(module, nn.Linear) and id(module) not in own:
                nn.init.normal_(module.weight, std=INIT_STD)
                nn.init.zeros_(module.bias)
        if self.cls is not None:
            nn.init.normal_(self.cls, std=INIT_STD)
        if skip.init_gain is not None:
            # DeepNet: Xavier-normal with gain beta on v, out, and feed-forward; q and k keep gain 1
            beta, d = skip.init_gain(enc.layers), enc.d_model
            for layer in self.stages:
                w = layer.attn.qkv.weight
                for part, gain in ((slice(0, d), 1.0), (slice(d, 2 * d), 1.0), (slice(2 * d, 3 * d), beta)):
                    nn.init.xavier_normal_(w.data[part], gain=gain)
                for lin in (layer.attn.proj, layer.ff.fc1, layer.ff.fc2):
                    nn.init.xavier_normal_(lin.weight, gain=beta)

    def encode(self, x, mask):
        """(B, T, d) embeddings, (B, T) mask -> ((B, T + [CLS], d) features, their mask)."""
        x = x * self.input_scale if self.input_scale != 1.0 else x
        x = self.stem(x, mask) if self.stem_kernel else x
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
            mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], dim=1)
        # None lets SDPA take its fastest kernel when nothing is padded; an exported graph keeps the
        # mask, since whether a batch is padded is known only when it runs
        attn_mask = mask[:, None, None, :] if exporting() or not bool(mask.all()) else None
        rotary = rotary_tables(x.shape[1], self.head_dim, x.device) if self.rotary else None
        outputs = [x]
        for i, layer in enumerate(self.stages):
            x = layer(x, attn_mask, rotary)
            if self.dwa is not None:
                outputs.append(x)
                x = torch.einsum("j,jbtc->btc", self.dwa[i], torch.stack(outputs))
        return self.norm(x), mask

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's parameter grouping, for layer-wise lr decay (`train.layer_decay`): the
        embedding is group 0, layer i group i + 1, the rest (head, final norm) the top."""
        return {"stem": r"^(?:embed|cls|stem)\.|^cls$", "blocks": r"^stages\.(\d+)"}

    def body_modules(self):
        """(name, module) pairs whose outputs `rdzoo build` shows: embedding, stem, layers, norm."""
        stem = [("stem", self.stem)] if self.stem_kernel else []
        return [("embed", self.embed), *stem, *[(f"stages.{i}", s) for i, s in enumerate(self.stages)],
                ("norm", self.norm)]
