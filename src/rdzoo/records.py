"""What a search produces, as typed records: one shape from the trial that writes it to every reader.

- `TrialRecord`: one trial's results, a dataclass whose fields are the results table's
  columns (`storage.COLUMNS`): adding a column there adds a field here.
- `Score` and `SCORES`: the dev score that ranks a study (accuracy, or entity F1 on entity
  data), decided once when the study is created and kept as its `score` user attribute;
  `OBJECTIVES`: what a search may optimise, and in which direction.
- `TrialCounts`: trials by Optuna's state.
- `Standing`, `Paired`, `SkipWinner` and `Verdict`: the final stage's ranking and its
  recommendation (`nas.verdict` computes it from stored records).
- `FinalRun` and `Outcome`: what a final stage and a whole search did (`nas.run` returns an
  Outcome).

`to_json` gives each record's `--json` form, whose keys are a public format. Nothing heavy is
imported here: the query commands read these records without Optuna or torch.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from dataclasses import dataclass, field
from typing import Iterable

from .errors import TrainingError
from .storage import COLUMNS, IDENTITY_COLUMNS, JSON_COLUMNS

# --- the study's score and the objectives -----------------------------------------------------


@dataclass(frozen=True)
class Score:
    """A dev score that ranks a study's trials: its name (the study's `score` attribute, the
    `score` of --json), its dev and test columns, and the short name a table's header uses."""

    name: str
    dev: str
    test: str
    short: str


# one line a score; the first is what a study without entity tags (or stored before scores were) uses
SCORES = {s.name: s for s in (
    Score("accuracy", "dev_accuracy", "test_accuracy", "acc"),
    Score("entity F1", "dev_entity_f1", "entity_f1", "F1"),
)}
ACCURACY = SCORES["accuracy"]
SCORE_ATTR = "score"  # the Optuna study user attribute that names a study's score
TEACHER_ATTR = "teacher"  # the study user attribute of a search's teacher (nas.teach.TeacherInfo.to_attr)


def score_named(name: str | None) -> Score | None:
    """The Score a study's `score` attribute names; None for no attribute (a study stored
    before scores were recorded: see `derive_score`)."""
    return SCORES.get(name) if name else None


def derive_score(rows: Iterable) -> Score:
    """The score of a study stored before its score was recorded, from its results rows
    (TrialRecords or dicts): entity F1 where a row has a dev entity F1 (only entity data
    fills that column), else accuracy. The one place this is guessed."""
    for r in rows:
        value = r.get("dev_entity_f1") if isinstance(r, dict) else r.dev_entity_f1
        if value is not None:
            return SCORES["entity F1"]
    return ACCURACY


def data_score(data) -> Score:
    """The score a search on `data` (a text.data.TextData) maximises: entity F1 on entity-tagged
    data (BIO/IOBES tags), else accuracy: what `train.fit` keeps its best epoch by."""
    from .text.conll import is_entity_tagset

    entity = data is not None and data.tagging and is_entity_tagset(data.label_names)
    return SCORES["entity F1"] if entity else ACCURACY


@dataclass(frozen=True)
class Goal:
    """A search objective: the column that holds its value (None: the study's score) and whether
    it is maximised."""

    column: str | None
    maximize: bool = False

    def column_for(self, score: Score) -> str:
        """The results column of this objective in a study ranked by `score`."""
        return self.column or score.dev


# a search objective by its --objectives name, one line each; `accuracy` is the study's score
OBJECTIVES = {
    "accuracy": Goal(None, maximize=True),
    "params": Goal("params"),
    "latency": Goal("latency_ms"),
    "sentence_latency": Goal("sentence_latency_ms"),
    "flops": Goal("flops"),
    "memory": Goal("peak_memory"),
}


# --- one trial's results ----------------------------------------------------------------------

_PYTHON_TYPES = {"name": str, "word": str, "state": str, "text": str, "int": int, "bigint": int, "float": float,
                 "json": object, "datetime": datetime.datetime, "bool": bool}
# what --json leaves out of a trial: bookkeeping, and the error (a table's `state` says enough)
HIDDEN = ("study", "study_id", "trial_id", "datetime_start", "error", "finished_at")


class _TrialRecordMethods:
    """The methods of TrialRecord (whose fields come from storage.COLUMNS)."""

    @classmethod
    def from_row(cls, row: dict) -> "TrialRecord":
        """A results-table row (JSON columns as text, SQLite's datetimes as text) as a record;
        keys that are not columns are ignored."""
        values = {k: row.get(k) for k in FIELD_NAMES}
        for key in JSON_COLUMNS:
            if isinstance(values[key], str):
                values[key] = json.loads(values[key]) if values[key] else None
        if isinstance(values["datetime_start"], str):
            values["datetime_start"] = datetime.datetime.fromisoformat(values["datetime_start"])
        if values["baseline"] is not None:
            values["baseline"] = bool(values["baseline"])
        return cls(**values)

    @classmethod
    def from_attrs(cls, attrs: dict, **identity) -> "TrialRecord":
        """A record from a trial's `rdzoo` user attribute (the same names as the columns; other
        keys are ignored) and the `identity` columns given (study, trial, state, ...)."""
        return cls(**{k: v for k, v in attrs.items() if k in FIELD_NAMES and k not in IDENTITY_COLUMNS}, **identity)

    @classmethod
    def from_trial(cls, frozen, *, study: str, study_id: int | None = None,
                   trial_id: int | None = None) -> "TrialRecord":
        """The record of an Optuna FrozenTrial: its `rdzoo` user attribute, its number, state,
        start time and values, and, for a failed trial without an error of its own, "failed"."""
        record = cls.from_attrs(frozen.user_attrs.get("rdzoo") or {}, study=study, study_id=study_id,
                                trial=frozen.number, trial_id=trial_id, state=frozen.state.name,
                                datetime_start=frozen.datetime_start)
        error = record.error
        if frozen.state.name == "FAIL" and not error:
            error = "failed"
        return record.replace(objective_values=frozen.values, error=error)

    def attrs(self) -> dict:
        """What a trial keeps in its `rdzoo` user attribute: the fields that are not the trial's
        identity and are set."""
        return {k: v for k, v in self.__dict__.items() if k not in IDENTITY_COLUMNS and v is not None
                and k not in ("objective_values", "finished_at")}

    def replace(self, **changes) -> "TrialRecord":
        """A copy with `changes` (field -> value)."""
        return dataclasses.replace(self, **changes)

    def get(self, key: str, default=None):
        """The field `key` (a column name), or `default` for a name that is not a column."""
        return getattr(self, key, default) if key in FIELD_NAMES else default

    def dev_score(self, score: Score) -> float | None:
        """This trial's dev value of `score` (a fraction)."""
        return getattr(self, score.dev)

    def test_score(self, score: Score) -> float | None:
        """This trial's test value of `score` (a fraction)."""
        return getattr(self, score.test)

    def to_json(self) -> dict:
        """The record for --json: every column but the bookkeeping ones (a new column shows up by
        itself), with `stage` "search" for a search trial."""
        return {**{k: v for k, v in self.__dict__.items() if k not in HIDDEN}, "stage": self.stage or "search"}


FIELD_NAMES = tuple(name for name, _ in COLUMNS)
TrialRecord = dataclasses.make_dataclass(
    "TrialRecord", [(name, _PYTHON_TYPES[kind] | None, field(default=None)) for name, kind in COLUMNS],
    bases=(_TrialRecordMethods,), frozen=True)
TrialRecord.__module__ = __name__
TrialRecord.__doc__ = """One trial's results: a field per column of the results table (storage.COLUMNS), None where
unknown. Written from a trial's `rdzoo` user attribute (`from_trial`), read back from the table
(`from_row`); fractions for scores, seconds, bytes, milliseconds as the columns say."""


# --- trials by state --------------------------------------------------------------------------

STATE_NAMES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
               "WAITING": "waiting"}


@dataclass
class TrialCounts:
    """Trials by Optuna's state: complete, pruned, failed, running, waiting."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0

    def add(self, state: str, n: int = 1) -> None:
        """Count `n` trials of Optuna state `state` (COMPLETE, PRUNED, FAIL, RUNNING, WAITING; any
        other counts as failed)."""
        name = STATE_NAMES.get(state, "failed")
        setattr(self, name, getattr(self, name) + n)

    @classmethod
    def of(cls, states: Iterable[str]) -> "TrialCounts":
        """The counts of the trials whose Optuna states are `states`."""
        counts = cls()
        for state in states:
            counts.add(state)
        return counts

    @property
    def finished(self) -> int:
        """Complete and pruned trials: what `--trials` counts."""
        return self.complete + self.pruned

    def to_json(self) -> dict:
        """{complete, pruned, failed, running, waiting} -> count."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StudySummary:
    """One study as `rdzoo studies` lists it: its name, the score that ranks it, its trials by
    Optuna's state, the best dev value of each score among its completed trials with results
    (`best`: score name -> fraction or None), Optuna's best value where no trial has rdzoo
    results (`best_value`; single objective), and the last update (unix time)."""

    study: str
    score: Score
    counts: TrialCounts
    best: dict
    best_value: float | None
    last_update: float | None

    @property
    def best_score(self) -> float | None:
        """The best dev value of the study's own score."""
        return self.best.get(self.score.name)

    def to_json(self) -> dict:
        """study, the counts, best_dev_accuracy, best_dev_entity_f1 (a key per score: best_<dev
        column>), last_update, best_value and score."""
        return {"study": self.study, **self.counts.to_json(),
                **{f"best_{s.dev}": self.best.get(s.name) for s in SCORES.values()},
                "last_update": self.last_update, "best_value": self.best_value, "score": self.score.name}


# --- the final stage's verdict ----------------------------------------------------------------


@dataclass(frozen=True)
class Paired:
    """A contender against the baseline (or the teacher) over the seeds both ran: the mean and
    sample sd of the per-seed differences (contender minus the other; fractions) on test and
    dev, and each one's call: ahead or behind when the mean is more than 2 standard errors from
    zero, else level. Where the two ran no seed in common the difference is unpaired
    (`paired` False, `n` 0): the difference of their means, its call from both spreads ("-"
    where neither has one); None where one side has no value (the teacher's dev score is on
    another split)."""

    baseline: str
    n: int
    test_diff: float | None
    test_diff_sd: float | None
    dev_diff: float | None
    dev_diff_sd: float | None
    call: str
    dev_call: str
    paired: bool = True

    def to_json(self) -> dict:
        """The fields as a dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Standing:
    """One contender of the final stage: its runs' mean and sd of the study's score on dev and
    test (fractions; sd None for one seed), the seeds, its size, speed and spec, and how it
    compares with the baseline (`vs_baseline`; None without a baseline). `dev` and `test` hold
    each seed's score, in seed order."""

    contender: str
    baseline: bool
    trial: int | None
    family: str | None
    skip: str | None
    params: int | None
    flops: int | None
    latency_ms: float | None
    dev_mean: float
    dev_sd: float | None
    test_mean: float
    test_sd: float | None
    seeds: list
    n: int
    train_seconds: float | None
    vs_baseline: Paired | None
    spec: dict | None
    dev: list = field(default_factory=list, repr=False)
    test: list = field(default_factory=list, repr=False)
    sentence_latency_ms: float | None = None  # the median over its runs; ms, one sentence, one thread
    taught: bool = False  # trained as a student of the search's teacher (its spec carries train.distill)
    vs_teacher: Paired | None = None


# the fields of a Standing that --json shows, in their order
STANDING_FIELDS = ("contender", "baseline", "trial", "family", "skip", "params", "flops", "latency_ms",
                   "sentence_latency_ms", "taught", "dev_mean", "dev_sd", "test_mean", "test_sd", "seeds", "n",
                   "train_seconds", "vs_baseline", "vs_teacher", "spec")


@dataclass(frozen=True)
class TeacherStanding:
    """The search's teacher as a row of the verdict: its name (`contender`; several runs: their
    ensemble), its run folders, each run's seed and test score (the study's score; fractions),
    their mean and sd (None for one run), its dev score(s) on the split it was picked on, its
    parameters and one sentence's latency (ms; every member of an ensemble)."""

    contender: str
    runs: list
    seeds: list
    test: list
    test_mean: float | None
    test_sd: float | None
    n: int
    dev: list
    params: int | None
    sentence_latency_ms: float | None

    def to_json(self) -> dict:
        """The fields as a dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Tier:
    """One row of the latency verdict: at <= `max_latency_ms` (a sentence, ms), the most accurate
    model (by mean dev score among the final stage's models at most that slow; for the
    teacher's row, the teacher): its name, `kind` ("student" of the teacher, "plain" without
    it, or "teacher"), family, skip type, parameters, its test score's mean and sd over its
    `n` seeds, and its test difference (Paired) from the baseline trained without the teacher
    and from the teacher: paired by seed where both ran a seed, else unpaired and marked."""

    max_latency_ms: float | None
    contender: str
    kind: str
    family: str | None
    skip: str | None
    params: int | None
    test_mean: float | None
    test_sd: float | None
    n: int
    seeds: list
    vs_baseline: Paired | None = None
    vs_teacher: Paired | None = None

    def to_json(self) -> dict:
        """The fields as a dict (the differences as Paired's dicts)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SkipWinner:
    """The skip type of a family's best complete trial by the study's score, its dev score and
    trial number, and how many trials tried each skip type."""

    skip: str | None
    dev: float
    trial: int | None
    tried: dict


@dataclass(frozen=True)
class Verdict:
    """The final stage's verdict: the contenders ranked by mean dev score (`ranking`), the one
    recommended (the top, or the baseline when the top was not ahead of it on dev beyond the
    seeds' noise: `kept_baseline`), the baseline's name, the score they are ranked by, and the
    skip type that won in each family; for a search with a teacher or sentence latency among its
    objectives, the latency verdict (`tiers`, Tier rows from the fastest model up to the
    teacher) and the teacher's row (`teacher`)."""

    score: Score
    ranking: list
    recommended: Standing
    kept_baseline: bool
    baseline: str | None
    skips: dict
    tiers: list = field(default_factory=list)
    teacher: TeacherStanding | None = None

    def standing_json(self, s: Standing) -> dict:
        """One contender for --json: `stage` "final", its fields, its means repeated under the score's
        columns (so that a reader of single trials reads these too) and whether it is recommended."""
        out = {"stage": "final"}
        for key in STANDING_FIELDS:
            value = getattr(s, key)
            out[key] = value.to_json() if isinstance(value, Paired) else value
        return {**out, self.score.dev: s.dev_mean, self.score.test: s.test_mean,
                "recommended": s is self.recommended}

    def to_json(self) -> dict:
        """The verdict for --json: recommended, baseline, kept_baseline, score, ranking, skips
        (each family's winner with its dev score under the score's dev column), tiers (the
        latency verdict's rows; [] for a search without one) and teacher (its row, or None)."""
        return {"recommended": self.standing_json(self.recommended), "baseline": self.baseline,
                "kept_baseline": self.kept_baseline, "score": self.score.name,
                "ranking": [self.standing_json(s) for s in self.ranking],
                "skips": {f: {"skip": w.skip, self.score.dev: w.dev, "trial": w.trial, "tried": w.tried}
                          for f, w in self.skips.items()},
                "tiers": [t.to_json() for t in self.tiers],
                "teacher": self.teacher.to_json() if self.teacher else None}


@dataclass(frozen=True)
class Leaderboard:
    """A study's best: its completed trials (TrialRecords, best first by `score`, or its Pareto
    front when `pareto`, over `objectives`) and the final stage's verdict (None before one ran,
    or when filters pick single trials)."""

    study: str
    score: Score
    trials: list
    verdict: Verdict | None = None
    pareto: bool = False
    objectives: list = field(default_factory=lambda: ["accuracy"])

    def to_json(self) -> list[dict]:
        """The final stage's contenders first (stage "final"), then the trials (stage "search")."""
        head = [self.verdict.standing_json(s) for s in self.verdict.ranking] if self.verdict else []
        return head + [r.to_json() for r in self.trials]


# --- what a search did ------------------------------------------------------------------------


@dataclass(frozen=True)
class FinalRun:
    """What one call of the final stage did: its contenders' labels, the seeds, the runs it
    trained now, the runs of the whole stage, the seeds left out to end by the deadline and
    the seconds their runs would take (by the trials' recorded times), and the augmented
    copies of each training text its students learnt from the teacher on."""

    contenders: list
    seeds: list
    ran: int
    runs: int
    cut: list = field(default_factory=list)
    cut_seconds: float = 0.0
    copies: int = 0  # augmented copies of each training text its students trained on

    def to_json(self) -> dict:
        """The fields as a dict."""
        return dataclasses.asdict(self)


STOP_REASONS = ("target", "timeout", "interrupted", "failures")


@dataclass
class Outcome:
    """What a search run did (`nas.run`).

    `finished`: the study's finished (complete or pruned) trials now; `ran`: trials this run
    started; `stopped_by`: why the trials stopped (STOP_REASONS: the target met, the timeout,
    Ctrl-C, every trial failing or a worker process failing); `stopped_in`: "trials", or
    "final" for Ctrl-C in the final stage; `seconds`: this run's wall time; `timed_out`: the
    timeout ended the trials before the target. `counts` are the study's trials by state,
    `this_run` this run's finished ones; `best` the study's best trials by its `score` (best
    first); `final` what the final stage did and `verdict` its verdict (None before one ran).
    `error`: the last failed trial's error; `workers`: the exit codes of `--workers`' processes;
    `opened`: False when no worker opened the study (each said why); `for_final`: the trials
    stopped before `--timeout` ran out, to leave the final stage its share of it.
    """

    study: str
    score: Score
    finished: int
    ran: int
    stopped_by: str
    seconds: float
    timed_out: bool = False
    stopped_in: str = "trials"
    error: str | None = None
    counts: TrialCounts = field(default_factory=TrialCounts)
    this_run: TrialCounts = field(default_factory=TrialCounts)
    best: list = field(default_factory=list)
    final: FinalRun | None = None
    verdict: Verdict | None = None
    workers: list | None = None
    opened: bool = True
    for_final: bool = False  # the trials stopped with time left, to leave the final stage its share

    @property
    def interrupted(self) -> bool:
        """Ctrl-C stopped it (in the trials or the final stage)."""
        return self.stopped_by == "interrupted"

    @property
    def exit_code(self) -> int:
        """The command's exit status: 130 after Ctrl-C, 1 when a worker process failed or no
        worker opened the study, else 0 (a search stopped by failing trials raises `failure()`)."""
        if self.interrupted:
            return 130
        return 1 if not self.opened or any(c not in (0, 130) for c in self.workers or []) else 0

    def failure(self) -> TrainingError | None:
        """The error of a search whose trials kept failing (to raise after its summary is shown);
        None for any other end."""
        if self.stopped_by != "failures" or self.workers is not None:
            return None
        return TrainingError(f"the search stopped: {self.counts.failed} trials of study {self.study!r} failed, the "
                             f"last with {self.error or 'no recorded error'}")

    def to_json(self) -> dict:
        """The outcome's own keys for --json: study, finished, ran, interrupted, seconds,
        stopped_by, timed_out, and, where there are any, final, workers and error."""
        out = {"study": self.study, "finished": self.finished, "ran": self.ran, "interrupted": self.interrupted,
               "seconds": self.seconds, "stopped_by": self.stopped_by, "timed_out": self.timed_out}
        if self.final is not None:
            out["final"] = self.final.to_json()
        if self.workers is not None:
            out["workers"] = self.workers
        if self.stopped_by == "failures" and self.workers is None:
            out["error"] = self.error
        return out
