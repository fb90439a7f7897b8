"""What a search shows while it runs.

`nas.run` calls a display's hooks: `started(study, finished, score)` once the storage is open
(so a storage that cannot be opened is reported before anything is drawn),
`trial_started(number, family, finished)`, `trial_finished(frozen, record, finished, best)`,
`final_run(done, total, label, seed)` before each run of the final stage and `warn(text)` (a
trial waits for the database's write lock). The displays:

- `LiveDisplay`, on a terminal: a progress bar with elapsed time and ETA, the running trial and
  a table of the last finished trials (rich's `Live`).
- `LogDisplay`, anywhere else (a file, `nohup`, CI, a cluster job): one plain line per finished
  trial on stderr, flushed at once, as Optuna's own log does.
- `QuietDisplay` (--quiet, --json): failed trials only; `SilentDisplay`: nothing.

Every line and table is `render`'s; the end of a search is `render.search_end`.
"""

from __future__ import annotations

import time
from collections import deque

from . import render
from .records import ACCURACY, TrialCounts, TrialRecord

LAST_TRIALS = 5  # rows of the live display's table of finished trials
PARENT_SHOWS = "RDZOO_PARENT_SHOWS_TRIALS"  # set for the workers of `search --workers N` when the parent displays


class Eta:
    """Time left to a study's target: the mean wall time of the trials this run
    finished, times the trials still missing, capped by the time left to --timeout.

    Counted by hand because rich's TimeRemainingColumn estimates speed from the
    progress updates of its last 30 seconds only: with trials longer than that it
    holds one sample and shows nothing (a blank ETA after 2 of 4 trials)."""

    def __init__(self, target: int, timeout: float | None, now=time.monotonic):
        self.target, self.timeout, self.now = target, timeout, now
        self.start = now()
        self.first: int | None = None  # finished trials when this run began (a resumed study)

    def begin(self, finished: int) -> None:
        """Restart the clock now, with `finished` trials already in the study (not counted as this run's)."""
        self.start, self.first = self.now(), finished

    def elapsed(self) -> float:
        """Seconds since `begin` (or since this Eta was made)."""
        return self.now() - self.start

    def left(self, finished: int) -> float | None:
        """Seconds to the target, or None before this run has finished a trial."""
        done_here = finished - (self.first or 0)
        if finished >= self.target:
            return 0.0
        timeout_left = None if self.timeout is None else max(self.timeout - self.elapsed(), 0.0)
        if done_here <= 0:
            return timeout_left
        estimate = self.elapsed() / done_here * (self.target - finished)
        return estimate if timeout_left is None else min(estimate, timeout_left)


def shown_record(frozen, record: TrialRecord) -> TrialRecord:
    """The record a display shows for a finished trial: with the trial's wall time as its
    seconds where it has no training time (a trial that failed)."""
    if record.train_seconds is None and frozen.datetime_start and frozen.datetime_complete:
        return record.replace(train_seconds=(frozen.datetime_complete - frozen.datetime_start).total_seconds())
    return record


class BaseDisplay:
    """Shared state: the target, the clock, the study's score, the best value, the last trials
    and this run's finished trials by state (`this_run`)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.eta = Eta(cfg.trials, cfg.timeout)
        self.study, self.score = None, ACCURACY
        self.finished, self.best, self.current = 0, None, None
        self.last: deque = deque(maxlen=LAST_TRIALS)
        self.this_run = TrialCounts()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def started(self, study, finished: int, score=ACCURACY) -> None:
        """The storage is open and the study loaded, with `finished` trials, ranked by `score` (a
        records.Score): the display may draw now."""
        self.study, self.finished, self.score = study, finished, score
        self.eta.begin(finished)

    def trial_started(self, number: int, family, finished: int) -> None:
        """Trial `number` of `family` (None before it is sampled) has begun; `finished` trials are done."""
        self.current, self.finished = f"#{number} {family or '?'}", finished

    def trial_finished(self, frozen, record: TrialRecord, finished: int, best) -> None:
        """An Optuna FrozenTrial has finished, with its TrialRecord; `finished` trials are done and
        `best` is the best dev score so far (None before one completes). Counts it and shows it."""
        record = shown_record(frozen, record)
        self.finished, self.best, self.current = finished, best, None
        self.this_run.add(record.state)
        self.last.append(record)
        self.show(record)

    def final_run(self, done: int, total: int, label: str, seed: int) -> None:
        """The final stage starts run `done + 1` of `total`: contender `label` with `seed`; a line
        on stderr (nothing from a quiet display)."""
        render.say(render.final_run_line(done, total, label, seed), err=True)

    def show(self, record: TrialRecord) -> None:
        """Show one finished trial; each display defines it (NotImplementedError here)."""
        raise NotImplementedError

    def warn(self, text: str) -> None:
        """A line every display shows, --quiet and a worker's too: the search is held up (another
        program holds the database's write lock). On stderr."""
        render.write_err(text)

    def note(self, text: str) -> None:
        """A line about how the search is set up (its teacher) before the trials start, on stderr;
        every display but a silent one shows it."""
        render.write_err(text)

    progress = False  # whether long work before the trials (a teacher's fine-tuning) shows a progress bar


class QuietDisplay(BaseDisplay):
    """--quiet and --json: nothing while it runs except failed trials (warnings, on stderr)."""

    def show(self, record: TrialRecord) -> None:
        """Write a line on stderr for a failed trial; nothing for the others."""
        if record.state == "FAIL":
            render.write_err(render.failed_line(record))

    def final_run(self, done: int, total: int, label: str, seed: int) -> None:
        """Nothing."""


class SilentDisplay(QuietDisplay):
    """Nothing at all: for a worker whose parent shows its trials, and for a quiet parent whose
    workers print their own failed trials."""

    def show(self, record: TrialRecord) -> None:
        """Show nothing."""

    def note(self, text: str) -> None:
        """Nothing: the parent process says it."""


class LogDisplay(BaseDisplay):
    """One plain line per finished trial on stderr, for logs: no cursor movement, flushed each line."""

    def started(self, study, finished: int, score=ACCURACY) -> None:
        """Write the opening line: the study, the trials finished of the target, the --timeout."""
        super().started(study, finished, score)
        render.write_err(render.opening_line(self.cfg.study, finished, self.cfg.trials, self.cfg.timeout))

    def show(self, record: TrialRecord) -> None:
        """Write the trial's `render.log_line` on stderr."""
        render.write_err(render.log_line(record, self.score, self.finished, self.cfg.trials, self.best,
                                         self.eta.left(self.finished)))


class LiveDisplay(BaseDisplay):
    """On a terminal: progress, ETA, the running trial and the last finished trials, redrawn in place."""

    progress = True

    def __init__(self, cfg, console):
        super().__init__(cfg)
        self.console, self.live = console, None

    def started(self, study, finished: int, score=ACCURACY) -> None:
        """Start rich's Live view on the console, redrawn twice a second from `render`."""
        from rich.live import Live

        super().started(study, finished, score)
        self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=2,
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def show(self, record: TrialRecord) -> None:
        """Print a failed trial above the live view; the others appear in its table."""
        if record.state == "FAIL":  # a warning that stays above the live view
            self.console.print(render.failed_line(record), markup=False, highlight=False)

    def warn(self, text: str) -> None:
        """A line above the live view."""
        self.console.print(text, markup=False, highlight=False)

    def render(self):
        """The live view as a rich renderable (`render.live_view`)."""
        return render.live_view(self.cfg.study, self.cfg.trials, self.finished, self.best, self.eta.elapsed(),
                                self.eta.left(self.finished), self.current, list(reversed(self.last)), self.score)

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.stop()
        return False


def make_display(cfg, quiet: bool, silent: bool = False):
    """The display for where stderr goes: live on a terminal, lines in a log, only failed trials
    under --quiet, nothing when `silent` or when this process's parent shows its trials."""
    import os

    from rich.console import Console

    if silent or os.environ.get(PARENT_SHOWS) == "1":
        return SilentDisplay(cfg)
    if quiet:
        return QuietDisplay(cfg)
    err = Console(stderr=True)
    return LiveDisplay(cfg, err) if err.is_terminal else LogDisplay(cfg)


def watch_workers(procs, storage: str, study_name: str, display, every: float = 2.0) -> None:
    """Feed `display` from the study while worker processes (`rdzoo search --workers N`) run it:
    `started` once the study exists, `trial_finished` for each trial they finish. Trials that
    were finished before the workers started are not shown again. Returns when all have exited."""
    import datetime

    import optuna

    from .nas.loop import best_value, quiet_optuna, study_score
    from .nas.objective import FINISHED
    from .storage import make_storage

    quiet_optuna()
    since = datetime.datetime.now()  # Optuna's datetimes are naive local time; workers need seconds to start
    study, seen, finished, best = None, set(), 0, None
    while True:
        running = any(p.poll() is None for p in procs)
        if study is None:
            try:
                study = optuna.load_study(study_name=study_name, storage=make_storage(storage))
            except KeyError:  # no worker has created it yet
                study = None
            if study is not None:
                before = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()
                          and t.datetime_complete is not None and t.datetime_complete < since]
                seen = {t.number for t in before}
                finished = sum(1 for t in before if t.state in FINISHED)
                best = best_value(study)
                display.started(study, finished, study_score(study))
        if study is not None:
            for t in study.get_trials(deepcopy=False):
                if t.number in seen or not t.state.is_finished() or t.user_attrs.get("surplus"):
                    continue
                seen.add(t.number)
                finished += t.state in FINISHED  # counted one by one: a poll can bring several
                if t.state.name == "COMPLETE" and t.values:  # the score, the first objective (best_value's)
                    best = t.values[0] if best is None else max(best, t.values[0])
                display.trial_finished(t, TrialRecord.from_trial(t, study=study_name), finished, best)
        if not running:
            return
        time.sleep(every)
