"""Padding never changes a text's outputs.

Eval mode: a text scored alone gives the logits it gets inside a batch padded
to a longer length, with other texts, after the norms' statistics and
parameters have been moved off their defaults (as training does). Training
mode: the batch norms' statistics, and so the outputs and the running
statistics, come from the tokens only, however long the padding.
"""

import copy
import random

import pytest
import torch
from torch import nn

import rdzoo
from rdzoo import spec
from rdzoo.registry import build_model
from rdzoo.families.layers import MaskedBatchNorm1d, avg_pool_half, max_pool_half
from rdzoo.families import FAMILIES
from rdzoo.families.skip_layers import ReZero
from rdzoo.text.batching import pad

TOLERANCE = dict(rtol=1e-5, atol=1e-5)

RESNET = {"family": "resnet", "embedding": {"dim": 12, "vocab_size": 50, "max_len": 64},
          "encoder": {"stem_channels": 8, "stages": [1, 2, 1], "channels": [8, 12, 16]}, "head": {"num_classes": 3}}
DENSENET = {"family": "densenet", "embedding": {"dim": 12, "vocab_size": 50, "max_len": 64},
            "encoder": {"stem_channels": 8, "block_config": [2, 2, 2], "growth_rate": 4}, "head": {"num_classes": 3}}
TRANSFORMER = {"family": "transformer", "embedding": {"vocab_size": 50, "max_len": 64},
               "encoder": {"layers": 2, "d_model": 16, "heads": 2}, "head": {"num_classes": 3}}

CASES = [
    *[(RESNET, {"encoder.skip": k}) for k in FAMILIES["resnet"].skips],
    *[(DENSENET, {"encoder.skip": k}) for k in FAMILIES["densenet"].skips],
    *[(TRANSFORMER, {"encoder.skip": k}) for k in FAMILIES["transformer"].skips],
    (RESNET, {"encoder.block": "bottleneck"}),
    (RESNET, {"encoder.preact": True}),
    (RESNET, {"encoder.preact": True, "encoder.block": "bottleneck", "encoder.skip": "gated"}),
    (RESNET, {"encoder.downsample": "stride"}),
    (RESNET, {"encoder.downsample": "stride", "encoder.block": "bottleneck", "encoder.kernel_size": 5}),
    (RESNET, {"encoder.downsample": "none", "encoder.kernel_size": 4}),
    (RESNET, {"encoder.norm": "layer"}),
    (RESNET, {"encoder.norm": "none", "encoder.preact": True}),
    (RESNET, {"encoder.stem_kernels": [2, 3, 4]}),
    (RESNET, {"encoder.stem_channels": 0, "encoder.preact": True}),
    (RESNET, {"head.pool": "kmax", "head.k": 3, "head.hidden": [8]}),
    (RESNET, {"head.pool": "mean", "embedding.positions": "learned", "embedding.norm": True}),
    (RESNET, {"embedding.char_dim": 6}),
    (RESNET, {"head.pool": "token", "encoder.downsample": "none"}),
    (DENSENET, {"encoder.bottleneck": 0, "encoder.compression": 1.0}),
    (DENSENET, {"encoder.kernel_size": 4, "encoder.stem_kernel": 2}),
    (DENSENET, {"encoder.norm": "layer", "head.pool": "mean"}),
    (DENSENET, {"encoder.norm": "none", "head.pool": "kmax", "head.k": 2}),
    (DENSENET, {"encoder.memory_efficient": True, "embedding.positions": "sinusoidal"}),
    (DENSENET, {"encoder.block_config": [3], "head.pool": "token", "embedding.char_dim": 4}),
    (TRANSFORMER, {"encoder.stem_kernel": 3, "embedding.token_types": 2, "embedding.norm": True}),
    (TRANSFORMER, {"encoder.stem_kernel": 4, "encoder.cls_token": True, "encoder.pooler": True, "head.pool": "first"}),
    (TRANSFORMER, {"embedding.positions": "rotary", "encoder.norm_position": "post", "encoder.act": "relu"}),
    (TRANSFORMER, {"head.pool": "token", "encoder.cls_token": True, "embedding.char_dim": 4}),
]


def case_id(case):
    base, overrides = case
    return base["family"] + ":" + ",".join(f"{k.split('.')[-1]}={v}" for k, v in overrides.items())


def texts_for(s, lengths, seed=0):
    """Token lists of the given lengths: word ids, words with their characters, or character ids."""
    rng = random.Random(seed)
    vocab = s.embedding.vocab_size

    def token():
        if s.embedding.char_dim:
            return [rng.randrange(1, vocab), *[rng.randrange(1, 1024) for _ in range(rng.randint(1, 7))]]
        return rng.randrange(1, vocab)
    return [[token() for _ in range(n)] for n in lengths]


def batch_of(texts, length):
    """The texts padded, with their characters, to `length` tokens (batching.pad pads to the longest)."""
    tokens = pad(texts)
    extra = length - tokens.shape[1]
    return torch.nn.functional.pad(tokens, (0, 0, 0, extra) if tokens.dim() == 3 else (0, extra))


def move_off_defaults(model, seed=0):
    """Give every norm non-default running statistics and affine parameters, open zero-initialised
    branches (zero_init_last, ReZero) and make the padding vectors non-zero, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm)) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            if isinstance(m, ReZero):
                m.alpha.fill_(0.5)
        model.embed.word.weight[0].normal_(generator=g)  # padding is no longer the zero vector
        if model.embed.spelling is not None:
            model.embed.spelling.char.weight[0].normal_(generator=g)
    return model


def norms_in_training(model):
    """Training-mode norms and nothing else in training mode (no dropout), so outputs are comparable."""
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.train()
    return model


def own_positions(out, lengths, s):
    """Each text's rows of a batch output: a tagger's logits for its tokens, otherwise its pooled row."""
    if s.head.pool == "token":
        return [out[i, :n] for i, n in enumerate(lengths)]
    return [out[i] for i in range(len(lengths))]


def assert_alone_equals_batched(model, s, lengths, length):
    texts = texts_for(s, lengths)
    with torch.no_grad():
        batched = own_positions(model(batch_of(texts, length)), lengths, s)
        for text, n, row in zip(texts, lengths, batched):
            alone = own_positions(model(pad([text])), [n], s)[0]
            torch.testing.assert_close(row, alone, **TOLERANCE)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_text_alone_scores_as_in_a_padded_batch(case):
    base, overrides = case
    s = spec.load(base, overrides)
    torch.manual_seed(0)
    model = move_off_defaults(build_model(s)).eval()
    # odd and even lengths, one token, and every text padded (the batch is longer than the longest)
    assert_alone_equals_batched(model, s, [9, 14, 1, 6], 21)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_statistics_ignore_padding(case):
    base, overrides = case
    s = spec.load(base, overrides)
    texts = texts_for(s, [9, 14, 1, 6], seed=1)
    outs, stats = [], []
    for length in (14, 23):  # the same texts, padded to two lengths
        torch.manual_seed(0)
        model = norms_in_training(move_off_defaults(build_model(s)))
        with torch.no_grad():
            outs.append(own_positions(model(batch_of(texts, length)), [9, 14, 1, 6], s))
        stats.append({k: v for k, v in model.state_dict().items() if "running" in k})
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, **TOLERANCE)
    assert stats[0].keys() == stats[1].keys()
    for k in stats[0]:
        torch.testing.assert_close(stats[0][k], stats[1][k], **TOLERANCE, msg=k)


ZOO_LENGTHS = {"word": ([9, 6, 1], 16), "char": ([37, 50, 2], 64)}


@pytest.mark.parametrize("name", rdzoo.list_models())
def test_every_zoo_model_scores_a_text_alone_as_in_a_padded_batch(name):
    # full depth and width; a tiny vocabulary and short texts keep it to seconds
    s = spec.load(name, {"embedding.vocab_size": 50})
    torch.manual_seed(0)
    model = move_off_defaults(build_model(s)).eval()
    lengths, length = ZOO_LENGTHS["char" if s.embedding.kind == "char" else "word"]
    assert_alone_equals_batched(model, s, lengths, length)
    if not any(isinstance(m, nn.BatchNorm1d) for m in model.modules()):
        return
    texts, start = texts_for(s, lengths, seed=1), copy.deepcopy(model.state_dict())
    stats = []
    for extra in (0, 7):  # the same texts in training, padded to two lengths
        model.load_state_dict(start)
        with torch.no_grad():
            norms_in_training(model)(batch_of(texts, length + extra))
        stats.append([b.clone() for n, b in model.named_buffers() if "running" in n])
    for a, b in zip(*stats):
        # through a whole net in training mode, each layer normalised by its batch's statistics, the
        # rounding of reductions over 16 or 23 positions grows with depth: resnet-text-50's deepest
        # statistics differ by up to 5e-4 relative on one thread (1e-5 on two). Statistics taken over
        # every position, padding included, land 18 (densenet-text-121) to 140 (resnet-text-50) times
        # past this tolerance
        torch.testing.assert_close(a, b, rtol=2e-3, atol=2e-3)


def test_masked_batch_norm_is_batch_norm_over_the_tokens():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8)
    mask = torch.arange(8) < torch.tensor([[8], [3], [1]])
    x = x.masked_fill(~mask.unsqueeze(1), 1e4)  # padding that would swamp the statistics
    masked, plain = MaskedBatchNorm1d(5), nn.BatchNorm1d(5)
    rows = x.transpose(1, 2)[mask]  # (12, 5): the tokens
    out, expected = masked(x, mask), plain(rows)
    torch.testing.assert_close(out.transpose(1, 2)[mask], expected)
    assert torch.all(out.transpose(1, 2)[~mask] == 0)
    torch.testing.assert_close(masked.running_mean, plain.running_mean)
    torch.testing.assert_close(masked.running_var, plain.running_var)  # unbiased, over 12 tokens
    assert masked.running_mean.abs().max() < 1  # the 1e4 padding is nowhere in them

    # gradients reach only the tokens
    x.requires_grad_(True)
    masked(x, mask).pow(2).sum().backward()
    assert torch.all(x.grad.transpose(1, 2)[~mask] == 0)

    # one token cannot give a variance: the running statistics normalise it and stay as they were
    before = masked.running_mean.clone()
    one = masked(torch.randn(1, 5, 4), torch.tensor([[True, False, False, False]]))
    assert torch.isfinite(one).all() and torch.equal(masked.running_mean, before)


def test_pooling_halves_as_a_lone_text_would():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 7)
    for n in (7, 6, 1):  # odd, even, one token; padded to 11 with garbage
        alone = x[..., :n]
        padded = torch.cat([alone, torch.full((1, 4, 11 - n), -1e4)], -1)
        mask = torch.arange(11).unsqueeze(0) < n
        for pool, reference in ((max_pool_half, torch.nn.functional.max_pool1d(alone, 3, 2, 1)),
                                (avg_pool_half, torch.nn.functional.avg_pool1d(alone, 2, 2, ceil_mode=True))):
            y, half = pool(padded, mask)
            kept = (n + 1) // 2
            assert half.tolist() == [[i < kept for i in range(6)]]
            torch.testing.assert_close(y[..., :kept], reference)
            assert torch.all(y[..., kept:] == 0)
