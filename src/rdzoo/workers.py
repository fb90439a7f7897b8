"""Local worker processes on one study (`rdzoo search --workers N`).

Each worker is a `rdzoo search` process of its own on its own device, running
trials only (quiet, no final stage) on the same study; the parent shows their
trials from the study storage as they finish, waits, and says why they stopped.
Processes, not threads: each holds its own GPU and its own interpreter, and a
worker that dies loses only its running trial (the heartbeat re-queues it).
Free of heavy imports: `run_workers` imports Optuna when it runs, `as_worker` torch.
"""

from __future__ import annotations

import os
import sys

# what a worker reads from its environment
WORKER_INDEX = "RDZOO_WORKER"  # the worker's index among its siblings: offsets its sampler seed
THREADS = "RDZOO_THREADS"  # torch threads per worker: the machine's cores split between them
FINAL_BY_PARENT = "RDZOO_FINAL_BY_PARENT"  # "1": the parent runs the final stage, the trials leave it time


def default_workers_threads(workers: int) -> int:
    """Split the machine's cores between local worker processes."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def worker_command(options: list[str], study: str, device: str) -> list[str]:
    """The command line of one worker: `rdzoo search` with the user's `options`, on `study`
    and `device`, trials only, printing nothing but its failed trials."""
    return [sys.executable, "-m", "rdzoo.cli", "search", *options, "--study", study, "--quiet", "--top", "0",
            "--no-final", "--device", device]


def as_worker(cfg) -> None:
    """In a process that `run_workers` started, take what its parent set in the environment:
    its index (which offsets its sampler's seed), its share of the cores (torch threads) and,
    when the parent runs the final stage, that one follows (so its trials leave it time).
    Changes `cfg` (a SearchConfig); nothing outside such a process."""
    if WORKER_INDEX in os.environ:
        cfg.worker = int(os.environ[WORKER_INDEX])
    if os.environ.get(FINAL_BY_PARENT) == "1":
        cfg.final_runs = "elsewhere"
    if os.environ.get(THREADS):
        import torch

        torch.set_num_threads(int(os.environ[THREADS]))


def run_workers(options: list[str], devices: list[str], cfg, display, *, env: dict | None = None,
                final_follows: bool = False):
    """Start one worker per entry of `devices` (worker i gets `--device devices[i]` and index i)
    on study `cfg.study` (a nas.SearchConfig) in `cfg.storage`, feed `display` (display.py)
    with their trials as they finish, and wait for all of them.

    `options` are the `rdzoo search` options every worker gets (space, data, trials, timeout,
    ...; not --study, --device, --workers, --gpus). `env` is the workers' environment
    (default: this process's), to which this adds each worker's index, its share of the
    cores, whether `display` shows the trials (then the workers show nothing; a
    display.SilentDisplay leaves them to print their failed trials) and, with
    `final_follows`, that a final stage follows (so the workers' trials leave it time).
    Ctrl-C reaches the workers too: they record their trials and exit, and this waits for them.

    Returns a records.Outcome: why they stopped (stopped_by: interrupted, failures when a worker
    failed, target or timeout), the study's trials, this run's (as the display saw them) and
    each worker's exit status (`workers`); `opened` False when no worker opened the study.
    """
    import subprocess
    import time

    from .display import PARENT_SHOWS, SilentDisplay, watch_workers
    from .nas.loop import study_counts
    from .records import ACCURACY, Outcome
    from .storage import patient

    shows = not isinstance(display, SilentDisplay)  # the parent shows every trial; else the workers print their failures
    env = {**(os.environ if env is None else env), THREADS: str(default_workers_threads(len(devices))),
           PARENT_SHOWS: "1" if shows else "0"}
    if final_follows:
        env[FINAL_BY_PARENT] = "1"
    started = time.perf_counter()
    # each worker's index offsets its sampler seed, so two seeded workers draw different points
    procs = [subprocess.Popen(worker_command(options, cfg.study, d), env={**env, WORKER_INDEX: str(i)},
                              stdout=subprocess.DEVNULL) for i, d in enumerate(devices)]
    interrupted = False
    with display:
        try:
            # another program's write lock holds the workers up, and they say so: the watch waits with them
            with patient(lambda _: None):
                watch_workers(procs, cfg.storage, cfg.study, display)
        except KeyboardInterrupt:  # the workers got the same Ctrl-C: let them record their trials
            interrupted = True
            for p in procs:
                p.wait()
    codes = [p.wait() for p in procs]
    failed = any(c not in (0, 130) for c in codes)
    code = 130 if interrupted or 130 in codes else 1 if failed else 0
    seconds = time.perf_counter() - started
    if display.study is None:
        return Outcome(cfg.study, ACCURACY, 0, 0, "interrupted" if code == 130 else "failures", seconds,
                       workers=codes, opened=False)
    counts = study_counts(display.study)
    reason = ("interrupted" if code == 130 else "failures" if failed
              else "target" if counts.finished >= cfg.trials else "timeout")
    this_run = display.this_run  # the trials the display was shown: those the workers finished
    return Outcome(cfg.study, display.score, counts.finished, sum(this_run.to_json().values()), reason, seconds,
                   timed_out=reason == "timeout", counts=counts, this_run=this_run, workers=codes)
