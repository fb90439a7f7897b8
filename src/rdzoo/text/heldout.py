"""What a run was split from, and which examples are held out from it.

A trained run keeps a `SplitRecord` (split.json in its folder): the sha256 of
every data file it read, and a 64-bit hash of each example's text in each of
its splits: train (what the weights were fitted on), dev (what picked the epoch
kept: the data's dev split, or the part training holds out of train) and test.
`rdzoo eval` compares the data it reads with it (`held_out`):

- the run's own data, unchanged (every file's sha256 as recorded, and the same
  test examples drawn again): the run's own test split, scored as training
  scored it;
- the run's own data, changed (a file's sha256 differs, a file is new or gone,
  or the split drawn again differs): every example of the test source (the one
  file a test split was held out of, else the test file) whose text the run
  never trained on, train or dev; those it trained on are left out and counted;
- other data (`--data` naming another source): its dev and test splits, less
  the examples whose text the run trained on, counted;
- a run without a record (saved by an older rdzoo): scored as loaded, with a
  note that its split cannot be checked.

An example is matched by its text alone: a text the run trained on under
another label was still seen. Hashes are BLAKE2b with an 8-byte digest
(RFC 7693) of the text as JSON (a tagged example's word list as a JSON list);
with n examples against m, the chance of any false match is about
n * m / 2**64 (1e-7 at a million each). Stored as base64, a record takes about
11 bytes an example.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from .data import builtin_names
from .dataset import Split, TextData
from .folds import split_off

RECORD_VERSION = 1
HASH_BYTES = 8
HASH_NAME = "blake2b-64 of each example's text as JSON, concatenated, base64"


def example_hash(text) -> bytes:
    """An example's 8-byte BLAKE2b hash of its text (a string, or a tagged example's word list) as JSON."""
    return hashlib.blake2b(json.dumps(text, ensure_ascii=False).encode("utf-8"), digest_size=HASH_BYTES).digest()


def split_hashes(split: Split | None) -> bytes:
    """Every example's hash in split order, concatenated (8 bytes each; b"" for no split)."""
    return b"".join(example_hash(t) for t in split.texts) if split is not None else b""


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's bytes as stored (compressed files as they are), hex.

    Raises OSError when the file cannot be read."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_files(data: TextData) -> list[dict]:
    """The files a load read, in order: {"file": absolute path, "sha256": hex, "bytes": size}
    (none for generated data such as `synthetic`). Raises DataError when one cannot be read now."""
    out = []
    for d in data.decoding:
        path = Path(d.file).expanduser().resolve()
        try:
            out.append({"file": str(path), "sha256": file_sha256(path), "bytes": path.stat().st_size})
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return out


def training_splits(data: TextData, dev_fraction: float, seed: int) -> tuple[Split, Split]:
    """The (train, dev) splits training uses: the data's own dev split, or, without one, `dev_fraction`
    of train held out (seeded by `seed`, `folds.split_off`)."""
    if data.dev is None or not len(data.dev):
        return split_off(data.train, dev_fraction, seed)
    return data.train, data.dev


@dataclass
class SplitRecord:
    """What a run was split from: the data files read (path, sha256, size) and each split's example
    hashes (`split_hashes`: 8 bytes an example, in split order)."""

    files: list[dict]
    train: bytes
    dev: bytes
    test: bytes

    @classmethod
    def of(cls, data: TextData, dev_fraction: float, seed: int) -> "SplitRecord":
        """The record of training on `data` with the train section's `dev_fraction` and `seed` (the split
        `training_splits` makes). Raises DataError when a file read cannot be read again."""
        train, dev = training_splits(data, dev_fraction, seed)
        return cls(data_files(data), split_hashes(train), split_hashes(dev), split_hashes(data.test))

    def seen(self) -> bytes:
        """The hashes of every example the run trained on: train and dev."""
        return self.train + self.dev

    def to_json(self) -> dict:
        """The record as JSON-ready data (split.json): counts for readers, hashes as base64."""
        return {"version": RECORD_VERSION, "hash": HASH_NAME, "files": self.files,
                "counts": {s: len(getattr(self, s)) // HASH_BYTES for s in ("train", "dev", "test")},
                **{s: base64.b64encode(getattr(self, s)).decode("ascii") for s in ("train", "dev", "test")}}

    @classmethod
    def from_json(cls, obj) -> "SplitRecord":
        """Read `to_json`'s output back. Raises ValueError naming what is wrong in a damaged or newer record."""
        if not isinstance(obj, dict) or obj.get("version") != RECORD_VERSION:
            found = obj.get("version") if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(f"not a version {RECORD_VERSION} split record (version: {found!r})")
        files = obj.get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("sha256"), str)
                                                  and isinstance(f.get("file"), str) for f in files):
            raise ValueError("'files' is not a list of {file, sha256}")
        hashes = {}
        for s in ("train", "dev", "test"):
            try:
                hashes[s] = base64.b64decode(obj.get(s), validate=True)
            except (TypeError, ValueError):
                raise ValueError(f"{s!r} is not base64") from None
            if len(hashes[s]) % HASH_BYTES:
                raise ValueError(f"{s!r} holds {len(hashes[s])} bytes, not a multiple of {HASH_BYTES}")
        return cls(files, **hashes)


@dataclass
class HeldOut:
    """What `rdzoo eval` scores and why: the dev and test splits to score (None: none), which case it
    was (`check`: "unchanged", "changed", "other" or "unrecorded"), one line saying what was done,
    how many examples were left out as trained on, and the files that changed since training."""

    dev: Split | None
    test: Split | None
    check: str
    note: str
    excluded: int = 0
    changed_files: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """For --json: check, note, excluded and changed_files."""
        return {"check": self.check, "note": self.note, "excluded": self.excluded,
                "changed_files": self.changed_files}


def same_source(source: str, recorded: str | None, recorded_path: str | None) -> bool:
    """Whether a --data value names the data a run was trained on: the same built-in name, or a path
    that resolves to the run's file or folder."""
    if source == recorded:
        return True
    if recorded_path is None or source in builtin_names():
        return False
    return Path(source).expanduser().resolve() == Path(recorded_path)


def held_out_of_file(source: str) -> bool:
    """Whether `load_data(source)` holds its test split out of one file (not a built-in or a folder)."""
    return source not in builtin_names() and Path(source).expanduser().is_file()


def _unseen(split: Split | None, seen) -> tuple[Split | None, int]:
    """`split` less the examples whose hash is in `seen` (a sorted uint64 array), and how many were left out."""
    import numpy as np

    if split is None or not len(split):
        return split, 0
    mine = np.frombuffer(split_hashes(split), dtype="<u8")
    keep = np.flatnonzero(~np.isin(mine, seen, assume_unique=False)).tolist()
    return split.subset(keep), len(split) - len(keep)


def _merge(a: Split | None, b: Split | None) -> Split | None:
    parts = [s for s in (a, b) if s is not None]
    return Split([t for s in parts for t in s.texts], [label for s in parts for label in s.labels]) if parts else None


def held_out(data: TextData, record: SplitRecord | None, source: str, own: bool) -> HeldOut:
    """The splits `rdzoo eval` scores on `data` (loaded from `source`) for a run with `record` (None: a run
    saved without one), `own` when `source` is the run's own data; the cases are in the module's docstring.
    Other data whose files all match the record is the run's own (a copy elsewhere).

    Raises DataError when, the data having changed, no example is left that the run never trained on."""
    import numpy as np

    if record is None:
        return HeldOut(data.dev, data.test, "unrecorded",
                       "the run keeps no record of its split (saved by an older rdzoo): whether the scored "
                       "examples were trained on cannot be checked")
    files = data_files(data)
    same_files = [f["sha256"] for f in files] == [f["sha256"] for f in record.files]
    own = own or (same_files and bool(files))
    seen = np.unique(np.frombuffer(record.seen(), dtype="<u8"))
    if not own:
        dev, dev_out = _unseen(data.dev, seen)
        test, test_out = _unseen(data.test, seen)
        n, excluded = sum(len(s) for s in (data.dev, data.test) if s is not None), dev_out + test_out
        if n and excluded == n:
            raise DataError(f"{data.name}: the run trained on the text of every one of its {n} dev/test examples; "
                            "none is held out to score")
        note = (f"not the run's data: left out {excluded} of its {n} dev/test examples whose text the run trained "
                "on (train or dev)" if excluded else
                f"not the run's data: none of its {n} dev/test examples has a text the run trained on")
        return HeldOut(dev if dev is not None and len(dev) else None, test if test is not None and len(test) else None,
                       "other", note, excluded)
    names = [Path(f["file"]).name for f in files]
    if same_files and split_hashes(data.test) == record.test:
        shared = len(data.test) - len(_unseen(data.test, seen)[0]) if data.test is not None else 0
        repeat = f"; {shared} of them repeat a training text within the data" if shared else ""
        what = f"sha256 of {', '.join(names)} as recorded" if names else "generated again alike"
        scored = (f"scored the run's own test split, {len(data.test)} examples{repeat}" if data.test is not None
                  else "it has no test split; scored its dev split")
        return HeldOut(data.dev, data.test, "unchanged", f"data unchanged since training ({what}): {scored}")
    recorded = {f["sha256"] for f in record.files}
    now = {f["sha256"] for f in files}
    changed = [Path(f["file"]).name for f in files if f["sha256"] not in recorded] + \
        [Path(f["file"]).name + " (gone)" for f in record.files if f["sha256"] not in now
         and f["file"] not in {g["file"] for g in files}]
    why = (f"{', '.join(changed)} changed since training (sha256 differs from the run's record)" if changed else
           "the files are as recorded but the split drawn again differs from the run's (read with other "
           "bad-line handling or columns than in training?)")
    one_file = held_out_of_file(source)
    pool = _merge(data.train, data.test) if one_file else data.test
    where, instead = (f"{names[0]}'s", ", in place of a split drawn again") if one_file and names else ("the test", "")
    test, excluded = _unseen(pool, seen)
    if test is not None and not len(test):
        if data.dev is None or not len(data.dev):
            raise DataError(f"{why}, and the run trained on the text of every one of {where} {len(pool)} examples: "
                            "none is held out to score; give held-out examples as source", "source")
        test = None
    if pool is None:  # a folder without a test file: its dev split, as training used it
        return HeldOut(data.dev, None, "changed", f"{why}: it has no test split; scored its dev split", 0, changed)
    n, total = (len(test) if test is not None else 0), len(pool)
    return HeldOut(data.dev, test, "changed",
                   f"{why}: scored as test the {n} of {where} {total} examples the run never trained on{instead}; "
                   f"{excluded} left out as trained on (train or dev)", excluded, changed)
