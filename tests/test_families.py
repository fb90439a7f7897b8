
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rdzoo
from rdzoo import plan, spec
from rdzoo.families import FAMILIES
from rdzoo.registry import build_model
from rdzoo.profile import count_params, dummy_batch, flops

SMALL = {"embedding.vocab_size": 50}


def small_batch(s, batch=3, length=12):
    tokens = torch.randint(1, s.embedding.vocab_size, (batch, length))
    if s.embedding.char_dim:  # every word spelt with 1-5 characters
        chars = torch.randint(1, 1024, (batch, length, 5)) * (torch.arange(5) < torch.randint(1, 6, (batch, length, 1)))
        tokens = torch.cat([tokens.unsqueeze(-1), chars], -1)
    tokens[1, length // 2:] = 0  # padding
    tokens[2, 1:] = 0  # a one-token sequence
    return tokens


def forward_backward(model, tokens):
    model.train()
    out = model(tokens)
    assert out.shape[0] == tokens.shape[0] and torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    return out


@pytest.mark.parametrize("name", rdzoo.list_models())
def test_zoo_counts_match_built_models(name):
    s = spec.load(name)
    with torch.device("meta"):
        model = build_model(s)
    assert count_params(model) == plan.count_params(s)


def test_bert_base_arch_has_bert_base_parameter_count():
    s = spec.load("bert-base-arch")
    assert plan.count_params(s) == 109_482_240
    with torch.device("meta"):
        assert count_params(build_model(s)) == 109_482_240


@pytest.mark.parametrize("name", rdzoo.list_models())
def test_zoo_models_run_forward_and_backward_with_padding(name):
    s = spec.load(name, SMALL)
    if s.encoder.__class__.__name__ == "TransformerEncoder" and s.encoder.d_model >= 768:
        s = spec.load(s, {"encoder.layers": 2})  # the full 12 layers add time, not coverage
    model = build_model(s)
    length = 40 if s.embedding.kind == "char" else 12
    out = forward_backward(model, small_batch(s, length=length))
    per_token = (length,) if s.head.pool == "token" else ()  # a tagger: logits for every token
    assert out.shape == (3, *per_token, s.head.num_classes or model.num_features)


FAMILY_BASE = {
    "resnet": {"family": "resnet", "embedding": {"dim": 16, "vocab_size": 50},
               "encoder": {"stem_channels": 8, "stages": [1, 2], "channels": [8, 16]}},
    "densenet": {"family": "densenet", "embedding": {"dim": 16, "vocab_size": 50},
                 "encoder": {"stem_channels": 8, "block_config": [2, 2], "growth_rate": 4}},
    "transformer": {"family": "transformer", "embedding": {"vocab_size": 50},
                    "encoder": {"layers": 3, "d_model": 16, "heads": 2}},
}
CASES = [(f, k) for f, family in FAMILIES.items() for k in family.skips]


@pytest.mark.parametrize("family, skip", CASES)
def test_every_skip_type_in_every_family_that_supports_it(family, skip):
    s = spec.load(FAMILY_BASE[family], {"encoder.skip": skip})
    model = build_model(s)
    assert count_params(model) == plan.count_params(s)
    forward_backward(model, small_batch(s))


@pytest.mark.parametrize("variant", [
    {"encoder.block": "bottleneck"}, {"encoder.preact": True}, {"encoder.downsample": "stride"},
    {"encoder.norm": "layer"}, {"encoder.norm": "none"}, {"encoder.stem_kernels": [2, 3, 4]},
    {"encoder.stem_channels": 0}, {"head.pool": "kmax", "head.k": 4, "head.hidden": [8]}, {"head.pool": "mean"},
    {"embedding.char_dim": 6}, {"head.pool": "token", "encoder.downsample": "none", "head.hidden": [8]},
])
def test_resnet_variants(variant):
    s = spec.load(FAMILY_BASE["resnet"], variant)
    model = build_model(s)
    assert count_params(model) == plan.count_params(s)
    forward_backward(model, small_batch(s))


@pytest.mark.parametrize("variant", [
    {"embedding.positions": "rotary"}, {"embedding.positions": "sinusoidal"}, {"encoder.cls_token": True},
    {"encoder.pooler": True}, {"encoder.norm_position": "post"}, {"embedding.token_types": 2, "embedding.norm": True},
    {"encoder.stem_kernel": 3}, {"encoder.stem_kernel": 4, "encoder.cls_token": True},
    {"head.pool": "token", "encoder.cls_token": True, "embedding.char_dim": 4},
])
def test_transformer_variants(variant):
    s = spec.load(FAMILY_BASE["transformer"], variant)
    model = build_model(s)
    assert count_params(model) == plan.count_params(s)
    forward_backward(model, small_batch(s))


@pytest.mark.parametrize("variant", [{"embedding.positions": "rotary"}, {"encoder.stem_kernel": 3},
                                     {"encoder.stem_kernel": 2, "head.pool": "max"}])
def test_transformer_honours_the_padding_mask(variant):
    s = spec.load(FAMILY_BASE["transformer"], {"head.pool": "mean", **variant})
    model = build_model(s).eval()
    tokens = torch.randint(2, 50, (1, 7))
    padded = torch.cat([tokens, torch.zeros(1, 5, dtype=torch.long)], 1)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), model(padded))


@pytest.mark.parametrize("variant", [{"encoder.norm_position": "pre"}, {"encoder.norm_position": "post", "encoder.act": "relu"},
                                     {"encoder.stem_kernel": 3, "encoder.cls_token": True}])
def test_fused_inference_matches_the_layer_by_layer_path(variant):
    model = build_model(spec.load(FAMILY_BASE["transformer"], {"head.pool": "mean", **variant})).eval()
    assert all(layer.fusable for layer in model.stages)
    tokens = torch.randint(2, 50, (3, 9))
    tokens[1, 5:] = 0
    tokens[2, 2:] = 0
    with torch.no_grad():
        fused = model(tokens)
    layer_by_layer = model(tokens)  # grad enabled: the path training takes
    torch.testing.assert_close(fused, layer_by_layer, rtol=1e-5, atol=1e-5)


def test_rezero_and_dwa_start_as_expected():
    s = spec.load(FAMILY_BASE["transformer"], {"encoder.skip": "rezero", "encoder.dropout": 0.0})
    model = build_model(s).eval()
    tokens = torch.randint(2, 50, (2, 9))
    x, _ = model.forward_features(tokens)
    # every layer starts as the identity; the input is scaled by sqrt(d) as there is no LayerNorm
    torch.testing.assert_close(x, model.embed(tokens) * s.encoder.d_model ** 0.5)

    torch.manual_seed(1)
    plain = build_model(spec.load(FAMILY_BASE["transformer"], {"encoder.skip": "residual"})).eval()
    torch.manual_seed(1)
    dwa = build_model(spec.load(FAMILY_BASE["transformer"], {"encoder.skip": "dwa"})).eval()
    dwa.load_state_dict(plain.state_dict(), strict=False)
    torch.testing.assert_close(dwa(tokens), plain(tokens))  # alpha = [0, ..., 0, 1] is a plain transformer
    assert [len(a) for a in dwa.dwa] == [2, 3, 4]


@pytest.mark.parametrize("family", ["transformer", "resnet"])
def test_sinusoidal_positions_start_at_the_words_scale(family):
    s = spec.load(FAMILY_BASE[family], {"embedding.positions": "sinusoidal", "embedding.vocab_size": 50})
    embed = build_model(s).embed.eval()
    tokens = torch.randint(1, 50, (2, 40))
    positions = embed(tokens) - embed.word(tokens)
    words_rms, positions_rms = embed.word.weight[1:].pow(2).mean().sqrt(), positions.pow(2).mean().sqrt()
    assert 0.7 < positions_rms / words_rms < 1.4  # unscaled, the table's RMS is 0.71 against 0.02-std words


def test_gated_deepnorm_and_dense_follow_their_rules():
    gated = build_model(spec.load(FAMILY_BASE["resnet"], {"encoder.skip": "gated"}))
    gate = gated.stages[0][0].skip.gate
    assert torch.all(gate.bias == -2.0)
    deep = build_model(spec.load(FAMILY_BASE["transformer"], {"encoder.skip": "deepnorm"}))
    assert deep.stages[0].skip1.alpha == pytest.approx((2 * 3) ** 0.25)
    assert deep.spec.encoder.norm_position == "post"
    dense = build_model(spec.load(FAMILY_BASE["densenet"], {"encoder.compression": 0.5}))
    x, mask = torch.randn(2, 8, 10), torch.ones(2, 10, dtype=torch.bool)
    assert dense.stages[0](x, mask).shape == (2, 8 + 2 * 4, 10)  # concatenation grows by k per layer
    y, half = dense.transitions[0](dense.stages[0](x, mask), mask)
    assert y.shape == (2, 8, 5) and half.shape == (2, 5)  # floor(16 * 0.5), length halved


def test_memory_efficient_densenet_gives_the_same_gradients():
    base = spec.load(FAMILY_BASE["densenet"], {"encoder.dropout": 0.0})
    torch.manual_seed(3)
    a = build_model(base)
    torch.manual_seed(3)
    b = build_model(spec.load(base, {"encoder.memory_efficient": True}))
    tokens = small_batch(base)
    for m in (a, b):
        m.train()
        m(tokens).sum().backward()
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=n)


def test_feature_extractor_interface():
    model = build_model(spec.load(FAMILY_BASE["resnet"]))
    tokens = small_batch(model.spec)
    x, mask = model.forward_features(tokens)
    assert x.shape[-1] == 16 and mask.shape == x.shape[:2]
    assert model.forward_head(x, mask, pre_logits=True).shape == (3, model.num_features)
    model.reset_classifier(7)
    assert model(tokens).shape == (3, 7)
    model.reset_classifier(0)
    assert model(tokens).shape == (3, model.num_features)


def test_flops_count_attention():
    s = spec.load(FAMILY_BASE["transformer"], {"encoder.layers": 1})
    model = build_model(s).eval()
    short, long = flops(model, dummy_batch(s, 1, 16)), flops(model, dummy_batch(s, 1, 64))
    d, ff = 16, 64
    linear = 2 * (4 * d * d + 2 * d * ff)  # per token
    attention = 4 * d  # per token pair: q.k and attn.v
    assert long - 4 * short == pytest.approx((64 * 64 - 4 * 16 * 16) * attention, rel=0.01)
    assert short == pytest.approx(16 * linear + 16 * 16 * attention + 2 * d * 2, rel=0.01)


family_specs = st.one_of(
    st.fixed_dictionaries({"family": st.just("resnet"),
                           "embedding": st.fixed_dictionaries({"dim": st.integers(1, 12), "vocab_size": st.integers(2, 30),
                                                               "char_dim": st.integers(0, 3)}),
                           "encoder": st.integers(0, 3).flatmap(lambda n: st.fixed_dictionaries({
                               "stem_channels": st.integers(1, 6), "stem_kernels": st.lists(st.integers(1, 4), min_size=1, max_size=3),
                               "stages": st.lists(st.integers(1, 2), min_size=n, max_size=n),
                               "channels": st.lists(st.integers(1, 6), min_size=n, max_size=n),
                               "block": st.sampled_from(["basic", "bottleneck"]), "preact": st.booleans(),
                               "skip": st.sampled_from(FAMILIES["resnet"].skips),
                               "norm": st.sampled_from(["batch", "layer", "none"]),
                               "downsample": st.sampled_from(["pool", "stride", "none"])})),
                           "head": st.fixed_dictionaries({"pool": st.sampled_from(["max", "mean", "kmax", "token"]), "k": st.integers(1, 3),
                                                          "hidden": st.lists(st.integers(1, 5), max_size=2), "num_classes": st.integers(0, 4)})}),
    st.fixed_dictionaries({"family": st.just("densenet"),
                           "embedding": st.fixed_dictionaries({"dim": st.integers(1, 12), "vocab_size": st.integers(2, 30),
                                                               "char_dim": st.integers(0, 3)}),
                           "encoder": st.fixed_dictionaries({
                               "stem_channels": st.integers(1, 8), "block_config": st.lists(st.integers(1, 3), min_size=1, max_size=3),
                               "growth_rate": st.integers(1, 6), "bottleneck": st.integers(0, 4),
                               "compression": st.floats(0.5, 1.0), "norm": st.sampled_from(["batch", "layer", "none"])})}),
    st.fixed_dictionaries({"family": st.just("transformer"),
                           "embedding": st.fixed_dictionaries({"vocab_size": st.integers(2, 30), "token_types": st.integers(0, 2),
                                                               "positions": st.sampled_from(["learned", "sinusoidal", "rotary", "none"]),
                                                               "max_len": st.integers(16, 40), "norm": st.booleans(),
                                                               "char_dim": st.integers(0, 3)}),
                           "encoder": st.fixed_dictionaries({
                               "layers": st.integers(1, 3), "d_model": st.sampled_from([4, 8, 12]), "heads": st.sampled_from([1, 2]),
                               "ff": st.integers(1, 20), "skip": st.sampled_from(FAMILIES["transformer"].skips),
                               "cls_token": st.booleans(), "stem_kernel": st.integers(0, 4)})}),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family_specs)
def test_random_valid_specs_count_what_they_build(doc):
    try:
        s = spec.from_dict(doc)
    except spec.SpecError:
        return
    model = build_model(s)
    assert count_params(model) == plan.count_params(s)
    model.eval()
    with torch.no_grad():
        out = model(small_batch(s, length=10))
    assert out.shape[0] == 3


def test_a_char_cnn_spells_unseen_words_and_ignores_padding():
    from rdzoo.text.tokenize import UNK_ID, char_ids

    s = spec.load(FAMILY_BASE["resnet"], {"embedding.char_dim": 4})
    embed = build_model(s).embed.eval()
    zebra, xylo = [UNK_ID, *char_ids("Zebra")], [UNK_ID, *char_ids("Xylo")]
    with torch.no_grad():
        a, b = embed(torch.tensor([[zebra]])), embed(torch.tensor([[xylo]]))
        padded = embed(torch.tensor([[zebra + [0, 0, 0]]]))
    assert not torch.allclose(a, b)  # two <unk> words differ by their spelling
    assert torch.allclose(a, padded)  # character padding takes no part in the max
    with pytest.raises(ValueError, match=r"this model reads \(B, T, 1 \+ characters\) ids"):
        embed(torch.tensor([[UNK_ID]]))
