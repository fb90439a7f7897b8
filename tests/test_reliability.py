"""Many workers, killed workers and shared databases, for real: subprocesses, SIGKILL,
SQLite with four writers, and PostgreSQL when RDZOO_TEST_POSTGRES_URL names a server.
They take minutes, so they are marked slow: `python -m pytest -m slow` runs them, and
so does .ci/run."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

TINY = {
    "name": "tiny",
    "fixed": {"family": "resnet", "embedding": {"dim": 16, "vocab_size": 200, "max_len": 32},
              "encoder": {"stages": [1], "channels": 16, "stem_channels": 16},
              "train": {"epochs": 4, "batch_size": 32, "lr": 0.01}},
    "choose": {"encoder.skip": {"choice": ["none", "residual", "gated", "rezero"]},
               "train.lr": {"float": [0.001, 0.02], "log": True}},
}


def search_cmd(tmp_path, storage, trials, *extra, space_dict=TINY):
    space = tmp_path / "tiny.yaml"
    space.write_text(yaml.safe_dump(space_dict))
    return [sys.executable, "-m", "rdzoo.cli", "search", "--space", str(space), "--data", "synthetic",
            "--trials", str(trials), "--storage", storage, "--study", "rel", "--pruner", "none",
            "--quiet", "--top", "0", "--no-final", *extra]


def states(db):
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM trials GROUP BY state").fetchall())


@pytest.mark.slow
def test_sigkill_mid_trial_loses_nothing(tmp_path):
    db = tmp_path / "kill.db"
    cmd = search_cmd(tmp_path, f"sqlite:///{db}", 6, "--heartbeat", "1", "--seed", "0")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline:
        time.sleep(0.3)
        if db.exists():
            try:
                s = states(db)
            except sqlite3.OperationalError:
                continue
            if s.get("COMPLETE", 0) >= 2 and s.get("RUNNING", 0) == 1:
                break
    else:
        proc.kill()
        pytest.fail(f"the search never reached a running trial: {proc.stderr.read()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        done_before = dict(conn.execute("SELECT number, trial_id FROM trials WHERE state = 'COMPLETE'").fetchall())
        killed = conn.execute("SELECT number FROM trials WHERE state = 'RUNNING'").fetchone()[0]
        rows_before = {r[0] for r in conn.execute("SELECT trial FROM rdzoo_results WHERE state = 'COMPLETE'")}
    assert set(done_before) <= rows_before | set(done_before)  # rows may lag Optuna by one commit, never lead it

    restart = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        final = dict(conn.execute("SELECT number, state FROM trials").fetchall())
        rows = dict(conn.execute("SELECT trial, state FROM rdzoo_results").fetchall())
        retried = conn.execute("SELECT count(*) FROM trial_user_attributes WHERE key = 'retry_of' AND value_json = ?",
                               (str(killed),)).fetchone()[0]
    assert all(final[n] == "COMPLETE" for n in done_before)  # nothing finished was lost
    assert all(rows.get(n) == "COMPLETE" for n in done_before)  # and each has its results row
    assert final[killed] == "FAIL" and retried >= 1  # the killed trial failed and was re-queued
    assert sum(1 for s in final.values() if s in ("COMPLETE", "PRUNED")) == 6
    assert set(rows) <= set(final)  # no results row for a trial Optuna does not have


@pytest.mark.slow
def test_four_sqlite_workers_finish_every_trial_without_lock_errors(tmp_path):
    db = tmp_path / "four.db"
    proc = subprocess.run(search_cmd(tmp_path, f"sqlite:///{db}", 12, "--workers", "4"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "locked" not in proc.stderr.lower()
    s = states(db)
    with sqlite3.connect(db) as conn:
        errors = [r[0] for r in conn.execute("SELECT error FROM rdzoo_results WHERE error IS NOT NULL")]
        workers = conn.execute("SELECT count(DISTINCT value_json) FROM trial_user_attributes WHERE key = 'worker'").fetchone()[0]
    assert s.get("COMPLETE", 0) + s.get("PRUNED", 0) == 12
    assert not any("locked" in e for e in errors)
    assert workers >= 2  # the trials really were spread over processes


def test_workers_show_each_failed_trial(tmp_path):
    failing = {"name": "failing", "choose": {}, "fixed": {
        "family": "resnet", "embedding": {"dim": 16, "vocab_size": 200, "max_len": 32},
        "encoder": {"stages": [], "channels": [], "stem_channels": 32, "act": "gelu", "norm": "none", "skip": "none"},
        "train": {"epochs": 1, "optimizer": "sgd", "lr": 100, "clip_grad": 0, "max_norm": 0}}}
    db = tmp_path / "fail.db"
    proc = subprocess.run(search_cmd(tmp_path, f"sqlite:///{db}", 2, "--workers", "2", space_dict=failing),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    shown = [line for line in proc.stderr.splitlines() if line.startswith("trial ")]
    assert len(shown) == states(db)["FAIL"] >= 10  # one line per failed trial, from both children
    assert all(" failed: TrainingError: the loss became" in line for line in shown), shown


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("RDZOO_TEST_POSTGRES_URL"), reason="set RDZOO_TEST_POSTGRES_URL to a PostgreSQL database")
def test_two_workers_share_a_postgresql_study(tmp_path):
    import sqlalchemy as sa

    url = os.environ["RDZOO_TEST_POSTGRES_URL"]
    study = f"pg-{os.getpid()}-{int(time.time())}"
    cmd = search_cmd(tmp_path, url, 6)
    cmd[cmd.index("--study") + 1] = study
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.text(
            "SELECT t.state, count(*) FROM trials t JOIN studies s ON t.study_id = s.study_id "
            "WHERE s.study_name = :s GROUP BY t.state"), {"s": study}).fetchall())
        pids = conn.execute(sa.text(
            "SELECT count(DISTINCT a.value_json) FROM trial_user_attributes a JOIN trials t ON a.trial_id = t.trial_id "
            "JOIN studies s ON t.study_id = s.study_id WHERE s.study_name = :s AND a.key = 'worker'"), {"s": study}).scalar()
        rows = conn.execute(sa.text("SELECT count(*) FROM rdzoo_results WHERE study = :s AND state IN ('COMPLETE', 'PRUNED')"),
                            {"s": study}).scalar()
    assert counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) == 6 and rows == 6
    assert pids == 2  # both workers pulled trials


@pytest.mark.slow
def test_journal_storage_recovers_a_killed_worker(tmp_path):
    journal = tmp_path / "study.log"
    cmd = search_cmd(tmp_path, f"journal://{journal}", 4, "--seed", "0")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    import optuna

    deadline = time.time() + 180
    study = None
    while time.time() < deadline:
        time.sleep(0.3)
        if not journal.exists():
            continue
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        try:
            study = optuna.load_study(study_name="rel", storage=JournalStorage(JournalFileBackend(str(journal))))
        except KeyError:  # the journal file is there before the study's creation is written to it
            continue
        s = [t.state.name for t in study.trials]
        if s.count("COMPLETE") >= 1 and s.count("RUNNING") == 1:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    restart = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.load_study(study_name="rel", storage=JournalStorage(JournalFileBackend(str(journal))))
    names = [t.state.name for t in study.trials]
    assert names.count("COMPLETE") + names.count("PRUNED") == 4 and "RUNNING" not in names
    assert names.count("FAIL") >= 1


# --- another program's write lock ---------------------------------------------------------

ONE = {"name": "one", "fixed": {"family": "resnet", "embedding": {"dim": 16, "vocab_size": 200, "max_len": 32},
                                "encoder": {"stages": [1], "channels": 16, "stem_channels": 16},
                                "train": {"epochs": 2, "batch_size": 64, "lr": 0.01}}}


def one_trial_search(tmp_path, db, trials=1):
    from rdzoo.nas import SearchConfig
    from rdzoo.space import load_space

    space = tmp_path / "one.yaml"
    space.write_text(yaml.safe_dump(ONE))
    return SearchConfig(space=load_space(str(space)), data_name="synthetic", study="locked", storage=f"sqlite:///{db}",
                        trials=trials, pruner="none")


def small_data():
    from rdzoo.text.data import load_data

    data = load_data("synthetic")
    data.train = data.train.subset(list(range(300)))
    return data


def hold_write_lock(db):
    """What a database browser with unsaved changes holds: another connection's write transaction."""
    browser = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    browser.execute("BEGIN EXCLUSIVE")
    return browser


def test_a_write_lock_held_when_the_search_starts_is_one_error_naming_it(tmp_path, monkeypatch):
    """It was a traceback blaming "invalid data in the commit" (Optuna's StorageInternalError)."""
    import optuna

    from rdzoo.errors import StoreError
    from rdzoo.nas.loop import run_trials
    from rdzoo.store import Store

    monkeypatch.setenv("RDZOO_BUSY_TIMEOUT", "0.3")
    db = tmp_path / "s.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{db}")
    browser = hold_write_lock(db)
    try:
        for start in (lambda: run_trials(one_trial_search(tmp_path, db), small_data()),
                      lambda: Store.open(str(db), create=True)):
            with pytest.raises(StoreError) as caught:
                start()
            said = str(caught.value)
            assert said.startswith(f"{db}: another program holds this SQLite database's write lock (rdzoo waited 0.")
            assert "RDZOO_BUSY_TIMEOUT" in said and "invalid data" not in said and "\n" not in said
    finally:
        browser.close()


def test_a_trial_waits_out_a_write_lock_taken_while_it_trains_and_keeps_its_result(tmp_path, monkeypatch):
    """The lock is taken as the trial starts training and released only once rdzoo has said it is
    waiting for it: the trial's result is written, not failed with a false reason and dropped."""
    from rdzoo.query import Results
    from rdzoo.nas.loop import run_trials

    monkeypatch.setenv("RDZOO_BUSY_TIMEOUT", "0.3")
    db = tmp_path / "s.db"
    held = {}

    class Display:
        warned: list = []

        def started(self, study, finished, score):
            pass

        def trial_started(self, number, family, finished):
            held["browser"] = hold_write_lock(db)

        def trial_finished(self, *args):
            pass

        def warn(self, text):
            self.warned.append(text)
            held.pop("browser").close()  # the browser's changes written or reverted

    display = Display()
    outcome = run_trials(one_trial_search(tmp_path, db), small_data(), display)
    assert outcome.finished == 1 and "browser" not in held
    assert len(display.warned) == 1 and display.warned[0].startswith(
        f"{db}: another program holds this SQLite database's write lock (rdzoo has waited 0.")
    assert "the running trial keeps its work" in display.warned[0]
    assert states(db) == {"COMPLETE": 1}
    rows = Results(f"sqlite:///{db}").best("locked")
    assert len(rows) == 1 and rows[0].dev_accuracy is not None and rows[0].error is None
