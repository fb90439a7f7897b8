"""rdzoo's results table, beside Optuna's tables in the same database: schema, creation, writes.

One row per finished trial, with the columns listed once in `storage.COLUMNS`:
which Optuna trial it describes (study id, trial id, number, start time, final
state), the complete resolved spec (JSON), parameters, FLOPs, latency, dev and
test accuracy, train seconds and the error of a failed trial. The table is a
cache of Optuna's trials: rows are written from Optuna's trial callback, after
Optuna has stored the trial's final state, the same values also live in the
trial's user attributes (from which `sync` restores any missing row), and a
row whose trial Optuna no longer holds (its study was deleted) is ignored by
every query and removed here when a search opens the storage. Optuna's own
tables are read, never written, here. The read queries live in `query.py`.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from .errors import StoreError
from .records import SCORES, TrialRecord
from .storage import (COLUMNS, DEFAULT_STORAGE, JSON_COLUMNS, SCHEMA_VERSION, TARGETS_TABLE, check_schema_version,
                      drop_journal_tables, journal_path, load_journal_tables, make_engine, results_url,
                      retry_creation, sqlite_path, storage_error)

# the SQL type of each kind of column in storage.COLUMNS
TYPES = {"name": lambda: sa.String(512), "word": lambda: sa.String(32), "state": lambda: sa.String(16),
         "int": sa.Integer, "bigint": sa.BigInteger, "float": sa.Float, "text": sa.Text, "json": sa.Text,
         "datetime": sa.DateTime, "bool": sa.Boolean}
REQUIRED = ("study", "trial", "trial_id", "state")

metadata = sa.MetaData()
results = sa.Table(
    "rdzoo_results", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    *(sa.Column(name, TYPES[kind](), nullable=name not in REQUIRED, unique=name == "trial_id") for name, kind in COLUMNS),
)


def top_index(score, family: bool) -> str:
    """The name of the index `rdzoo best` reads a study's top N by `score` (a records.Score) off,
    within one family when `family`."""
    suffix = "" if score.dev == "dev_accuracy" else f"_{score.dev}"  # accuracy's keeps the name it always had
    return f"ix_rdzoo_results_study{'_family' if family else ''}_top{suffix}"


# `rdzoo best` orders by the study's score, ties by trial number: an index in exactly that order
# for each score lets the database read the top N off it instead of sorting every matching row
for _score in SCORES.values():
    sa.Index(top_index(_score, False), results.c.study_id, results.c.state, results.c[_score.dev].desc(),
             results.c.trial)
    sa.Index(top_index(_score, True), results.c.study_id, results.c.family, results.c.state,
             results.c[_score.dev].desc(), results.c.trial)
sa.Index("ix_rdzoo_results_finished", results.c.finished_at)
OLD_INDEXES = ("ix_rdzoo_results_top", "ix_rdzoo_results_family_top", "ix_rdzoo_results_trial")  # by name, schema 1
schema = sa.Table(
    "rdzoo_schema", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)
# Optuna's trials, as far as the writer reads them (typed, so start times come back as datetimes)
trials = sa.table("trials", sa.column("trial_id", sa.Integer), sa.column("study_id", sa.Integer),
                  sa.column("datetime_start", sa.DateTime))

# A row stands for a trial while Optuna holds a trial with its id, study and start time.
# Schema 1 rows (no study id, no start time) take them from the trial of the same id,
# number and study name; rows whose trial is gone are then deleted.
UPGRADE = """UPDATE rdzoo_results SET
  study_id = (SELECT t.study_id FROM trials t JOIN studies s ON s.study_id = t.study_id WHERE
              t.trial_id = rdzoo_results.trial_id AND t.number = rdzoo_results.trial AND s.study_name = rdzoo_results.study),
  datetime_start = (SELECT t.datetime_start FROM trials t JOIN studies s ON s.study_id = t.study_id WHERE
              t.trial_id = rdzoo_results.trial_id AND t.number = rdzoo_results.trial AND s.study_name = rdzoo_results.study)
WHERE study_id IS NULL"""
CLEAN = """DELETE FROM rdzoo_results WHERE NOT EXISTS (SELECT 1 FROM trials t WHERE t.trial_id = rdzoo_results.trial_id
  AND t.study_id = rdzoo_results.study_id AND t.datetime_start = rdzoo_results.datetime_start)"""


@dataclass
class Store:
    """The writer of the results table.

    `url` is the database that holds the table (for a journal storage the SQLite file
    beside it), `storage` the study storage it caches.
    """

    url: str
    engine: sa.Engine
    storage: str = DEFAULT_STORAGE

    @classmethod
    def open(cls, storage: str = DEFAULT_STORAGE, create: bool = False) -> "Store":
        """Open the results table of a study storage (any URL `make_storage` takes).

        With `create`, make the table (or bring one from an older rdzoo up to date, adding
        any new column) and delete the rows whose trial Optuna no longer holds.

        Raises:
            StoreError: no database, not an rdzoo or Optuna database, written by a newer
                rdzoo, or the storage cannot be opened.
        """
        url = results_url(storage)
        path = sqlite_path(url)
        if path is not None and not create and not path.is_file():
            raise StoreError(f"no database at {path}; run `rdzoo search` first or pass --storage")
        try:
            store = cls(url, make_engine(url), storage)
            retry_creation(lambda: store._check(create))
        except (sa.exc.DatabaseError, ImportError) as exc:
            raise storage_error(url, exc) from None
        return store

    def _check(self, create: bool) -> None:
        inspector = sa.inspect(self.engine)
        tables = set(inspector.get_table_names())
        version = None
        if "rdzoo_schema" in tables:
            with self.engine.connect() as conn:
                version = conn.execute(sa.select(sa.func.max(schema.c.version))).scalar()
            check_schema_version(self.url, version)
        elif tables - {"rdzoo_results", "rdzoo_schema", TARGETS_TABLE} and "studies" not in tables:
            raise StoreError(f"{self.url}: not an rdzoo or Optuna database (tables: {', '.join(sorted(tables)[:6])})")
        elif not create and not tables:
            raise StoreError(f"{self.url}: empty database; run `rdzoo search` first")
        if not create:
            return
        metadata.create_all(self.engine, checkfirst=True)
        have = {c["name"] for c in sa.inspect(self.engine).get_columns("rdzoo_results")}
        with self.engine.begin() as conn:
            for column in results.columns:  # columns added since the table was made
                if column.name not in have:
                    kind = column.type.compile(self.engine.dialect)
                    conn.execute(sa.text(f"ALTER TABLE rdzoo_results ADD COLUMN {column.name} {kind}"))
            for name in OLD_INDEXES:
                conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
        for index in results.indexes:  # tables made by an older rdzoo get the current indexes too
            index.create(self.engine, checkfirst=True)
        with self._optuna_tables() as conn, conn.begin():
            conn.execute(sa.text(UPGRADE))
            conn.execute(sa.text(CLEAN))
            if conn.execute(sa.select(sa.func.count()).select_from(schema)).scalar() == 0:
                conn.execute(schema.insert().values(version=SCHEMA_VERSION))
            else:
                conn.execute(sa.update(schema).values(version=SCHEMA_VERSION))

    @contextmanager
    def _optuna_tables(self):
        """A connection that sees Optuna's `studies` and `trials`: the storage's own tables,
        or a journal file's as TEMP tables."""
        journal = journal_path(self.storage)
        with self.engine.connect() as conn:
            if journal is None:
                yield conn
                return
            raw = conn.connection.driver_connection
            load_journal_tables(raw, journal)
            try:
                yield conn
            finally:
                drop_journal_tables(raw)

    # --- writing ------------------------------------------------------------------

    def record(self, rec: TrialRecord) -> None:
        """Write (or refresh) the row of a finished trial, `rec` (its study name, trial number,
        trial id and state set). Optuna's `study_id` and `datetime_start` are looked up from the
        trial id when the record lacks them."""
        if rec.study_id is None or rec.datetime_start is None:
            study_id, datetime_start = self._trial_key(rec.trial_id)
            rec = rec.replace(study_id=study_id, datetime_start=datetime_start)
        row = {**rec.__dict__, "finished_at": time.time()}
        for name in JSON_COLUMNS:
            row[name] = json.dumps(row[name]) if row[name] is not None else None
        try:
            with self.engine.begin() as conn:
                conn.execute(results.insert().values(**row))
        except sa.exc.IntegrityError:  # the row exists (a retried callback, or a reused id): replace it
            with self.engine.begin() as conn:
                conn.execute(sa.update(results).where(results.c.trial_id == rec.trial_id).values(**row))

    def _trial_key(self, trial_id: int):
        with self._optuna_tables() as conn:
            found = conn.execute(sa.select(trials.c.study_id, trials.c.datetime_start)
                                 .where(trials.c.trial_id == trial_id)).first()
        if found is None:
            raise StoreError(f"{self.url}: Optuna holds no trial with id {trial_id}")
        return tuple(found)

    def sync(self, study, storage) -> int:
        """Write rows for the finished trials of an Optuna `study` that have none (a worker died in
        between, the study was copied with its trials' user attributes, or a final-stage run was
        just added); `storage` is the Optuna storage the study was opened on, which gives the ids.
        Returns how many rows were written."""
        study_id = storage.get_study_id_from_name(study.study_name)
        have = dict(self._execute(sa.select(results.c.trial, results.c.datetime_start)
                                  .where(results.c.study_id == study_id)))
        added = 0
        for t in study.get_trials(deepcopy=False):
            if t.state.is_finished() and have.get(t.number) != t.datetime_start and "rdzoo" in t.user_attrs:
                trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
                self.record(TrialRecord.from_trial(t, study=study.study_name, study_id=study_id, trial_id=trial_id))
                added += 1
        return added

    def _execute(self, query):
        with self.engine.connect() as conn:
            return conn.execute(query).fetchall()
