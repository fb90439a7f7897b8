"""The queries behind `rdzoo best`, `studies` and `export`, in plain SQL.

On SQLite they run through the standard library's sqlite3, so a query command
starts without importing SQLAlchemy (0.23 s here, most of what `rdzoo best`
would otherwise take); other databases go through a SQLAlchemy connection.
The table itself is defined, created and written in store.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import StoreError

SCHEMA_VERSION = 1
DEFAULT_STORAGE = "sqlite:///rdzoo.db"
SORTABLE = ("dev_accuracy", "test_accuracy", "dev_entity_f1", "entity_f1", "params", "flops", "latency_ms",
            "train_seconds", "trial")
ASCENDING = ("params", "flops", "latency_ms", "train_seconds", "trial")
COLUMNS = ("study", "trial", "trial_id", "state", "family", "skip", "spec", "params", "flops", "latency_ms",
           "dev_accuracy", "test_accuracy", "macro_f1", "train_seconds", "epochs", "objective_values", "error",
           "finished_at", "dev_entity_f1", "entity_f1")


def check_schema_version(url: str, version: int | None) -> None:
    """The one rule both the writer and the reader apply: refuse a newer rdzoo's tables."""
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(f"{url}: written by a newer rdzoo (schema {version}; this one reads {SCHEMA_VERSION}); "
                         "upgrade rdzoo")


def normalize_url(url: str) -> str:
    """A bare path means a SQLite file."""
    return url if "://" in url else f"sqlite:///{url}"


def shown_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    if "@" not in url:
        return url
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def first_line(exc: BaseException) -> str:
    """The first line of an error's own message; SQLAlchemy keeps the driver's in `.orig`."""
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).splitlines() or [type(cause).__name__])[0]


def storage_error(url: str, exc: BaseException) -> StoreError:
    """One clear error for a storage that cannot be opened: the URL (password masked) and the cause."""
    if isinstance(exc, ImportError):
        hint = " (PostgreSQL: pip install 'rdzoo[postgres]')" if url.startswith("postgres") else ""
        return StoreError(f"{shown_url(url)}: no database driver ({exc.name or exc}); install it{hint}")
    return StoreError(f"{shown_url(url)}: cannot open this storage ({first_line(exc)})")


def results_url(storage: str) -> str:
    """Where the results table lives: in the study database itself, or, for Optuna's
    journal file (which holds no tables), in a SQLite file beside it."""
    if storage.startswith("journal://"):
        return f"sqlite:///{storage[len('journal://'):]}.results.db"
    return normalize_url(storage)


def sqlite_path(url: str) -> Path | None:
    """sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db; None for memory or other databases."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


class Results:
    """Read access to rdzoo's results table."""

    def __init__(self, url: str = DEFAULT_STORAGE):
        self.url = results_url(url)
        path = sqlite_path(self.url)
        if path is not None:
            import sqlite3

            if not path.is_file():
                raise StoreError(f"no database at {path}; run `rdzoo search` first or pass --storage")
            self._conn = sqlite3.connect(str(path), timeout=60)  # waits out a writer, like the busy timeout
            self._sqlite = True
            errors = (sqlite3.DatabaseError,)
        else:
            import sqlalchemy as sa

            try:
                self._conn = sa.create_engine(self.url).connect()
            except (sa.exc.SQLAlchemyError, ImportError) as exc:
                raise storage_error(self.url, exc) from None
            self._sqlite = False
            errors = (sa.exc.SQLAlchemyError,)
        try:
            self._check()
        except errors as exc:
            raise StoreError(f"{shown_url(self.url)}: cannot read this database ({first_line(exc)})") from None

    def rows(self, sql: str, params: dict | None = None) -> list[dict]:
        if self._sqlite:
            cursor = self._conn.execute(sql, params or {})
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, r)) for r in cursor.fetchall()]
        import sqlalchemy as sa

        return [dict(r._mapping) for r in self._conn.execute(sa.text(sql), params or {})]

    def _tables(self) -> set[str]:
        if self._sqlite:
            return {r["name"] for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        import sqlalchemy as sa

        return set(sa.inspect(self._conn).get_table_names())

    def _check(self) -> None:
        tables = self._tables()
        if "rdzoo_results" not in tables:
            what = "an Optuna database without rdzoo's results" if "studies" in tables else "not an rdzoo or Optuna database"
            raise StoreError(f"{self.url}: {what}; run `rdzoo search --storage {self.url}` first")
        if "rdzoo_schema" in tables:
            check_schema_version(self.url, self.rows("SELECT max(version) AS v FROM rdzoo_schema")[0]["v"])
        if self._sqlite:
            have = {r["name"] for r in self.rows("PRAGMA table_info(rdzoo_results)")}
        else:
            import sqlalchemy as sa

            have = {c["name"] for c in sa.inspect(self._conn).get_columns("rdzoo_results")}
        # a table from before a column existed reads it as NULL (store.py adds it when it next writes)
        self._select = ", ".join(c if c in have else f"NULL AS {c}" for c in COLUMNS)
        self._entities = "dev_entity_f1" in have

    # --- the queries ----------------------------------------------------------------

    def best(self, study: str, *, top: int = 5, family: str | None = None, skip: str | None = None,
             max_params: float | None = None, min_accuracy: float | None = None, sort: str | None = None) -> list[dict]:
        """Completed trials, best first: by `sort`, by default dev entity F1 for a study on entity-tagged data
        (where it is what the search maximised) and dev accuracy for any other."""
        sort = sort or ("dev_entity_f1" if self.entity_study(study) else "dev_accuracy")
        if sort not in SORTABLE:
            raise ValueError(f"sort must be one of {SORTABLE}")
        where, params = ["study = :study", "state = 'COMPLETE'"], {"study": study, "top": top}
        for column, op, value in (("family", "=", family), ("skip", "=", skip), ("params", "<=", max_params),
                                  ("dev_accuracy", ">=", min_accuracy)):
            if value is not None:
                where.append(f"{column} {op} :{column}")
                params[column] = value
        order = "ASC" if sort in ASCENDING else "DESC"
        sql = (f"SELECT {self._select} FROM rdzoo_results WHERE {' AND '.join(where)} "
               f"ORDER BY {sort} {order}, trial ASC LIMIT :top")
        return [self._decode(r) for r in self.rows(sql, params)]

    def pareto(self, study: str, objectives: list[str], **filters) -> list[dict]:
        """Non-dominated trials: accuracy up, the other objectives down."""
        rows = self.best(study, top=10**9, **filters)
        keys = ["dev_accuracy" if o == "accuracy" else ("latency_ms" if o == "latency" else o) for o in objectives]
        sign = [-1 if k == "dev_accuracy" else 1 for k in keys]
        points = [[s * (r[k] if r[k] is not None else float("inf")) for s, k in zip(sign, keys)] for r in rows]
        front = [r for r, p in zip(rows, points)
                 if not any(q != p and all(a <= b for a, b in zip(q, p)) for q in points)]
        return sorted(front, key=lambda r: -(r["dev_accuracy"] or 0))

    def trial(self, study: str, number: int) -> dict | None:
        rows = self.rows(f"SELECT {self._select} FROM rdzoo_results WHERE study = :study AND trial = :trial",
                         {"study": study, "trial": number})
        return self._decode(rows[0]) if rows else None

    def entity_study(self, study: str) -> bool:
        """Did the study's trials score entities (dev entity F1 recorded)?"""
        return self._entities and bool(self.rows("SELECT 1 AS x FROM rdzoo_results WHERE study = :study AND "
                                                 "dev_entity_f1 IS NOT NULL LIMIT 1", {"study": study}))

    def has_study(self, study: str) -> bool:
        return bool(self.rows("SELECT 1 AS x FROM rdzoo_results WHERE study = :study LIMIT 1", {"study": study}))

    def study_names(self) -> list[str]:
        return [r["study"] for r in self.rows("SELECT DISTINCT study FROM rdzoo_results ORDER BY study")]

    def latest_study(self) -> str | None:
        rows = self.rows("SELECT study FROM rdzoo_results ORDER BY finished_at DESC LIMIT 1")
        return rows[0]["study"] if rows else None

    def summary(self) -> list[dict]:
        """Per study: trials by state, best dev accuracy, last update."""
        out: dict[str, dict] = {}
        sql = ("SELECT study, state, count(*) AS n, max(dev_accuracy) AS best, max(finished_at) AS last "
               "FROM rdzoo_results GROUP BY study, state")
        for r in self.rows(sql):
            s = out.setdefault(r["study"], {"study": r["study"], "complete": 0, "pruned": 0, "failed": 0,
                                            "best_dev_accuracy": None, "last_update": 0.0})
            s[{"COMPLETE": "complete", "PRUNED": "pruned"}.get(r["state"], "failed")] += r["n"]
            if r["state"] == "COMPLETE":
                s["best_dev_accuracy"] = r["best"]
            s["last_update"] = max(s["last_update"], r["last"] or 0.0)
        return sorted(out.values(), key=lambda s: -s["last_update"])

    def objectives(self, study: str) -> list[str]:
        """The objectives a study was run with (from Optuna's study attributes)."""
        try:
            rows = self.rows("SELECT a.value_json AS v FROM study_user_attributes a JOIN studies s "
                             "ON a.study_id = s.study_id WHERE s.study_name = :study AND a.key = 'objectives'",
                             {"study": study})
        except Exception:  # an rdzoo table without Optuna's tables beside it
            return ["accuracy"]
        return json.loads(rows[0]["v"]) if rows else ["accuracy"]

    @staticmethod
    def _decode(row: dict) -> dict:
        for key in ("spec", "objective_values"):
            row[key] = json.loads(row[key]) if row[key] else None
        return row
