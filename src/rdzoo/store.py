"""rdzoo's results table, beside Optuna's tables in the same database.

One row per finished trial: study, trial number, state, family, skip type, the
complete resolved spec (JSON), parameters, FLOPs, latency, dev and test
accuracy, train seconds and the error of a failed trial. Rows are written from
Optuna's trial callback, after Optuna has stored the trial's final state, so
the table never holds a trial Optuna does not; the same values also live in
the trial's user attributes, from which `sync` restores any missing row.
Optuna's own tables are read, never written, here. Only SQLAlchemy is
imported, so queries start fast.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .errors import StoreError

SCHEMA_VERSION = 1
DEFAULT_STORAGE = "sqlite:///rdzoo.db"
SORTABLE = ("dev_accuracy", "test_accuracy", "params", "flops", "latency_ms", "train_seconds", "trial")
ASCENDING = ("params", "flops", "latency_ms", "train_seconds", "trial")
METRIC_KEYS = ("params", "flops", "latency_ms", "dev_accuracy", "test_accuracy", "macro_f1", "train_seconds", "epochs")

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
    sa.Column("objective_values", sa.Text),  # JSON list, for multi-objective studies
    sa.Column("error", sa.Text),
    sa.Column("finished_at", sa.Float),  # unix time
    sa.Index("ix_rdzoo_results_best", "study", "state", "dev_accuracy"),
    sa.Index("ix_rdzoo_results_family", "study", "family", "state", "dev_accuracy"),
    sa.Index("ix_rdzoo_results_trial", "study", "trial"),
)
schema = sa.Table(
    "rdzoo_schema", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)


def normalize_url(url: str) -> str:
    """A bare path means a SQLite file."""
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


def sqlite_path(url: str) -> Path | None:
    url = sa.engine.make_url(url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(url.database)
    return None


def make_engine(url: str) -> sa.Engine:
    """An engine tuned for several writers on SQLite: WAL journal and a long busy timeout."""
    url = normalize_url(url)
    if sqlite_path(url) is not None:
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed trial
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


@dataclass
class Store:
    url: str
    engine: sa.Engine

    @classmethod
    def open(cls, url: str = DEFAULT_STORAGE, create: bool = False) -> "Store":
        url = normalize_url(url)
        path = sqlite_path(url)
        if path is not None and not create and not path.exists():
            raise StoreError(f"no database at {path}; run `rdzoo search` first or pass --storage")
        try:
            engine = make_engine(url)
            store = cls(url, engine)
            store._check(create)
        except sa.exc.DatabaseError as exc:
            first = str(exc.orig).splitlines()[0] if getattr(exc, "orig", None) else str(exc).splitlines()[0]
            raise StoreError(f"{url}: cannot use this database ({first})") from None
        return store

    def _check(self, create: bool) -> None:
        inspector = sa.inspect(self.engine)
        tables = set(inspector.get_table_names())
        if "rdzoo_schema" in tables:
            with self.engine.connect() as conn:
                version = conn.execute(sa.select(sa.func.max(schema.c.version))).scalar()
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(f"{self.url}: written by a newer rdzoo (schema {version}; this one reads {SCHEMA_VERSION}); "
                                 "upgrade rdzoo")
        elif tables - {"rdzoo_results"} and "studies" not in tables:
            raise StoreError(f"{self.url}: not an rdzoo or Optuna database (tables: {', '.join(sorted(tables)[:6])})")
        elif not create and not tables:
            raise StoreError(f"{self.url}: empty database; run `rdzoo search` first")
        if create:
            metadata.create_all(self.engine, checkfirst=True)
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
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(results).where(results.c.trial_id == trial_id).values(**row)).rowcount
            if not done:
                conn.execute(results.insert().values(**row))

    def sync(self, study) -> int:
        """Write rows for finished Optuna trials that have none (a worker died in between)."""
        have = {r[0] for r in self._execute(sa.select(results.c.trial_id).where(results.c.study == study.study_name))}
        added = 0
        for t in study.get_trials(deepcopy=False):
            if t.state.is_finished() and t._trial_id not in have and "rdzoo" in t.user_attrs:
                self.record(study.study_name, t.number, t._trial_id, t.state.name, t.user_attrs["rdzoo"], t.values)
                added += 1
        return added

    # --- reading ------------------------------------------------------------------

    def _execute(self, query):
        with self.engine.connect() as conn:
            return conn.execute(query).fetchall()

    def study_names(self) -> list[str]:
        return [r[0] for r in self._execute(sa.select(results.c.study).distinct())]

    def latest_study(self) -> str | None:
        row = self._execute(sa.select(results.c.study).order_by(results.c.finished_at.desc()).limit(1))
        return row[0][0] if row else None

    def best(self, study: str, *, top: int = 5, family: str | None = None, skip: str | None = None,
             max_params: float | None = None, min_accuracy: float | None = None, sort: str = "dev_accuracy") -> list[dict]:
        query = sa.select(results).where(results.c.study == study, results.c.state == "COMPLETE")
        if family:
            query = query.where(results.c.family == family)
        if skip:
            query = query.where(results.c.skip == skip)
        if max_params is not None:
            query = query.where(results.c.params <= max_params)
        if min_accuracy is not None:
            query = query.where(results.c.dev_accuracy >= min_accuracy)
        column = results.c[sort]
        order = column.asc() if sort in ASCENDING else column.desc()
        query = query.order_by(order, results.c.trial.asc()).limit(top)
        return [self._row(r) for r in self._execute(query)]

    def pareto(self, study: str, objectives: list[str], **filters) -> list[dict]:
        """Non-dominated trials: accuracy up, the other objectives down."""
        rows = self.best(study, top=10**9, **filters)
        keys = ["dev_accuracy" if o == "accuracy" else o for o in objectives]
        sign = [-1 if k == "dev_accuracy" else 1 for k in keys]

        def point(r):
            return [s * (r[k] if r[k] is not None else float("inf")) for s, k in zip(sign, keys)]

        points = [point(r) for r in rows]
        front = [r for r, p in zip(rows, points)
                 if not any(all(q_i <= p_i for q_i, p_i in zip(q, p)) and q != p for q in points)]
        return sorted(front, key=lambda r: -(r["dev_accuracy"] or 0))

    def trial(self, study: str, number: int) -> dict | None:
        rows = self._execute(sa.select(results).where(results.c.study == study, results.c.trial == number))
        return self._row(rows[0]) if rows else None

    def summary(self) -> list[dict]:
        """Per study: trials by state, best dev accuracy, last update."""
        query = sa.select(results.c.study, results.c.state, sa.func.count(), sa.func.max(results.c.dev_accuracy),
                          sa.func.max(results.c.finished_at)).group_by(results.c.study, results.c.state)
        out: dict[str, dict] = {}
        for study, state, count, best, last in self._execute(query):
            s = out.setdefault(study, {"study": study, "complete": 0, "pruned": 0, "failed": 0,
                                       "best_dev_accuracy": None, "last_update": 0.0})
            key = {"COMPLETE": "complete", "PRUNED": "pruned"}.get(state, "failed")
            s[key] += count
            if state == "COMPLETE" and best is not None:
                s["best_dev_accuracy"] = best
            s["last_update"] = max(s["last_update"], last or 0.0)
        return sorted(out.values(), key=lambda s: -s["last_update"])

    @staticmethod
    def _row(r) -> dict:
        d = dict(r._mapping)
        d["spec"] = json.loads(d["spec"]) if d["spec"] else None
        d["objective_values"] = json.loads(d["objective_values"]) if d["objective_values"] else None
        return d
