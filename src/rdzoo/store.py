"""rdzoo's results table, beside Optuna's tables in the same database.

One row per finished trial: study, trial number, state, family, skip type, the
complete resolved spec (JSON), parameters, FLOPs, latency, dev and test
accuracy, train seconds and the error of a failed trial. Rows are written from
Optuna's trial callback, after Optuna has stored the trial's final state, so
the table never holds a trial Optuna does not; the same values also live in
the trial's user attributes, from which `sync` restores any missing row.
Optuna's own tables are read, never written, here. The queries behind
`rdzoo best` live in `query.py`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import sqlalchemy as sa

from .errors import StoreError
from .query import DEFAULT_STORAGE, SCHEMA_VERSION, check_schema_version, normalize_url, sqlite_path, storage_error

METRIC_KEYS = ("params", "flops", "latency_ms", "dev_accuracy", "test_accuracy", "macro_f1", "train_seconds", "epochs",
               "dev_entity_f1", "entity_f1")
ADDED_COLUMNS = ("dev_entity_f1", "entity_f1")  # nullable columns newer than the table; added on open

metadata = sa.MetaData()
results = sa.Table(
    "rdzoo_results", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study", sa.String(512), nullable=False),
    sa.Column("trial", sa.Integer, nullable=False),
    sa.Column("trial_id", sa.Integer, nullable=False, unique=True),  # Optuna's trials.trial_id
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("family", sa.String(32)),
    sa.Column("skip", sa.String(32)),
    sa.Column("spec", sa.Text),
    sa.Column("params", sa.BigInteger),
    sa.Column("flops", sa.BigInteger),
    sa.Column("latency_ms", sa.Float),
    sa.Column("dev_accuracy", sa.Float),
    sa.Column("test_accuracy", sa.Float),
    sa.Column("macro_f1", sa.Float),
    sa.Column("train_seconds", sa.Float),
    sa.Column("epochs", sa.Integer),
    sa.Column("dev_entity_f1", sa.Float),  # entity-tagged data: dev entity F1, the search's objective there
    sa.Column("entity_f1", sa.Float),  # ... and test entity F1 (exact span and type, micro)
    sa.Column("objective_values", sa.Text),  # JSON list, for multi-objective studies
    sa.Column("error", sa.Text),
    sa.Column("finished_at", sa.Float),  # unix time
)
# `rdzoo best` orders by dev accuracy, ties by trial number: indexes in exactly that order
# let the database read the top N off the index instead of sorting every matching row
sa.Index("ix_rdzoo_results_top", results.c.study, results.c.state, results.c.dev_accuracy.desc(), results.c.trial)
sa.Index("ix_rdzoo_results_family_top", results.c.study, results.c.family, results.c.state,
         results.c.dev_accuracy.desc(), results.c.trial)
sa.Index("ix_rdzoo_results_trial", results.c.study, results.c.trial)
sa.Index("ix_rdzoo_results_finished", results.c.finished_at)  # the latest study, without a scan
schema = sa.Table(
    "rdzoo_schema", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)


def make_engine(url: str) -> sa.Engine:
    """An engine tuned for several writers on SQLite: WAL journal and a long busy timeout."""
    url = normalize_url(url)
    if sqlite_path(url) is not None:
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA busy_timeout=60000")
            # a killed process loses nothing committed under NORMAL in WAL mode; only a power
            # failure could drop the newest rows, and `sync` rebuilds those from Optuna's tables
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        serialize_sqlite_writes(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def serialize_sqlite_writes(engine: sa.Engine) -> None:
    """Start every SQLite transaction with BEGIN IMMEDIATE.

    A deferred transaction that reads and then writes fails at once with
    "database is locked" when another process wrote in between: SQLite cannot
    wait there, since waiting could deadlock. Taking the write lock up front makes
    the busy timeout apply instead (SQLAlchemy's documented pysqlite recipe).
    """

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before the listeners must not be reused


def retry_creation(create, attempts: int = 5):
    """Run a table-creating step, retrying when another worker creates the same tables at
    the same moment (PostgreSQL then raises a unique violation on its catalog)."""
    import random

    for attempt in range(attempts):
        try:
            return create()
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + random.random() * 0.5)


@dataclass
class Store:
    url: str
    engine: sa.Engine

    @classmethod
    def open(cls, url: str = DEFAULT_STORAGE, create: bool = False) -> "Store":
        url = normalize_url(url)
        path = sqlite_path(url)
        if path is not None and not create and not path.is_file():
            raise StoreError(f"no database at {path}; run `rdzoo search` first or pass --storage")
        try:
            store = cls(url, make_engine(url))
            retry_creation(lambda: store._check(create))
        except (sa.exc.DatabaseError, ImportError) as exc:
            raise storage_error(url, exc) from None
        return store

    def _check(self, create: bool) -> None:
        inspector = sa.inspect(self.engine)
        tables = set(inspector.get_table_names())
        if "rdzoo_schema" in tables:
            with self.engine.connect() as conn:
                check_schema_version(self.url, conn.execute(sa.select(sa.func.max(schema.c.version))).scalar())
        elif tables - {"rdzoo_results", "rdzoo_schema"} and "studies" not in tables:
            raise StoreError(f"{self.url}: not an rdzoo or Optuna database (tables: {', '.join(sorted(tables)[:6])})")
        elif not create and not tables:
            raise StoreError(f"{self.url}: empty database; run `rdzoo search` first")
        if create:
            metadata.create_all(self.engine, checkfirst=True)
            for index in results.indexes:  # tables made by an older rdzoo get the current indexes too
                index.create(self.engine, checkfirst=True)
            have = {c["name"] for c in sa.inspect(self.engine).get_columns("rdzoo_results")}
            with self.engine.begin() as conn:  # ... and the current columns (all nullable, so old rows stay valid)
                for name in ADDED_COLUMNS:
                    if name not in have:
                        conn.exec_driver_sql(f"ALTER TABLE rdzoo_results ADD COLUMN {name} FLOAT")
            with self.engine.begin() as conn:
                if conn.execute(sa.select(sa.func.count()).select_from(schema)).scalar() == 0:
                    conn.execute(schema.insert().values(version=SCHEMA_VERSION))

    # --- writing ------------------------------------------------------------------

    def record(self, study: str, trial_number: int, trial_id: int, state: str, info: dict,
               values: list[float] | None = None, error: str | None = None) -> None:
        row = {"study": study, "trial": trial_number, "trial_id": trial_id, "state": state,
               "family": info.get("family"), "skip": info.get("skip"),
               "spec": json.dumps(info["spec"]) if info.get("spec") is not None else None,
               "objective_values": json.dumps(values) if values is not None else None,
               "error": error or info.get("error"), "finished_at": time.time(),
               **{k: info.get(k) for k in METRIC_KEYS}}
        try:
            with self.engine.begin() as conn:
                conn.execute(results.insert().values(**row))
        except sa.exc.IntegrityError:  # the row exists (a retried callback): refresh it
            with self.engine.begin() as conn:
                conn.execute(sa.update(results).where(results.c.trial_id == trial_id).values(**row))

    def sync(self, study) -> int:
        """Write rows for finished Optuna trials that have none (a worker died in between)."""
        have = {r[0] for r in self._execute(sa.select(results.c.trial_id).where(results.c.study == study.study_name))}
        added = 0
        for t in study.get_trials(deepcopy=False):
            if t.state.is_finished() and t._trial_id not in have and "rdzoo" in t.user_attrs:
                self.record(study.study_name, t.number, t._trial_id, t.state.name, t.user_attrs["rdzoo"], t.values)
                added += 1
        return added

    def _execute(self, query):
        with self.engine.connect() as conn:
            return conn.execute(query).fetchall()
