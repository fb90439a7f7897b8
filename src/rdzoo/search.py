"""Architecture search with Optuna: sample a spec per trial, train it, record it.

Every trial samples a spec from the search space (define-by-run), validates it
and checks `max_params` before building anything, trains it with
`train.fit` while reporting dev accuracy per epoch for pruning, and returns
dev accuracy, or dev entity F1 on entity-tagged (BIO/IOBES) data (test scores
are recorded, never optimized). `--trials N` is the
study's target of finished (complete or pruned) trials, so rerunning the same
command after a crash or Ctrl-C continues where it stopped.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from .errors import StoreError
from .space import Space
from .spec import SpecError, from_dict
from .storage import (HEARTBEAT_SECONDS, OBJECTIVE_COLUMNS, check_url, make_storage, patient,
                      recover_dead_workers)
from .store import Store

SAMPLERS = ("tpe", "random", "nsga2", "gp")
PRUNERS = ("hyperband", "median", "none")
OBJECTIVES = tuple(OBJECTIVE_COLUMNS)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
PROFILE_LENGTH = 64  # tokens per sequence for the recorded FLOPs and latency
PROFILE_BATCH = 32
# latency: one thread (the figure must not depend on the cores a worker was given), 3 warm-up
# passes, then the median of at least 20 timed passes and 0.2 s of timing
LATENCY = {"threads": 1, "warmup": 3, "repeats": 20, "min_seconds": 0.2}
WORKER_SEED_STRIDE = 100_003  # a prime: worker w's trial seeds never meet worker w+1's


@dataclass
class SearchConfig:
    """One search: the space, the data's name, the study and storage URL, how many trials and for
    how long (`timeout` in seconds), the sampler, pruner and objectives, the seed, an epochs
    override, heartbeat (seconds) and `reserve` (study -> seconds to leave for the final stage)."""
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
    objectives: list[str] = field(default_factory=lambda: ["accuracy"])
    max_params: float = 2e9
    n_jobs: int = 1
    heartbeat: int = HEARTBEAT_SECONDS  # seconds; a silent worker's trial is failed after 3x this
    device: str = "auto"  # --device: where this worker trains (each worker of --workers gets its own GPU)
    precision: str = "auto"
    max_memory: float | None = None  # bytes of peak memory; a trial above it is pruned after its first epoch
    worker: int = 0  # this process's index among --workers; offsets the sampler's seed
    reserve: object = None  # study -> seconds to keep from `timeout` for what follows the trials (the final stage)
    deadline: float | None = None  # time.monotonic() by which the search, final stage included, ends

    def __post_init__(self):
        check_url(self.storage)  # a malformed URL is refused before the data is read or a trial trains
        # `--timeout` counts from the command's start, so trials, final stage and all read one clock
        if self.deadline is None and self.timeout is not None:
            self.deadline = time.monotonic() + self.timeout


class Surplus(Exception):
    """A racing worker started a trial past the target; it is closed without training."""


def make_sampler(name: str, seed: int | None, multi: bool):
    """An Optuna sampler by name (tpe, random, ...) seeded with `seed`; `multi`: several objectives.
    Raises SpecError at `sampler` for an unknown name."""
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


def open_study(cfg: SearchConfig):
    """Create or resume the Optuna study `cfg` names, with its sampler and pruner; raises SpecError
    at `objectives` or `study` when an existing study was run with other settings."""
    directions = ["maximize" if o == "accuracy" else "minimize" for o in cfg.objectives]
    epochs = cfg.epochs or _space_epochs(cfg.space)
    multi = len(directions) > 1
    study = optuna.create_study(
        study_name=cfg.study, storage=make_storage(cfg.storage, cfg.heartbeat), load_if_exists=True, directions=directions,
        sampler=make_sampler(cfg.sampler, cfg.seed, multi),
        pruner=optuna.pruners.NopPruner() if multi else make_pruner(cfg.pruner, epochs))
    if list(study.directions) != [optuna.study.StudyDirection.MAXIMIZE if d == "maximize" else
                                  optuna.study.StudyDirection.MINIMIZE for d in directions]:
        raise SpecError("objectives", f"study {cfg.study!r} already optimizes {len(study.directions)} objective(s); "
                        "use the same objectives or another study name")
    attrs = study.user_attrs
    mine = {"space": cfg.space.name, "data": cfg.data_name, "objectives": cfg.objectives}
    for key, value in mine.items():
        if key in attrs and attrs[key] != value:
            raise SpecError("study", f"study {cfg.study!r} was run with {key} {attrs[key]!r}, not {value!r}; "
                            "pass the same settings to resume it, or another study name")
        if key not in attrs:
            study.set_user_attr(key, value)
    return study


def default_study(space: str, data: str) -> str:
    """The study name a search gets unless it is given one: SPACE-DATA, where DATA is a built-in
    dataset's name, or the stem of a data file or folder ("sst2", "reviews" for ~/d/reviews.csv)."""
    label = data if "/" not in data and not data.endswith((".txt", ".csv", ".tsv", ".jsonl")) else Path(data).stem
    return f"{space}-{label}"


def _space_epochs(space: Space) -> int:
    return int((space.fixed.get("train") or {}).get("epochs", 10))


def count_finished(study) -> int:
    """Trials of `study` that finished (complete or pruned)."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


class Objective:
    """Optuna objective: sample -> validate -> train -> measure."""

    def __init__(self, cfg: SearchConfig, data, on_start=None):
        from .device import resolve_device, resolve_precision

        self.cfg, self.data, self.on_start = cfg, data, on_start
        self.multi = len(cfg.objectives) > 1
        self.device = resolve_device(cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)

    def __call__(self, trial):
        self._check_target(trial)
        raw = self.cfg.space.sample(trial)
        repeat = _earlier_same(trial)
        if repeat is not None:
            # the sampler drew a point already tried: give it the earlier result instead of training
            # it again (Optuna's FAQ advice), and keep it out of rdzoo's results
            trial.set_user_attr("repeat_of", repeat.number)
            if repeat.state == TrialState.COMPLETE:
                return repeat.values if self.multi else repeat.value
            raise optuna.TrialPruned(f"repeat of trial {repeat.number}")
        if self.cfg.epochs:
            raw.setdefault("train", {})
            raw["train"] = {**raw["train"], "epochs": self.cfg.epochs}
        raw["name"] = f"{trial.study.study_name}-trial-{trial.number}"
        family = raw.get("family")
        info = {"family": family, "skip": (raw.get("encoder") or {}).get("skip")}
        start_name = trial.user_attrs.get("start")
        if start_name:
            info["start"] = start_name
        if self.on_start:
            self.on_start(trial.number, family)
        try:
            from .checkpoint import expand  # a `pretrained:` body's shape comes from its config.json

            spec = from_dict(expand(raw), max_params=self.cfg.max_params)
        except SpecError as exc:
            # an invalid combination (heads not dividing d_model, too many parameters, ...) is the
            # space's fault, not a crash: the trial is pruned with its reason
            self._save(trial, {**info, "spec": raw, "error": f"invalid spec: {exc}"})
            raise optuna.TrialPruned(f"invalid spec: {exc}") from None
        info["skip"] = spec.skip
        return self._train(trial, spec, info)

    def _check_target(self, trial):
        """Two workers that both saw one trial missing both started one: the later closes."""
        import socket

        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        ahead = [t for t in trial.study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,))
                 if t.number < trial.number]
        if len(ahead) >= self.cfg.trials:
            trial.set_user_attr("surplus", True)
            raise Surplus(f"the study already has {self.cfg.trials} trials")

    def _train(self, trial, spec, info):
        from .device import MemoryMeter, human_bytes
        from .errors import TrainingError
        from .text.conll import is_entity_tagset
        from .train import fit

        # on entity-tagged data fit's dev score, and so the objective and the pruner's value, is dev entity F1
        entity = self.data.tagging and is_entity_tagset(self.data.label_names)
        score_key = "dev_entity_f1" if entity else "dev_accuracy"

        def report(epoch: int, dev_acc: float) -> None:
            peak = MemoryMeter(self.device).peak()  # fit reset the peak when it started
            if self.cfg.max_memory is not None and peak > self.cfg.max_memory:
                # the first epoch has touched every buffer a step needs: later epochs peak no higher
                info.update(dev_accuracy=dev_acc, epochs=epoch, spec=spec.to_dict(), params=_count(spec),
                            train_seconds=time.perf_counter() - start, peak_memory=peak,
                            error=f"peak memory {human_bytes(peak)} above --max-memory {human_bytes(self.cfg.max_memory)}")
                self._save(trial, info)
                raise optuna.TrialPruned(info["error"])
            if stop_at is not None and epoch < spec.train.epochs and time.monotonic() > stop_at:
                # --timeout is a promise: a trial still training when the trials' share of it runs out stops here
                info.update({score_key: dev_acc}, epochs=epoch, spec=spec.to_dict(), params=_count(spec),
                            train_seconds=time.perf_counter() - start, peak_memory=peak,
                            error=f"stopped at epoch {epoch} of {spec.train.epochs}: --timeout ran out")
                self._save(trial, info)
                raise optuna.TrialPruned(info["error"])
            if self.multi:
                return  # Optuna prunes single-objective studies only
            trial.report(dev_acc, epoch)
            # a start model always trains its full recipe; after the last epoch there is nothing left to save,
            # and a trial trained to the end is complete (so `best` and the final stage see it)
            if "start" not in info and epoch < spec.train.epochs and trial.should_prune():
                info.update({score_key: dev_acc}, epochs=epoch, spec=spec.to_dict(),
                            train_seconds=time.perf_counter() - start, params=_count(spec), peak_memory=peak)
                self._save(trial, info)
                raise optuna.TrialPruned(f"dev accuracy {dev_acc:.4f} at epoch {epoch}")

        start = time.perf_counter()
        budget = trial_budget(self.cfg, trial.study)
        stop_at = None if budget is None else time.monotonic() + budget
        try:
            result = fit(spec, self.data, on_epoch=report, device=self.device, precision=self.precision)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # a crash, out of memory (fit freed the cache), a NaN loss: recorded, the search goes on
            info.update(spec=spec.to_dict(), params=_count(spec), error=error_text(exc),
                        peak_memory=MemoryMeter(self.device).peak())
            self._save(trial, info)
            raise
        m = result.metrics
        info.update(spec=result.spec.to_dict(), params=m["params"], dev_accuracy=m["dev_accuracy"],
                    test_accuracy=m["test_accuracy"], macro_f1=m["macro_f1"], train_seconds=m["train_seconds"],
                    epochs=m["epochs"], peak_memory=m["peak_memory"],
                    dev_entity_f1=m.get("dev_entity_f1"), entity_f1=m.get("entity_f1"),
                    **measure(result, self.device, self.precision))
        if not math.isfinite(m[score_key]):
            info["error"] = "dev accuracy is not finite"
            self._save(trial, info)
            raise TrainingError("dev accuracy is not finite")
        self._save(trial, info)
        out = [info[score_key if o == "accuracy" else OBJECTIVE_COLUMNS[o]] for o in self.cfg.objectives]
        return out if self.multi else out[0]

    @staticmethod
    def _save(trial, info):
        trial.set_user_attr("rdzoo", info)


def measure(result, device=None, precision=None) -> dict:
    """FLOPs of one sequence and latency (ms) of a batch, both of PROFILE_LENGTH tokens, on
    `device` (a torch.device; None: the CPU) at `precision` (a device.Precision: the one the
    model trained at); the latency is the median of stable repeats on one thread (LATENCY)."""
    import contextlib

    from . import profile

    length = min(PROFILE_LENGTH, result.spec.embedding.max_len)
    tokens = profile.dummy_batch(result.spec, 1, length).to(device or "cpu")
    batch = profile.dummy_batch(result.spec, PROFILE_BATCH, length).to(device or "cpu")
    with precision.autocast() if precision is not None else contextlib.nullcontext():
        return {"flops": profile.flops(result.model, tokens),
                "latency_ms": profile.latency(result.model, batch, **LATENCY) * 1000}


def _earlier_same(trial):
    """An earlier trial of the study (finished or running) with exactly these parameters that
    trained itself (a repeat is never the original; a failed trial may be tried again)."""
    params = trial.params
    for t in trial.study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,)):
        if t.number != trial.number and t.params == params and "surplus" not in t.user_attrs \
                and "repeat_of" not in t.user_attrs:
            return t
    return None


def trial_seed(seed: int, worker: int, tried: int) -> int:
    """The sampler's seed for the next trial: the study's seed, offset by this worker's index
    and by the trials the study already holds, so a resumed study or a second worker with the
    same --seed draws new points instead of replaying the first ones (Optuna issue #3255)."""
    return (seed + worker * WORKER_SEED_STRIDE + tried) % (2**32)


def enqueue_starts(study, space) -> int:
    """Queue the space's start models (zoo names) that the study has not tried yet."""
    queued = 0
    # a waiting trial (queued by another worker a moment ago) has its parameters in fixed_params
    tried = [t.params or t.system_attrs.get("fixed_params") for t in study.get_trials(deepcopy=False)]
    for name in space.start:
        params = space.params_for(name)
        if params not in tried:
            study.enqueue_trial(params, user_attrs={"start": name})
            tried.append(params)
            queued += 1
    return queued


def _count(spec) -> int:
    from .plan import count_params

    return count_params(spec)


def storage_failure(exc: BaseException) -> str | None:
    """The first line of the database error behind `exc`, if there is one. Optuna re-raises a
    failed commit (a full disk, a lost server) as StorageInternalError, and on the way out of
    a trial an AssertionError of its own can then hide it, so the whole chain is searched."""
    import sqlalchemy as sa

    from .storage import first_line

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


def run_search(cfg: SearchConfig, data, display=None) -> dict:
    """Run trials until the study has `cfg.trials` finished ones, the timeout passes, or Ctrl-C."""
    quiet_optuna()
    study = open_study(cfg)  # Optuna's tables first: the results table's check expects them
    store = Store.open(cfg.storage, create=True)
    store.sync(study)
    if display:  # the storage opened: only now may the display draw
        display.started(study, count_finished(study))
    started = time.perf_counter()
    deadline = cfg.deadline
    ran, last_error = 0, None

    def on_start(number, family):
        if display:
            display.trial_started(number, family, count_finished(study))

    def record(study_, frozen):
        nonlocal last_error
        info = frozen.user_attrs.get("rdzoo")
        if frozen.user_attrs.get("surplus") or info is None:
            return
        error = info.get("error")
        if frozen.state == TrialState.FAIL and not error:
            error = frozen.system_attrs.get("fail_reason") or "failed"
        store.record(study_.study_name, frozen.number, frozen._trial_id, frozen.state.name, info, frozen.values, error,
                     study_id=study_._study_id, datetime_start=frozen.datetime_start)
        if error and frozen.state == TrialState.FAIL:
            last_error = error
        if display:
            display.trial_finished(frozen, {**info, "error": error}, count_finished(study_), _best(study_, cfg))

    objective = Objective(cfg, data, on_start)
    interrupted, gave_up, cut = False, False, False
    # one worker queues the start models: workers that all queued them would race to queue each twice
    if count_finished(study) < cfg.trials and cfg.space.start and cfg.worker == 0:
        enqueue_starts(study, cfg.space)
    previous_hook = quiet_storage_threads()
    try:
        while count_finished(study) < cfg.trials:
            remaining = trial_budget(cfg, study)
            # a trial starts only where a typical one fits: one that cannot finish would be cut unused
            if remaining is not None and remaining <= typical_trial_seconds(study):
                cut = True
                break
            recover_dead_workers(study)
            if _live(study) >= cfg.trials:
                # the last trials are running elsewhere (or in a dead worker, until its
                # heartbeat goes stale and it is failed and re-queued): wait for them
                optuna.storages.fail_stale_trials(study)
                time.sleep(min(cfg.heartbeat, 5))
                continue
            if cfg.seed is not None:
                study.sampler = make_sampler(cfg.sampler, trial_seed(cfg.seed, cfg.worker, len(study.trials)),
                                             len(cfg.objectives) > 1)
            # a trial's writes wait out another program's write lock instead of dropping the trial
            with patient(getattr(display, "warn", None)):
                study.optimize(objective, n_trials=1, timeout=remaining, n_jobs=cfg.n_jobs,
                               catch=(Exception,), callbacks=[record])
            ran += 1
            if _failed(study) >= max(cfg.trials, 10) + _surplus(study):
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
        from .storage import shown_url

        raise StoreError(f"{shown_url(cfg.storage)}: could not write to the study storage ({cause}); the trials "
                         "finished before are kept: free space or mend the database, then run the same command "
                         "to continue") from None
    finally:
        threading.excepthook = previous_hook
    finished = count_finished(study)
    outcome = {"study": cfg.study, "finished": finished, "ran": ran, "interrupted": interrupted,
               "seconds": time.perf_counter() - started,
               # why it stopped: Ctrl-C, every trial failing, the target met, or else the timeout
               "stopped_by": "interrupted" if interrupted else "failures" if gave_up
               else "target" if finished >= cfg.trials else "timeout",
               "timed_out": cut or (deadline is not None and finished < cfg.trials)}
    if gave_up:
        from .errors import TrainingError

        error = TrainingError(f"the search stopped: {_failed(study)} trials of study {cfg.study!r} failed, the last "
                              f"with {last_error or 'no recorded error'}")
        error.outcome = {**outcome, "error": last_error}  # for the summary printed before the error
        raise error
    return outcome


def trial_budget(cfg: SearchConfig, study) -> float | None:
    """Seconds the trials may still use: the time to `cfg.deadline` less what `cfg.reserve` keeps
    for the final stage; None without a timeout."""
    if cfg.deadline is None:
        return None
    remaining = cfg.deadline - time.monotonic()
    return remaining - cfg.reserve(study) if cfg.reserve is not None else remaining


def typical_trial_seconds(study) -> float:
    """The median training time (seconds) of the study's complete trials; 0 before the first."""
    from statistics import median

    seconds = [t.user_attrs["rdzoo"]["train_seconds"] for t in study.get_trials(deepcopy=False)
               if t.state == TrialState.COMPLETE and (t.user_attrs.get("rdzoo") or {}).get("train_seconds")]
    return median(seconds) if seconds else 0.0


def _live(study) -> int:
    """Finished and running trials; waiting ones (re-queued retries) still need a worker."""
    return len(study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,)))


def _surplus(study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)) if t.user_attrs.get("surplus"))


def _failed(study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))


def _best(study, cfg) -> float | None:
    if len(cfg.objectives) > 1:
        return None
    try:
        return study.best_value
    except ValueError:
        return None


def error_text(exc: BaseException) -> str:
    """The exception's one-line summary, e.g. "TrainingError: the loss became nan ..."."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}"[:2000] if message else type(exc).__name__
