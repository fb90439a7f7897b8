"""The trials of a search: open the study, run trials until the target, the deadline or Ctrl-C.

`--trials N` is the study's target of finished (complete or pruned) trials, so rerunning the
same command after a crash or Ctrl-C continues where it stopped. Each trial's row is written
from Optuna's trial callback, after Optuna has stored its final state. `--timeout` is one
deadline (`SearchConfig.deadline`) that the trials (`trial_budget`: the time left less what
`reserve` keeps for the final stage) and the final stage both read.
"""

from __future__ import annotations

import threading
import time

import optuna
from optuna.trial import TrialState

from ..errors import StoreError
from ..records import SCORE_ATTR, Outcome, TrialCounts, TrialRecord, data_score, derive_score, score_named
from ..spec import SpecError
from ..storage import make_storage, patient, recover_dead_workers
from ..store import Store
from .config import SAMPLERS, PRUNERS, SearchConfig
from .objective import Objective

WORKER_SEED_STRIDE = 100_003  # a prime: worker w's trial seeds never meet worker w+1's
STUDY_SETTINGS = ("space", "data", "objectives", SCORE_ATTR)  # a resumed study must have been run with the same


def make_sampler(name: str, seed: int | None):
    """An Optuna sampler by name (tpe, random, ...) seeded with `seed` (each takes one objective or
    several). Raises SpecError at `sampler` for an unknown name."""
    if name == "tpe":
        # multivariate + group: the family decides which parameters exist (Optuna's advice for
        # conditional spaces); constant_liar keeps parallel workers from sampling the same point
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=8)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise SpecError("sampler", f"{name!r} is not one of: {', '.join(SAMPLERS)}")


def make_pruner(name: str, epochs: int):
    """An Optuna pruner by name (hyperband over `epochs`, median, none); SpecError at `pruner` for
    an unknown name."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1), reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SpecError("pruner", f"{name!r} is not one of: {', '.join(PRUNERS)}")


def quiet_optuna() -> None:
    """rdzoo shows its own progress and one line per failed trial; Optuna's per-trial log
    lines, its failed-trial warnings (each with a traceback) and experimental-feature
    warnings (heartbeat, multivariate TPE) would only repeat them."""
    import warnings

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_study(cfg: SearchConfig, storage, score):
    """Create or resume the Optuna study `cfg` names on `storage` (an Optuna storage), with its
    sampler and pruner, recording the space, data, objectives and the `score` (a records.Score)
    that ranks it as its user attributes.

    Raises:
        SpecError: at `objectives` or `study`, when an existing study was run with other settings.
    """
    directions = ["maximize" if o == "accuracy" else "minimize" for o in cfg.objectives]
    study = optuna.create_study(
        study_name=cfg.study, storage=storage, load_if_exists=True, directions=directions,
        sampler=make_sampler(cfg.sampler, cfg.seed),
        pruner=optuna.pruners.NopPruner() if cfg.multi else make_pruner(cfg.pruner, cfg.epochs_or_space))
    if [d.name.lower() for d in study.directions] != directions:
        raise SpecError("objectives", f"study {cfg.study!r} already optimizes {len(study.directions)} objective(s); "
                        "use the same objectives or another study name")
    attrs = study.user_attrs
    mine = dict(zip(STUDY_SETTINGS, (cfg.space.name, cfg.data_name, cfg.objectives, score.name)))
    for key, value in mine.items():
        if key in attrs and attrs[key] != value:
            raise SpecError("study", f"study {cfg.study!r} was run with {key} {attrs[key]!r}, not {value!r}; "
                            "pass the same settings to resume it, or another study name")
        if key not in attrs:  # a study made before rdzoo recorded its score gets it now, from its data
            study.set_user_attr(key, value)
    return study


def study_score(study):
    """The score that ranks an Optuna study: its `score` attribute, or, for a study stored before
    that, `records.derive_score` of its complete trials' records."""
    return score_named(study.user_attrs.get(SCORE_ATTR)) or derive_score(
        TrialRecord.from_attrs(t.user_attrs.get("rdzoo") or {})
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def study_counts(study) -> TrialCounts:
    """The study's trials by state, leaving out those a racing worker closed untrained (surplus)."""
    return TrialCounts.of(t.state.name for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus"))


def best_value(study) -> float | None:
    """The best dev score of the study so far (of a multi-objective study, the best first
    objective, the score, among its front's trade-offs); None before a trial completes."""
    if len(study.directions) > 1:
        values = [t.values[0] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
        return max(values) if values else None
    try:
        return study.best_value
    except ValueError:
        return None


def trial_seed(seed: int, worker: int, tried: int) -> int:
    """The sampler's seed for the next trial: the study's seed, offset by this worker's index
    and by the trials the study already holds, so a resumed study or a second worker with the
    same --seed draws new points instead of replaying the first ones (Optuna issue #3255)."""
    return (seed + worker * WORKER_SEED_STRIDE + tried) % (2**32)


def enqueue_starts(study, space) -> int:
    """Queue the space's start models (zoo names) that the study has not tried yet."""
    from ..optuna_compat import waiting_params

    queued = 0
    # a waiting trial (queued by another worker a moment ago) has its parameters fixed, not sampled
    tried = [waiting_params(t) for t in study.get_trials(deepcopy=False)]
    for name in space.start:
        params = space.params_for(name)
        if params not in tried:
            study.enqueue_trial(params, user_attrs={"start": name})
            tried.append(params)
            queued += 1
    return queued


def trial_budget(cfg: SearchConfig, study) -> float | None:
    """Seconds the trials may still use: the time to `cfg.deadline` less what `cfg.reserve` keeps
    for the final stage; None without a timeout."""
    if cfg.deadline is None:
        return None
    remaining = cfg.deadline - time.monotonic()
    return remaining - cfg.reserve(study) if cfg.reserve is not None else remaining


TYPICAL_FROM_DRAWN = 3  # drawn trials that stand for the next one, once there are this many


def typical_trial_seconds(study) -> float:
    """The median training time (seconds) of the study's complete trials, 0 before the first:
    of its drawn trials once TYPICAL_FROM_DRAWN of them are complete, since the start models
    (user attr `start`: the zoo's models at full size) can cost several times what the space
    draws (88-161 s against 12-31 s on TREC) and the next trial is a drawn one."""
    from statistics import median

    done = [t for t in study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE and (t.user_attrs.get("rdzoo") or {}).get("train_seconds")]
    drawn = [t for t in done if "start" not in t.user_attrs]
    seconds = [t.user_attrs["rdzoo"]["train_seconds"] for t in (drawn if len(drawn) >= TYPICAL_FROM_DRAWN else done)]
    return median(seconds) if seconds else 0.0


def storage_failure(exc: BaseException) -> str | None:
    """The first line of the database error behind `exc`, if there is one. Optuna re-raises a
    failed commit (a full disk, a lost server) as StorageInternalError, and on the way out of
    a trial an AssertionError of its own can then hide it, so the whole chain is searched."""
    import sqlalchemy as sa

    from ..storage import first_line

    found, seen = None, exc
    while seen is not None:
        if isinstance(seen, sa.exc.DatabaseError):
            return first_line(seen)
        if isinstance(seen, (optuna.exceptions.StorageInternalError, OSError)) and found is None:
            found = first_line(seen)
        seen = seen.__cause__ or seen.__context__
    return found


def quiet_storage_threads():
    """Silence a storage failure in a background thread and return the hook it replaces.
    Optuna's heartbeat thread writes to the storage too, so a full disk can fail it first,
    and `threading` would print its traceback; the main thread meets the same failure and
    reports it in one line. Other exceptions still reach the previous hook."""
    previous = threading.excepthook

    def hook(args):
        if storage_failure(args.exc_value) is None:
            previous(args)

    threading.excepthook = hook
    return previous


def run_trials(cfg: SearchConfig, data, display=None, teaching=None) -> Outcome:
    """Run trials until the study has `cfg.trials` finished ones, the deadline passes, every trial
    fails, or Ctrl-C; returns the Outcome (its best and verdict left empty: `nas.run` fills them).
    With `teaching` (a nas.teach.Teaching) every trial trains as a student of its teacher.

    `display` (display.py) is told when the storage is open (`started(study, finished, score)`),
    when a trial starts (`trial_started(number, family, finished)`) and finishes
    (`trial_finished(frozen, record, finished, best)`), and when another program's write lock
    holds a trial up (`warn(text)`).

    Raises:
        SpecError: the study was run with other settings.
        StoreError: the storage cannot be opened or written (the trials finished before are kept).
    """
    quiet_optuna()
    storage = make_storage(cfg.storage, cfg.heartbeat)
    score = data_score(data)
    study = open_study(cfg, storage, score)  # Optuna's tables first: the results table's check expects them
    study_id = storage.get_study_id_from_name(cfg.study)
    store = Store.open(cfg.storage, create=True)
    store.sync(study, storage)
    if display:  # the storage opened: only now may the display draw
        display.started(study, study_counts(study).finished, score)
    started = time.perf_counter()
    ran, last_error, this_run = 0, None, TrialCounts()

    def on_start(number, family):
        if display:
            display.trial_started(number, family, study_counts(study).finished)

    def record(study_, frozen):
        nonlocal last_error
        if frozen.user_attrs.get("surplus") or "rdzoo" not in frozen.user_attrs:
            return
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        rec = TrialRecord.from_trial(frozen, study=study_.study_name, study_id=study_id, trial_id=trial_id)
        store.record(rec)
        this_run.add(rec.state)
        if rec.error and rec.state == "FAIL":
            last_error = rec.error
        if display:
            display.trial_finished(frozen, rec, study_counts(study_).finished, best_value(study_))

    objective = Objective(cfg, data, score, on_start, budget=lambda s: trial_budget(cfg, s), teaching=teaching)
    interrupted, gave_up, cut, for_final = False, False, False, False
    # one worker queues the start models: workers that all queued them would race to queue each twice
    if study_counts(study).finished < cfg.trials and cfg.space.start and cfg.worker == 0:
        enqueue_starts(study, cfg.space)
    previous_hook = quiet_storage_threads()
    try:
        while (counts := study_counts(study)).finished < cfg.trials:
            remaining = trial_budget(cfg, study)
            # a trial starts only where a typical one fits: one that cannot finish would be cut unused
            if remaining is not None and remaining <= (typical := typical_trial_seconds(study)):
                cut = True
                # the final stage's reserve stopped them, not --timeout itself
                for_final = cfg.reserve is not None and cfg.deadline - time.monotonic() > typical
                break
            recover_dead_workers(study)
            if counts.finished + counts.running >= cfg.trials:
                # the last trials are running elsewhere (or in a dead worker, until its
                # heartbeat goes stale and it is failed and re-queued): wait for them
                optuna.storages.fail_stale_trials(study)
                time.sleep(min(cfg.heartbeat, 5))
                continue
            if cfg.seed is not None:
                study.sampler = make_sampler(cfg.sampler, trial_seed(cfg.seed, cfg.worker, len(study.trials)))
            # a trial's writes wait out another program's write lock instead of dropping the trial
            with patient(getattr(display, "warn", None)):
                study.optimize(objective, n_trials=1, timeout=remaining, n_jobs=cfg.n_jobs,
                               catch=(Exception,), callbacks=[record])
            ran += 1
            if study_counts(study).failed >= max(cfg.trials, 10):
                gave_up = True  # every trial failing: stop instead of looping
                break
    except KeyboardInterrupt:
        interrupted = True
    except StoreError:  # its own one line already (another program's write lock)
        raise
    except Exception as exc:
        cause = storage_failure(exc)
        if cause is None:
            raise
        from ..storage import shown_url

        raise StoreError(f"{shown_url(cfg.storage)}: could not write to the study storage ({cause}); the trials "
                         "finished before are kept: free space or mend the database, then run the same command "
                         "to continue") from None
    finally:
        threading.excepthook = previous_hook
    counts = study_counts(study)
    # why it stopped: Ctrl-C, every trial failing, the target met, or else the timeout
    reason = ("interrupted" if interrupted else "failures" if gave_up
              else "target" if counts.finished >= cfg.trials else "timeout")
    return Outcome(cfg.study, score, counts.finished, ran, reason, time.perf_counter() - started,
                   timed_out=cut or (cfg.deadline is not None and counts.finished < cfg.trials),
                   error=last_error if gave_up else None, counts=counts, this_run=this_run, for_final=for_final)
