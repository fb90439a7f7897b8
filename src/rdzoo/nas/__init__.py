"""Architecture search, from the first trial to the final stage's verdict, owned here.

    from rdzoo.nas import SearchConfig, run
    outcome = run(SearchConfig(space, "trec", "default-trec", "sqlite:///rdzoo.db", trials=20), data)
    outcome.verdict.recommended.spec

- `config`: `SearchConfig` (one search, checked on construction) and `FinalStage`;
- `teach`: the search's teacher (chosen, fine-tuned or found once) and its outputs per transfer set;
- `objective`: one trial (sample, check, time one sentence, train, measure, record);
- `loop`: the trials of one process (`run_trials`), the study, the deadline;
- `final`: the final stage (the top K and a baseline retrained with shared seeds);
- `verdict`: the recommendation, from the stored runs alone.

`run` is the whole search and returns a `records.Outcome`; `best` reads a study's best trials
and verdict (`records.Leaderboard`). Importing this package imports neither torch nor Optuna:
`run` loads them when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import FinalStage, SearchConfig, default_study

__all__ = ["Chosen", "FinalStage", "SearchConfig", "best", "chosen", "default_study", "run"]


def run(cfg: SearchConfig, data, *, display=None, workers: int = 1, gpus: list[int] | None = None,
        worker_options: list[str] | None = None, top: int = 5):
    """Run a search: its teacher settled and made ready (`teach.settle`, `teach.prepare`: every
    trial then trains as its student), its trials (in this process, or in `workers` processes,
    one per device, taking `gpus` in turn), then, unless `cfg.final_runs` leaves it to another
    process or the objectives have no final stage (`cfg.final_follows`), its final stage;
    returns the records.Outcome with the study's best `top` trials and the verdict.

    `data` is the text.data.TextData the trials train on; `display` (display.py) shows the trials
    as they finish and the final stage's runs; `worker_options` are the `rdzoo search` options
    each worker process is started with (with `workers` > 1: the command line's own). Ctrl-C
    stops cleanly: the Outcome says so (`stopped_by` "interrupted", `stopped_in` where) and
    keeps what finished. A search whose trials keep failing returns with `stopped_by`
    "failures" (`outcome.failure()` is the error to raise).

    Raises:
        SpecError: a setting the study was run with differs (its teacher too), the baseline does
            not load, or a teacher is not there or does not fit the data.
        DeviceError: the device or precision is not there.
        StoreError: the storage cannot be opened or written.
        TrainingError: the teacher's fine-tuning did not finish within the timeout.
    """
    from .. import workers as procs
    from ..device import parse_device, resolve_device, resolve_precision, worker_devices
    from ..query import Results
    from . import final as final_stage
    from . import teach
    from . import verdict as verdicts
    from .loop import run_trials

    procs.as_worker(cfg)  # a process `--workers` started: its index, threads, who runs the final stage
    devices = worker_devices(workers, cfg.device, _gpu_count(parse_device(cfg.device)[0]), gpus)
    cfg.device = devices[0]
    resolve_precision(cfg.precision, resolve_device(cfg.device))  # one error before any work
    note = getattr(display, "note", None)
    teach.settle(cfg, note)
    if cfg.final_follows:
        final_stage.baseline_spec(cfg.final.baseline)  # a misspelt baseline fails now, not after the trials
    # the teacher once, before any trial or worker: its fine-tuning comes off --timeout
    teaching = teach.prepare(cfg, data, progress=getattr(display, "progress", False), say=note)
    if cfg.final_follows and cfg.reserve is None and cfg.timeout is not None:
        cfg.reserve = final_stage.reserve(cfg, teaching)
    if workers > 1:
        options = worker_settings(list(worker_options or []), cfg)
        from ..display import SilentDisplay

        outcome = procs.run_workers(options, devices, cfg, display or SilentDisplay(cfg),
                                    final_follows=cfg.final_runs == "here" and cfg.final_follows)
    else:
        import contextlib

        with display if display is not None else contextlib.nullcontext():
            outcome = run_trials(cfg, data, display, teaching)
    if outcome.stopped_by in ("target", "timeout") and outcome.exit_code == 0 and cfg.final_runs == "here" \
            and cfg.final_follows:
        try:
            outcome.final = final_stage.run_final(cfg, data, deadline=cfg.deadline, teaching=teaching, say=note,
                                                  on_run=getattr(display, "final_run", None))
        except KeyboardInterrupt:
            outcome.stopped_by, outcome.stopped_in = "interrupted", "final"
            return outcome
    if outcome.opened:
        results = Results(cfg.storage)
        outcome.best = results.best(cfg.study, top=max(top, 1), score=outcome.score)
        outcome.verdict = verdicts.of_study(results, cfg.study)
    return outcome


def worker_settings(options: list[str], cfg: SearchConfig) -> list[str]:
    """The `rdzoo search` options of each `--workers` process: `options` as given, with the
    teacher and objectives this process settled (a default teacher is decided once, here) and
    the time left of `--timeout` (the teacher's fine-tuning here used some of it)."""
    import time

    settled = {"--teacher", "--objectives"} | ({"--timeout"} if cfg.deadline is not None else set())
    out, i = [], 0
    while i < len(options):
        if options[i] in settled:
            i += 2  # an option and its value
            continue
        out.append(options[i])
        i += 1
    for name in cfg.teachers or ["none"]:
        out += ["--teacher", name]
    out += ["--objectives", ",".join(cfg.objectives)]
    if cfg.deadline is not None:
        out += ["--timeout", str(max(int(cfg.deadline - time.monotonic()), 1))]
    return out


def _gpu_count(kind: str) -> int:
    """GPUs on this machine, asked of torch only where the device could be a GPU."""
    if kind not in ("auto", "cuda"):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def best(results, study: str, *, top: int = 5, sort: str | None = None, pareto: bool = False, **filters):
    """A study's best trials and its final stage's verdict, as a records.Leaderboard, read
    through `results` (a query.Results, opened once by the caller, as for `chosen`).

    `filters` (family, skip, max_params, min_accuracy: a floor on the study's dev score,
    max_memory in bytes) pick single trials, so the verdict is left out when any is set;
    `sort` is a column of query.SORTABLE (default: the study's score); `pareto`: the Pareto
    front of a multi-objective study.

    Raises:
        SpecError: at `pareto`, for a study with one objective.
        StoreError: the storage cannot be read, or the study's trials have no rdzoo results.
    """
    from ..errors import SpecError
    from ..records import Leaderboard
    from .verdict import of_study

    score = results.score(study)
    objectives = results.objectives(study)
    if pareto:
        if len(objectives) < 2:
            raise SpecError("pareto", f"study {study!r} has one objective; the Pareto front needs a search run with "
                            "--objectives accuracy,params")
        rows = results.pareto(study, objectives, **filters)[:top]
    else:
        rows = results.best(study, top=top, sort=sort, score=score, **filters)
    if not rows:
        results.check_results(study)  # a study of Optuna's own (no rdzoo results): one error, not an empty list
    whole = not pareto and all(v is None for v in filters.values())  # a filter selects single trials
    return Leaderboard(study, score, rows, of_study(results, study) if whole else None, pareto, objectives)


@dataclass(frozen=True)
class Chosen:
    """A spec picked for export: the spec dict, what it is in words ("trial 3, resnet, 12,345
    parameters"), where it came from for --json (`summary`), the name it gets when none is
    given, its description, and a note to show (a trial that did not complete)."""

    spec: dict
    what: str
    summary: dict
    default_name: str | None = None
    description: str | None = None
    note: str | None = None

    def named(self, name: str | None = None):
        """The spec as a spec.Spec, named `name` (else its default name) and described."""
        from ..spec import from_dict

        spec = dict(self.spec)
        spec["name"] = name or self.default_name or spec.get("name")
        if self.description is not None:
            spec["description"] = self.description
        return from_dict(spec)


def _seeds_of(seeds: list, planned: list | None) -> str:
    """'3 seeds', or for a final stage cut short (by --timeout, Ctrl-C or a failure) '2 of its 3
    seeds (seed 3 not trained yet; the same search command adds it)'."""
    n = len(seeds)
    missing = [s for s in planned or [] if s not in seeds]
    if not missing:
        return f"{n} seed{'s' if n != 1 else ''}"
    them = "them" if len(missing) > 1 else "it"
    return (f"{n} of its {n + len(missing)} seeds (seed{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(str, missing))} not trained yet; the same search command adds {them})")


def chosen(results, study: str, trial: int | None = None) -> Chosen | None:
    """The spec to export from a study (`results`: a query.Results): trial `trial`, or, with
    None, the final stage's recommendation (`nas.verdict`), else the best trial by the study's
    score. None when there is no such trial or it has no results.

    Raises:
        StoreError: the study's trials have no rdzoo results at all.
    """
    from .. import render
    from .final import SEEDS_ATTR
    from .verdict import of_study

    score = results.score(study)
    verdict = of_study(results, study) if trial is None else None
    if verdict:  # the final stage's recommendation, not the luckiest single trial
        r = verdict.recommended
        return Chosen(r.spec, f"{r.contender}, {r.family}, {render.count(r.params)} parameters (final stage's recommendation)",
                      {"study": study, "stage": "final", "contender": r.contender, "family": r.family, "skip": r.skip,
                       "params": r.params, "dev_mean": r.dev_mean, "test_mean": r.test_mean, "seeds": r.seeds},
                      f"{study}-recommended",
                      f"{r.contender} of study {study}, recommended by its final stage: dev {score.name} "
                      f"{render.pct(r.dev_mean)}%, test {render.pct(r.test_mean)}% mean over "
                      f"{_seeds_of(r.seeds, results.study_attr(f'{study}-final', SEEDS_ATTR))} "
                      f"({render.count(r.params)} parameters)")
    if trial is None:
        rows = results.best(study, top=1, score=score)
        if not rows:
            results.check_results(study)
        record = rows[0] if rows else None
    else:
        record = results.trial(study, trial)
    if record is None:
        return None
    dev = record.dev_score(score)
    value = f"dev {score.name} {render.frac(dev)}, " if dev is not None else ""
    note = None
    if record.state != "COMPLETE":
        note = f"note: trial {record.trial} ended {record.state}" + (f" ({record.error})" if record.error else "")
    elif trial is None and results.study_attr(f"{study}-final", SEEDS_ATTR):  # a stage began, no seed finished
        note = (f"note: the final stage of {study} has no finished seed yet, so this is the best single trial; "
                "the same search command trains the final stage")
    keys = ("trial", "state", "family", "skip", "params", "dev_accuracy", "test_accuracy", score.dev, score.test)
    return Chosen(record.spec, f"trial {record.trial}, {record.family}, {render.count(record.params)} parameters",
                  {"study": study, "stage": "search", **{k: record.get(k) for k in keys}},
                  record.spec.get("name", f"{study}-trial-{record.trial}"),
                  f"trial {record.trial} of study {study} ({value}{render.count(record.params or 0)} parameters)", note)
