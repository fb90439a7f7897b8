"""Teachers: trained run folders, or zoo names and specs fine-tuned first and kept.

A teacher named by a run folder (`rdzoo train ... --out DIR`) is loaded as it is. Any
other name is a spec (a zoo name such as `minilm-l6`, a YAML file, a checkpoint folder):
it is fine-tuned with its own recipe (`train.fit`) on the student's training split, its
epoch picked on the student's dev split, the test split removed before it starts, and
the run is kept in `<teacher_dir>/<key>`, where the key hashes the resolved spec (its
seed included) and those two splits. A later call with the same teacher and data loads
that run instead of training again; two processes that fine-tune the same teacher at
once each write a folder of their own and rename it into place, and the later one keeps
the first one's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import SpecError, WeightsError

FORMAT = "rdzoo.teacher/1"


class OutOfTime(Exception):
    """A teacher's fine-tuning passed its time (`fine_tune`'s max_seconds) before its recipe's last
    epoch: `name` the teacher, `done` how far it got in words. Nothing was kept."""

    def __init__(self, name: str, done: str):
        super().__init__(f"{name}: {done}")
        self.name, self.done = name, done


@dataclass
class Teacher:
    """A teacher ready to score: its loaded run (runs.Run), the name it was given, whether this
    call fine-tuned it, and its run's metrics (metrics.json; {} when missing)."""

    run: object
    source: str
    fine_tuned: bool = False
    metrics: dict = field(default_factory=dict)

    def describe(self) -> dict:
        """What a report says of it: the name given, its run folder, whether it was fine-tuned now,
        and its dev score (accuracy; entity F1 on entity data)."""
        dev = self.metrics.get("dev_entity_f1", self.metrics.get("dev_accuracy"))
        return {"teacher": self.source, "run": str(self.run.path), "fine_tuned": self.fine_tuned, "dev_score": dev}


def is_run(path: str | Path) -> bool:
    """Whether `path` is a run folder rdzoo wrote (its model.safetensors carries an rdzoo spec),
    not, say, a checkpoint folder in Hugging Face's layout."""
    from ..weights import read_metadata

    weights = Path(path).expanduser() / "model.safetensors"
    if not weights.is_file():
        return False
    try:
        read_metadata(weights)
    except WeightsError:
        return False
    return True


def data_fingerprint(data) -> str:
    """SHA-256 of what a teacher learns from and is picked on: the training and dev splits'
    texts and labels (not the test split)."""
    digest = hashlib.sha256(FORMAT.encode())
    for split in (data.train, data.dev):
        digest.update(json.dumps(None if split is None else [split.texts, split.labels], ensure_ascii=False).encode())
    return digest.hexdigest()


def teacher_key(spec, data) -> str:
    """The folder name of a teacher fine-tuned from `spec` on `data`: a hash of the resolved
    spec (recipe and seed) and `data_fingerprint`; 16 hex digits."""
    text = json.dumps({"spec": spec.to_dict(), "data": data_fingerprint(data)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fine_tune(spec, data, teacher_dir: str | Path, *, epochs: int | None = None, progress: bool = False,
              device=None, precision=None, max_seconds: float | None = None) -> tuple[Path, bool]:
    """The run folder of `spec` fine-tuned on `data`'s training split (dev picks its epoch; the test
    split is removed first): `<teacher_dir>/<teacher_key>`, trained now unless it is there.
    `epochs` shortens the recipe (its schedule too), and the key is that of the shortened spec.
    Returns (folder, whether it was trained now). With `max_seconds`, training that is still
    short of its last epoch when they have passed stops at that epoch's end and nothing is
    kept (a teacher cut short would be found again under its whole recipe's key): OutOfTime.
    Raises what train.fit raises, and OSError when the folder cannot be written."""
    from ..runs import save_run
    from ..spec import load
    from ..train import fit

    if epochs is not None and epochs != spec.train.epochs:  # a shorter recipe is another teacher: its own key
        spec = load(spec, {"train.epochs": epochs})
    root = Path(teacher_dir).expanduser()
    key = teacher_key(spec, data)
    final = root / key
    if is_run(final):
        return final, False
    total = spec.train.epochs
    stop_at = None if max_seconds is None else time.monotonic() + max_seconds

    def in_time(epoch: int, dev: float) -> None:
        if stop_at is not None and epoch < total and time.monotonic() > stop_at:
            raise OutOfTime(spec.name, f"epoch {epoch} of {total} done")

    fitted = fit(spec, replace(data, test=None), progress=progress, on_epoch=in_time,
                 device=device or "auto", precision=precision or "auto")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    config = {"data": data.name, "teacher_key": key, "data_fingerprint": data_fingerprint(data),
              "epochs": spec.train.epochs,
              "note": "fine-tuned as a teacher on the training split; dev picked its epoch; the test split was removed"}
    save_run(fitted, tmp, config)
    try:
        os.rename(tmp, final)
    except OSError:  # another process put the same teacher there first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not is_run(final):
            raise
    return final, True


def kept_epochs(spec, data, teacher_dir: str | Path) -> int | None:
    """The most epochs, up to `spec`'s recipe, of a run of `spec` fine-tuned on `data` that
    `teacher_dir` keeps (a teacher shortened to fit a --timeout is found again); None for none."""
    from ..spec import load

    root = Path(teacher_dir).expanduser()
    for epochs in range(spec.train.epochs, 0, -1):
        shortened = spec if epochs == spec.train.epochs else load(spec, {"train.epochs": epochs})
        if is_run(root / teacher_key(shortened, data)):
            return epochs
    return None


def epoch_seconds(spec, data, *, batches: int = 4, device=None, precision=None) -> float:
    """Seconds one epoch of fine-tuning `spec` on `data`'s training split takes on `device`, an
    estimate: `train.fit` for one epoch on `batches` batches of training texts spread over the
    split (so their lengths are the split's), with as many dev texts, scaled by the split's
    size. The first steps' warm-up makes it err long, the safe side for a time budget.
    Raises what train.fit raises."""
    from ..train import fit

    n = min(len(data.train), batches * spec.train.batch_size)
    step = len(data.train) / n
    sample = data.train.subset([int(i * step) for i in range(n)])
    dev = data.dev if data.dev is not None and len(data.dev) else data.train
    dev = dev.subset(list(range(min(len(dev), spec.train.batch_size))))
    fitted = fit(spec, replace(data, train=sample, dev=dev, test=None), epochs=1,
                 device=device or "auto", precision=precision or "auto")
    return fitted.metrics["train_seconds"] * len(data.train) / n


def check_teacher(run, data, source: str) -> None:
    """Refuse a teacher that cannot teach a student on `data`: a tagger for labelled texts (or
    the reverse), or other labels than the data's. SpecError at `teachers` naming both."""
    if run.tagger != data.tagging:
        what = "a tagger (a tag for each word)" if run.tagger else "a classifier (one label a text)"
        want = "tagged words" if data.tagging else "one label a text"
        raise SpecError("teachers", f"{source} is {what}, but {data.name} has {want}; a teacher must do the "
                                    "student's task")
    have, want = set(run.label_names), set(data.label_names)
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        parts = ([f"lacks {', '.join(missing[:8])}"] if missing else []) + \
                ([f"has {', '.join(extra[:8])} that {data.name} has not"] if extra else [])
        raise SpecError("teachers", f"{source} was trained on other labels than {data.name}'s: it "
                                    f"{' and '.join(parts)}; a teacher must know the student's labels")


def resolve_teachers(names: list[str], data, *, teacher_dir: str | Path = "runs/teachers",
                     epochs: int | None = None, progress: bool = False, device=None,
                     precision=None, max_seconds: float | None = None) -> list[Teacher]:
    """Each name -> a Teacher: a run folder is loaded; anything else is loaded as a spec and
    fine-tuned on `data` (`fine_tune`, `epochs` overriding its train.epochs; all of them within
    `max_seconds`, else OutOfTime). Every teacher is checked against `data` (`check_teacher`).

    Raises SpecError at `teachers` for a name that is neither a run nor a spec, a broken spec,
    or a teacher that does not fit the data; WeightsError for a damaged run folder."""
    from .. import spec as spec_mod
    from ..runs import load_run

    if not names:
        raise SpecError("teachers", "name at least one teacher: a run folder, a zoo name or a spec file")
    out = []
    stop_at = None if max_seconds is None else time.monotonic() + max_seconds
    for name in names:
        fine_tuned, metrics = False, {}
        if is_run(name):
            folder = Path(name).expanduser()
        else:
            try:
                teacher_spec = spec_mod.load(name)
            except SpecError as exc:
                hint = "" if Path(name).expanduser().exists() else "not a run folder (no model.safetensors), and "
                raise SpecError("teachers", f"{name}: {hint}{exc}") from None
            left = None if stop_at is None else max(stop_at - time.monotonic(), 0.0)
            try:
                folder, fine_tuned = fine_tune(teacher_spec, data, teacher_dir, epochs=epochs, progress=progress,
                                               device=device, precision=precision, max_seconds=left)
            except OutOfTime as exc:  # by the name it was given
                raise OutOfTime(name, exc.done) from None
        run = load_run(folder)
        try:
            metrics = json.loads((folder / "metrics.json").read_text())
        except (OSError, ValueError):
            metrics = {}
        check_teacher(run, data, name)
        out.append(Teacher(run, name, fine_tuned, metrics if isinstance(metrics, dict) else {}))
    return out
