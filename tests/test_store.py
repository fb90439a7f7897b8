"""The results table is a cache of Optuna's trials: what rdzoo shows is what Optuna holds.

Each test changes a study through Optuna's own API, as the `optuna` CLI,
optuna-dashboard or a user's script would, and checks `rdzoo studies`, `best`
and `export` on SQLite, on the journal file and, when RDZOO_TEST_POSTGRES_URL
names a server, on PostgreSQL. Trials are written as a search writes them
(Optuna's state first, then the row from the trial's `rdzoo` attribute), with
no training, so each test takes a fraction of a second.
"""

import dataclasses
import json
import os
import uuid

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState
from typer.testing import CliRunner

from rdzoo.cli import UsageError, app
from rdzoo.errors import StoreError
from rdzoo.query import Results
from rdzoo.storage import COLUMN_NAMES, make_storage
from rdzoo.store import Store

optuna.logging.set_verbosity(optuna.logging.ERROR)
SPEC = {"name": "s", "family": "resnet", "embedding": {"dim": 16, "vocab_size": 100, "max_len": 16},
        "encoder": {"stages": [1], "channels": 16, "stem_channels": 16, "skip": "residual"}, "head": {"num_classes": 2}}
STORAGES = ["sqlite", "journal", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.skipif(
    not os.environ.get("RDZOO_TEST_POSTGRES_URL"), reason="set RDZOO_TEST_POSTGRES_URL to a PostgreSQL database")])]


@pytest.fixture(params=STORAGES)
def storage(request, tmp_path):
    if request.param != "postgres":
        yield f"sqlite:///{tmp_path}/s.db" if request.param == "sqlite" else f"journal://{tmp_path}/s.log"
        return
    # a schema of its own for each test, found first on the search path of every connection
    url = os.environ["RDZOO_TEST_POSTGRES_URL"]
    name = f"rdzoo_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {name}"))
    sep = "&" if "?" in url else "?"
    yield f"{url}{sep}options=-csearch_path%3D{name}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {name} CASCADE"))
    engine.dispose()


def new_study(storage, name):
    study = optuna.create_study(study_name=name, storage=make_storage(storage), direction="maximize")
    Store.open(storage, create=True).engine.dispose()  # as `rdzoo search` does once the study exists
    return study


def finish(storage, study, accuracy, state=TrialState.COMPLETE, family="resnet"):
    """One trial as a search runs it: Optuna stores the final state, then rdzoo writes the row."""
    trial = study.ask()
    info = {"family": family, "skip": "residual", "spec": {**SPEC, "family": family}, "params": 1000,
            "dev_accuracy": accuracy, "test_accuracy": accuracy}
    trial.set_user_attr("rdzoo", info)
    frozen = study.tell(trial, accuracy if state == TrialState.COMPLETE else None, state=state)
    store = Store.open(storage)
    store.sync(study, make_storage(storage))  # the trial's row, from its attributes
    store.engine.dispose()
    return frozen


def cli(*args):
    """Exit status and output as `rdzoo` gives them (main maps UsageError to 2, StoreError to 1)."""
    out = CliRunner().invoke(app, list(args))
    if isinstance(out.exception, UsageError):
        return 2, str(out.exception)
    if isinstance(out.exception, StoreError):
        return 1, str(out.exception)
    assert out.exception is None or isinstance(out.exception, SystemExit), repr(out.exception)
    return out.exit_code, out.output


def studies(storage):
    code, out = cli("studies", "--storage", storage, "--json")
    assert code == 0, out
    return {s["study"]: s for s in json.loads(out)}


def best(storage, study, *extra):
    code, out = cli("best", "--storage", storage, "--study", study, "--top", "100", "--json", *extra)
    assert code == 0, out
    return [(r["trial"], r["dev_accuracy"]) for r in json.loads(out)]


def delete(storage, name):
    optuna.delete_study(study_name=name, storage=make_storage(storage))


def test_a_deleted_study_is_gone_and_a_new_one_under_its_name_does_not_mix_with_it(storage):
    old = new_study(storage, "s")
    for acc in (0.9, 0.8, 0.7):
        finish(storage, old, acc)
    assert best(storage, "s") == [(0, 0.9), (1, 0.8), (2, 0.7)]
    delete(storage, "s")
    assert studies(storage) == {}
    code, out = cli("best", "--storage", storage, "--study", "s")
    assert code == 2 and "no study 's'" in out
    code, out = cli("export", "--storage", storage, "--best")
    assert code == 2 and "no trials" in out

    # the same name again: on SQLite Optuna reuses the study id and the trial ids of the deleted study
    new = new_study(storage, "s")
    user_trial = new.ask()  # a user's script: a trial without rdzoo's results
    new.tell(user_trial, 0.99)
    code, out = cli("best", "--storage", storage, "--study", "s")
    assert code == 1 and "has no rdzoo results" in out  # none of the deleted study's rows
    code, out = cli("export", "--storage", storage, "--best")
    assert code == 1 and "study 's'" in out and "has no rdzoo results: its 1 complete trial(s)" in out
    code, out = cli("export", "--storage", storage, "--trial", "0")
    assert code == 2 and "trial 0 of study 's' is COMPLETE and has no results" in out
    finish(storage, new, 0.5)
    assert best(storage, "s") == [(1, 0.5)]
    assert studies(storage)["s"]["complete"] == 2 and studies(storage)["s"]["best_dev_accuracy"] == 0.5
    code, out = cli("export", "--storage", storage, "--best")
    assert code == 0 and "trial 1 of study s (dev accuracy 0.5000" in out


def test_a_study_whose_first_trial_failed_is_listed_with_its_failed_and_running_trials(storage):
    study = new_study(storage, "ctrl-c")
    interrupted = study.ask()  # Ctrl-C in the first trial: Optuna fails it, no row is written
    study.tell(interrupted, state=TrialState.FAIL)
    listed = studies(storage)["ctrl-c"]
    assert (listed["complete"], listed["pruned"], listed["failed"], listed["running"]) == (0, 0, 1, 0)
    assert listed["best_dev_accuracy"] is None and listed["last_update"] is not None
    code, out = cli("studies", "--storage", storage)
    assert code == 0 and "ctrl-c" in out and "no studies" not in out

    finish(storage, study, 0.6)  # resumed
    finish(storage, study, None, state=TrialState.FAIL)
    finish(storage, study, 0.4, state=TrialState.PRUNED)
    study.ask()  # a trial in flight
    listed = studies(storage)["ctrl-c"]
    assert (listed["complete"], listed["pruned"], listed["failed"], listed["running"]) == (1, 1, 2, 1)
    assert listed["best_dev_accuracy"] == 0.6
    assert best(storage, "ctrl-c") == [(1, 0.6)]
    code, out = cli("export", "--storage", storage, "--trial", "4")
    assert code == 2 and "trial 4 of study 'ctrl-c' is RUNNING" in out
    code, out = cli("best", "--storage", storage)  # the latest study: the one of the newest trial
    assert code == 0 and "best of study ctrl-c" in out


def test_a_study_renamed_by_copying_keeps_its_results_under_the_new_name(storage):
    study = new_study(storage, "before")
    for acc in (0.3, 0.8):
        finish(storage, study, acc)
    optuna.copy_study(from_study_name="before", from_storage=make_storage(storage), to_storage=make_storage(storage),
                      to_study_name="after")
    delete(storage, "before")  # Optuna's way to rename a study
    assert set(studies(storage)) == {"after"}
    assert best(storage, "after") == [(1, 0.8), (0, 0.3)]  # restored from the copied trials' attributes
    assert studies(storage)["after"]["best_dev_accuracy"] == 0.8
    code, out = cli("export", "--storage", storage, "--study", "after", "--trial", "0")
    assert code == 0 and "family: resnet" in out


def test_a_study_renamed_in_place_is_shown_under_its_new_name(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    study = new_study(storage, "old-name")
    finish(storage, study, 0.7)
    engine = sa.create_engine(storage)
    with engine.begin() as conn:  # what a rename in optuna-dashboard or by hand does
        conn.execute(sa.text("UPDATE studies SET study_name = 'new-name'"))
    engine.dispose()
    assert set(studies(storage)) == {"new-name"}
    assert best(storage, "new-name") == [(0, 0.7)]
    assert Results(storage).trial("new-name", 0).study == "new-name"


def test_trials_a_users_script_adds_are_counted_and_only_rdzoo_trials_are_ranked(storage):
    study = new_study(storage, "mixed")
    finish(storage, study, 0.5, family="densenet")
    finish(storage, study, 0.7)
    mine = optuna.load_study(study_name="mixed", storage=make_storage(storage))
    mine.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)  # no rdzoo results
    assert studies(storage)["mixed"]["complete"] == 5
    assert best(storage, "mixed") == [(1, 0.7), (0, 0.5)]
    assert best(storage, "mixed", "--family", "densenet") == [(0, 0.5)]


def test_rows_of_deleted_studies_are_cleaned_up_when_a_search_opens_the_storage(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    keep, gone = new_study(storage, "keep"), new_study(storage, "gone")
    finish(storage, keep, 0.5)
    finish(storage, gone, 0.6)
    delete(storage, "gone")
    store = Store.open(storage, create=True)
    with store.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT study, trial FROM rdzoo_results")).fetchall()
    store.engine.dispose()
    assert [tuple(r) for r in left] == [("keep", 0)]


def test_a_schema_1_table_is_upgraded_and_its_rows_of_deleted_studies_dropped(tmp_path):
    """A database written by the rdzoo before rows carried Optuna's study id and start time."""
    path = tmp_path / "old.db"
    storage = f"sqlite:///{path}"
    kept = new_study(storage, "kept")
    finish(storage, kept, 0.8)
    gone = new_study(storage, "gone")
    finish(storage, gone, 0.9)
    delete(storage, "gone")
    engine = sa.create_engine(storage)
    with engine.begin() as conn:  # back to schema 1: no study id, no start time, indexes by study name
        for (name,) in conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'index' "
                                            "AND name LIKE 'ix_rdzoo_results_study%'")).fetchall():
            conn.execute(sa.text(f"DROP INDEX {name}"))  # the top-N indexes of every score
        conn.execute(sa.text("ALTER TABLE rdzoo_results DROP COLUMN study_id"))
        conn.execute(sa.text("ALTER TABLE rdzoo_results DROP COLUMN datetime_start"))
        conn.execute(sa.text("CREATE INDEX ix_rdzoo_results_top ON rdzoo_results (study, state, dev_accuracy DESC, trial)"))
        conn.execute(sa.text("UPDATE rdzoo_schema SET version = 1"))
    engine.dispose()
    assert best(storage, "kept") == [(0, 0.8)]  # the reader upgrades the tables once
    engine = sa.create_engine(storage)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT study, study_id, datetime_start FROM rdzoo_results")).fetchall()
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("rdzoo_results")}
        version = conn.execute(sa.text("SELECT version FROM rdzoo_schema")).scalar()
    engine.dispose()
    kept_id = make_storage(storage).get_study_id_from_name("kept")
    assert len(rows) == 1 and rows[0][0] == "kept" and rows[0][1] == kept_id and rows[0][2] is not None
    assert "ix_rdzoo_results_top" not in indexes and "ix_rdzoo_results_study_top" in indexes and version == 2
    assert "ix_rdzoo_results_study_top_dev_entity_f1" in indexes


def test_every_column_is_written_and_read_back_from_the_one_column_list(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    study = new_study(storage, "cols")
    finish(storage, study, 0.75)
    row = Results(storage).best("cols", top=1)[0]
    assert tuple(dataclasses.asdict(row)) == COLUMN_NAMES
    study_id = make_storage(storage).get_study_id_from_name("cols")
    assert row.spec["family"] == "resnet" and row.objective_values == [0.75] and row.study_id == study_id


@pytest.mark.parametrize("column", ["dev_accuracy", "dev_entity_f1"])
def test_the_top_n_is_read_off_the_index_through_optunas_primary_key(tmp_path, column):
    """By each score's column: an entity study's top N by dev entity F1 was sorted, not read off an index."""
    import sqlite3

    from rdzoo.query import FROM, JOINED, SELECT

    storage = f"sqlite:///{tmp_path}/s.db"
    new_study(storage, "plan")
    for family in ("", "r.family = 'resnet' AND "):
        sql = (f"EXPLAIN QUERY PLAN SELECT {SELECT} FROM {FROM} WHERE r.study_id = 1 AND {family}"
               f"r.state = 'COMPLETE' AND t.state = 'COMPLETE' AND {JOINED} ORDER BY r.{column} DESC, r.trial LIMIT 5")
        with sqlite3.connect(tmp_path / "s.db") as conn:
            plan = " | ".join(r[3] for r in conn.execute(sql))
        assert "TEMP B-TREE" not in plan, plan  # no sort: rows come in index order
        assert "USING INDEX ix_rdzoo_results_study" in plan and "INTEGER PRIMARY KEY" in plan, plan


def test_a_studys_score_is_its_recorded_attribute_and_derived_once_for_an_older_study(storage):
    """The score is the study's (set when the search created it); a study stored before that gets
    it from its rows: entity F1 where the trials recorded one."""
    older = new_study(storage, "older")
    trial = older.ask()
    trial.set_user_attr("rdzoo", {"family": "resnet", "spec": SPEC, "dev_accuracy": 0.9, "dev_entity_f1": 0.4,
                                  "entity_f1": 0.3})
    older.tell(trial, 0.4)
    Store.open(storage).sync(older, make_storage(storage))
    plain = new_study(storage, "plain")
    finish(storage, plain, 0.7)
    results = Results(storage)
    assert results.score("older").name == "entity F1" and results.score("plain").name == "accuracy"
    plain.set_user_attr("score", "entity F1")  # what the search records: it, not the rows, decides
    assert Results(storage).score("plain").name == "entity F1"
    assert {s["study"]: s["score"] for s in json.loads(cli("studies", "--storage", storage, "--json")[1])} == \
        {"older": "entity F1", "plain": "entity F1"}



def test_ctrl_c_in_the_first_trial_of_a_search_leaves_a_listed_study(tmp_path):
    """The search itself, interrupted as the first trial starts (before any training)."""
    import yaml

    from rdzoo.nas import SearchConfig
    from rdzoo.nas.loop import run_trials
    from rdzoo.space import load_space
    from rdzoo.text.data import load_data

    class CtrlC:
        def started(self, study, finished, score):
            pass

        def trial_started(self, number, family, done):
            raise KeyboardInterrupt

        def trial_finished(self, *args):
            pass

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"name": "one", "fixed": {"family": "resnet", "embedding": {"dim": 16},
                                                              "encoder": {"stages": [1], "channels": 16}}}))
    storage = f"sqlite:///{tmp_path}/s.db"
    cfg = SearchConfig(space=load_space(str(space)), data_name="synthetic", study="first", storage=storage, trials=2)
    outcome = run_trials(cfg, load_data("synthetic"), display=CtrlC())
    assert outcome.interrupted and outcome.finished == 0
    listed = studies(storage)["first"]
    assert (listed["complete"], listed["failed"], listed["running"]) == (0, 1, 0)
    code, out = cli("best", "--storage", storage)
    assert code == 0 and "no completed trials match" in out  # the study of the newest trial, which failed


def test_the_pareto_front_of_a_study_recreated_under_a_deleted_name_holds_only_its_own_trials(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"

    def multi(points):
        study = optuna.create_study(study_name="pareto", storage=make_storage(storage), directions=["maximize", "minimize"])
        study.set_user_attr("objectives", ["accuracy", "params"])
        store = Store.open(storage, create=True)
        for acc, params in points:
            trial = study.ask()
            trial.set_user_attr("rdzoo", {"family": "resnet", "spec": SPEC, "params": params, "dev_accuracy": acc})
            study.tell(trial, [acc, params])
        store.sync(study, make_storage(storage))
        store.engine.dispose()

    multi([(0.9, 5000), (0.8, 1000), (0.7, 3000)])
    assert best(storage, "pareto", "--pareto") == [(0, 0.9), (1, 0.8)]
    delete(storage, "pareto")
    multi([(0.6, 2000), (0.5, 4000)])
    assert best(storage, "pareto", "--pareto") == [(0, 0.6)]


# --- malformed storage URLs ---------------------------------------------------------------

BAD_URLS = {  # what was typed -> what the one error line must say (passwords masked)
    "postgres://rdzoo:secret@dbhost/rdzoo": "no database called 'postgres'; allowed: a SQLite file path, "
                                            "sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB",
    "postgres+psycopg2://u:secret@h/db": "did you mean 'postgresql+psycopg2://u:***@h/db'?",
    "sqllite:///x.db": "did you mean 'sqlite:///x.db'?",
    "redis://cache:6379": "no database called 'redis'",
    "sqlite:s.db": "did you mean 'sqlite:///s.db'?",
    "sqlite://s.db": "three slashes before its path",
    "sqlite://": "an in-memory database keeps nothing between processes",
    "journal://": "no journal file named",
}


def test_a_malformed_storage_url_is_refused_naming_what_is_wrong_and_what_is_allowed():
    from rdzoo.errors import SpecError
    from rdzoo.storage import check_url

    for url, said in BAD_URLS.items():
        with pytest.raises(SpecError) as caught:
            check_url(url)
        assert caught.value.path == "storage" and said in caught.value.message, (url, caught.value.message)
        assert "journal:///PATH" in caught.value.message and "secret" not in caught.value.message
    assert check_url("runs/s.db") == "sqlite:///runs/s.db" and check_url("/abs/s.db") == "sqlite:////abs/s.db"
    for url in ("sqlite:///s.db", "sqlite:////abs/s.db", "journal:///abs/s.log", "journal://rel.log",
                "mysql+pymysql://u@h/db", "postgresql+psycopg2://u@h:5432/db?sslmode=require"):
        assert check_url(url) == url


def _refused_in_one_line(tmp_path, command, url):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", *command, "--storage", url], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (command, url, proc.stderr)
    assert proc.stderr.startswith("rdzoo: error: --storage: ") and BAD_URLS[url] in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []  # no file named "sqlite:s.db", no rdzoo.db


def test_every_query_command_refuses_a_malformed_storage_url_in_one_line(tmp_path):
    for command in (["studies"], ["best"], ["export", "--best"], ["report", "--json"]):
        _refused_in_one_line(tmp_path, command, "postgres://rdzoo:secret@dbhost/rdzoo")


def test_a_search_refuses_a_malformed_storage_url_before_it_reads_data(tmp_path):
    """`search --storage postgres://...` was a NoSuchModuleError traceback, `sqlite:s.db` made a
    file named "sqlite:s.db": the search's settings refuse both."""
    from rdzoo.cli import in_cli_terms
    from rdzoo.errors import SpecError
    from rdzoo.nas import SearchConfig
    from rdzoo.space import load_space

    for url in ("postgres://rdzoo:secret@dbhost/rdzoo", "sqlite:s.db"):
        with pytest.raises(SpecError) as caught:
            SearchConfig(space=load_space("default"), data_name="synthetic", study="s", storage=url)
        assert in_cli_terms(caught.value).startswith("--storage: ") and BAD_URLS[url] in caught.value.message


@pytest.mark.slow
def test_the_search_command_refuses_a_malformed_storage_url_in_one_line(tmp_path):
    search = ["search", "--data", "synthetic", "--trials", "1", "--no-final", "--quiet"]
    for url in ("postgres://rdzoo:secret@dbhost/rdzoo", "sqlite:s.db"):
        _refused_in_one_line(tmp_path, search, url)


# --- Optuna tables of another schema --------------------------------------------------------


def optuna_database(path, revision=None):
    """A plain Optuna database (a study "s" of three trials, no rdzoo table), its schema stamped
    `revision` as an older Optuna would have left it (Optuna 3.0 wrote v3.0.0.a)."""
    import sqlite3

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{path}")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    if revision is not None:
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
            conn.execute("UPDATE version_info SET library_version = '3.0.0'")
    return f"sqlite:///{path}"


def test_the_schema_revisions_read_from_optunas_scripts_are_optunas_own():
    from rdzoo.storage import optuna_revisions

    storage = optuna.storages.RDBStorage("sqlite://")  # Optuna's own answer, through alembic
    assert optuna_revisions() == tuple(reversed(storage.get_all_versions()))
    assert optuna_revisions()[-1] == storage.get_current_version() == storage.get_head_version()


def test_optuna_tables_of_an_older_schema_are_one_error_naming_the_upgrade_command(tmp_path):
    """`studies` said "run rdzoo search first" and `search` printed a 58-line traceback."""
    import subprocess
    import sys

    from rdzoo.errors import StoreError
    from rdzoo.nas import SearchConfig
    from rdzoo.nas.loop import run_trials
    from rdzoo.space import load_space

    storage = optuna_database(tmp_path / "old.db", "v3.0.0.a")
    upgrade = f"upgrade them with `optuna storage upgrade --storage {storage}`"
    for command in (["studies"], ["best"], ["export", "--best"], ["report", "--json"]):
        proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", *command, "--storage", str(tmp_path / "old.db")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, (command, proc.stderr)
        assert "its Optuna tables have an older schema (schema v3.0.0.a)" in proc.stderr and upgrade in proc.stderr
    cfg = SearchConfig(space=load_space("default"), data_name="synthetic", study="t", storage=storage)
    with pytest.raises(StoreError) as caught:
        run_trials(cfg, data=None)  # refused as the study opens, before any data is touched
    assert "older schema (made by Optuna 3.0.0)" in str(caught.value) and upgrade in str(caught.value)

    newer = optuna_database(tmp_path / "new.db", "v99.0.0.a")
    for opening in (lambda: Results(newer), lambda: make_storage(newer)):
        with pytest.raises(StoreError) as caught:
            opening()
        assert "have a newer schema" in str(caught.value) and "pip install -U optuna" in str(caught.value)


# --- a plain Optuna database ----------------------------------------------------------------


def test_a_plain_optuna_database_is_listed_with_optunas_best_value_and_left_untouched(storage, tmp_path):
    """Studies made with Optuna's API alone: `studies` refused the database, although it lists
    the studies Optuna holds; `best` now says in one line that the study has no rdzoo results."""
    plain = optuna.create_study(study_name="plain", storage=make_storage(storage), direction="maximize")
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    plain.tell(plain.ask(), state=TrialState.FAIL)
    optuna.create_study(study_name="pair", storage=make_storage(storage), directions=["maximize", "minimize"]) \
        .optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=2)
    listed = studies(storage)
    assert (listed["plain"]["complete"], listed["plain"]["failed"]) == (3, 1)
    assert listed["plain"]["best_value"] == plain.best_value and listed["plain"]["best_dev_accuracy"] is None
    assert listed["pair"]["complete"] == 2 and listed["pair"]["best_value"] is None  # two objectives: no one best
    code, out = cli("studies", "--storage", storage)
    assert code == 0 and f"{plain.best_value:.4g} value" in out
    for command in (("best", "--study", "plain"), ("export", "--best", "--study", "plain")):
        code, out = cli(*command, "--storage", storage)
        assert code == 1 and out.startswith("study 'plain' in ") and "has no rdzoo results: its 3 complete" in out
    if storage.startswith("sqlite"):  # reading left the database as Optuna made it
        engine = sa.create_engine(storage)
        assert not [t for t in sa.inspect(engine).get_table_names() if t.startswith("rdzoo")]
        engine.dispose()
    elif storage.startswith("journal"):
        assert sorted(p.name for p in tmp_path.iterdir()) == ["s.log"]  # no results file beside the journal

    new_study(storage, "mine")  # `rdzoo search` on the same database later: both kinds side by side
    finish(storage, optuna.load_study(study_name="mine", storage=make_storage(storage)), 0.7)
    listed = studies(storage)
    assert listed["mine"]["best_dev_accuracy"] == 0.7 and listed["plain"]["best_value"] == plain.best_value


# --- standard output that cannot be written ----------------------------------------------


def _into(where, command, cwd):
    """Run `rdzoo COMMAND` with its standard output on a full disk (/dev/full) or a pipe whose
    reader has gone; its exit status and standard error."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "rdzoo.cli", *command]
    if where == "full":
        with open("/dev/full", "w") as full:
            proc = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=300)
        return proc.returncode, proc.stderr
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    proc.stdout.close()  # the reader is gone before the command writes (`rdzoo list | head -0`)
    err = proc.stderr.read()
    return proc.wait(timeout=300), err


def _output_fails_in_one_line(tmp_path, commands):
    storage = f"sqlite:///{tmp_path}/s.db"
    study = new_study(storage, "s")
    finish(storage, study, 0.8)
    for command in commands:
        command = [c.replace("STORAGE", storage) for c in command]
        code, err = _into("full", command, tmp_path)
        assert (code, err) == (1, "rdzoo: error: cannot write to standard output (No space left on device)\n"), \
            (command, err)
        assert _into("pipe", command, tmp_path) == (1, ""), command  # quiet, as Unix tools are


def test_output_on_a_full_disk_or_a_closed_pipe_is_one_line_or_quiet(tmp_path):
    """`best --json`, `show`, `report --json` and `list --json` into /dev/full printed an OSError traceback."""
    _output_fails_in_one_line(tmp_path, [["best", "--json", "--storage", "STORAGE"], ["show", "kim-cnn"],
                                         ["report", "--json", "--storage", "STORAGE"], ["list", "--json"]])


@pytest.mark.slow
def test_every_command_that_prints_fails_in_one_line_on_a_full_disk_and_quietly_on_a_closed_pipe(tmp_path):
    import yaml

    space = tmp_path / "one.yaml"
    space.write_text(yaml.safe_dump({"name": "one", "fixed": {"family": "resnet", "embedding": {"dim": 16},
                                                              "encoder": {"stages": [1], "channels": 16}}}))
    stored = ["--storage", "STORAGE"]
    search = ["search", "--space", str(space), "--data", "synthetic", "--study", "s", "--trials", "1", "--no-final",
              "--quiet"]
    _output_fails_in_one_line(tmp_path, [
        ["--help"], ["--version"], ["list"], ["list", "--json"], ["show", "kim-cnn"], ["show", "kim-cnn", "--json"],
        ["env"], ["env", "--json"], ["data"], ["data", "--json"], ["data", "synthetic"],
        ["build", "kim-cnn", "--seq-len", "16", "--batch", "1"], ["build", "kim-cnn", "--json", "--seq-len", "16"],
        ["studies", *stored], ["studies", "--json", *stored], ["best", *stored], ["best", "--json", *stored],
        ["export", "--best", *stored], ["export", "--best", "--json", *stored], ["report", "--json", *stored],
        # the study has met its target of 1 trial: the search prints its summary without training
        [*search, *stored], [*search, "--json", *stored]])
