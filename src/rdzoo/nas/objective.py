"""The Optuna objective: sample a spec, check it, train it, measure it, record it.

Every trial samples a spec from the search space (define-by-run), validates it and checks
`max_params` before building anything, builds it once to time one sentence through it (and
prunes it there, untrained, when that is above `--max-latency`), trains it with `train.fit`
(as a student of the search's teacher, `nas.teach.Teaching`, when there is one) while
reporting the study's dev score per epoch for pruning, and returns that score (accuracy, or
entity F1 on entity data: the study's `records.Score`) and any further objectives. Test scores are recorded, never
optimised. What a trial did is kept as its `rdzoo` user attribute, a `records.TrialRecord`'s
`attrs()`, from which the results table's row is written.
"""

from __future__ import annotations

import contextlib
import math
import os
import time

import optuna
from optuna.trial import TrialState

from ..records import OBJECTIVES, Score, TrialRecord
from ..spec import SpecError, from_dict

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
PROFILE_LENGTH = 64  # tokens per sequence for the recorded FLOPs and latency
PROFILE_BATCH = 32
# latency: one thread (the figure must not depend on the cores a worker was given), 3 warm-up
# passes, then the median of at least 20 timed passes and 0.2 s of timing
LATENCY = {"threads": 1, "warmup": 3, "repeats": 20, "min_seconds": 0.2}


class Surplus(Exception):
    """A racing worker started a trial past the target; it is closed without training."""


class Objective:
    """Optuna objective: sample -> validate -> train -> measure, for a search `cfg` (a
    SearchConfig) on `data` (a TextData) ranked by `score`; `on_start(number, family)` is called
    once a trial is sampled; `budget(study)` gives the seconds the trials may still use (None:
    no limit), past which a trial stops at its epoch's end; `teaching` (a nas.teach.Teaching;
    None: none) makes every trial a student of the search's teacher."""

    def __init__(self, cfg, data, score: Score, on_start=None, budget=None, teaching=None):
        from ..device import resolve_device, resolve_precision

        self.cfg, self.data, self.score, self.on_start, self.budget = cfg, data, score, on_start, budget
        self.teaching = teaching
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
                return repeat.values if self.cfg.multi else repeat.value
            raise optuna.TrialPruned(f"repeat of trial {repeat.number}")
        if self.cfg.epochs:
            raw["train"] = {**(raw.get("train") or {}), "epochs": self.cfg.epochs}
        raw["name"] = f"{trial.study.study_name}-trial-{trial.number}"
        family = raw.get("family")
        if self.on_start:
            self.on_start(trial.number, family)
        try:
            from ..checkpoint import expand  # a `pretrained:` body's shape comes from its config.json

            spec = from_dict(expand(raw), max_params=self.cfg.max_params)
        except SpecError as exc:
            # an invalid combination (heads not dividing d_model, too many parameters, ...) is the
            # space's fault, not a crash: the trial is pruned with its reason
            skip = (raw.get("encoder") or {}).get("skip")
            _save(trial, TrialRecord(family=family, skip=skip, spec=raw, error=f"invalid spec: {exc}"))
            raise optuna.TrialPruned(f"invalid spec: {exc}") from None
        try:
            return self._train(trial, spec)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            if "rdzoo" not in trial.user_attrs:  # it failed before it recorded anything: keep why, for the results
                _save(trial, TrialRecord(family=spec.family, skip=spec.skip, spec=spec.to_dict(), error=error_text(exc)))
            raise

    def _check_target(self, trial):
        """Two workers that both saw one trial missing both started one: the later closes."""
        import socket

        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        ahead = [t for t in trial.study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,))
                 if t.number < trial.number]
        if len(ahead) >= self.cfg.trials:
            trial.set_user_attr("surplus", True)
            raise Surplus(f"the study already has {self.cfg.trials} trials")

    def _train(self, trial, spec):
        from ..device import MemoryMeter
        from ..errors import TrainingError
        from ..plan import count_params
        from ..render import human_bytes
        from ..train import fit

        score, cfg = self.score, self.cfg
        # one sentence's latency, from the model built but not trained: a trial above --max-latency
        # costs a build and a few forward passes, never an epoch
        sentence = sentence_latency(spec, self.data)
        base = TrialRecord(family=spec.family, skip=spec.skip, sentence_latency_ms=sentence)
        if cfg.max_latency is not None and sentence > cfg.max_latency:
            error = f"sentence latency {sentence:.2f} ms above --max-latency {cfg.max_latency:g} ms"
            _save(trial, base.replace(spec=spec.to_dict(), params=count_params(spec), error=error))
            raise optuna.TrialPruned(error)
        start_model = trial.user_attrs.get("start")  # a zoo model the space starts from: trained whole, never pruned

        def stop(epoch: int, dev: float, peak: int, error: str | None, reason: str):
            _save(trial, base.replace(**{score.dev: dev}, epochs=epoch, spec=spec.to_dict(), params=count_params(spec),
                                      train_seconds=time.perf_counter() - start, peak_memory=peak, error=error))
            raise optuna.TrialPruned(reason)

        def report(epoch: int, dev: float) -> None:
            """fit's hook after each epoch, with the epoch's dev score (the study's score)."""
            peak = MemoryMeter(self.device).peak()  # fit reset the peak when it started
            if cfg.max_memory is not None and peak > cfg.max_memory:
                # the first epoch has touched every buffer a step needs: later epochs peak no higher
                error = f"peak memory {human_bytes(peak)} above --max-memory {human_bytes(cfg.max_memory)}"
                stop(epoch, dev, peak, error, error)
            if stop_at is not None and epoch < spec.train.epochs and time.monotonic() > stop_at:
                # --timeout is a promise: a trial still training when the trials' share of it runs out stops here
                error = f"stopped at epoch {epoch} of {spec.train.epochs}: --timeout ran out"
                stop(epoch, dev, peak, error, error)
            if cfg.multi:
                return  # Optuna prunes single-objective studies only
            trial.report(dev, epoch)
            # a start model always trains its full recipe; after the last epoch there is nothing left to save,
            # and a trial trained to the end is complete (so `best` and the final stage see it)
            if not start_model and epoch < spec.train.epochs and trial.should_prune():
                stop(epoch, dev, peak, None, f"dev {score.name} {dev:.4f} at epoch {epoch}")

        start = time.perf_counter()
        budget = self.budget(trial.study) if self.budget else None
        stop_at = None if budget is None else time.monotonic() + budget
        train = self.teaching.fit if self.teaching is not None else fit
        try:
            result = train(spec, self.data, on_epoch=report, device=self.device, precision=self.precision)
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # a crash, out of memory (fit freed the cache), a NaN loss: recorded, the search goes on
            _save(trial, base.replace(spec=spec.to_dict(), params=count_params(spec), error=error_text(exc),
                                      peak_memory=MemoryMeter(self.device).peak()))
            raise
        record = results_record(result, base, measure(result, self.device, self.precision, sentence=sentence))
        if not math.isfinite(record.dev_score(score)):
            _save(trial, record.replace(error=f"dev {score.name} is not finite"))
            raise TrainingError(f"dev {score.name} is not finite")
        _save(trial, record)
        out = [record.get(OBJECTIVES[o].column_for(score)) for o in cfg.objectives]
        return out if cfg.multi else out[0]


def results_record(result, base: TrialRecord, measured: dict) -> TrialRecord:
    """The record of a trained model: `train.fit`'s FitResult (its spec and metrics) over `base`
    (what is known before training: family, skip, ...) and `measured` (flops, latency_ms)."""
    m = result.metrics
    return base.replace(spec=result.spec.to_dict(), params=m["params"], dev_accuracy=m["dev_accuracy"],
                        test_accuracy=m["test_accuracy"], macro_f1=m["macro_f1"], train_seconds=m["train_seconds"],
                        epochs=m["epochs"], peak_memory=m["peak_memory"], dev_entity_f1=m.get("dev_entity_f1"),
                        entity_f1=m.get("entity_f1"), **measured)


def _save(trial, record: TrialRecord) -> None:
    trial.set_user_attr("rdzoo", record.attrs())


def measure(result, device=None, precision=None, sentence: float | None = None) -> dict:
    """FLOPs of one sequence and latency (ms) of a batch, both of PROFILE_LENGTH tokens, on
    `device` (a torch.device; None: the CPU) at `precision` (a device.Precision: the one the
    model trained at); the latency is the median of stable repeats on one thread (LATENCY).
    `sentence_latency_ms` is `sentence` where the trial timed it before training, else
    `sentence_latency` of the trained spec."""
    from .. import profile

    length = min(PROFILE_LENGTH, result.spec.embedding.max_len)
    tokens = profile.dummy_batch(result.spec, 1, length).to(device or "cpu")
    batch = profile.dummy_batch(result.spec, PROFILE_BATCH, length).to(device or "cpu")
    with precision.autocast() if precision is not None else contextlib.nullcontext():
        out = {"flops": profile.flops(result.model, tokens),
               "latency_ms": profile.latency(result.model, batch, **LATENCY) * 1000}
    out["sentence_latency_ms"] = sentence if sentence is not None else sentence_latency(result.spec)
    return out


def sentence_latency(spec, data=None) -> float:
    """Milliseconds one sentence takes through a model built from `spec` on the CPU, untrained
    (`profile.sentence_latency_ms`: batch 1, one thread, the deployment figure), with `data`'s
    classes and, on tagging data, a tag a word, as `train.fit` will build it: what the trained
    model costs (the weights' values do not change it), known before any training."""
    from .. import profile
    from ..registry import build_model
    from ..spec import load
    from ..train import tagger_head

    if data is not None:
        spec = load(spec, {"head.num_classes": len(data.label_names), **(tagger_head(spec) if data.tagging else {})})
    model = build_model(spec).eval()
    return profile.sentence_latency_ms(model)


def _earlier_same(trial):
    """An earlier trial of the study (finished or running) with exactly these parameters that
    trained itself (a repeat is never the original; a failed trial may be tried again)."""
    params = trial.params
    for t in trial.study.get_trials(deepcopy=False, states=FINISHED + (TrialState.RUNNING,)):
        if t.number != trial.number and t.params == params and "surplus" not in t.user_attrs \
                and "repeat_of" not in t.user_attrs:
            return t
    return None


def error_text(exc: BaseException) -> str:
    """The exception's one-line summary, e.g. "TrainingError: the loss became nan ..."."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}"[:2000] if message else type(exc).__name__
