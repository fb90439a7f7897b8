"""The read queries behind `rdzoo best`, `studies` and `export`, in plain SQL.

The results table is a cache of Optuna's trials, so every query joins it with
Optuna's own tables: a row counts only while Optuna holds a trial with its id,
study and start time (ids are reused once a study is deleted, start times are
not), it is shown under the study's name as Optuna holds it now, and states
and counts are Optuna's (running and failed trials included). The join goes
from the results table's index to Optuna's primary key, so the top N is still
read off an index. On a journal storage Optuna's studies and trials are read
through Optuna's API into temporary tables of the same shape.

On SQLite the queries run through the standard library's sqlite3, so a query
command starts without importing SQLAlchemy (0.23 s here, most of what
`rdzoo best` would otherwise take); other databases go through a SQLAlchemy
connection. The table itself is defined, created and written in store.py.
"""

from __future__ import annotations

import json

from .errors import StoreError
from .records import OBJECTIVES, SCORE_ATTR, SCORES, Score, StudySummary, TrialCounts, TrialRecord, derive_score, \
    score_named
from .storage import (COLUMN_NAMES, COLUMNS, DEFAULT_STORAGE, SCHEMA_VERSION, busy_timeout, check_optuna_schema,
                      check_schema_version, first_line, is_locked, journal_path, load_journal_tables, results_url,
                      shown_url, sqlite_path, storage_error)

SORTABLE = (*(c for s in SCORES.values() for c in (s.dev, s.test)), "params", "flops", "latency_ms", "sentence_latency_ms",
            "train_seconds", "trial", "peak_memory")
ASCENDING = ("params", "flops", "latency_ms", "sentence_latency_ms", "train_seconds", "trial", "peak_memory")

# a row as Optuna holds its trial now: the study's current name, the number and the state from Optuna
_NOW = {"study": "s.study_name", "trial": "t.number", "state": "t.state"}
SELECT = ", ".join(f"{_NOW[c]} AS {c}" if c in _NOW else f"r.{c}" for c in COLUMN_NAMES)
# CROSS JOIN keeps SQLite's planner on the results table's index as the outer loop (and the top N
# off it); PostgreSQL plans it as an inner join
FROM = "rdzoo_results r CROSS JOIN trials t CROSS JOIN studies s"
JOINED = ("t.trial_id = r.trial_id AND t.study_id = r.study_id AND t.datetime_start = r.datetime_start "
          "AND s.study_id = t.study_id")

# finished trials of a study that carry rdzoo's results in their attributes but have no row
MISSING = ("SELECT 1 AS x FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'rdzoo' "
           "WHERE t.study_id = :study_id AND t.state IN ('COMPLETE', 'PRUNED', 'FAIL') AND t.datetime_start IS NOT NULL "
           "AND NOT EXISTS (SELECT 1 FROM "
           "rdzoo_results r WHERE r.trial_id = t.trial_id AND r.study_id = t.study_id AND "
           "r.datetime_start = t.datetime_start) LIMIT 1")


class Results:
    """Read access to rdzoo's results, as Optuna's tables hold the trials now.

    `url` is the study storage (any URL `rdzoo search --storage` takes).

    Raises:
        StoreError: no database there, not an rdzoo database, written by a newer rdzoo,
            or the storage cannot be opened.
    """

    def __init__(self, url: str = DEFAULT_STORAGE):
        self.storage = url
        self.url = results_url(url)
        self.plain = False  # Optuna's tables without rdzoo's: a database `rdzoo search` never wrote to
        self._open()
        version = None if self.plain else self._version()
        if version is not None and version < SCHEMA_VERSION:
            self._upgrade()

    def _open(self) -> None:
        path = sqlite_path(self.url)
        journal = journal_path(self.storage)
        if path is not None:
            import sqlite3

            if journal is not None and not journal.is_file() or journal is None and not path.is_file():
                raise StoreError(f"no database at {journal or path}; run `rdzoo search` first or pass --storage")
            # waits out a writer; a journal that no search wrote to has no results file: its tables are TEMP ones
            self._conn = sqlite3.connect(str(path) if path.is_file() else ":memory:", timeout=busy_timeout())
            self._sqlite = True
            errors = (sqlite3.DatabaseError,)
        else:
            import sqlalchemy as sa

            try:
                # autocommit: a reader holds no transaction, and so no lock, between its queries
                self._conn = sa.create_engine(self.url, isolation_level="AUTOCOMMIT").connect()
            except (sa.exc.SQLAlchemyError, ImportError) as exc:
                raise storage_error(self.url, exc) from None
            self._sqlite = False
            errors = (sa.exc.SQLAlchemyError,)
        try:
            self._check()
            if journal is not None:
                load_journal_tables(self._conn, journal)
        except errors as exc:
            if is_locked(getattr(exc, "orig", None) or exc):
                raise storage_error(self.url, exc) from None
            raise StoreError(f"{shown_url(self.url)}: cannot read this database ({first_line(exc)})") from None

    def _upgrade(self) -> None:
        """Tables of an older rdzoo: bring them up to date once, as a search would."""
        from .store import Store

        self.close()
        Store.open(self.storage, create=True).engine.dispose()
        self._open()

    def close(self) -> None:
        """Close the connection (a `Results` holds one for its lifetime)."""
        self._conn.close()

    def rows(self, sql: str, params: dict | None = None, result: bool = True) -> list[dict]:
        """Run one query; each row as a dict of column name to value ([] without `result`)."""
        if self._sqlite:
            cursor = self._conn.execute(sql, params or {})
            if not result:
                return []
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, r)) for r in cursor.fetchall()]
        import sqlalchemy as sa

        out = self._conn.execute(sa.text(sql), params or {})
        return [dict(r._mapping) for r in out] if result else []

    def _tables(self) -> set[str]:
        if self._sqlite:
            return {r["name"] for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        import sqlalchemy as sa

        return set(sa.inspect(self._conn).get_table_names())

    def _check(self) -> None:
        tables = self._tables()
        journal = journal_path(self.storage) is not None
        if "alembic_version" in tables:  # Optuna's tables: of the schema the installed Optuna reads?
            check_optuna_schema(self.storage, self.rows("SELECT version_num FROM alembic_version")[0]["version_num"])
        if "rdzoo_results" not in tables:
            if "studies" not in tables and not journal:
                raise StoreError(f"{shown_url(self.url)}: not an rdzoo or Optuna database; run `rdzoo search "
                                 f"--storage {shown_url(self.storage)}` first")
            # Optuna's own database (a user's script, `optuna create-study`): its studies and trials
            # are shown with empty rdzoo columns, from an empty TEMP table; the database stays untouched
            self.plain = True
            self._empty_results()
            return
        if "rdzoo_schema" in tables:
            check_schema_version(self.url, self._version())
        if journal_path(self.storage) is None and not {"studies", "trials"} <= tables:
            raise StoreError(f"{self.url}: rdzoo's results without Optuna's tables beside them; "
                             "pass the storage the search ran with")

    def _empty_results(self) -> None:
        """A TEMP `rdzoo_results` with no rows, the real table's columns, so every query runs unchanged."""
        types = {"int": "INTEGER", "bigint": "BIGINT", "float": "DOUBLE PRECISION", "datetime": "TIMESTAMP",
                 "bool": "BOOLEAN"}
        columns = ", ".join(f"{name} {types.get(kind, 'TEXT')}" for name, kind in COLUMNS)
        self.rows(f"CREATE TEMP TABLE rdzoo_results ({columns})", result=False)

    def _version(self) -> int | None:
        try:
            return self.rows("SELECT max(version) AS v FROM rdzoo_schema")[0]["v"]
        except Exception:  # no rdzoo_schema: made before it existed, read as schema 1
            return 1

    # --- the queries ----------------------------------------------------------------

    def study_id(self, study: str) -> int | None:
        """Optuna's id of the study named `study` now; None when Optuna holds no such study."""
        rows = self.rows("SELECT study_id FROM studies WHERE study_name = :study", {"study": study})
        return rows[0]["study_id"] if rows else None

    def best(self, study: str, *, top: int = 5, family: str | None = None, skip: str | None = None,
             max_params: float | None = None, min_accuracy: float | None = None, sort: str | None = None,
             max_memory: float | None = None, score: Score | None = None) -> list[TrialRecord]:
        """The `top` completed trials of a study by `sort` (by default the study's score, `score`
        when the caller has read it already: dev entity F1 for a study on entity-tagged data,
        dev accuracy for any other; descending, ties by trial number), after the filters; [] for
        a study Optuna does not hold. `min_accuracy` is a floor on that same dev score (a fraction).

        Raises:
            ValueError: `sort` is not one of SORTABLE.
        """
        score = score or self.score(study)
        sort = sort or score.dev
        if sort not in SORTABLE:
            raise ValueError(f"sort must be one of {SORTABLE}")
        study_id = self.study_id(study)
        if study_id is None:
            return []
        where = ["r.study_id = :study_id", "r.state = 'COMPLETE'", "t.state = 'COMPLETE'", JOINED]
        params = {"study_id": study_id, "top": top}
        for column, op, value in (("family", "=", family), ("skip", "=", skip), ("params", "<=", max_params),
                                  (score.dev, ">=", min_accuracy), ("peak_memory", "<=", max_memory)):
            if value is not None:
                where.append(f"r.{column} {op} :{column}")
                params[column] = value
        order = "ASC" if sort in ASCENDING else "DESC"
        sql = (f"SELECT {SELECT} FROM {FROM} WHERE {' AND '.join(where)} "
               f"ORDER BY r.{sort} {order}, r.trial ASC LIMIT :top")
        rows = self.rows(sql, params)
        if len(rows) < top and self._restore(study, study_id):
            rows = self.rows(sql, params)
        return [TrialRecord.from_row(r) for r in rows]

    def pareto(self, study: str, objectives: list[str], **filters) -> list[TrialRecord]:
        """Non-dominated completed trials: the study's score up (objective `accuracy`: dev entity
        F1 for an entity study, as the search maximised, else dev accuracy), the other
        objectives down; best dev score first."""
        score = self.score(study)
        rows = self.best(study, top=10**9, score=score, **filters)
        keys = [OBJECTIVES[o].column_for(score) for o in objectives]
        sign = [-1 if OBJECTIVES[o].maximize else 1 for o in objectives]
        points = [[s * (r.get(k) if r.get(k) is not None else float("inf")) for s, k in zip(sign, keys)] for r in rows]
        front = [r for r, p in zip(rows, points)
                 if not any(q != p and all(a <= b for a, b in zip(q, p)) for q in points)]
        return sorted(front, key=lambda r: -(r.dev_score(score) or 0))

    def trial(self, study: str, number: int) -> TrialRecord | None:
        """The results of trial `number` of a study; None when Optuna holds no such trial
        or it has no results (running, or added by another Optuna client)."""
        # a plain join, so that the planner starts from the study's name rather than the results table
        sql = (f"SELECT {SELECT} FROM studies s JOIN trials t ON t.study_id = s.study_id JOIN rdzoo_results r "
               f"ON r.trial_id = t.trial_id WHERE s.study_name = :study AND t.number = :trial AND {JOINED}")
        rows = self.rows(sql, {"study": study, "trial": number})
        if not rows and self._restore(study, self.study_id(study)):
            rows = self.rows(sql, {"study": study, "trial": number})
        return TrialRecord.from_row(rows[0]) if rows else None

    def trial_state(self, study: str, number: int) -> str | None:
        """Optuna's state of trial `number` of a study (COMPLETE, PRUNED, FAIL, RUNNING,
        WAITING); None when Optuna holds no such trial."""
        rows = self.rows("SELECT t.state FROM trials t JOIN studies s ON s.study_id = t.study_id "
                         "WHERE s.study_name = :study AND t.number = :trial", {"study": study, "trial": number})
        return rows[0]["state"] if rows else None

    def score(self, study: str) -> Score:
        """The score that ranks a study: the one its search recorded in the study's `score`
        attribute, or, for a study stored before that, `records.derive_score` of its rows."""
        named = score_named(self.study_attr(study, SCORE_ATTR))
        if named is not None:
            return named
        study_id = self.study_id(study)
        if study_id is None:
            return derive_score([])
        return derive_score(self.rows("SELECT dev_entity_f1 FROM rdzoo_results WHERE study_id = :study_id "
                                      "AND dev_entity_f1 IS NOT NULL LIMIT 1", {"study_id": study_id}))

    def study_attr(self, study: str, key: str):
        """The value of a study's Optuna user attribute `key`; None when it has none."""
        rows = self.rows("SELECT a.value_json AS v FROM study_user_attributes a JOIN studies s "
                         "ON a.study_id = s.study_id WHERE s.study_name = :study AND a.key = :key",
                         {"study": study, "key": key})
        return json.loads(rows[0]["v"]) if rows else None

    def has_study(self, study: str) -> bool:
        """Whether Optuna holds a study of this name."""
        return self.study_id(study) is not None

    def study_names(self) -> list[str]:
        """Every study Optuna holds, by name."""
        return [r["study_name"] for r in self.rows("SELECT study_name FROM studies ORDER BY study_name")]

    def final(self, study: str) -> list[TrialRecord]:
        """The completed final-stage runs of a search study, kept in its companion study
        `<study>-final`, by trial number; [] when Optuna holds no such study."""
        study_id = self.study_id(f"{study}-final")
        if study_id is None:
            return []
        rows = self.rows(f"SELECT {SELECT} FROM {FROM} WHERE r.study_id = :study_id AND r.stage = 'final' "
                         f"AND t.state = 'COMPLETE' AND {JOINED} ORDER BY r.trial", {"study_id": study_id})
        return [TrialRecord.from_row(r) for r in rows]

    def latest_study(self) -> str | None:
        """The study of the newest trial (Optuna's trial ids grow with creation); None when
        Optuna holds no trial."""
        # a final stage's companion study is not a search
        rows = self.rows("SELECT s.study_name FROM trials t JOIN studies s ON s.study_id = t.study_id "
                         "WHERE NOT EXISTS (SELECT 1 FROM rdzoo_results r WHERE r.study_id = t.study_id "
                         "AND r.stage = 'final') ORDER BY t.trial_id DESC LIMIT 1")
        return rows[0]["study_name"] if rows else None

    def summary(self) -> list[StudySummary]:
        """Every study Optuna holds: its trials by Optuna's state, its score and the best dev score
        of each score among the completed trials with results, Optuna's best value for a study
        whose completed trials have no rdzoo results (single objective; else None), and the
        last update (unix time of the newest trial start or finish; None without trials);
        newest first."""
        found: dict[int, dict] = {}
        sql = ("SELECT s.study_id, s.study_name, t.state, count(t.trial_id) AS n, max(t.datetime_start) AS started, "
               "max(t.datetime_complete) AS finished FROM studies s LEFT JOIN trials t ON t.study_id = s.study_id "
               "GROUP BY s.study_id, s.study_name, t.state")
        for r in self.rows(sql):
            s = found.setdefault(r["study_id"], {"study": r["study_name"], "counts": TrialCounts(), "last_update": None})
            if r["state"] is not None:
                s["counts"].add(r["state"], r["n"])
            for when in (r["started"], r["finished"]):
                stamp = _unix(when)
                if stamp is not None and (s["last_update"] is None or stamp > s["last_update"]):
                    s["last_update"] = stamp
        out = []
        for study_id, s in found.items():
            self._restore(s["study"], study_id)
            best = {}
            if s["counts"].complete:
                for score in SCORES.values():  # the first row in the index's order, not max(), which visits every row
                    top = self.rows(f"SELECT r.{score.dev} AS v FROM {FROM} WHERE r.study_id = :study_id "
                                    f"AND r.state = 'COMPLETE' AND t.state = 'COMPLETE' AND r.{score.dev} IS NOT NULL "
                                    f"AND {JOINED} ORDER BY r.{score.dev} DESC, r.trial LIMIT 1", {"study_id": study_id})
                    best[score.name] = top[0]["v"] if top else None
            value = self._best_value(study_id) if s["counts"].complete and not any(
                v is not None for v in best.values()) else None
            out.append(StudySummary(s["study"], self.score(s["study"]), s["counts"], best, value, s["last_update"]))
        return sorted(out, key=lambda s: -(s.last_update or 0.0))

    def _best_value(self, study_id: int) -> float | None:
        """Optuna's best value of a single-objective study's completed trials (its direction's max
        or min); None for several objectives or none finite."""
        rows = self.rows("SELECT d.direction AS direction, max(v.value) AS high, min(v.value) AS low "
                         "FROM study_directions d JOIN trials t ON t.study_id = d.study_id AND t.state = 'COMPLETE' "
                         "JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = d.objective "
                         "WHERE d.study_id = :study_id AND d.objective = 0 AND NOT EXISTS (SELECT 1 FROM "
                         "study_directions o WHERE o.study_id = d.study_id AND o.objective > 0) GROUP BY d.direction",
                         {"study_id": study_id})
        if not rows:
            return None
        return rows[0]["high"] if str(rows[0]["direction"]).upper().endswith("MAXIMIZE") else rows[0]["low"]

    def check_results(self, study: str) -> None:
        """Say in one error that a study's completed trials have no rdzoo results (`foreign_trials`),
        where an empty answer would read as "nothing matched".

        Raises:
            StoreError: the study, how many complete trials it has, and where to see them.
        """
        foreign = self.foreign_trials(study)
        if foreign:
            raise StoreError(f"study {study!r} in {shown_url(self.storage)} has no rdzoo results: its {foreign} "
                             "complete trial(s) were not run by `rdzoo search`; `rdzoo studies` lists it")

    def foreign_trials(self, study: str) -> int:
        """The completed trials of a study none of whose trials has rdzoo's results (a study made
        with Optuna's API, not `rdzoo search`), counted; 0 when some trial has them, or none completed."""
        study_id = self.study_id(study)
        if study_id is None or self.rows("SELECT 1 AS x FROM rdzoo_results WHERE study_id = :study_id LIMIT 1",
                                         {"study_id": study_id}) or self._restore(study, study_id):
            return 0
        return self.rows("SELECT count(*) AS n FROM trials WHERE study_id = :study_id AND state = 'COMPLETE'",
                         {"study_id": study_id})[0]["n"]

    def _restore(self, study: str, study_id: int | None) -> bool:
        """Fill the cache for a study's finished trials whose `rdzoo` user attribute Optuna
        holds but whose row is missing: a study copied (or renamed by copying) with
        Optuna's API, or a row a crash kept from being written. True when rows were added.
        Checked only when a query found fewer rows than it asked for."""
        if study_id is None or not self.rows(MISSING, {"study_id": study_id}):
            return False
        import optuna

        from .storage import make_storage
        from .store import Store

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        try:
            store = Store.open(self.storage)
            storage = make_storage(self.storage)
            added = store.sync(optuna.load_study(study_name=study, storage=storage), storage)
            store.engine.dispose()
        except Exception:  # a read-only database or a lost server: answer from the rows there are
            return False
        return added > 0

    def objectives(self, study: str) -> list[str]:
        """The objectives a study was run with (from Optuna's study attributes); ["accuracy"]
        when it has none recorded."""
        return self.study_attr(study, "objectives") or ["accuracy"]


def _unix(when) -> float | None:
    """Optuna's naive local datetime (text on SQLite) as unix time."""
    if when is None:
        return None
    if isinstance(when, str):
        from datetime import datetime

        when = datetime.fromisoformat(when)
    return when.timestamp()
