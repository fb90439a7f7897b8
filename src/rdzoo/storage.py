"""Where rdzoo's data lives and how it is opened.

One module for every storage concern that the search, the writer (`store.py`)
and the read queries (`query.py`) share:

- storage URLs: a bare path is a SQLite file, `journal:///path` is Optuna's
  journal file whose results table lives in a SQLite file beside it; `check_url`,
  the one check every command's `--storage` goes through;
- the results table's columns, defined once in `COLUMNS` (records.TrialRecord's
  fields);
- engines tuned for several writers on SQLite (the busy timeout, and another
  program's write lock met where each transaction begins: an error, or inside
  `patient()` a wait), and opening Optuna's storage with heartbeats;
- Optuna's schema: its revisions, and one error for tables of another;
- recovering the trials of dead workers;
- Optuna's own state (studies, trials) of a journal file as tables, so that
  the same SQL reads every storage.

Nothing heavy is imported at module level: `rdzoo best` on SQLite reads
through the standard library's sqlite3 without SQLAlchemy or Optuna.
"""

from __future__ import annotations

import functools
import math
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import StoreError

# 2: rows carry Optuna's study id and the trial's start time, so that a row is shown only
# while the trial it describes still exists (ids are reused once a study is deleted)
SCHEMA_VERSION = 2
DEFAULT_STORAGE = "sqlite:///rdzoo.db"
HEARTBEAT_SECONDS = 20
ORPHAN_SECONDS = 60  # a live worker names itself within milliseconds of starting a trial
BUSY_TIMEOUT = 60.0  # seconds a SQLite connection waits for another's write lock; RDZOO_BUSY_TIMEOUT overrides
TARGETS_TABLE = "rdzoo_targets"  # cached teacher outputs (distill.cache), beside the results table

# The results table `rdzoo_results`, one line per column: name and type. Adding a column
# is one line here: store.py creates it (and adds it to a table an older rdzoo made),
# fills it from the value of the same name in the trial's `rdzoo` user attribute, and
# every query returns it.
COLUMNS = (
    ("study", "name"),  # the study's name when the row was written; queries show Optuna's current name
    ("study_id", "int"),  # Optuna's studies.study_id
    ("trial", "int"),  # Optuna's trial number
    ("trial_id", "int"),  # Optuna's trials.trial_id
    ("datetime_start", "datetime"),  # Optuna's trials.datetime_start: tells a trial from a later one reusing its id
    ("state", "state"),  # Optuna's final state (a finished trial's state never changes)
    ("family", "word"),
    ("skip", "word"),
    ("spec", "json"),  # the complete buildable spec
    ("params", "bigint"),
    ("flops", "bigint"),
    ("latency_ms", "float"),
    ("sentence_latency_ms", "float"),  # one sentence, batch 1, one thread, on the CPU (profile.sentence_latency_ms)
    ("dev_accuracy", "float"),
    ("test_accuracy", "float"),
    ("macro_f1", "float"),
    ("train_seconds", "float"),
    ("epochs", "int"),
    ("dev_entity_f1", "float"),  # entity-tagged data: dev entity F1, the search's objective there
    ("entity_f1", "float"),  # ... and test entity F1 (exact span and type, micro)
    ("peak_memory", "bigint"),  # bytes: CUDA's peak allocated on a GPU, the process's peak resident memory on the CPU
    ("objective_values", "json"),  # the trial's values, for multi-objective studies
    ("error", "text"),
    ("finished_at", "float"),  # unix time the row was written
    # the final stage (nas.final): its runs live in the companion study `<study>-final`
    ("stage", "word"),  # "final" for a final-stage run, NULL for a search trial
    ("seed", "int"),  # the final run's train.seed
    ("contender", "name"),  # which architecture a final run retrains: "trial 17", "kim-cnn"
    ("baseline", "bool"),  # the final run retrains the baseline
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
JSON_COLUMNS = tuple(name for name, kind in COLUMNS if kind == "json")
# columns that say which trial a row is; every other column comes from the trial's results
IDENTITY_COLUMNS = ("study", "study_id", "trial", "trial_id", "datetime_start", "state")


# --- URLs ------------------------------------------------------------------------------


# the databases Optuna's RDB storage runs on, by SQLAlchemy's dialect name (a URL may add a
# driver: postgresql+psycopg2://); `journal` is Optuna's journal file
DATABASES = ("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql")
URL_FORMS = ("a SQLite file path, sqlite:///PATH, postgresql://USER:PASSWORD@HOST/DB, mysql://USER:PASSWORD@HOST/DB "
             "(SQLAlchemy's URL of any of " + ", ".join(DATABASES) + "), journal:///PATH")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):(//)?(.*)", re.DOTALL)


def check_url(url: str) -> str:
    """The storage URL as rdzoo opens it (a bare path becomes `sqlite:///PATH`); every command
    checks its `--storage` here (through `results_url`, `make_storage` and
    `nas.SearchConfig`) before any work.

    Refused, with what is allowed (`URL_FORMS`) and, where there is one, the URL most likely
    meant: a database SQLAlchemy has no dialect for (`sqllite:///x.db`, `redis://...`, and
    `postgres://`, which SQLAlchemy 2 refuses: rdzoo says "did you mean 'postgresql://...'"
    rather than rewrite it, so the URL a user keeps works in Optuna's own tools too), a scheme
    without `//` (`sqlite:s.db`, else a file named "sqlite:s.db"), `sqlite://x.db` (a host,
    not a path), a SQLite URL without a file (an in-memory database keeps nothing between
    processes) and a journal URL without one.

    Raises:
        SpecError: at `storage`, the URL (password masked) and what was wrong.
    """
    from .names import closest

    match = _SCHEME.fullmatch(url)
    if match is None:  # a path (a one-letter "scheme" is a Windows drive)
        if not url.strip():
            raise _bad_url(url, "empty")
        return normalize_url(url)
    scheme, slashes, rest = match.groups()
    database, plus, driver = scheme.lower().partition("+")
    known = (*DATABASES, "journal")
    close = database if database in known else closest(database, known)
    meant = None  # the closest database with the driver and the rest as typed
    if close is not None:
        meant = f"{close}{plus}{driver}:{'//' if slashes or close not in ('sqlite', 'journal') else '///'}{rest}"
    if not slashes:
        raise _bad_url(url, f"'{scheme}:' without '//' is neither a URL nor a file path (a file whose name has a "
                            f"':' is sqlite:///NAME)", meant)
    if database not in known:
        raise _bad_url(url, f"no database called {database!r}", meant)
    if database == "journal" and not rest.strip("/"):
        raise _bad_url(url, "no journal file named")
    if database == "sqlite":
        path = rest.split("?", 1)[0]
        if path in ("", "/", "/:memory:"):
            raise _bad_url(url, "no database file named (an in-memory database keeps nothing between processes)")
        if not path.startswith("/"):  # sqlite://x.db: x.db would be a host name
            raise _bad_url(url, "a SQLite URL has three slashes before its path", f"sqlite:///{rest}")
    return url


def _bad_url(url: str, why: str, meant: str | None = None):
    from .errors import SpecError

    hint = f"; did you mean {shown_url(meant)!r}?" if meant else ""
    return SpecError("storage", f"{shown_url(url)!r}: {why}; allowed: {URL_FORMS}{hint}")


def normalize_url(url: str) -> str:
    """A bare path means a SQLite file."""
    return url if "://" in url else f"sqlite:///{url}"


def journal_path(url: str) -> Path | None:
    """journal:///abs.log -> /abs.log (journal://rel.log -> rel.log); None for other URLs."""
    return Path(url[len("journal://"):]) if url.startswith("journal://") else None


def results_url(storage: str) -> str:
    """Where the results table lives: in the study database itself, or, for Optuna's
    journal file (which holds no tables), in a SQLite file beside it."""
    storage = check_url(storage)
    journal = journal_path(storage)
    if journal is not None:
        return f"sqlite:///{journal}.results.db"
    return normalize_url(storage)


def sqlite_path(url: str) -> Path | None:
    """sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db; None for memory or other databases."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def shown_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    if "@" not in url:
        return url
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


# --- errors ----------------------------------------------------------------------------


def first_line(exc: BaseException) -> str:
    """The first line of an error's own message; SQLAlchemy keeps the driver's in `.orig`."""
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).splitlines() or [type(cause).__name__])[0]


def storage_error(url: str, exc: BaseException) -> StoreError:
    """One clear error for a storage that cannot be opened: the URL (password masked) and the
    cause; a SQLite file whose write lock another program held past the busy timeout is
    `locked_error`."""
    if is_locked(getattr(exc, "orig", None) or exc) and sqlite_path(normalize_url(url)) is not None:
        return locked_error(sqlite_path(normalize_url(url)), busy_timeout())
    if isinstance(exc, ImportError):
        hint = " (PostgreSQL: pip install 'rdzoo[postgres]')" if url.startswith("postgres") else ""
        return StoreError(f"{shown_url(url)}: no database driver ({exc.name or exc}); install it{hint}")
    return StoreError(f"{shown_url(url)}: cannot open this storage ({first_line(exc)})")


def check_schema_version(url: str, version: int | None) -> None:
    """The one rule both the writer and the reader apply: refuse a newer rdzoo's tables.

    Raises:
        StoreError: `version` is newer than this rdzoo's SCHEMA_VERSION.
    """
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(f"{url}: written by a newer rdzoo (schema {version}; this one reads {SCHEMA_VERSION}); "
                         "upgrade rdzoo")


# --- Optuna's schema --------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def optuna_revisions() -> tuple[str, ...]:
    """The revisions of Optuna's RDB schema that the installed Optuna knows, oldest first (the
    last is what it writes); () when they cannot be read. Read from the `revision` and
    `down_revision` lines of its alembic scripts, which is what Optuna's own check compares
    a database's `alembic_version` with: importing Optuna and alembic to ask would take
    0.5 s, twice what a query command takes in all."""
    from .optuna_compat import alembic_scripts

    folder = alembic_scripts()
    if folder is None:
        return ()
    after = {}  # down_revision -> revision
    for script in folder.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        revision = re.search(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
        down = re.search(r"^down_revision\s*=\s*(?:['\"]([^'\"]+)['\"]|None)", text, re.M)
        if revision and down:
            after[down.group(1)] = revision.group(1)
    chain, revision = [], after.get(None)
    while revision is not None and revision not in chain:
        chain.append(revision)
        revision = after.get(revision)
    return tuple(chain)


def check_optuna_schema(url: str, revision: str | None) -> None:
    """Refuse Optuna tables of another schema than the installed Optuna's, as Optuna itself
    does (`RDBStorage` raises a RuntimeError), in one line: `revision` is the database's
    `alembic_version`; None (no such table) is not checked.

    Raises:
        StoreError: an older schema (with the `optuna storage upgrade` command that brings it
            up to date) or a newer one (upgrade Optuna).
    """
    known = optuna_revisions()
    if revision is None or not known or revision == known[-1]:
        return
    raise optuna_schema_error(url, revision in known, f"schema {revision}")


def optuna_schema_error(url: str, older: bool, found: str | None = None) -> StoreError:
    """The one error for Optuna tables of another schema (`found` says which, if known: "schema
    v3.0.0.a", "made by Optuna 3.0.0"): an older one names the command that upgrades them, a
    newer one asks for a newer Optuna."""
    try:
        from importlib.metadata import version

        optuna = f"Optuna {version('optuna')}"
    except Exception:  # the version is a courtesy in the message
        optuna = "this Optuna"
    schema = f" ({found})" if found else ""
    if older:
        from .optuna_compat import UPGRADE_HINT

        return StoreError(f"{shown_url(url)}: its Optuna tables have an older schema{schema} than {optuna} reads; "
                          f"upgrade them with `{UPGRADE_HINT} {shown_url(normalize_url(url))}` (after a copy of the "
                          "database), then run the command again")
    return StoreError(f"{shown_url(url)}: its Optuna tables have a newer schema{schema} than {optuna} reads; "
                      "upgrade Optuna (pip install -U optuna)")


# --- engines and Optuna's storage -------------------------------------------------------


def busy_timeout() -> float:
    """Seconds a SQLite connection waits for the write lock another holds before it gives up:
    the environment's RDZOO_BUSY_TIMEOUT, else BUSY_TIMEOUT (60).

    Raises:
        SpecError: at RDZOO_BUSY_TIMEOUT, a value that is not a positive number of seconds.
    """
    text = os.environ.get("RDZOO_BUSY_TIMEOUT")
    if text is None:
        return BUSY_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        from .errors import SpecError

        raise SpecError("RDZOO_BUSY_TIMEOUT", f"{text!r} is not a positive number of seconds")
    return seconds


def make_engine(url: str):
    """A SQLAlchemy engine tuned for several writers on SQLite: WAL journal, a busy timeout
    (`busy_timeout()`, 60 s) and BEGIN IMMEDIATE; other databases get pre-ping (a server may drop idle
    connections)."""
    import sqlalchemy as sa

    url = normalize_url(url)
    if sqlite_path(url) is not None:
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout()})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout() * 1000)}")
            # a killed process loses nothing committed under NORMAL in WAL mode; only a power
            # failure could drop the newest rows, and `sync` rebuilds those from Optuna's tables
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        serialize_sqlite_writes(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def serialize_sqlite_writes(engine) -> None:
    """Start every SQLite transaction with BEGIN IMMEDIATE.

    A deferred transaction that reads and then writes fails at once with
    "database is locked" when another process wrote in between: SQLite cannot
    wait there, since waiting could deadlock. Taking the write lock up front makes
    the busy timeout apply instead (SQLAlchemy's documented pysqlite recipe).

    So this is where another program's lock is met: held past the busy timeout, it
    raises `locked_error` (a StoreError, which Optuna's storage lets through, where
    it would wrap SQLAlchemy's error as StorageInternalError), or, inside `patient()`,
    is waited for again, with one notice.
    """
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(conn):
        waited, told = 0.0, False
        while True:
            began = time.monotonic()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except sa.exc.OperationalError as exc:
                if not is_locked(exc.orig):
                    raise
                waited += time.monotonic() - began
                if not _PATIENCE:  # nothing in flight: say so now
                    raise locked_error(engine.url.database, waited) from None
                if not told:
                    _PATIENCE[-1](f"{engine.url.database}: {LOCK_HELD} (rdzoo has waited {_seconds(waited)}); the "
                                  "running trial keeps its work and writes it once that program ends its transaction "
                                  "(a database browser: write or revert its changes)")
                    told = True

    engine.dispose()  # connections made before the listeners must not be reused


# --- another program's write lock -------------------------------------------------------

LOCK_HELD = "another program holds this SQLite database's write lock"
# the `notify` of each `patient()` block open now, in any thread (a search's trials are running)
_PATIENCE: list = []


def is_locked(exc: BaseException | None) -> bool:
    """Is this sqlite3 error SQLite's "database is locked" (SQLITE_BUSY, the busy timeout passed)?"""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    return name in ("SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT") if name else "database is locked" in str(exc)


def locked_error(path, waited: float) -> StoreError:
    """The one error for a SQLite write lock that another program (a database browser with
    unsaved changes, a `sqlite3` shell inside BEGIN) held past the busy timeout: the database
    file, the lock and how long rdzoo waited. Optuna would report it as StorageInternalError,
    "invalid data in the commit"; the transaction that raises this comes first."""
    return StoreError(f"{path}: {LOCK_HELD} (rdzoo waited {_seconds(waited)} for it; RDZOO_BUSY_TIMEOUT sets how "
                      "long); end that program's transaction (a database browser: write or revert its changes) "
                      "and run the same command again")


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


@contextmanager
def patient(notify=None):
    """Inside, a SQLite transaction of this process (any thread: Optuna's heartbeat too) that
    finds the write lock held by another program past the busy timeout goes on waiting, and
    calls `notify(text)` (default: a line on stderr) once per wait, instead of raising
    `locked_error`: a search runs its trials inside, and the final stage its runs, so what a
    trial has trained is written once the lock is free, not dropped."""
    notify = notify or _line_on_stderr
    _PATIENCE.append(notify)
    try:
        yield
    finally:
        _PATIENCE.remove(notify)


def _line_on_stderr(text: str) -> None:
    import sys

    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def retry_creation(create, attempts: int = 5):
    """Run a table-creating step, retrying when another worker creates the same tables at
    the same moment (PostgreSQL then raises a unique violation on its catalog)."""
    import random
    import time

    import sqlalchemy as sa

    for attempt in range(attempts):
        try:
            return create()
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + random.random() * 0.5)


def make_storage(url: str, heartbeat: int = HEARTBEAT_SECONDS):
    """An Optuna storage for a URL.

    RDB URLs (sqlite, postgresql, mysql) get heartbeats (every `heartbeat` seconds): a trial whose worker died is
    failed after the grace period and retried by a live worker. `journal:///path` is
    Optuna's journal file, for shared file systems without a database server; it has
    no heartbeat, so `recover_dead_workers` covers it.

    Raises:
        StoreError: the storage cannot be opened (the URL, password masked, and the cause),
            or its Optuna tables are of an older or newer schema than Optuna's.
    """
    check_url(url)
    import sqlalchemy as sa

    try:
        return _open_storage(url, heartbeat)
    except (sa.exc.DatabaseError, ImportError, OSError) as exc:
        raise storage_error(url, exc) from None
    except RuntimeError as exc:  # Optuna's check of its schema: "optuna storage upgrade" or "pip install -U optuna"
        from .optuna_compat import schema_error

        other = schema_error(exc)
        if other is None:
            raise
        raise optuna_schema_error(url, *other) from None


def _open_storage(url: str, heartbeat: int):
    import optuna

    from .optuna_compat import heartbeat_options

    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = url[len("journal://"):]
        return JournalStorage(JournalFileBackend(path))
    url = normalize_url(url)
    make_engine(url).dispose()  # sets WAL on a SQLite file before Optuna connects
    sqlite = sqlite_path(url) is not None
    storage = retry_creation(lambda: optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": {"timeout": busy_timeout()}} if sqlite else {"pool_pre_ping": True},
        **heartbeat_options(heartbeat, 3 * heartbeat, max_retry=2)))
    if sqlite:
        serialize_sqlite_writes(storage.engine)
    return storage


# --- dead workers -----------------------------------------------------------------------


def recover_dead_workers(study, orphan_after: float = ORPHAN_SECONDS) -> int:
    """Fail and re-queue RUNNING trials whose worker process on this host is gone.

    Each trial records its host and process id when it starts. This recovers a
    killed local worker at once, on every storage; heartbeats cover workers on
    other machines of an RDB storage, and the journal file, which has no
    heartbeat, relies on this alone. A worker killed between creating a trial and
    naming itself leaves a trial that no one owns and that never goes stale
    (Optuna only checks trials with a heartbeat): once `orphan_after` seconds old
    without a name, it is recovered too.
    """
    import socket
    from datetime import datetime

    from optuna.trial import TrialState

    host, failed, now = socket.gethostname(), 0, datetime.now()  # Optuna's datetime_start is naive local time
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if worker is None:
            dead = t.datetime_start is not None and (now - t.datetime_start).total_seconds() > orphan_after
        else:
            dead = worker.get("host") == host and not _alive(worker.get("pid"))
        if not dead:
            continue
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except ValueError:  # another worker finished or recovered it a moment ago
            continue
        keep = {"start": t.user_attrs["start"]} if "start" in t.user_attrs else {}  # a retried start model stays one
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number, **keep}, skip_if_exists=False)
        failed += 1
    return failed


def _alive(pid) -> bool:
    if not isinstance(pid, int):
        return True  # unknown: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- Optuna's state of a journal file, as tables ----------------------------------------

# SQLAlchemy's text form of a DateTime on SQLite, which is what Optuna's tables and the
# results table hold there: the journal's trials are written the same way so the
# results rows join with them as they join with Optuna's own tables
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def load_journal_tables(conn, journal: Path) -> None:
    """Put Optuna's studies, trials, study attributes, directions and values of a journal file
    into TEMP tables `studies`, `trials`, `study_user_attributes`, `trial_user_attributes` (keys
    only), `study_directions` and `trial_values` (finite values) of a sqlite3 connection (the
    results file beside the journal), shaped as Optuna's RDB tables, so that the queries written
    for those run unchanged. Reads the journal through Optuna's API (a replay of the log).
    """
    import json

    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    studies, trials, attrs, keys, directions, values = [], [], [], [], [], []
    for s in storage.get_all_studies():
        study_id = storage.get_study_id_from_name(s.study_name)  # the ids through the storage's public API
        studies.append((study_id, s.study_name))
        attrs += [(study_id, k, json.dumps(v)) for k, v in s.user_attrs.items()]
        directions += [(study_id, i, d.name) for i, d in enumerate(s.directions)]
        for t in storage.get_all_trials(study_id, deepcopy=False):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            trials.append((trial_id, t.number, study_id, t.state.name, _text(t.datetime_start),
                           _text(t.datetime_complete)))
            keys += [(trial_id, k) for k in t.user_attrs]
            values += [(trial_id, i, v) for i, v in enumerate(t.values or []) if math.isfinite(v)]
    drop_journal_tables(conn)
    for statement in (
            "CREATE TEMP TABLE studies (study_id INTEGER PRIMARY KEY, study_name TEXT UNIQUE NOT NULL)",
            "CREATE TEMP TABLE trials (trial_id INTEGER PRIMARY KEY, number INTEGER, study_id INTEGER, "
            "state TEXT NOT NULL, datetime_start TEXT, datetime_complete TEXT)",
            "CREATE INDEX temp.ix_trials_study_id ON trials (study_id)",
            "CREATE TEMP TABLE study_user_attributes (study_id INTEGER, key TEXT, value_json TEXT)",
            "CREATE TEMP TABLE trial_user_attributes (trial_id INTEGER, key TEXT, PRIMARY KEY (trial_id, key))",
            "CREATE TEMP TABLE study_directions (study_id INTEGER, objective INTEGER, direction TEXT)",
            "CREATE TEMP TABLE trial_values (trial_id INTEGER, objective INTEGER, value REAL)"):
        conn.execute(statement)
    conn.executemany("INSERT INTO temp.studies VALUES (?, ?)", studies)
    conn.executemany("INSERT INTO temp.trials VALUES (?, ?, ?, ?, ?, ?)", trials)
    conn.executemany("INSERT INTO temp.study_user_attributes VALUES (?, ?, ?)", attrs)
    conn.executemany("INSERT INTO temp.trial_user_attributes VALUES (?, ?)", keys)
    conn.executemany("INSERT INTO temp.study_directions VALUES (?, ?, ?)", directions)
    conn.executemany("INSERT INTO temp.trial_values VALUES (?, ?, ?)", values)
    if conn.isolation_level is not None:  # sqlite3's implicit transaction; a connection in autocommit has none
        conn.commit()


def drop_journal_tables(conn) -> None:
    """Remove the TEMP tables of `load_journal_tables` (a pooled connection outlives them)."""
    for table in ("studies", "trials", "study_user_attributes", "trial_user_attributes", "study_directions",
                  "trial_values"):
        conn.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _text(when) -> str | None:
    return None if when is None else when.strftime(SQLITE_DATETIME)
