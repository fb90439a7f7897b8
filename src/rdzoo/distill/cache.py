"""Where teacher outputs are kept: a folder of files, or a table in a study's database.

A cache maps a key (`targets.cache_key`: the teachers' weights, the texts, the settings) to
one payload, the bytes of a safetensors file. Both backends keep the first payload stored
under a key: `put` inserts only where the key is absent and otherwise hands back the
payload that is there, so two processes that computed the same key at once both go on
with one value, and every worker of a study reads the same teacher outputs. A reader
never sees part of a payload.

- `FolderCache` (a folder path): `<folder>/<key>.safetensors`, written to a temporary
  file that is then hard-linked to its name (a link fails where the name exists, so the
  first one stays; a file system without hard links falls back to a rename, where the
  last one stays).
- `DatabaseCache` (a storage URL, as `--storage` takes: `sqlite:///rdzoo.db`,
  `postgresql://...`, `journal:///path`): the table `rdzoo_targets` (key, created_at,
  size, sha256, payload), made on first use in the database that holds the results table
  (`storage.results_url`: the study database itself, the SQLite file beside a journal),
  through `storage.make_engine` (SQLite: WAL, busy timeout, BEGIN IMMEDIATE, so
  several writers wait in turn). A row is inserted in one transaction, and read back
  whole; its size and SHA-256 are checked on reading, and a row that fails the check
  is deleted and counts as absent.

`open_cache(where)` picks the backend from the `BACKENDS` table: a URL (`scheme://`)
is a database, anything else a folder. SQLAlchemy is imported only by the database
backend, inside its methods.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from ..errors import SpecError, StoreError
from ..storage import TARGETS_TABLE as TABLE

PUT_ATTEMPTS = 5  # inserts tried while other processes delete damaged rows under the same key


class FolderCache:
    """Payloads as files `<folder>/<key>.safetensors`. Raises SpecError at `targets` for a
    path that is an existing file (a database is named by its URL: sqlite:///PATH)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise SpecError("targets", f"{self.folder} is a file, not a folder; a database is named by its URL "
                                       f"(sqlite:///{self.folder}, postgresql://..., journal:///PATH)")

    def path(self, key: str) -> Path:
        """The file of `key`."""
        return self.folder / f"{key}.safetensors"

    def where(self, key: str) -> str:
        """Where `key`'s payload lives, for messages and a run's record: its file."""
        return str(self.path(key))

    def get(self, key: str) -> bytes | None:
        """The payload stored under `key`, or None."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, payload: bytes) -> bytes:
        """Store `payload` under `key` unless a payload is there already; return the payload the
        folder holds now (`payload` itself when it was stored). Raises OSError when the file
        cannot be written."""
        path = self.path(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_bytes(payload)
            umask = os.umask(0o022)  # reading the umask means setting it: put it straight back
            os.umask(umask)
            tmp.chmod(0o666 & ~umask)  # the mode of the run's other files
            for _ in range(PUT_ATTEMPTS):
                try:
                    os.link(tmp, path)  # fails where the name exists: the first payload stays
                    return payload
                except FileExistsError:
                    there = self.get(key)
                    if there is not None:
                        return there
                except OSError:  # no hard links here (some network file systems): the last rename stays
                    os.replace(tmp, path)
                    return payload
            raise OSError(f"{path}: could not be written ({PUT_ATTEMPTS} tries, removed each time by another process)")
        finally:
            tmp.unlink(missing_ok=True)

    def discard(self, key: str, payload: bytes) -> None:
        """Remove `key`'s file if it still holds `payload` (a damaged one)."""
        if self.get(key) == payload:
            self.path(key).unlink(missing_ok=True)


class DatabaseCache:
    """Payloads as rows of the table `rdzoo_targets` in the database of a storage URL (the
    results table's: `storage.results_url`), made on first use.

    Raises SpecError at `targets` for a malformed URL (`storage.check_url`'s rules); its
    methods raise StoreError naming the database (password masked) when it cannot be used,
    and `storage.locked_error` for another program's SQLite write lock held past the busy
    timeout (inside `storage.patient()`, as a search's trials run, the write waits instead)."""

    def __init__(self, storage: str):
        from ..storage import results_url

        try:
            self.url = results_url(storage)
        except SpecError as exc:
            raise SpecError("targets", f"{exc.message}; or a folder path, for files") from None
        self._ready = False

    def where(self, key: str) -> str:
        """Where `key`'s payload lives: the database (password masked), table and key."""
        from ..storage import shown_url

        return f"{shown_url(self.url)} (table {TABLE}, key {key})"

    def get(self, key: str) -> bytes | None:
        """The payload stored under `key`, or None (also for a row whose size or SHA-256 does
        not match its payload: it is deleted)."""
        sa, table = _table()
        with self._engine() as engine, engine.connect() as conn:
            row = conn.execute(sa.select(table.c.size, table.c.sha256, table.c.payload)
                               .where(table.c.key == key)).first()
        if row is None:
            return None
        payload = bytes(row.payload or b"")
        if len(payload) != row.size or hashlib.sha256(payload).hexdigest() != row.sha256:
            self.discard(key, payload)
            return None
        return payload

    def put(self, key: str, payload: bytes) -> bytes:
        """Insert `payload` under `key` unless a row is there already; return the payload the
        table holds now (`payload` itself when it was inserted)."""
        sa, table = _table()
        row = {"key": key, "size": len(payload), "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}
        for _ in range(PUT_ATTEMPTS):
            try:
                with self._engine() as engine, engine.begin() as conn:
                    conn.execute(table.insert().values(created_at=time.time(), **row))
                return payload
            except sa.exc.IntegrityError:  # another process stored this key first: its payload is the one
                there = self.get(key)
                if there is not None:
                    return there
        raise StoreError(f"{self.where(key)}: could not be stored ({PUT_ATTEMPTS} tries, each time a damaged row "
                         "was in the way)")

    def discard(self, key: str, payload: bytes) -> None:
        """Delete `key`'s row if it still holds `payload` (a damaged one)."""
        sa, table = _table()
        with self._engine() as engine, engine.begin() as conn:
            conn.execute(sa.delete(table).where(table.c.key == key, table.c.payload == payload))

    @contextmanager
    def _engine(self):
        """An engine on the database (`storage.make_engine`), the table made on first use;
        SQLAlchemy's errors but a duplicate key become one StoreError naming the database."""
        import sqlalchemy as sa

        from ..storage import make_engine, retry_creation, storage_error

        engine = None
        try:
            engine = make_engine(self.url)
            if not self._ready:
                retry_creation(lambda: _table()[1].create(engine, checkfirst=True))
                self._ready = True
            yield engine
        except sa.exc.IntegrityError:
            raise
        except (sa.exc.DatabaseError, ImportError) as exc:
            raise storage_error(self.url, exc) from None
        finally:
            if engine is not None:
                engine.dispose()


@functools.lru_cache(maxsize=1)
def _table():
    """(sqlalchemy, the `rdzoo_targets` table), made once."""
    import sqlalchemy as sa

    table = sa.Table(
        TABLE, sa.MetaData(),
        sa.Column("key", sa.String(64), primary_key=True),  # targets.cache_key
        sa.Column("created_at", sa.Float, nullable=False),  # unix time the row was inserted
        sa.Column("size", sa.BigInteger, nullable=False),  # bytes of the payload
        sa.Column("sha256", sa.String(64), nullable=False),  # of the payload: a damaged row is told by it
        sa.Column("payload", sa.LargeBinary, nullable=False))  # a safetensors file's bytes
    return sa, table


# how a cache is named -> its backend: a URL (scheme://...) is a database, anything else a folder
BACKENDS = {"database": DatabaseCache, "folder": FolderCache}


def kind_of(where: str | Path) -> str:
    """The backend (a key of BACKENDS) that `where` names: "database" for a URL, else "folder"."""
    return "database" if isinstance(where, str) and "://" in where else "folder"


def open_cache(where: str | Path):
    """The cache that `where` names: a folder path, or a storage URL (sqlite:///PATH,
    postgresql://..., journal:///PATH: the database of its results table). Raises
    SpecError at `targets` for a URL `storage.check_url` refuses or a path that is a file."""
    return BACKENDS[kind_of(where)](where)
