import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rdzoo
from rdzoo import plan, spec
from rdzoo.families import FAMILIES
from rdzoo.skips import SKIP_TYPES
from rdzoo.spec import SpecError


def load_text(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return spec.load(str(path))


def test_zoo_specs_are_explicit_after_resolution():
    s = spec.load("transformer-text-small")
    assert s.embedding.dim == s.encoder.d_model == 256
    assert s.encoder.ff == 1024 and s.encoder.norm_position == "pre"
    r = spec.load("resnet-text-18")
    assert r.encoder.channels == [64, 128, 256, 512] and r.head.pool == "max"


def test_round_trip_through_yaml_is_identity(tmp_path):
    for name in rdzoo.list_models():
        s = spec.load(name)
        again = load_text(tmp_path, s.to_yaml())
        assert again == s, name


@pytest.mark.parametrize("text, path, words", [
    ("family: resnet\nencoder: {stagse: [1]}", "encoder.stagse", ["unknown key", "did you mean 'stages'"]),
    ("family: resnet\nencoder: {stages: 2}", "encoder.stages", ["expected a list"]),
    ("family: resnet\nencoder: {stages: [1, x]}", "encoder.stages[1]", ["expected an integer", "'x'"]),
    ("family: densenet\nencoder: {compression: 1.5}", "encoder.compression", ["out of range", "at most 1"]),
    ("family: densenet\nencoder: {compression: 0}", "encoder.compression", ["greater than 0"]),
    ("family: densenet\nencoder: {growth_rate: -4}", "encoder.growth_rate", ["at least 1"]),
    ("family: densenet\nencoder: {skip: residual}", "encoder.skip", ["not supported by the densenet family", "dense"]),
    ("family: resnet\nencoder: {skip: dwa}", "encoder.skip", ["supports: none, residual, gated, rezero"]),
    ("family: resnet\nencoder: {skip: rezreo}", "encoder.skip", ["did you mean 'rezero'"]),
    ("family: transfomer", "family", ["did you mean 'transformer'"]),
    ("family: transformer\nencoder: {d_model: 100, heads: 3}", "encoder.heads", ["do not divide"]),
    ("family: transformer\nencoder: {dropout: .nan}", "encoder.dropout", ["finite"]),
    ("family: transformer\nembedding: {dim: 64}", "embedding.dim", ["d_model"]),
    ("family: resnet\nencoder: {stages: [1, 1], channels: [8]}", "encoder.channels", ["one width per stage"]),
    ("family: resnet\nembedding: {positions: rotary}", "embedding.positions", ["rotary"]),
    ("family: resnet\nencoder: {preact: 1}", "encoder.preact", ["true or false"]),
    ("family: resnet\nhead: {pool: avg}", "head.pool", ["max, mean, first, kmax"]),
])
def test_errors_name_the_key_path(tmp_path, text, path, words):
    with pytest.raises(SpecError) as err:
        load_text(tmp_path, text)
    assert err.value.path == path
    for word in words:
        assert word in str(err.value)


def test_unknown_zoo_name_suggests_the_closest():
    with pytest.raises(SpecError, match="did you mean 'resnet-text-18'"):
        spec.load("resnet-text-81")


def test_python_tags_are_refused(tmp_path):
    with pytest.raises(SpecError, match=r"line 1, column 9: the tag !!python/object/apply:os.system is not allowed"):
        load_text(tmp_path, "family: !!python/object/apply:os.system ['echo hi']\n")


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(SpecError, match="expands to more than"):
        load_text(tmp_path, "\n".join(lines))


def test_deep_nesting_and_huge_files_are_refused(tmp_path):
    with pytest.raises(SpecError, match="nested"):
        load_text(tmp_path, "a: " + "[" * 100 + "]" * 100)
    with pytest.raises(SpecError, match="too large"):
        load_text(tmp_path, "# " + "x" * 2_000_000)


def test_absurd_sizes_are_refused_before_allocation():
    with pytest.raises(SpecError, match="over the limit"):
        spec.load("transformer-text-base", ["encoder.layers=5000", "encoder.d_model=8192", "encoder.heads=8"])
    small = spec.load("kim-cnn", max_params=1e9)
    with pytest.raises(SpecError, match="max_params"):
        spec.load("kim-cnn", max_params=plan.count_params(small) - 1)


def test_overrides_coerce_types_and_lists():
    s = spec.load("densenet-text-121", ["encoder.growth_rate=24", "encoder.block_config=[6,12,24]",
                                        "encoder.compression=0.75", "encoder.memory_efficient=true"])
    assert s.encoder.growth_rate == 24 and s.encoder.block_config == [6, 12, 24]
    assert s.encoder.compression == 0.75 and s.encoder.memory_efficient is True
    s = spec.load("resnet-text-18", {"encoder.channels": 32, "head": {"num_classes": 6}})
    assert s.encoder.channels == [32, 32, 32, 32] and s.head.num_classes == 6
    with pytest.raises(SpecError, match="key.path=value"):
        spec.load("resnet-text-18", ["encoder.channels"])


def test_base_inheritance_from_name_and_relative_path(tmp_path):
    (tmp_path / "parent.yaml").write_text("base: resnet-text-18\nname: parent\nencoder: {skip: gated}\n")
    child = load_text(tmp_path, "base: parent.yaml\nencoder: {stages: [1, 1], channels: 64}\n", "child.yaml")
    assert child.family == "resnet" and child.encoder.skip == "gated"
    assert child.encoder.stages == [1, 1] and child.encoder.channels == [64, 64]
    assert child.name == "parent-custom"
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(SpecError, match="cycle"):
        spec.load(str(tmp_path / "loop.yaml"))


def test_head_none_gives_a_bare_encoder():
    s = spec.load("bert-base-arch")
    assert s.head.num_classes == 0 and s.head.pool == "first"
    assert plan.num_features(s) == 768


# --- fuzzing -------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(list(SKIP_TYPES) + list(FAMILIES)))
documents = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=5),
    st.dictionaries(st.sampled_from(["family", "encoder", "embedding", "head", "train", "stages", "channels",
                                     "layers", "d_model", "heads", "skip", "growth_rate", "block_config",
                                     "compression", "dim", "vocab_size", "num_classes", "pool", "k", "x"]),
                    children, max_size=6)), max_leaves=20)

ZOO = [spec.load(n).to_dict() for n in rdzoo.list_models()]
KEY_PATHS = [("encoder", k) for k in ("stages", "channels", "layers", "d_model", "heads", "growth_rate",
                                      "block_config", "compression", "skip", "bottleneck", "ff", "kernel_size")] + \
            [("embedding", k) for k in ("dim", "vocab_size", "max_len", "positions")] + [("head", "k"), ("head", "pool")]


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents_raise_only_spec_error(doc):
    try:
        spec.from_dict(doc)
    except SpecError:
        pass


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ZOO), st.lists(st.tuples(st.sampled_from(KEY_PATHS), scalars | st.lists(scalars, max_size=4)), max_size=3))
def test_mutated_zoo_specs_raise_only_spec_error(base, mutations):
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for (section, key), value in mutations:
        doc[section][key] = value
    try:
        s = spec.from_dict(doc)
    except SpecError:
        return
    assert plan.count_params(s) <= spec.DEFAULT_MAX_PARAMS
    assert math.isfinite(plan.count_params(s))


def test_yaml_text_fuzz_raises_only_spec_error(tmp_path):
    for text in ["", "[", "{a: 1", "- - -", "family: [", "? x", "!!binary AAAA", "family: resnet\n\tencoder: 1",
                 yaml.safe_dump({"family": "resnet", "encoder": {"stages": [10**9]}})]:
        with pytest.raises(SpecError):
            load_text(tmp_path, text)


@pytest.mark.parametrize("name, key", [("densenet-sent", "encoder.block_config"), ("kim-cnn", "encoder.stem_kernels")])
def test_a_list_that_needs_an_item_refuses_an_empty_one(name, key):
    with pytest.raises(SpecError, match=rf"^{key}: needs at least 1 item, got none"):
        spec.load(name, {key: []})
