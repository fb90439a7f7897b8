"""A family is one entry in one table: a toy family defined here, registered through
`families.register`, loads from a spec, counts its parameters before it is built, builds,
trains, and is a branch of a search space, with no edit anywhere else."""

import dataclasses
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import rdzoo
from rdzoo import plan, spec
from rdzoo.counts import linear
from rdzoo.families import FAMILIES, Family, get_family, register
from rdzoo.registry import build_model
from rdzoo.families.base import TextModel
from rdzoo.families.family import conv_defaults
from rdzoo.families.skip_layers import RULES, skip_rule
from rdzoo.fields import Act, bounded
from rdzoo.skips import SKIP_TYPES, get_skip
from rdzoo.spec import SpecError


@dataclass(frozen=True)
class ToyEncoder:
    """A stack of position-wise linear layers, each inside a skip rule."""

    layers: int = bounded(2, 1, 64)
    skip: str = "residual"
    act: Act = "relu"


def toy_params(s) -> int:
    d = s.embedding.dim
    return s.encoder.layers * (linear(d, d) + get_skip(s.encoder.skip).params(d))


class ToyText(TextModel):
    """(B, T) ids -> logits through `layers` linear layers with the spec's skip rule."""

    def __init__(self, s, **parts):
        super().__init__(s, **parts)
        d = s.embedding.dim
        self.stem = nn.Identity()
        self.stages = nn.ModuleList(nn.Linear(d, d) for _ in range(s.encoder.layers))
        self.skips = nn.ModuleList(skip_rule(s.encoder.skip, d, "channels_last", s.encoder.layers)
                                   for _ in range(s.encoder.layers))

    def encode(self, x, mask):
        """(B, T, d), (B, T) -> (B, T, d), (B, T)."""
        for layer, skip in zip(self.stages, self.skips):
            x = skip(x, torch.relu(layer(x)))
        return x, mask


TOY = Family("toy", ToyEncoder, ("none", "residual", "gated", "rezero"), ToyText, toy_params,
             lambda s: s.embedding.dim, conv_defaults, "a stack of linear layers")


@pytest.fixture
def toy():
    register(TOY)
    yield TOY
    del FAMILIES["toy"]


TOY_SPEC = {"family": "toy", "embedding": {"dim": 16, "vocab_size": 50, "max_len": 12},
            "encoder": {"layers": 3, "skip": "gated"}, "head": {"num_classes": 3}}


def test_a_registered_family_loads_counts_and_builds(toy):
    s = spec.load(TOY_SPEC)
    assert s.family == "toy" and s.encoder == ToyEncoder(layers=3, skip="gated")
    assert s.embedding.positions == "none" and s.head.pool == "max"  # the family's defaults were filled in
    model = rdzoo.build(TOY_SPEC)
    assert isinstance(model, ToyText)
    assert plan.count_params(s) == sum(p.numel() for p in model.parameters())
    logits = model(torch.randint(2, 50, (4, 7)))
    assert logits.shape == (4, 3)
    assert spec.load(s.to_dict()) == s  # a saved toy spec reloads to itself


def test_a_registered_family_trains(toy):
    from rdzoo.text.data import load_data
    from rdzoo.train import fit

    data = load_data("synthetic")
    data = dataclasses.replace(data, train=data.train.subset(range(200)), dev=data.dev.subset(range(50)),
                               test=data.test.subset(range(50)))
    result = fit(spec.load(TOY_SPEC, ["train.epochs=1", "train.batch_size=32"]), data)
    assert 0.0 <= result.metrics["test_accuracy"] <= 1.0
    assert result.metrics["params"] == sum(p.numel() for p in result.model.parameters())


def test_the_table_rules_apply_to_a_registered_family(toy):
    with pytest.raises(SpecError, match=r"encoder.skip: 'dense' is not supported by the toy family; it supports: "
                                        r"none, residual, gated, rezero"):
        spec.load({**TOY_SPEC, "encoder": {"skip": "dense"}})
    with pytest.raises(SpecError, match=r"encoder.width: unknown key; allowed keys: layers, skip, act"):
        spec.load({**TOY_SPEC, "encoder": {"width": 3}})
    with pytest.raises(SpecError, match="rotary positions act inside attention; the toy family has none"):
        spec.load({**TOY_SPEC, "embedding": {"positions": "rotary"}})
    with pytest.raises(SpecError, match="family: 'tyo' is not one of: resnet, densenet, transformer, toy; "
                                        "did you mean 'toy'"):
        spec.load({**TOY_SPEC, "family": "tyo"})


def test_a_registered_family_is_a_branch_of_a_search_space(toy):
    from rdzoo.space import check_space, parse_space

    space = parse_space({"fixed": {"embedding": {"dim": 16}}, "choose": {
        "family": {"toy": {"encoder.layers": {"int": [1, 3]}, "encoder.skip": {"choice": ["residual", "rezero"]}}}}}, "toy space")
    check_space(space)


def test_a_family_name_is_registered_once_and_unknown_names_fail(toy):
    with pytest.raises(ValueError, match="already registered"):
        register(TOY)
    assert get_family("toy") is TOY
    with pytest.raises(SpecError, match="family: 'no-such' is not one of"):
        get_family("no-such")


def test_every_skip_type_is_supported_by_a_family_and_every_supported_skip_is_known():
    supported = {k for family in FAMILIES.values() for k in family.skips}
    assert supported == set(SKIP_TYPES)
    assert set(SKIP_TYPES) - set(RULES) == {"dense"} and set(RULES) <= set(SKIP_TYPES)  # dense blocks concatenate


@pytest.mark.parametrize("name", sorted(SKIP_TYPES))
def test_a_skip_types_parameter_cost_is_its_modules(name):
    skip = get_skip(name)
    if name not in RULES:
        with pytest.raises(ValueError, match="no per-block rule"):
            skip_rule(name, 8)
        return
    for layout in ("channels_first", "channels_last"):
        rule = skip_rule(name, 8, layout, layers=4)
        assert sum(p.numel() for p in rule.parameters()) == skip.params(8)
        x = torch.randn(2, 8, 5) if layout == "channels_first" else torch.randn(2, 5, 8)
        assert rule(x, torch.randn_like(x)).shape == x.shape


def test_build_model_takes_an_import_string_or_a_class(toy):
    s = spec.load(TOY_SPEC)
    assert isinstance(build_model(s), ToyText)
    assert type(build_model(spec.load("kim-cnn"))).__name__ == "ResNetText"
