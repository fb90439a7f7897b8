"""Hostile input: fuzzed specs, search spaces and YAML text raise SpecError and nothing
else, each within a second (hypothesis' deadline), and the CLI answers with one line
and exit status 2. Together the fuzz tests below run over 10,000 cases."""

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rdzoo
from rdzoo import plan, spec
from rdzoo.registry import spec_path
from rdzoo.space import check_space, parse_space
from rdzoo.families import FAMILIES
from rdzoo.skips import SKIP_TYPES
from rdzoo.spec import SpecError
from rdzoo.yamlio import parse_yaml

def fuzz(n):
    return settings(max_examples=n, deadline=1000, suppress_health_check=list(HealthCheck), database=None,
                    derandomize=True)

KEYS = ["family", "name", "base", "embedding", "encoder", "head", "train", "stages", "channels", "layers", "d_model",
        "heads", "skip", "growth_rate", "block_config", "compression", "dim", "vocab_size", "max_len", "num_classes",
        "pool", "k", "hidden", "epochs", "lr", "kind", "positions", "ff", "bottleneck", "stem_kernels", "x"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.sampled_from(list(SKIP_TYPES) + list(FAMILIES) + ["none", "max", "word", "rotary"]),
                    st.integers(-3, 3), st.sampled_from([10**9, 10**18, -1, 0, 2**63]))
documents = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=6),
                                                      st.dictionaries(st.sampled_from(KEYS), c, max_size=7)),
                         max_leaves=30)
ZOO = [spec.load(n).to_dict() for n in rdzoo.list_models()]
SECTIONS = {s: sorted({k for z in ZOO for k in (z.get(s) or {})}) for s in ("embedding", "encoder", "head", "train")}
PATHS = [(s, k) for s, keys in SECTIONS.items() for k in keys]


def only_spec_error(fn, *args):
    try:
        return fn(*args)
    except SpecError:
        return None


@fuzz(4000)
@given(documents)
def test_fuzz_random_documents(doc):
    only_spec_error(spec.from_dict, doc)


@fuzz(4000)
@given(st.sampled_from(ZOO), st.lists(st.tuples(st.sampled_from(PATHS), scalars | st.lists(scalars, max_size=5)),
                                      min_size=1, max_size=4))
def test_fuzz_mutated_zoo_specs(base, mutations):
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for (section, key), value in mutations:
        doc[section][key] = value
    s = only_spec_error(spec.from_dict, doc)
    if s is not None:
        assert plan.count_params(s) <= spec.DEFAULT_MAX_PARAMS


params = st.one_of(scalars, st.fixed_dictionaries({"choice": st.lists(scalars | st.lists(st.integers(1, 4), max_size=3), max_size=4)}),
                   st.fixed_dictionaries({"int": st.lists(st.integers(-5, 300) | scalars, min_size=0, max_size=3)},
                                         optional={"step": scalars, "log": scalars}),
                   st.fixed_dictionaries({"float": st.lists(st.floats(-1, 2) | scalars, max_size=3)},
                                         optional={"log": scalars, "step": scalars}))
dotted = st.sampled_from([f"{s}.{k}" for s, k in PATHS] + ["encoder.nope", "family", "x.y.z", "train"])
spaces = st.fixed_dictionaries({}, optional={
    "name": scalars, "fixed": st.dictionaries(st.sampled_from(["family", "embedding", "train", "encoder", "x"]), documents, max_size=3),
    "choose": st.dictionaries(dotted, params, max_size=4).map(lambda d: d) | documents,
    "chose": scalars})
branchy = st.fixed_dictionaries({"choose": st.fixed_dictionaries({"family": st.dictionaries(
    st.sampled_from(list(FAMILIES) + ["resnt"]), st.dictionaries(dotted, params, max_size=4) | scalars, max_size=3)})})


@fuzz(3000)
@given(spaces | branchy)
def test_fuzz_search_spaces(doc):
    space = only_spec_error(parse_space, doc)
    if space is not None:
        only_spec_error(check_space, space)


ZOO_TEXT = [spec_path(n).read_text() for n in rdzoo.list_models()]


@fuzz(1000)
@given(st.sampled_from(ZOO_TEXT), st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(
    ["", ":", "[", "]", "{", "!!python/object:os.system", "&a", "*a", "\t", "- ", "\n  ", "1e999", ".nan", "-", "0x", "~"])),
    min_size=1, max_size=5))
def test_fuzz_yaml_text(text, edits):
    for at, piece in edits:
        at %= len(text) + 1
        text = text[:at] + piece + text[at + 1:]
    data = only_spec_error(parse_yaml, text, "fuzz")
    if isinstance(data, dict):
        data.pop("base", None)
        only_spec_error(spec.from_dict, data)


HOSTILE = {
    "python-tag.yaml": "family: !!python/object/apply:os.system ['echo pwned']\n",
    "bomb.yaml": "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)),
    "deep.yaml": "family: " + "[" * 5000 + "]" * 5000 + "\n",
    "huge.yaml": "# " + "x" * 3_000_000 + "\n",
    "wrong-type.yaml": "family: resnet\nencoder: {stages: lots}\n",
    "nan.yaml": "family: densenet\nencoder: {compression: .nan}\n",
    "inf.yaml": "family: transformer\nencoder: {d_model: .inf}\n",
    "negative.yaml": "family: densenet\nencoder: {growth_rate: -32}\n",
    "absurd.yaml": "family: transformer\nencoder: {layers: 10000, d_model: 65536, heads: 64}\n",
    "binary.yaml": "\x00\x01\x02\x03",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_cli_answers_hostile_files_with_one_line_and_exit_2(tmp_path, name):
    path = tmp_path / name
    path.write_text(HOSTILE[name], encoding="latin-1")
    # an absurd spec allocated would fail with a traceback or run past the timeout: it must be refused first
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", "show", str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rdzoo: error:"), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_non_rdzoo_database_and_newer_schema_get_clear_errors(tmp_path):
    import sqlite3

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("CREATE TABLE rdzoo_results (id INTEGER)")
        conn.execute("CREATE TABLE rdzoo_schema (version INTEGER)")
        conn.execute("INSERT INTO rdzoo_schema VALUES (99)")
    for db, message in ((junk, "cannot read"), (other, "not an rdzoo or Optuna database"), (newer, "newer rdzoo")):
        proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", "best", "--storage", str(db)],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_storages_that_cannot_be_opened_get_one_clear_error_with_the_password_masked(tmp_path):
    import importlib.util

    from rdzoo.errors import StoreError
    from rdzoo.query import Results
    from rdzoo.storage import make_storage
    from rdzoo.store import Store

    missing = tmp_path / "no-such-folder"
    cases = [(f"sqlite:///{missing}/s.db", "unable to open database file"),
             (f"journal://{missing}/s.log", "No such file or directory"),
             ("postgresql://rdzoo:secret@localhost:1/none", "port 1")]
    if importlib.util.find_spec("MySQLdb") is None:
        cases.append(("mysql://rdzoo:secret@localhost/none", "no database driver (MySQLdb)"))
    for url, cause in cases:
        openers = [lambda: make_storage(url)]
        if "@" in url:  # database servers; a missing SQLite file has its own error in the reader
            openers += [lambda: Store.open(url, create=True), lambda: Results(url)]
        for open_storage in openers:
            with pytest.raises(StoreError) as caught:
                open_storage()
            message = str(caught.value)
            assert cause in message and "secret" not in message and "\n" not in message, message
            assert "@" not in url or "rdzoo:***@localhost" in message
