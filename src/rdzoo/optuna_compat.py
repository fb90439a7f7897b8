"""Where rdzoo relies on Optuna beyond its public API, in one place.

Everything else goes through Optuna's public API: `Study.tell(number, state=...)`,
`Study.add_trial`, `Study.enqueue_trial`, and the storage's `get_study_id_from_name` and
`get_trial_id_from_study_id_trial_number` (a FrozenTrial's id and a Study's id have no public
getter, so rdzoo keeps the storage it opened and asks it). What has no public route:

- the parameters of a waiting (enqueued) trial, which Optuna keeps in the `fixed_params`
  system attribute until a worker takes the trial (`waiting_params`);
- the revisions of Optuna's RDB schema, read from its alembic scripts, whose folder is inside
  the package (`alembic_scripts`): importing Optuna and alembic to ask would take longer than
  a whole query command;
- the words of Optuna's RuntimeError for tables of another schema (`schema_error`);
- the tables and columns of Optuna's RDB schema that rdzoo's read queries join with
  (`RDB_COLUMNS`), pinned by the schema revision that `storage.check_optuna_schema` checks;
- the RDB storage's heartbeat options, whose callback (the one that re-queues a trial whose
  heartbeat went stale) and its keyword Optuna 5 renamed (`heartbeat_options`).

tests/test_optuna_compat.py checks each against the Optuna installed. pyproject admits
optuna>=4.5; 4.5 (the oldest) and 5.1 pass it. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import re
from pathlib import Path

# Optuna's RDB tables and the columns rdzoo's SQL reads (query.py, store.py), and which the
# journal's temporary tables (storage.load_journal_tables) reproduce
RDB_COLUMNS = {
    "studies": ("study_id", "study_name"),
    "trials": ("trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"),
    "study_user_attributes": ("study_id", "key", "value_json"),
    "trial_user_attributes": ("trial_id", "key"),
    "study_directions": ("study_id", "objective", "direction"),
    "trial_values": ("trial_id", "objective", "value"),
}
FIXED_PARAMS = "fixed_params"  # the system attribute of an enqueued trial's parameters (Study.enqueue_trial)
UPGRADE_HINT = "optuna storage upgrade --storage"  # in Optuna's error for tables of an older schema
NEWER_HINT = "pip install -U optuna"  # in Optuna's error for tables of a newer schema


def heartbeat_options(interval: int, grace: int, max_retry: int) -> dict:
    """The keyword arguments of Optuna's RDBStorage for heartbeats every `interval` seconds, a trial
    failed after `grace` seconds of silence and queued again at most `max_retry` times: Optuna 5's
    `heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(...)`, Optuna 4's
    `failed_trial_callback=RetryFailedTrialCallback(...)` (the same callback under its old name)."""
    import optuna

    storages = optuna.storages
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        callback = {"heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)}
    else:
        callback = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=max_retry)}
    return {"heartbeat_interval": interval, "grace_period": grace, **callback}


def waiting_params(frozen) -> dict:
    """The parameters of an Optuna FrozenTrial: its sampled ones, or, for a trial still waiting
    in the queue, the ones `enqueue_trial` fixed for it."""
    return frozen.params or frozen.system_attrs.get(FIXED_PARAMS) or {}


def alembic_scripts() -> Path | None:
    """The folder of the installed Optuna's alembic scripts (one a schema revision), found
    without importing Optuna; None when Optuna is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("optuna")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "storages" / "_rdb" / "alembic" / "versions"


def schema_error(exc: RuntimeError) -> tuple[bool, str | None] | None:
    """Optuna's RuntimeError for RDB tables of another schema as (older, found): `older` True when
    the tables are older than the installed Optuna reads, `found` the Optuna version that made
    them when the message names it ("made by Optuna 3.0.0"); None for any other RuntimeError."""
    text = str(exc)
    made = re.search(r"set up by optuna ([^)\s]+)", text)
    found = f"made by Optuna {made.group(1)}" if made else None
    if UPGRADE_HINT in text:
        return True, found
    if NEWER_HINT in text:
        return False, found
    return None
