"""Teacher outputs cached in a folder or in a study's database (rdzoo.distill.cache): computed
once per key, read by other processes, one value kept when two processes race, damaged
entries computed again; on SQLite, on the SQLite file beside a journal and, when
RDZOO_TEST_POSTGRES_URL names a server, on PostgreSQL.

The teachers here are stand-ins: a folder with the two files the key hashes, and
`teacher_outputs` replaced by a function of the texts that counts its calls, so no model is
trained or run."""

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
import torch

from rdzoo.distill import cache as cache_mod, targets as targets_mod
from rdzoo.errors import SpecError

LABELS = ["neg", "pos"]
BACKENDS = ["folder", "sqlite", "journal", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.skipif(
    not os.environ.get("RDZOO_TEST_POSTGRES_URL"), reason="set RDZOO_TEST_POSTGRES_URL to a PostgreSQL database")])]


@pytest.fixture(params=BACKENDS)
def where(request, tmp_path):
    """The cache as `teacher_targets` is given it: a folder or a storage URL."""
    if request.param == "folder":
        yield str(tmp_path / "targets")
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/study.db"
    elif request.param == "journal":
        yield f"journal://{tmp_path}/study.log"
    else:  # a schema of its own for each test, first on the search path of every connection
        url = os.environ["RDZOO_TEST_POSTGRES_URL"]
        name = f"rdzoo_test_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {name}"))
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
        engine.dispose()


@pytest.fixture
def teacher(tmp_path):
    """A stand-in teacher run: the files the cache key hashes."""
    run = tmp_path / "teacher"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"weights")
    (run / "tokenizer.json").write_text("{}")
    return SimpleNamespace(path=run)


def fake_outputs(run, texts, label_names, *args, **kwargs):
    """Logits that depend on each text: (texts, 2)."""
    lengths = torch.tensor([float(len(t)) for t in texts])
    return torch.stack([lengths, -lengths], 1), None


@pytest.fixture
def calls(monkeypatch):
    """The number of texts each teacher forward pass was asked for, in order."""
    seen = []

    def counted(run, texts, *args, **kwargs):
        seen.append(len(texts))
        return fake_outputs(run, texts, *args, **kwargs)

    monkeypatch.setattr(targets_mod, "teacher_outputs", counted)
    return seen


def rows(where: str) -> list:
    """The rows of the targets table (key, size, sha256, payload) in the database `where` names."""
    engine = sa.create_engine(cache_mod.DatabaseCache(where).url)
    with engine.connect() as conn:
        out = conn.execute(sa.text("SELECT key, size, sha256, payload FROM rdzoo_targets")).fetchall()
    engine.dispose()
    return out


def entries(where: str) -> int:
    """How many payloads the cache holds."""
    if cache_mod.kind_of(where) == "folder":
        return len(list(Path(where).glob("*.safetensors")))
    return len(rows(where))


# in another process: the teacher outputs of argv[2]'s texts from the cache argv[1], teacher argv[3];
# argv[4] "cached": fail if the teacher runs; "race": compute logits full of this process's id,
# once both processes have computed (a barrier of files in argv[5])
WORKER = """
import json, os, sys, time, torch
from types import SimpleNamespace
from rdzoo.distill import targets as t
where, texts, run, mode = sys.argv[1], json.loads(sys.argv[2]), SimpleNamespace(path=sys.argv[3]), sys.argv[4]
def outputs(run, texts, *args, **kwargs):
    if mode == "cached":
        raise SystemExit("the teacher ran")
    barrier = sys.argv[5]
    open(os.path.join(barrier, str(os.getpid())), "w").close()
    deadline = time.monotonic() + 120
    while len(os.listdir(barrier)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return torch.full((len(texts), 2), float(os.getpid())), None
t.teacher_outputs = outputs
out = t.teacher_targets([run], texts, {"seed": 0}, ["neg", "pos"], where)
print(json.dumps({"sum": out.logits.sum().item(), "first": out.logits[0, 0].item(), "source": out.source,
                  "sqlalchemy": "sqlalchemy" in sys.modules}))
"""


def worker(where, texts, teacher, mode, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, where, json.dumps(texts), str(teacher.path), mode, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_teacher_outputs_are_computed_once_per_key_and_read_by_another_process(where, teacher, calls):
    texts = ["a good film", "bad", "not bad at all"]
    first = targets_mod.teacher_targets([teacher], texts, {"seed": 0}, LABELS, where)
    assert calls == [3] and first.logits.shape == (3, 2) and entries(where) == 1
    if cache_mod.kind_of(where) == "database":
        assert first.source.endswith("(table rdzoo_targets, key " + targets_mod.cache_key(
            [teacher], texts, {"seed": 0}, LABELS) + ")")
    again = targets_mod.teacher_targets([teacher], texts, {"seed": 0}, LABELS, where)
    assert calls == [3] and torch.equal(again.logits, first.logits) and again.source == first.source
    # other settings: another key, computed and kept beside the first
    targets_mod.teacher_targets([teacher], texts, {"seed": 1}, LABELS, where)
    assert calls == [3, 3] and entries(where) == 2
    # another process (a search worker) reads them without running the teacher; the folder without SQLAlchemy
    out = result(worker(where, texts, teacher, "cached"))
    assert out["sum"] == pytest.approx(first.logits.sum().item()) and out["source"] == first.source
    assert out["sqlalchemy"] == (cache_mod.kind_of(where) == "database")


def test_two_processes_that_compute_the_same_key_at_once_keep_one_value(where, teacher, tmp_path):
    """Both find the cache empty and compute (a barrier holds each until the other has computed
    too); the first to store wins, and the other goes on with the winner's outputs."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    texts = ["one text", "another"]
    procs = [worker(where, texts, teacher, "race", str(barrier)) for _ in range(2)]
    outs = [result(p) for p in procs]
    pids = {int(name) for name in os.listdir(barrier)}
    assert pids == {p.pid for p in procs}  # both computed
    assert outs[0]["first"] == outs[1]["first"] and int(outs[0]["first"]) in pids
    assert entries(where) == 1
    kept = targets_mod.teacher_targets([teacher], texts, {"seed": 0}, LABELS, where)  # nothing to compute here
    assert kept.logits[0, 0].item() == outs[0]["first"]
    assert not list(tmp_path.rglob("*.tmp"))


def damage(where: str, how: str) -> None:
    """Damage the one cached payload: cut it short, change a byte of it, or replace it by bytes
    that are no safetensors file, keeping a database row's size and SHA-256 true to the payload
    where `how` ends in "+sum"."""
    if cache_mod.kind_of(where) == "folder":
        (path,) = Path(where).glob("*.safetensors")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if how == "short" else b"not a safetensors file")
        return
    (row,) = rows(where)
    data = bytes(row.payload)
    payload = {"short": data[: len(data) // 2], "flipped": data[:-1] + bytes([data[-1] ^ 1]),
               "garbage+sum": b"{\"not\": \"safetensors\"}"}[how]
    size, digest = (len(payload), cache_mod.hashlib.sha256(payload).hexdigest()) if how.endswith("+sum") \
        else (row.size, row.sha256)
    engine = sa.create_engine(cache_mod.DatabaseCache(where).url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE rdzoo_targets SET payload = :p, size = :s, sha256 = :d"),
                     {"p": payload, "s": size, "d": digest})
    engine.dispose()


@pytest.mark.parametrize("how", ["short", "flipped", "garbage+sum"])
def test_a_damaged_entry_is_told_and_computed_again(where, teacher, calls, how):
    if cache_mod.kind_of(where) == "folder" and how == "flipped":
        pytest.skip("a file keeps no checksum: a changed logit is read as it is")
    texts = ["a good film", "bad"]
    first = targets_mod.teacher_targets([teacher], texts, {"seed": 0}, LABELS, where)
    damage(where, how)
    again = targets_mod.teacher_targets([teacher], texts, {"seed": 0}, LABELS, where)
    assert calls == [2, 2] and torch.equal(again.logits, first.logits) and entries(where) == 1
    targets_mod.teacher_targets([teacher], texts, {"seed": 0}, LABELS, where)
    assert calls == [2, 2]  # stored whole again


def test_an_entry_for_other_texts_is_not_taken(where, teacher, calls):
    """A payload that holds another number of texts than asked for is damaged, not used."""
    texts = ["a good film", "bad"]
    store = cache_mod.open_cache(where)
    key = targets_mod.cache_key([teacher], texts, {"seed": 0}, LABELS)
    store.put(key, targets_mod.encode_targets(targets_mod.Targets(torch.zeros(5, 2)), {}))
    out = targets_mod.teacher_targets([teacher], texts, {"seed": 0}, LABELS, where)
    assert calls == [2] and out.logits.shape == (2, 2) and entries(where) == 1


def test_the_cache_is_named_by_a_folder_or_a_storage_url(tmp_path):
    assert type(cache_mod.open_cache(tmp_path / "t")) is cache_mod.FolderCache
    assert type(cache_mod.open_cache(str(tmp_path / "t"))) is cache_mod.FolderCache
    journal = cache_mod.open_cache(f"journal://{tmp_path}/s.log")
    assert type(journal) is cache_mod.DatabaseCache and journal.url == f"sqlite:///{tmp_path}/s.log.results.db"
    assert cache_mod.open_cache(f"sqlite:///{tmp_path}/s.db").url == f"sqlite:///{tmp_path}/s.db"
    with pytest.raises(SpecError, match=r"^targets: 'sqllite:///x.db': no database .*did you mean 'sqlite:///x.db'"):
        cache_mod.open_cache("sqllite:///x.db")
    db = tmp_path / "study.db"
    sqlite3.connect(db).close()
    with pytest.raises(SpecError, match=rf"^targets: {db} is a file, not a folder; .*sqlite:///{db}"):
        cache_mod.open_cache(str(db))


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_the_targets_table_made_before_any_study_does_not_keep_a_search_from_the_database(tmp_path, teacher, calls,
                                                                                          kind):
    import optuna

    from rdzoo.storage import make_storage, results_url
    from rdzoo.store import Store

    url = f"sqlite:///{tmp_path}/study.db" if kind == "sqlite" else f"journal://{tmp_path}/study.log"
    targets_mod.teacher_targets([teacher], ["a text"], {}, LABELS, url)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.create_study(study_name="s", storage=make_storage(url))  # as a search opens its storage
    Store.open(url, create=True).engine.dispose()
    path = results_url(url)[len("sqlite:///"):]
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {"rdzoo_targets", "rdzoo_results"} <= tables


def test_a_database_that_cannot_be_used_is_one_error_naming_it(tmp_path, teacher, calls):
    from rdzoo.errors import StoreError

    (tmp_path / "not.db").write_text("this is not a database " * 100)
    with pytest.raises(StoreError, match=r"not.db: cannot open this storage \(file is not a database\)"):
        targets_mod.teacher_targets([teacher], ["a text"], {}, LABELS, f"sqlite:///{tmp_path}/not.db")
    assert calls == []
