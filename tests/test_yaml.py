"""YAML means what is written, or is refused with file, line and column: duplicate keys,
scalars that YAML 1.1 and 1.2 read differently, merge keys, non-text keys, tags outside JSON's
types, keys set twice on the command line or in a search space."""

import subprocess
import sys

import pytest
import yaml

from rdzoo import spec
from rdzoo.errors import SpecError
from rdzoo.space import load_space, parse_space
from rdzoo.yamlio import dump_yaml, parse_yaml


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, line, column, first", [
    ("base: kim-cnn\ntrain: {lr: 0.1}\nencoder: {dropout: 0.2}\ntrain: {epochs: 3}\n", 4, 1, "line 2, column 1"),
    ("base: kim-cnn\ntrain:\n  epochs: 2\n  lr: 0.1\n  epochs: 3\n", 5, 3, "line 3, column 3"),
    ("base: kim-cnn\ntrain: {epochs: 2, lr: 0.1, epochs: 3}\n", 2, 29, "line 2, column 9"),
    ("base: kim-cnn\nhead: {hidden: [{a: 1, a: 2}]}\n", 2, 24, "line 2, column 18"),
])
def test_a_key_given_twice_is_refused_naming_both_places(tmp_path, text, line, column, first):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        spec.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line {line}, column {column}: key ")
    assert f"is given twice in one mapping (first at {first})" in message


def test_a_duplicate_key_in_a_base_spec_names_that_file(tmp_path):
    parent = write(tmp_path, "base: kim-cnn\nname: parent\nname: other\n", "parent.yaml")
    child = write(tmp_path, "base: parent.yaml\ntrain: {epochs: 2}\n", "child.yaml")
    with pytest.raises(SpecError, match=f"^{parent}, line 3, column 1: key 'name' is given twice"):
        spec.load(child)


def test_a_duplicate_key_in_a_search_space_is_refused(tmp_path):
    path = write(tmp_path, "fixed: {family: resnet}\nchoose:\n  train.lr: {float: [0.001, 0.01]}\n"
                           "  train.lr: {float: [0.01, 0.1]}\n", "space.yaml")
    with pytest.raises(SpecError, match=r"line 4, column 3: key 'train.lr' is given twice .*first at line 3"):
        load_space(path)


def test_a_key_chosen_in_two_places_of_a_search_space_is_refused():
    data = {"choose": {"train.lr": {"float": [0.001, 0.01]},
                       "family": {"resnet": {"train.lr": {"float": [0.01, 0.1]}}, "densenet": {}}}}
    with pytest.raises(SpecError, match=r"choose.family.resnet.train.lr: choose.train.lr sets it too"):
        parse_space(data)
    section = {"choose": {"family": {"resnet": {"train": {"choice": [{"lr": 0.1}]}, "train.lr": {"float": [0.01, 0.1]}}}}}
    with pytest.raises(SpecError, match=r"choose.family.resnet.train.lr: choose.family.resnet.train sets it too"):
        parse_space(section)


@pytest.mark.parametrize("value, read", [("no", "false"), ("off", "false"), ("Yes", "true"), ("ON", "true")])
def test_yaml_1_1_booleans_are_refused_for_text_and_switches(tmp_path, value, read):
    for text, column in ((f"base: kim-cnn\nname: {value}\n", 7), (f"base: kim-cnn\nembedding: {{lowercase: {value}}}\n", 24)):
        path = write(tmp_path, text)
        with pytest.raises(SpecError) as err:
            spec.load(path)
        assert str(err.value) == (f"{path}, line 2, column {column}: {value!r} is {read} in YAML 1.1 but the text "
                                  f"{value!r} in YAML 1.2: write {read} for the switch, or \"{value}\" (quoted) for the text")
    assert spec.load(write(tmp_path, f"base: kim-cnn\nname: '{value}'\n")).name == value
    assert spec.load(write(tmp_path, "base: kim-cnn\nembedding: {lowercase: false}\n")).embedding.lowercase is False


@pytest.mark.parametrize("text, message", [
    ("epochs: 010", "'010' is 8 in YAML 1.1 (a leading 0 means octal) but 10 in YAML 1.2: write 10, or 0o10 for octal"),
    ("epochs: 1_000", "'1_000' is the number 1000 in YAML 1.1 but text in YAML 1.2: write 1000 for the number"),
    ("epochs: 1:30", "'1:30' is the number 90 in YAML 1.1 but text in YAML 1.2: write 90 for the number"),
    ("optimizer: 2024-01-01", "'2024-01-01' is a date in YAML 1.1 but text in YAML 1.2: write \"2024-01-01\" (quoted)"),
])
def test_numbers_and_dates_that_yaml_1_1_reads_otherwise_are_refused(text, message):
    with pytest.raises(SpecError) as err:
        parse_yaml(f"train: {{{text}}}\n", "s.yaml")
    assert str(err.value).startswith(f"s.yaml, line 1, column {len('train: {') + text.index(':') + 3}: {message}")


def test_numbers_mean_the_number_written():
    # PyYAML's YAML 1.1 resolver reads 1e-3 (no dot), 1e3 and 0o17 as text
    data = parse_yaml("a: [1e-3, 1e3, 2.5e-4, .5, 0o17, 0x1F, -3, +4, 09, .inf, -.inf, 0.1]\n", "x")
    assert data["a"][:10] == [0.001, 1000.0, 0.00025, 0.5, 15, 31, -3, 4, 9, float("inf")]
    assert [type(v) for v in data["a"]] == [float, float, float, float, int, int, int, int, int, float, float, float]
    assert yaml.safe_load("a: 1e-3")["a"] == "1e-3"  # what the old loader gave


def test_a_search_space_reads_1e_minus_4_as_a_number():
    space = parse_space(yaml_text_space := parse_yaml(
        "fixed: {family: resnet}\nchoose:\n  train.lr: {float: [1e-4, 3e-3], log: true}\n"
        "  train.weight_decay: {choice: [1e-4, 1e-2]}\n", "space.yaml"))
    assert space.common["train.lr"].low == 1e-4 and space.common["train.lr"].high == 3e-3
    assert space.common["train.weight_decay"].choices == (1e-4, 1e-2)
    assert yaml_text_space["choose"]["train.weight_decay"]["choice"] == [0.0001, 0.01]


def test_a_number_written_as_text_is_refused_with_a_hint(tmp_path):
    with pytest.raises(SpecError, match=r"train.epochs: expected an integer, got '3' \(text: write the number without quotes\)"):
        spec.load(write(tmp_path, "base: kim-cnn\ntrain: {epochs: '3'}\n"))
    with pytest.raises(SpecError, match=r"train.lr: expected a number, got '1e-3' \(text"):
        spec.load(write(tmp_path, "base: kim-cnn\ntrain: {lr: \"1e-3\"}\n"))
    assert spec.load(write(tmp_path, "base: kim-cnn\ntrain: {lr: 2e-3, epochs: 3}\n")).train.lr == 0.002


def test_merge_keys_are_refused(tmp_path):
    text = "base: kim-cnn\ntrain:\n  <<: {lr: 0.1, epochs: 2}\n  lr: 0.2\n"
    with pytest.raises(SpecError, match=r"line 3, column 3: '<<' is a merge key in YAML 1.1 .* base:"):
        spec.load(write(tmp_path, text))


@pytest.mark.parametrize("text, message", [
    ("train: {1: 2}", "line 1, column 9: the key 1 is a number: quote it (\"1\") for the text; keys are names"),
    ("train: {true: 2}", "line 1, column 9: the key true is a boolean"),
    ("train: {~: 2}", "line 1, column 9: a key is empty (null)"),
    ("? [a, b]\n: 1", "line 1, column 3: a key is a list"),
])
def test_keys_that_are_not_text_are_refused(text, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_yaml(text, "s.yaml")


@pytest.mark.parametrize("text, message", [
    ("a: !!int abc", "line 1, column 4: 'abc' is not an integer"),
    ("a: !!float x", "line 1, column 4: 'x' is not a number"),
    ("a: !!bool maybe", "line 1, column 4: 'maybe' is not true or false"),
    ("a: !!timestamp 2024-01-01", "line 1, column 4: the tag !!timestamp is not allowed"),
    ("a: !!binary AAAA", "line 1, column 4: the tag !!binary is not allowed"),
    ("a: !!set {x}", "line 1, column 4: the tag !!set is not allowed"),
    ("a: !!omap [b: 1, b: 2]", "line 1, column 4: the tag !!omap is not allowed"),
])
def test_tags_give_json_types_or_one_error(text, message):
    # an explicit tag whose text does not fit it was a ValueError (a traceback) before
    with pytest.raises(SpecError, match=f"^s.yaml, {message}"):
        parse_yaml(text, "s.yaml")
    assert parse_yaml("a: [!!int 7, !!float 1e-3, !!str no, !!bool true]", "x") == {"a": [7, 0.001, "no", True]}


def test_text_that_reads_otherwise_is_dumped_quoted_and_loads_back_in_yaml_1_1_and_1_2():
    data = {"name": "no", "description": "1e-3", "x": ["2024-01-01", "010", "1_000", "on", "<<", "y"], "lr": 1e-5}
    text = dump_yaml(data)
    assert parse_yaml(text, "dumped") == data == yaml.safe_load(text)


def test_override_keys_are_given_once():
    with pytest.raises(SpecError, match=r"^train.lr: set twice, by 'train.lr=1e-3' and 'train.lr=2e-3'; give each key once"):
        spec.load("kim-cnn", ["train.lr=1e-3", "train.lr=2e-3"])
    with pytest.raises(SpecError, match=r"^head.pool: set twice, by 'head=none' and 'head.pool=max'"):
        spec.load("kim-cnn", ["head=none", "head.pool=max"])
    with pytest.raises(SpecError, match=r"^train.lr: set twice, by 'train={lr: 0.1}' and 'train.lr=0.2'"):
        spec.load("kim-cnn", ["train={lr: 0.1}", "train.lr=0.2"])
    with pytest.raises(SpecError, match=r"^override train, line 1, column 11: key 'lr' is given twice"):
        spec.load("kim-cnn", ["train={lr: 0.1, lr: 0.2}"])
    s = spec.load("kim-cnn", ["train={epochs: 2}", "train.lr=2e-3"])  # separate keys of one section
    assert (s.train.epochs, s.train.lr) == (2, 0.002)


@pytest.mark.parametrize("args, message", [
    (["--set", "encoder.stages=[2,2"], "rdzoo: error: override encoder.stages: not valid YAML (line 2, column 1): "
                                      "did not find expected ',' or ']'"),
    (["--set", "name=off"], "rdzoo: error: override name, line 1, column 1: 'off' is false in YAML 1.1"),
    (["--set", "train.lr=1e-3", "--set", "train.lr=1e-4"], "rdzoo: error: train.lr: set twice"),
])
def test_cli_refuses_a_bad_override_in_one_line(args, message):
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", "show", "resnet-text-10", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(message) and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_cli_refuses_a_duplicate_key_in_one_line(tmp_path):
    path = write(tmp_path, "base: kim-cnn\ntrain: {lr: 0.1}\ntrain: {epochs: 3}\n")
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", "show", path], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (f"rdzoo: error: {path}, line 3, column 1: key 'train' is given twice in one mapping "
                                   "(first at line 2, column 1); YAML allows one, so keep one of them")


# --- what a derived spec is called ----------------------------------------------------------


def test_a_derived_spec_does_not_inherit_a_description_of_another_model(tmp_path):
    tiny = spec.load("transformer-text-tiny")
    derived = spec.load(write(tmp_path, "base: transformer-text-tiny\nencoder: {d_model: 256, heads: 4}\n"))
    assert derived.name == "transformer-text-tiny-custom"
    assert derived.description == (f"transformer-text-tiny with encoder.d_model, encoder.heads changed "
                                   f"(transformer-text-tiny: {tiny.description})")
    renamed = spec.load(write(tmp_path, "base: transformer-text-tiny\nname: tiny-copy\nencoder: {d_model: 128}\n"))
    assert renamed.name == "tiny-copy" and renamed.description == tiny.description  # the same model, d_model as before
    own = spec.load(write(tmp_path, "base: transformer-text-tiny\ndescription: wider\nencoder: {d_model: 256}\n"))
    assert own.description == "wider"
    many = spec.load(write(tmp_path, "base: kim-cnn\ntrain: {lr: 0.1, epochs: 2, seed: 3, patience: 1, batch_size: 8}\n"))
    assert many.description.startswith("kim-cnn with train.lr, train.epochs, train.seed, train.patience and 1 more key changed")


def test_the_zoo_keeps_its_own_descriptions():
    tagger = spec.load("densenet-tagger")  # derived from densenet-sent-char, described itself
    assert tagger.description.startswith("A part-of-speech tagger")
