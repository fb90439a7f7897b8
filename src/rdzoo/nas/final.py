"""The search's final stage.

One run of a search picks the best of many short, noisy dev scores, and the maximum of noisy
scores is biased upward (the winner's curse); on a 500-sentence test set one run's standard
error is about 1.3 points. So after the trials, the top K distinct architectures of the study
and a baseline (a zoo model, `kim-cnn` by default) are trained again at their full recipe with
the same S fresh seeds each. A seed also draws the held-out dev split when the data has none, so
run i of every contender sees the same data: differences from the baseline are paired by seed.

A search with one sentence's latency among its objectives (a search with a teacher, by default)
has a Pareto front, not one best: its contenders are up to K of the front's architectures,
spread over latency from the fastest to the most accurate (`front`). With a teacher every
contender retrains as a student of it, each seed with its own transfer set (made from that
seed's training split, its teacher outputs computed once and cached), and the baseline trains
without it, so the verdict says what the teacher adds over the known model.

Each run is stored as a trial of the companion Optuna study `<study>-final` (parameters `seed`
and `source`, the search trial it retrains or -1 for a baseline outside the top K; value: the
study's dev score), added whole with `Study.add_trial`, so Optuna's own tools read it, and as a
row of `rdzoo_results` with `stage = 'final'`. A run is stored only when it has finished, so a
final stage that is killed loses only the run in progress, and running the same command again
trains just the missing runs. The verdict on the stored runs is `nas.verdict`'s.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from ..records import SCORE_ATTR, FinalRun, TrialRecord

COPIES_ATTR = "copies"  # the `-final` study's user attribute: its students' augmented copies
SEEDS_ATTR = "seeds"  # ... and the seeds it trains (a stage cut by --timeout holds fewer)
# of the time --timeout leaves after the teacher, at least, for a final stage whose students learn on copies:
# the trials get the rest (as the teacher gets at most nas.teach.TEACHER_SHARE)
FINAL_SHARE = 0.4


@dataclass
class Contender:
    """One architecture of the final stage: a search trial's spec or the baseline's, the search
    trial it comes from (`source`, -1 for a baseline outside the top K), its family and skip
    type, and the zoo model a start trial was."""

    label: str  # "trial 17", "trial 0 = kim-cnn", "kim-cnn"
    spec: dict  # the spec dict to retrain (train.seed is set per run)
    source: int
    baseline: bool = False
    family: str | None = None
    skip: str | None = None
    start: str | None = None
    dev: float | None = None  # its trial's dev score
    latency: float | None = None  # its trial's sentence latency, ms


def run_key(spec: dict) -> str:
    """What makes two runs the same training, seed aside: the spec without its name, its
    description, its seed and the sizes the data fills in (vocabulary, classes)."""
    d = json.loads(json.dumps(spec))
    for key in ("name", "description"):
        d.pop(key, None)
    (d.get("train") or {}).pop("seed", None)
    (d.get("embedding") or {}).pop("vocab_size", None)
    if isinstance(d.get("head"), dict):
        d["head"].pop("num_classes", None)
    return json.dumps(d, sort_keys=True)


def arch_key(spec: dict) -> str:
    """The architecture alone (no training recipe): what "distinct" means for the top K."""
    d = json.loads(run_key(spec))
    d.pop("train", None)
    return json.dumps(d, sort_keys=True)


def final_seeds(n: int, screening_seed: int = 0) -> list[int]:
    """n fresh seeds, the same for every contender: 1, 2, ... skipping the seed the search's
    trials trained with (rerunning it would carry their lucky draw into the final stage)."""
    out, s = [], 1
    while len(out) < n:
        if s != screening_seed:
            out.append(s)
        s += 1
    return out


def baseline_spec(name: str | None, epochs: int | None = None) -> dict | None:
    """The baseline's spec dict (a zoo name or spec file, `epochs` overriding its train.epochs);
    None for no baseline. Raises SpecError for one that does not load: before the trials."""
    if not name:
        return None
    from ..spec import load

    return load(name, [f"train.epochs={epochs}"] if epochs else []).to_dict()


def plan(study, k: int, baseline: dict | None, baseline_name: str | None, latency: bool = False) -> list[Contender]:
    """The top `k` distinct architectures of a finished search (complete trials, best dev
    first; one trial per architecture, its best), or with `latency` up to `k` of the Pareto
    front of dev score and sentence latency, spread over latency (`front`), and the baseline,
    which shares a contender's runs when the search found exactly it (a student never is the
    baseline: its spec carries `train.distill`)."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if (t.user_attrs.get("rdzoo") or {}).get("spec") and "repeat_of" not in t.user_attrs
              and t.values and math.isfinite(t.values[0])]
    trials.sort(key=lambda t: (-t.values[0], t.number))
    out, seen = [], set()
    for t in trials:
        rec = TrialRecord.from_attrs(t.user_attrs["rdzoo"])
        key = arch_key(rec.spec)
        if key in seen:
            continue
        seen.add(key)
        start = t.user_attrs.get("start")
        out.append(Contender(f"trial {t.number}" + (f" = {start}" if start else ""), rec.spec, t.number,
                             family=rec.family, skip=rec.skip, start=start))
        out[-1].dev, out[-1].latency = t.values[0], rec.sentence_latency_ms
        if len(out) == k and not latency:
            break
    if latency:
        out = front(out, k)
    if baseline is not None:
        same = [c for c in out if run_key(c.spec) == run_key(baseline)]
        if same:
            same[0].baseline = True
        else:
            enc = baseline.get("encoder") or {}
            out.append(Contender(baseline_name or baseline.get("name", "baseline"), baseline, -1, baseline=True,
                                 family=baseline.get("family"), skip=enc.get("skip") if isinstance(enc, dict) else None))
    return out


def front(contenders: list[Contender], k: int) -> list[Contender]:
    """Up to `k` of the Pareto front of `contenders` (each with its `dev` score, higher better,
    and sentence `latency` in ms, lower better; one per architecture): the front sorted from
    the fastest, and, when it is longer than `k`, `k` of it evenly spaced along it, the fastest
    and the most accurate always among them."""
    timed = sorted((c for c in contenders if c.latency is not None), key=lambda c: (c.latency, -c.dev, c.source))
    best, kept = -math.inf, []
    for c in timed:  # from the fastest: a contender is on the front when it is more accurate than every faster one
        if c.dev > best:
            kept.append(c)
            best = c.dev
    if len(kept) <= k:
        return kept
    if k == 1:
        return kept[-1:]
    return [kept[i] for i in sorted({round(j * (len(kept) - 1) / (k - 1)) for j in range(k)})]


def estimate_seconds(study, k: int, seeds: list[int], baseline: dict | None, latency: bool = False,
                     done: frozenset = frozenset(), copies: int = 0) -> float:
    """Seconds the final stage would take if the trials stopped now: each contender's
    recorded training time (a complete trial trained its full recipe), a student's grown with
    the transfer set by `copies` (`growth`), for each of `seeds` but the runs `done` already
    ((run_key, seed) pairs, `done_runs`: a rerun trains only the rest). A baseline the search
    has not trained counts as a trial of its architecture (the start model it is, trained
    as a student), else as the slowest contender."""
    contenders = plan(study, k, baseline, "baseline", latency)
    known, same_arch = {}, {}
    for t in study.get_trials(deepcopy=False):
        info = t.user_attrs.get("rdzoo") or {}
        if t.state.name == "COMPLETE" and info.get("spec") and info.get("train_seconds"):
            known.setdefault(run_key(info["spec"]), info["train_seconds"])
            same_arch.setdefault(arch_key(info["spec"]), info["train_seconds"])
    times = {run_key(c.spec): known.get(run_key(c.spec), same_arch.get(arch_key(c.spec))) for c in contenders}
    slowest = max((x for x in times.values() if x is not None), default=0.0)
    grows = {run_key(c.spec): growth(c.spec, copies) for c in contenders}
    return sum((slowest if x is None else x) * grows[key] for key, x in times.items() for s in seeds
               if (key, s) not in done)


def growth(spec: dict, copies: int) -> float:
    """How much longer a final run of trial spec `spec` trains than its trial did when students
    train on `copies` augmented copies of each training text: the transfer set's growth (an
    epoch is one pass over it), 1 for a spec that is no student (no `train.distill`)."""
    if not _student(spec):
        return 1.0
    had = int(spec["train"]["distill"].get("augment_copies") or 0)
    return (1 + max(had, copies)) / (1 + had)


def done_runs(final) -> frozenset:
    """The (run_key, seed) pairs a final-stage study `final` (an optuna.Study) holds finished."""
    from optuna.trial import TrialState

    return frozenset((t.user_attrs.get("final", {}).get("key"), t.params.get("seed"))
                     for t in final.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def stage_seeds(cfg) -> list[int]:
    """The final stage's seeds for search `cfg`: its FinalStage's count of `final_seeds`, past
    the seed its trials trained with (the space's fixed train.seed, 0 by default)."""
    return final_seeds(cfg.final.seeds, int((cfg.space.fixed.get("train") or {}).get("seed", 0)))


def reserve(cfg, teaching=None):
    """study -> the seconds the trials of `cfg` (a SearchConfig) keep for its final stage: what
    the stage would take now without augmented copies (the runs an earlier, cut final stage
    left: a rerun keeps time for those only, with the copies that stage was recorded with),
    plus a typical trial once per seed, in case the next trial becomes a contender, plus, with
    `teaching` (a nas.teach.Teaching), the teacher's outputs over each seed's transfer set
    (`Teaching.seed_seconds`). With a teacher and `cfg.final.copies`, at least FINAL_SHARE of
    the time left now (after the teacher; `cfg.deadline`): the final stage spends what it has
    on its students' copies (`run_final`), and the trials keep the rest. Raises SpecError for a
    baseline that does not load."""
    import optuna

    from ..storage import make_storage
    from .loop import typical_trial_seconds

    settings = cfg.final
    base = baseline_spec(settings.baseline, cfg.epochs)
    seeds = stage_seeds(cfg)
    try:  # what a final stage of this study stored before; this process adds none while its trials run
        final = optuna.load_study(study_name=f"{cfg.study}-final", storage=make_storage(cfg.storage))
        done = done_runs(final)
        copies = stage_copies(final.user_attrs.get(COPIES_ATTR), done, 0)  # a new stage's copies are sized later
    except KeyError:
        done, copies = frozenset(), 0
    copies = copies if teaching is not None else 0
    teacher = teaching.seed_seconds(copies) if teaching is not None else 0.0
    share = 0.0
    if teaching is not None and settings.copies and cfg.deadline is not None:
        share = FINAL_SHARE * max(cfg.deadline - time.monotonic(), 0.0)
    return lambda study: max(share, estimate_seconds(study, settings.contenders, seeds, base, cfg.latency_front,
                                                     done, copies)
                             + settings.seeds * (typical_trial_seconds(study) * (1 + copies) + teacher))


def stage_copies(recorded, done: frozenset, copies: int) -> int:
    """The augmented copies of a final stage's students: as its first runs were trained
    (`recorded`, the `-final` study's COPIES_ATTR; 0 where it has runs (`done`, `done_runs`)
    stored before there was one), else `copies`: every seed of a stage trains its students
    alike, so they stay paired."""
    if recorded is None:
        return 0 if done else copies
    return int(recorded)


def sized_copies(want: int, fits) -> int:
    """The most augmented copies from `want` down to 0 for which `fits(copies)` holds; 0 when
    none does (then the seeds that do not fit are cut, as without copies)."""
    return next((c for c in range(want, 0, -1) if fits(c)), 0)


def run_final(cfg, data, *, on_run=None, only_seeds: list[int] | None = None, deadline: float | None = None,
              teaching=None, say=None) -> FinalRun:
    """Train every contender with every seed that is not stored yet; return what was done.
    With `teaching` (a nas.teach.Teaching) a contender whose spec carries `train.distill` (a
    search trial's student) retrains as a student of its teacher, on a transfer set with the
    stage's augmented copies of each training text (Tang et al. 2019: the copies are where the
    teacher's outputs tell the student more than the labels), fewer when they do not fit the
    `deadline` (`sized_copies`; `say(text)` is told in one line), and the same for every seed
    of the stage (`stage_copies`); the baseline trains alone.

    `cfg` is the search's SearchConfig: its storage, study, epochs, max_params and its final
    stage's settings (`cfg.final`, a FinalStage: the contenders K, the seeds, the baseline and
    the copies); `on_run(done, total, label, seed)` is called before each run; `only_seeds` limits this call
    to some of the seeds (processes that share one final stage, a seed each). With a `deadline`
    (time.monotonic() seconds) a seed starts only if all its runs fit before it, by
    `estimate_seconds` for one seed, so a stage cut short still pairs every contender; the
    seeds left out are returned as `cut`, with the seconds their runs would take. Raises what `train.fit` raises; the runs finished
    before are kept.
    """
    import optuna

    from ..device import resolve_device, resolve_precision
    from ..storage import make_storage, patient
    from ..store import Store
    from .loop import quiet_optuna, study_score
    from .objective import measure

    quiet_optuna()
    storage = make_storage(cfg.storage, cfg.heartbeat)
    study = optuna.load_study(study_name=cfg.study, storage=storage)
    k = cfg.final.contenders
    base_spec = baseline_spec(cfg.final.baseline, cfg.epochs)
    contenders = plan(study, k, base_spec, base_spec["name"] if base_spec else None, cfg.latency_front)
    seed_list = stage_seeds(cfg)
    score = study_score(study)
    final = optuna.create_study(study_name=f"{cfg.study}-final", storage=storage, load_if_exists=True,
                                direction="maximize")
    final.set_user_attr("search_study", cfg.study)
    final.set_user_attr(SCORE_ATTR, score.name)
    final.set_user_attr(SEEDS_ATTR, seed_list)
    store = Store.open(cfg.storage, create=True)
    store.sync(final, storage)
    done = done_runs(final)
    todo = [(c, s) for s in seed_list for c in contenders if (run_key(c.spec), s) not in done
            and (only_seeds is None or s in only_seeds)]  # seed-major:
    # a stage cut short still has whole seeds, each paired across every contender
    total, ran = len(contenders) * len(seed_list), 0
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    cut, cut_seconds = [], 0.0
    students = teaching is not None and any(_student(c.spec) for c in contenders)
    recorded = final.user_attrs.get(COPIES_ATTR)  # read once: each read asks the storage
    want = stage_copies(recorded, done, cfg.final.copies) if students else 0
    seeds_left = list(dict.fromkeys(s for _, s in todo))

    def seconds(seed_list: list[int], n: int) -> float:  # these seeds' runs still to train, with n copies
        teacher = teaching.seed_seconds(n) * len(seed_list) if students else 0.0
        return teacher + estimate_seconds(study, k, seed_list, base_spec, cfg.latency_front, done, n)

    n_copies = want
    if deadline is not None and want and recorded is None:  # sized once, with the first runs
        n_copies = sized_copies(want, lambda n: time.monotonic() + seconds(seeds_left, n) <= deadline)
    if not seeds_left or (deadline is not None and time.monotonic() + seconds(seeds_left[:1], 0) > deadline):
        say = None  # nothing to train (or not one seed fits, named at the end): nothing to say about how
    if say and students and n_copies:
        fewer = f" (not {want}: the most that fit --timeout)" if n_copies < want else ""
        say(f"final stage: its students learn from the teacher on {n_copies} augmented "
            f"cop{'ies' if n_copies > 1 else 'y'} of each training text{fewer}")
    elif say and students and want:
        say(f"final stage: its students train without augmented copies (not {want}: none fit --timeout)")
    for seed in seeds_left:
        runs = [c for c, s in todo if s == seed]
        # by the search's recorded times (the search study does not change here)
        need = seconds([seed], n_copies) if deadline is not None else 0.0
        if deadline is not None and time.monotonic() + need > deadline:
            cut.append(seed)  # --timeout is a promise: this seed's runs would end past it
            cut_seconds += need
            continue
        if students and recorded is None:  # recorded with the stage's first run
            final.set_user_attr(COPIES_ATTR, n_copies)
            recorded = n_copies
        for c in runs:
            if on_run:
                on_run(total - len(todo) + ran, total, c.label, seed)
            with patient():  # a trained run waits out another program's write lock rather than being lost
                _train_one(cfg, data, final, storage, store, c, seed, score,
                           lambda result: measure(result, device, precision), device, precision, teaching, n_copies)
            ran += 1
    return FinalRun([c.label for c in contenders], seed_list, ran, total, cut, round(cut_seconds, 1),
                    n_copies if students else 0)


def _student(spec: dict) -> bool:
    """Whether a contender's spec trains as a student (it carries `train.distill`)."""
    return isinstance((spec.get("train") or {}).get("distill"), dict)


def _train_one(cfg, data, final, storage, store, c: Contender, seed: int, score, measure, device, precision,
               teaching=None, copies: int = 0) -> None:
    """Train contender `c` with `seed` (a student of `teaching`'s teacher where its spec carries
    `train.distill`, with at least `copies` augmented copies of each training text) and store
    the run as a finished trial of `final`, with its row."""
    import optuna

    from ..spec import from_dict
    from ..train import fit
    from .objective import results_record

    raw = json.loads(json.dumps(c.spec))
    raw["train"] = {**(raw.get("train") or {}), "seed": seed}
    if copies and _student(raw):
        distill = raw["train"]["distill"]
        distill["augment_copies"] = max(int(distill.get("augment_copies") or 0), copies)
    raw["name"] = f"{final.study_name}-{c.label.split(' = ')[0].replace(' ', '-')}-seed-{seed}"
    spec = from_dict(raw, max_params=max(cfg.max_params, 2e9))
    train = teaching.fit if teaching is not None and spec.train.distill is not None else fit
    result = train(spec, data, device=device, precision=precision)
    base = TrialRecord(family=result.spec.family, skip=result.spec.skip, stage="final", seed=seed,
                       contender=c.label, baseline=c.baseline)
    record = results_record(result, base, measure(result))
    dists = {"seed": optuna.distributions.IntDistribution(0, 2**31 - 1),
             "source": optuna.distributions.IntDistribution(-1, 2**31 - 1)}
    # added whole (never RUNNING), so a killed final stage leaves nothing to recover
    final.add_trial(optuna.trial.create_trial(
        params={"seed": seed, "source": c.source}, distributions=dists, value=record.dev_score(score),
        user_attrs={"rdzoo": record.attrs(),
                    "final": {"key": run_key(c.spec), "contender": c.label, "baseline": c.baseline}}))
    store.sync(final, storage)  # its row, written as for a search trial
