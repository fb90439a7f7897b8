"""What rdzoo takes from Optuna beyond its public API (rdzoo/optuna_compat.py), checked against
the Optuna installed. pyproject admits optuna>=4.5: 4.5.0 (the oldest) and 5.1.0 pass these.
A failure here names the reach that a new Optuna broke, before a search or a query meets it."""

import importlib.metadata

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from rdzoo import optuna_compat

optuna.logging.set_verbosity(optuna.logging.ERROR)


def test_the_installed_optuna_is_one_pyproject_admits():
    major, minor = (int(x) for x in importlib.metadata.version("optuna").split(".")[:2])
    assert (major, minor) >= (4, 5)


def test_a_waiting_trials_parameters_are_its_enqueued_ones():
    study = optuna.create_study()
    study.enqueue_trial({"x": 0.25}, user_attrs={"start": "kim-cnn"})
    (waiting,) = study.get_trials(deepcopy=False)
    assert waiting.state == TrialState.WAITING and waiting.params == {}
    assert optuna_compat.waiting_params(waiting) == {"x": 0.25}
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    study.tell(trial, 1.0)
    assert optuna_compat.waiting_params(study.trials[0]) == {"x": 0.25}  # sampled now: its own parameters


def test_the_alembic_scripts_hold_the_schema_optuna_writes(tmp_path):
    from rdzoo.storage import optuna_revisions

    folder = optuna_compat.alembic_scripts()
    assert folder is not None and folder.is_dir() and list(folder.glob("*.py"))
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'v.db'}")
    assert optuna_revisions()[-1] == storage.get_current_version()


def test_optunas_rdb_tables_have_the_columns_rdzoos_queries_read(tmp_path):
    url = f"sqlite:///{tmp_path / 'cols.db'}"
    study = optuna.create_study(storage=url, study_name="s")
    study.set_user_attr("score", "accuracy")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    inspector = sa.inspect(sa.create_engine(url))
    for table, columns in optuna_compat.RDB_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        assert set(columns) <= have, (table, set(columns) - have)


@pytest.mark.parametrize("older", [True, False])
def test_optunas_error_for_tables_of_another_schema_is_recognised(tmp_path, older):
    """Optuna refuses RDB tables of another schema with a RuntimeError whose words rdzoo reads."""
    import sqlite3

    path = tmp_path / "other.db"
    optuna.create_study(storage=f"sqlite:///{path}", study_name="s")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", ("v3.0.0.a" if older else "v99.0.0.a",))
        conn.execute("UPDATE version_info SET library_version = '3.0.0'")
    with pytest.raises(RuntimeError) as caught:
        optuna.storages.RDBStorage(f"sqlite:///{path}")
    found = optuna_compat.schema_error(caught.value)
    assert found is not None and found[0] is older
    assert optuna_compat.schema_error(RuntimeError("something else")) is None


def test_a_trial_whose_heartbeat_went_stale_is_failed_and_queued_again(tmp_path):
    import time

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'h.db'}",
                                         **optuna_compat.heartbeat_options(1, 1, max_retry=1))
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    trial.suggest_float("x", 0, 1)
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("s"), trial.number)
    storage.record_heartbeat(trial_id)  # the worker beat once, then went silent
    time.sleep(2.5)
    optuna.storages.fail_stale_trials(study)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.WAITING]


def test_the_public_routes_rdzoo_takes_instead_of_private_attributes(tmp_path):
    """Study ids and trial ids through the storage, a running trial failed by number, a finished
    trial added whole: the public calls that replaced `_study_id`, `_trial_id` and `_storage`."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'p.db'}")
    study = optuna.create_study(storage=storage, study_name="s")
    study_id = storage.get_study_id_from_name("s")
    running = study.ask()
    assert storage.get_trial_id_from_study_id_trial_number(study_id, running.number) == running._trial_id
    study.tell(running.number, state=TrialState.FAIL)
    with pytest.raises(ValueError):  # a finished trial is not failed twice (recover_dead_workers relies on it)
        study.tell(running.number, state=TrialState.FAIL)
    study.add_trial(optuna.trial.create_trial(params={"seed": 1}, value=0.5, user_attrs={"rdzoo": {"seed": 1}},
                                              distributions={"seed": optuna.distributions.IntDistribution(0, 9)}))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
