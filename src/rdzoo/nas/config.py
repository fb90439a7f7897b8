"""What one search is: `SearchConfig`, checked on construction, and its final stage's settings.

Free of heavy imports, so that the command line can build and check a search before it loads
torch or Optuna. Errors name the field (`SpecError` at `sampler`, `objectives`, ...), which the
command line turns into its option.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError
from ..records import OBJECTIVES
from ..space import Space
from ..storage import HEARTBEAT_SECONDS, check_url

SAMPLERS = ("tpe", "random", "nsga2", "gp")
PRUNERS = ("hyperband", "median", "none")
# who trains the final stage: this run after its trials, another process (the parent of
# `--workers`' processes; the trials still keep its time), or nobody (--no-final)
FINAL_RUNS = ("here", "elsewhere", "never")
# augmented copies of each training text the final stage's students learn on (train.distill.augment_copies):
# without them a student of a teacher fine-tuned on the same texts learns little beyond the labels
FINAL_COPIES = 2
MAX_COPIES = 1000  # as train.distill.augment_copies


@dataclass(frozen=True)
class FinalStage:
    """The final stage's settings: the best `contenders` distinct architectures of the search
    and the `baseline` (a zoo name or spec file; None for none) retrained with `seeds` fresh
    seeds each; with a teacher, its students learn on `copies` augmented copies of each
    training text (fewer where they do not fit --timeout).

    Raises:
        SpecError: at `copies`, for a negative or absurd number.
    """

    contenders: int = 3
    seeds: int = 3
    baseline: str | None = "kim-cnn"
    copies: int = FINAL_COPIES

    def __post_init__(self):
        if not 0 <= self.copies <= MAX_COPIES:
            raise SpecError("final_copies", f"{self.copies!r}: give 0 to {MAX_COPIES} augmented copies of each text")


@dataclass
class SearchConfig:
    """One search: the space, the data's name, the study and storage URL, how many finished
    trials (`trials`, the study's target) and for how long (`timeout` in seconds, the final
    stage included), the sampler, pruner and objectives (None: the study's, else accuracy and
    sentence_latency with a teacher, accuracy alone without), the seed, an epochs override,
    `max_params` and `max_memory` (bytes of peak memory; a trial above it is pruned after its
    first epoch), `max_latency` (milliseconds one sentence may take, `profile.sentence_latency_ms`;
    a trial above it is pruned before it trains), the `teachers` every trial learns from (run
    folders, zoo names or specs; [] for none; None: the study's, else `nas.teach.DEFAULT_TEACHER`
    when its checkpoint package is installed), where teachers fine-tuned here are kept
    (`teacher_dir`; None: `nas.teach.teacher_dir` of the storage), heartbeat (seconds; a silent worker's trial is failed after 3x this), the
    device and precision this worker trains at, this worker's index among `--workers`' (it
    offsets the sampler's seed), the final stage's settings and who runs it (`final_runs`:
    FINAL_RUNS), `reserve` (study -> seconds the trials leave for what follows them; by
    default the final stage's estimate) and `deadline` (time.monotonic() by which the whole
    search ends; set from `timeout` when the config is made).

    Raises:
        SpecError: at `storage`, `sampler`, `pruner`, `objectives` or `final_runs`, naming what
            is allowed.
    """

    space: Space
    data_name: str
    study: str
    storage: str
    trials: int = 50
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "hyperband"
    seed: int | None = None
    epochs: int | None = None
    objectives: list[str] | None = None
    max_params: float = 2e9
    n_jobs: int = 1
    heartbeat: int = HEARTBEAT_SECONDS
    device: str = "auto"
    precision: str = "auto"
    max_memory: float | None = None
    max_latency: float | None = None
    teachers: list[str] | None = field(default_factory=list)
    default_teacher: bool = False  # `teachers` is DEFAULT_TEACHER, chosen for the user (teach.settle)
    teacher_dir: Path | None = None
    worker: int = 0
    final: FinalStage = field(default_factory=FinalStage)
    final_runs: str = "here"
    reserve: object = None
    deadline: float | None = None

    def __post_init__(self):
        check_url(self.storage)  # a malformed URL is refused before the data is read or a trial trains
        for name, value, allowed in (("sampler", self.sampler, SAMPLERS), ("pruner", self.pruner, PRUNERS),
                                     ("final_runs", self.final_runs, FINAL_RUNS)):
            if value not in allowed:
                raise SpecError(name, f"{value!r} is not one of: {', '.join(allowed)}")
        if self.max_latency is not None and not self.max_latency > 0:
            raise SpecError("max_latency", f"{self.max_latency!r}: give a positive number of milliseconds")
        if self.objectives is None and self.teachers is not None:
            self.objectives = default_objectives(self.teachers)
        if self.objectives is not None:
            check_objectives(self.objectives)
        # `--timeout` counts from the command's start, so trials, final stage and all read one clock
        if self.deadline is None and self.timeout is not None:
            self.deadline = time.monotonic() + self.timeout

    @property
    def multi(self) -> bool:
        """Several objectives: a Pareto front and no pruning."""
        return len(self.objectives or ["accuracy"]) > 1

    @property
    def latency_front(self) -> bool:
        """The objectives are the score and one sentence's latency: the final stage retrains
        contenders spread over the Pareto front of the two."""
        return "sentence_latency" in (self.objectives or [])

    @property
    def final_follows(self) -> bool:
        """A final stage follows the trials (here or in another process), so they keep its time:
        a single-objective search's top K, or the latency front's contenders."""
        return self.final_runs != "never" and (not self.multi or self.latency_front)

    @property
    def epochs_or_space(self) -> int:
        """The epochs a trial trains: the override, else the space's fixed `train.epochs` (10)."""
        return self.epochs or int((self.space.fixed.get("train") or {}).get("epochs", 10))


def default_objectives(teachers: list[str]) -> list[str]:
    """What a search optimises when --objectives is not given: with a teacher, the most
    accurate student at each latency (accuracy and sentence_latency); without, accuracy."""
    return ["accuracy", "sentence_latency"] if teachers else ["accuracy"]


def check_objectives(objectives: list[str]) -> None:
    """SpecError at `objectives` unless they start with accuracy and name each of OBJECTIVES once."""
    if not objectives or objectives[0] != "accuracy" or any(o not in OBJECTIVES for o in objectives) \
            or len(set(objectives)) != len(objectives):
        raise SpecError("objectives", f"{','.join(objectives)!r}: start with accuracy, then any of "
                        f"{', '.join(o for o in OBJECTIVES if o != 'accuracy')}")


def default_study(space: str, data: str) -> str:
    """The study name a search gets unless it is given one: SPACE-DATA, where DATA is a built-in
    dataset's name, or the stem of a data file or folder ("sst2", "reviews" for ~/d/reviews.csv)."""
    label = data if "/" not in data and not data.endswith((".txt", ".csv", ".tsv", ".jsonl")) else Path(data).stem
    return f"{space}-{label}"
