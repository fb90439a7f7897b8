"""What a search shows while it runs and when it ends.

`run_search` calls a display's hooks: `started(study, finished)` once the
storage is open (so a storage that cannot be opened is reported before anything
is drawn), `trial_started(number, family, finished)`,
`trial_finished(frozen, info, finished, best)` and `warn(text)` (a trial waits for
the database's write lock). Two displays implement them:

- `LiveDisplay`, on a terminal: a progress bar with elapsed time and ETA, the
  running trial and a table of the last finished trials (rich's `Live`).
- `LogDisplay`, anywhere else (a file, `nohup`, CI, a cluster job): one plain
  line per finished trial on stderr, flushed at once, as Optuna's own log does.

`summary` and `summary_lines` describe a finished search: trials by state,
elapsed time, why it stopped, the best trial and the commands to run next.
"""

from __future__ import annotations

import sys
import time
from collections import deque

from .storage import SCORE_COLUMNS, score_of

STOP_REASONS = ("target", "timeout", "interrupted", "failures")
LAST_TRIALS = 5  # rows of the live display's table of finished trials


def clock(seconds: float | None) -> str:
    """3725.2 -> '1:02:05'; None -> '-:--:--'."""
    if seconds is None:
        return "-:--:--"
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def human(n: float) -> str:
    """12345678 -> '12.3M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


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


def trial_row(frozen, info: dict) -> dict:
    """The numbers one finished trial shows: number, state, family, skip, params, dev accuracy, seconds."""
    seconds = info.get("train_seconds")
    if seconds is None and frozen.datetime_start and frozen.datetime_complete:
        seconds = (frozen.datetime_complete - frozen.datetime_start).total_seconds()
    return {"trial": frozen.number, "state": frozen.state.name, "family": info.get("family"),
            "skip": info.get("skip"), "params": info.get("params"), "dev_accuracy": info.get("dev_accuracy"),
            "dev_entity_f1": info.get("dev_entity_f1"), "seconds": seconds, "error": info.get("error")}


def _acc(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _best_text(best) -> str:
    return f"{best:.4f}" if isinstance(best, (int, float)) else "-"


class BaseDisplay:
    """Shared state: the target, the clock, the best value and what this run finished."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.eta = Eta(cfg.trials, cfg.timeout)
        self.study = None
        self.finished, self.best, self.current = 0, None, None
        self.last: deque = deque(maxlen=LAST_TRIALS)
        self.ran: dict[str, int] = {}  # this run's finished trials by state

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def started(self, study, finished: int) -> None:
        """The storage is open and the study loaded: the display may draw now."""
        self.study, self.finished = study, finished
        self.eta.begin(finished)

    def trial_started(self, number: int, family, finished: int) -> None:
        """Trial `number` of `family` (None before it is sampled) has begun; `finished` trials are done."""
        self.current, self.finished = f"#{number} {family or '?'}", finished

    def trial_finished(self, frozen, info: dict, finished: int, best) -> None:
        """An Optuna FrozenTrial has finished, with its rdzoo user attrs `info`; `finished` trials are
        done and `best` is the best dev accuracy so far (None before one completes). Counts it and shows it."""
        row = trial_row(frozen, info)
        self.finished, self.best, self.current = finished, best, None
        self.ran[row["state"]] = self.ran.get(row["state"], 0) + 1
        self.last.append(row)
        self.show(row)

    def show(self, row: dict) -> None:
        """Show one finished trial's `trial_row`; each display defines it (NotImplementedError here)."""
        raise NotImplementedError

    def warn(self, text: str) -> None:
        """A line every display shows, --quiet and a worker's too: the search is held up (another
        program holds the database's write lock). On stderr."""
        _write_err(text)


class QuietDisplay(BaseDisplay):
    """--quiet and --json: nothing while it runs except failed trials (warnings, on stderr)."""

    def show(self, row: dict) -> None:
        """Write a line on stderr for a failed trial; nothing for the others."""
        if row["state"] == "FAIL":
            _write_err(f"trial {row['trial']} failed: {row['error'] or 'no recorded error'}")


class SilentDisplay(BaseDisplay):
    """Nothing at all: for a worker whose parent shows its trials, and for a quiet parent whose
    workers print their own failed trials."""

    def show(self, row: dict) -> None:
        """Show nothing."""
        pass


class LogDisplay(BaseDisplay):
    """One plain line per finished trial on stderr, for logs: no cursor movement, flushed each line."""

    def started(self, study, finished: int) -> None:
        """Write the opening line: the study, the trials finished of the target, the --timeout."""
        super().started(study, finished)
        timeout = f", timeout {clock(self.cfg.timeout)}" if self.cfg.timeout else ""
        _write_err(f"{_stamp()} search {self.cfg.study}: {finished} of {self.cfg.trials} trials finished"
                   f"{timeout}")

    def show(self, row: dict) -> None:
        """Write the trial's `log_line` on stderr."""
        _write_err(log_line(row, self.finished, self.cfg.trials, self.best, self.eta.left(self.finished)))


def log_line(row: dict, finished: int, target: int, best, eta: float | None) -> str:
    """`[time] trial 3 COMPLETE family=resnet skip=gated params=1.2M dev_accuracy=0.8125 seconds=12.3
    best=0.8125 [4/10, ETA 0:01:10]`: one finished trial, for a log file (dev_entity_f1 on entity data)."""
    params = human(row["params"]) if row["params"] is not None else "-"
    seconds = f"{row['seconds']:.1f}" if row["seconds"] is not None else "-"
    dev_key = SCORE_COLUMNS[score_of([row])][0]  # on entity data what the search maximises (and `best` is)
    text = (f"{_stamp()} trial {row['trial']} {row['state']} family={row['family'] or '-'} "
            f"skip={row['skip'] or '-'} params={params} {dev_key}={_acc(row[dev_key])} "
            f"seconds={seconds} best={_best_text(best)} [{finished}/{target}, ETA {clock(eta)}]")
    if row["error"]:
        text += f" error: {row['error']}"
    return text


class LiveDisplay(BaseDisplay):
    """On a terminal: progress, ETA, the running trial and the last finished trials, redrawn in place."""

    def __init__(self, cfg, console):
        super().__init__(cfg)
        self.console, self.live = console, None

    def started(self, study, finished: int) -> None:
        """Start rich's Live view on the console, redrawn twice a second from `render`."""
        from rich.live import Live

        super().started(study, finished)
        self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=2,
                         redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def show(self, row: dict) -> None:
        """Print a failed trial above the live view; the others appear in its table."""
        if row["state"] == "FAIL":  # a warning that stays above the live view
            self.console.print(f"trial {row['trial']} failed: {row['error'] or 'no recorded error'}",
                               markup=False, highlight=False)

    def warn(self, text: str) -> None:
        """A line above the live view."""
        self.console.print(text, markup=False, highlight=False)

    def render(self):
        """The live view as a rich renderable: the progress line, and the last finished trials once there are some."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        head = Table.grid(padding=(0, 1))
        bar = ProgressBar(total=self.cfg.trials, completed=min(self.finished, self.cfg.trials), width=24)
        running = f"running {self.current}" if self.current else ""
        head.add_row(f"[bold]search {self.cfg.study}[/]", bar, f"{self.finished}/{self.cfg.trials}",
                     f"best {_best_text(self.best)}", f"elapsed {clock(self.eta.elapsed())}",
                     f"ETA {clock(self.eta.left(self.finished))}", running)
        if not self.last:
            return head
        table = Table("trial", "state", "family", "skip", "params", "dev acc", "seconds", box=None,
                      title="last finished", title_justify="left")
        for r in reversed(self.last):
            table.add_row(str(r["trial"]), r["state"], r["family"] or "-", r["skip"] or "-",
                          human(r["params"]) if r["params"] is not None else "-", _acc(r["dev_accuracy"]),
                          f"{r['seconds']:.1f}" if r["seconds"] is not None else "-")
        return Group(head, table)

    def __exit__(self, *exc):
        if self.live is not None:
            self.live.stop()
        return False


PARENT_SHOWS = "RDZOO_PARENT_SHOWS_TRIALS"  # set for the workers of `search --workers N` when the parent displays


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
    import optuna

    from .search import FINISHED, make_storage, quiet_optuna

    import datetime

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
                display.started(study, finished)
        if study is not None:
            for t in study.get_trials(deepcopy=False):
                if t.number in seen or not t.state.is_finished() or t.user_attrs.get("surplus"):
                    continue
                seen.add(t.number)
                info = dict(t.user_attrs.get("rdzoo") or {})
                if t.state.name == "FAIL" and not info.get("error"):
                    info["error"] = t.system_attrs.get("fail_reason") or "failed"
                finished += t.state in FINISHED  # counted one by one: a poll can bring several
                if t.state.name == "COMPLETE" and len(study.directions) == 1:  # accuracy: maximized
                    best = t.value if best is None else max(best, t.value)
                display.trial_finished(t, info, finished, best)
        if not running:
            return
        time.sleep(every)


def best_value(study) -> float | None:
    """The best dev accuracy of a single-objective study so far; None before one completes or
    for a multi-objective study (it has a front, not one best)."""
    if len(study.directions) > 1:
        return None
    try:
        return study.best_value
    except ValueError:
        return None


def _stamp() -> str:
    return time.strftime("[%Y-%m-%d %H:%M:%S]")


def _write_err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# --- the end of a search ------------------------------------------------------------


def count_states(study) -> dict:
    """Optuna's trials of the study by state: complete, pruned, failed, running, waiting."""
    counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    names = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):  # closed untrained by a racing worker: not a trial of the search
            continue
        counts[names[t.state.name]] += 1
    return counts


def stop_text(reason: str, cfg, finished: int, error: str | None = None) -> str:
    """Why the search stopped, in words."""
    if reason == "target":
        return f"the study reached its target of {cfg.trials} finished trials (--trials)"
    if reason == "timeout":
        return (f"--timeout {clock(cfg.timeout)} ran out with {finished} of {cfg.trials} trials finished; "
                "run the same command to continue")
    if reason == "interrupted":
        return f"interrupted (Ctrl-C) with {finished} of {cfg.trials} trials finished; run the same command to continue"
    if reason == "failures":
        return f"too many trials failed, the last with {error or 'no recorded error'}"
    return reason


def summary(outcome: dict, cfg, counts: dict, ran: dict, best: dict | None, storage_option: str | None) -> dict:
    """The end of a search as data (the `--json` output's `summary`): trials by state in the
    study and in this run, elapsed seconds, why it stopped, the best trial, the next commands."""
    where = f" --study {cfg.study}" + (f" --storage {storage_option}" if storage_option else "")
    reason = outcome.get("stopped_by", "interrupted" if outcome.get("interrupted") else "target")
    return {
        "study": cfg.study, "stopped_by": reason,
        "stopped_because": stop_text(reason, cfg, outcome.get("finished", 0), outcome.get("error")),
        "elapsed_seconds": round(outcome.get("seconds", 0.0), 3),
        "study_trials": counts,
        "this_run": {"complete": ran.get("COMPLETE", 0), "pruned": ran.get("PRUNED", 0), "failed": ran.get("FAIL", 0)},
        "best": None if best is None else {k: best.get(k) for k in ("trial", "family", "skip", "params", "dev_accuracy",
                                                                    "test_accuracy", "dev_entity_f1", "entity_f1",
                                                                    "latency_ms")},
        "next": [f"rdzoo best{where}", f"rdzoo export --best{where} -o best.yaml", f"rdzoo report{where} -o report.html"],
    }


def summary_lines(s: dict, verdict=None) -> list[str]:
    """The summary as the lines a person reads at the end of a search."""
    c, r = s["study_trials"], s["this_run"]
    running = f", {c['running']} running" if c["running"] else ""
    lines = [
        f"search {s['study']} stopped: {s['stopped_because']}",
        f"  this run: {r['complete']} complete, {r['pruned']} pruned, {r['failed']} failed in {clock(s['elapsed_seconds'])}",
        f"  study:    {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed{running}",
    ]
    b = s["best"]
    if b is not None:
        score = score_of([b])
        dev_key, test_key = SCORE_COLUMNS[score]
        lines.append(f"  best:     trial {b['trial']}, {b['family']} (skip {b['skip']}), "
                     f"{human(b['params'] or 0)} parameters, dev {score} {_acc(b[dev_key])}, "
                     f"test {score} {_acc(b[test_key])}")
    else:
        lines.append("  best:     no completed trial yet")
    # The final stage's verdict (mean and sd over seeds, the difference from the baseline) goes
    # here, between the search's own numbers and what to run next: search.py puts it in
    # outcome["verdict"] and `render_verdict` turns it into lines.
    if verdict is not None:
        lines.extend(render_verdict(verdict))
    lines.append("  next:     " + "\n            ".join(s["next"]))
    return lines


def render_verdict(verdict) -> list[str]:
    """Lines for the final stage's verdict. A plain rendering of what search.py returns
    (a string, a list of lines, or a mapping) until the final stage brings its own."""
    if isinstance(verdict, str):
        return [f"  verdict:  {verdict}"]
    if isinstance(verdict, dict):
        return ["  verdict:"] + [f"    {key}: {value}" for key, value in verdict.items()]
    return ["  verdict:"] + [f"    {line}" for line in verdict]
