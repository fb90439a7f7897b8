"""The search's final stage and its verdict.

One run of a search picks the best of many short, noisy dev scores, and the
maximum of noisy scores is biased upward (the winner's curse); on a
500-sentence test set one run's standard error is about 1.3 points. So after
the trials, the top K distinct architectures of the study and a baseline (a
zoo model, `kim-cnn` by default) are trained again at their full recipe with
the same S fresh seeds each. A seed also draws the held-out dev split when the
data has none, so run i of every contender sees the same data: differences
from the baseline are paired by seed.

Each run is stored as a trial of the companion Optuna study `<study>-final`
(parameters `seed` and `source`, the search trial it retrains or -1 for a
baseline outside the top K; value: dev accuracy), so Optuna's own tools read
it, and as a row of `rdzoo_results` with `stage = 'final'`. A run is stored
only when it has finished, so a final stage that is killed loses only the run
in progress, and running the same command again trains just the missing runs.

The verdict (`verdict`) is computed from the stored rows alone, so
`rdzoo search` and `rdzoo best` show the same one; this module imports
nothing heavy at load time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from statistics import mean, stdev

from .storage import SCORE_COLUMNS, patient, score_of

DEFAULT_K = 3
DEFAULT_SEEDS = 3
DEFAULT_BASELINE = "kim-cnn"
LEVEL_SE = 2.0  # a paired difference within 2 standard errors of zero is "level"


@dataclass
class Contender:
    """One architecture of the final stage: a search trial's spec or the baseline's."""

    label: str  # "trial 17", "trial 0 = kim-cnn", "kim-cnn"
    spec: dict  # the spec dict to retrain (train.seed is set per run)
    source: int  # the search trial it comes from; -1 for a baseline outside the top K
    baseline: bool = False
    info: dict = field(default_factory=dict)  # family, skip, start name


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


def plan(study, k: int, baseline: dict | None, baseline_name: str | None) -> list[Contender]:
    """The top `k` distinct architectures of a finished search (complete trials, best dev
    first; one trial per architecture, its best) and the baseline, which shares a
    contender's runs when the search found exactly it."""
    from optuna.trial import TrialState

    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if "rdzoo" in t.user_attrs and t.user_attrs["rdzoo"].get("spec") and "repeat_of" not in t.user_attrs
              and t.values and math.isfinite(t.values[0])]
    trials.sort(key=lambda t: (-t.values[0], t.number))
    out, seen = [], set()
    for t in trials:
        info = t.user_attrs["rdzoo"]
        key = arch_key(info["spec"])
        if key in seen:
            continue
        seen.add(key)
        start = info.get("start")
        label = f"trial {t.number}" + (f" = {start}" if start else "")
        out.append(Contender(label, info["spec"], t.number,
                             info={"family": info.get("family"), "skip": info.get("skip"), "start": start}))
        if len(out) == k:
            break
    if baseline is not None:
        same = [c for c in out if run_key(c.spec) == run_key(baseline)]
        if same:
            same[0].baseline = True
        else:
            enc = baseline.get("encoder") or {}
            out.append(Contender(baseline_name or baseline.get("name", "baseline"), baseline, -1, baseline=True,
                                 info={"family": baseline.get("family"), "skip": enc.get("skip") if isinstance(enc, dict) else None}))
    return out


def estimate_seconds(study, k: int, seeds: int, baseline: dict | None) -> float:
    """Seconds the final stage would take if the trials stopped now: each contender's
    recorded training time (a complete trial trained its full recipe) times the seeds.
    A baseline the search has not trained counts as its slowest contender."""
    contenders = plan(study, k, baseline, "baseline")
    known = {}
    for t in study.get_trials(deepcopy=False):
        info = t.user_attrs.get("rdzoo") or {}
        if t.state.name == "COMPLETE" and info.get("spec") and info.get("train_seconds"):
            known.setdefault(run_key(info["spec"]), info["train_seconds"])
    times = [known.get(run_key(c.spec)) for c in contenders]
    slowest = max((x for x in times if x is not None), default=0.0)
    return seeds * sum(slowest if x is None else x for x in times)


def run_final(cfg, data, *, k: int = DEFAULT_K, seeds: int = DEFAULT_SEEDS, baseline: str | None = DEFAULT_BASELINE,
              on_run=None, only_seeds: list[int] | None = None, deadline: float | None = None) -> dict:
    """Train every contender with every seed that is not stored yet; return what was done.

    `cfg` is the search's SearchConfig (its storage, study, epochs and max_params);
    `on_run(done, total, contender, seed)` is called before each run; `only_seeds`
    limits this call to some of the seeds (processes that share one final stage,
    a seed each). With a `deadline` (time.monotonic() seconds) a seed starts only if
    all its runs fit before it, by `estimate_seconds` for one seed, so a stage cut
    short still pairs every contender; the seeds left out are returned as `cut`.
    Raises what `train.fit` raises; the runs finished before are kept.
    """
    import time

    import optuna

    from . import spec as spec_mod
    from .device import resolve_device, resolve_precision
    from .search import make_storage, measure, quiet_optuna
    from .store import Store

    quiet_optuna()
    storage = make_storage(cfg.storage, cfg.heartbeat)
    study = optuna.load_study(study_name=cfg.study, storage=storage)
    base_spec = None
    if baseline:
        loaded = spec_mod.load(baseline, [f"train.epochs={cfg.epochs}"] if cfg.epochs else [])
        base_spec = loaded.to_dict()
    contenders = plan(study, k, base_spec, loaded.name if baseline else None)
    screening = int(((cfg.space.fixed.get("train") or {}).get("seed", 0)))
    seed_list = final_seeds(seeds, screening)
    final = optuna.create_study(study_name=f"{cfg.study}-final", storage=storage, load_if_exists=True,
                                direction="maximize")
    final.set_user_attr("search_study", cfg.study)
    store = Store.open(cfg.storage, create=True)
    store.sync(final)
    done = {(t.user_attrs.get("final", {}).get("key"), t.params.get("seed"))
            for t in final.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))}
    todo = [(c, s) for s in seed_list for c in contenders if (run_key(c.spec), s) not in done
            and (only_seeds is None or s in only_seeds)]  # seed-major:
    # a stage cut short still has whole seeds, each paired across every contender
    total, ran = len(contenders) * len(seed_list), 0
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    cut = []
    for seed in dict.fromkeys(s for _, s in todo):
        runs = [c for c, s in todo if s == seed]
        if deadline is not None and time.monotonic() + estimate_seconds(study, k, 1, base_spec) > deadline:
            cut.append(seed)  # --timeout is a promise: this seed's runs would end past it
            continue
        for c in runs:
            if on_run:
                on_run(total - len(todo) + ran, total, c, seed)
            with patient():  # a trained run waits out another program's write lock rather than being lost
                _train_one(cfg, data, final, store, c, seed, lambda result: measure(result, device, precision),
                           device, precision)
            ran += 1
    return {"contenders": [c.label for c in contenders], "seeds": seed_list, "ran": ran, "runs": total, "cut": cut}


def _train_one(cfg, data, final, store, c: Contender, seed: int, measure, device, precision) -> None:
    import optuna

    from .spec import from_dict
    from .train import fit

    raw = json.loads(json.dumps(c.spec))
    raw["train"] = {**(raw.get("train") or {}), "seed": seed}
    raw["name"] = f"{final.study_name}-{c.label.split(' = ')[0].replace(' ', '-')}-seed-{seed}"
    spec = from_dict(raw, max_params=max(cfg.max_params, 2e9))
    result = fit(spec, data, device=device, precision=precision)
    m = result.metrics
    # on entity-tagged data the dev score (the trial's value, what the verdict ranks by) is entity F1
    entity = {k: m[k] for k in ("dev_entity_f1", "entity_f1") if m.get(k) is not None}
    value = entity.get("dev_entity_f1", m["dev_accuracy"])
    info = {**{k: v for k, v in c.info.items() if v is not None}, "spec": result.spec.to_dict(), "params": m["params"],
            "dev_accuracy": m["dev_accuracy"], "test_accuracy": m["test_accuracy"], "macro_f1": m["macro_f1"], **entity,
            "train_seconds": m["train_seconds"], "epochs": m["epochs"], "peak_memory": m["peak_memory"],
            **measure(result),
            "stage": "final", "seed": seed, "contender": c.label, "baseline": c.baseline, "skip": result.spec.skip,
            "family": result.spec.family}
    dists = {"seed": optuna.distributions.IntDistribution(0, 2**31 - 1),
             "source": optuna.distributions.IntDistribution(-1, 2**31 - 1)}
    frozen = optuna.trial.create_trial(
        params={"seed": seed, "source": c.source}, distributions=dists, value=value,
        user_attrs={"rdzoo": info, "final": {"key": run_key(c.spec), "contender": c.label, "baseline": c.baseline}})
    trial_id = final._storage.create_new_trial(final._study_id, template_trial=frozen)
    number = final._storage.get_trial_number_from_id(trial_id)
    store.record(final.study_name, number, trial_id, "COMPLETE", info, [value])


# --- the verdict, from stored rows ---------------------------------------------------------


def _sd(xs: list[float]) -> float | None:
    return stdev(xs) if len(xs) > 1 else None


def verdict(final_rows: list[dict], trial_rows: list[dict] | None = None) -> dict | None:
    """Rank the final stage's contenders by mean dev score, compare each with the
    baseline, paired by seed, and recommend one. The score is accuracy, or entity F1 on
    entity-tagged data (`storage.score_of`; `score` in the result names it, and `dev_mean`,
    `test_mean` and the differences are of it).

    The recommendation is the top of the ranking only when its paired dev difference from
    the baseline is more than 2 standard errors above zero (`dev_call` ahead); otherwise the
    baseline is recommended (`kept_baseline` True): a search result that does not beat the
    known model beyond the seed noise on dev is no reason to leave it. The test split plays
    no part in the choice.

    `final_rows` are rdzoo_results rows with stage 'final' (Results.final); `trial_rows`
    the search's complete trials, for the skip type that won in each family. Accuracies
    are fractions; `vs_baseline` holds the mean and sample sd of the per-seed differences
    (contender minus baseline) over the seeds both ran, and `call`: ahead or behind when
    the mean test difference is more than 2 standard errors (sd / sqrt(n)) from zero,
    level otherwise; `dev_call` the same for dev. None when there are no final rows.
    """
    if not final_rows:
        return None
    score = score_of(final_rows)
    dev_key, test_key = SCORE_COLUMNS[score]
    groups: dict[str, list[dict]] = {}
    for r in final_rows:
        groups.setdefault(r["contender"], []).append(r)
    ranking = []
    for label, rows in groups.items():
        rows = sorted(rows, key=lambda r: r["seed"])
        dev = [r[dev_key] for r in rows]
        test = [r[test_key] for r in rows]
        first = rows[0]
        ranking.append({
            "contender": label, "baseline": any(bool(r["baseline"]) for r in rows),
            "trial": _source_trial(label), "family": first["family"], "skip": first["skip"],
            "params": first["params"], "flops": first["flops"],
            "latency_ms": _median([r["latency_ms"] for r in rows if r["latency_ms"] is not None]),
            "dev_mean": mean(dev), "dev_sd": _sd(dev), "test_mean": mean(test), "test_sd": _sd(test),
            "seeds": [r["seed"] for r in rows], "n": len(rows),
            "train_seconds": mean(r["train_seconds"] for r in rows if r["train_seconds"] is not None)
            if any(r["train_seconds"] is not None for r in rows) else None,
            "spec": first["spec"], "_by_seed": {r["seed"]: {"dev": r[dev_key], "test": r[test_key]} for r in rows},
        })
    ranking.sort(key=lambda c: (-c["dev_mean"], -c["n"], c["contender"]))
    base = next((c for c in ranking if c["baseline"]), None)
    for c in ranking:
        c["vs_baseline"] = _paired(c, base) if base is not None else None
    for c in ranking:
        c.pop("_by_seed")
    top = ranking[0]
    kept = base is not None and top is not base and top["vs_baseline"]["dev_call"] != "ahead"
    return {"recommended": base if kept else top, "kept_baseline": kept, "score": score,
            "baseline": base["contender"] if base else None, "ranking": ranking,
            "skips": skip_winners(trial_rows or [], dev_key)}


def _paired(c: dict, base: dict) -> dict:
    common = sorted(set(c["_by_seed"]) & set(base["_by_seed"]))
    out = {"baseline": base["contender"], "n": len(common)}
    for metric in ("test", "dev"):
        diffs = [c["_by_seed"][s][metric] - base["_by_seed"][s][metric] for s in common]
        out[f"{metric}_diff"] = mean(diffs) if diffs else None
        out[f"{metric}_diff_sd"] = _sd(diffs)
    out["call"] = _call(out["test_diff"], out["test_diff_sd"], len(common), c is base)
    out["dev_call"] = _call(out["dev_diff"], out["dev_diff_sd"], len(common), c is base)
    return out


def _call(diff, sd, n, same) -> str:
    if same or diff is None or n == 0:
        return "level"
    se = (sd or 0.0) / math.sqrt(n)
    if abs(diff) <= LEVEL_SE * se or abs(diff) < 1e-12:
        return "level"
    return "ahead" if diff > 0 else "behind"


def _median(xs: list[float]) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def _source_trial(label: str) -> int | None:
    if label.startswith("trial "):
        try:
            return int(label.split()[1])
        except ValueError:
            return None
    return None


def skip_winners(trial_rows: list[dict], dev_key: str = "dev_accuracy") -> dict:
    """Per family, the skip type of the best complete trial by `dev_key` (its score is kept under
    `dev_accuracy`), with how many trials tried each skip."""
    out: dict[str, dict] = {}
    for r in trial_rows:
        if r.get("state") != "COMPLETE" or r.get(dev_key) is None or not r.get("family"):
            continue
        f = out.setdefault(r["family"], {"skip": None, "dev_accuracy": -1.0, "trial": None, "tried": {}})
        f["tried"][r["skip"]] = f["tried"].get(r["skip"], 0) + 1
        if r[dev_key] > f["dev_accuracy"]:
            f.update(skip=r["skip"], dev_accuracy=r[dev_key], trial=r["trial"])
    return out


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _pm(m, sd) -> str:
    return f"{_pct(m)} +- {_pct(sd)}" if sd is not None else _pct(m)


def render_verdict(v: dict | None) -> str:
    """The verdict as a few plain lines for the end of `rdzoo search` (accuracies in %)."""
    if not v:
        return "no final stage yet: run `rdzoo search` again without --no-final to retrain the best trials"
    r = v["recommended"]
    size = f", {r['params']:,} parameters" if r["params"] is not None else ""
    speed = f", {r['latency_ms']:.1f} ms a batch" if r["latency_ms"] is not None else ""
    lines = [f"recommended: {r['contender']} ({r['family']}, skip {r['skip']}{size}{speed})",
             f"  {v.get('score', 'accuracy')}: dev {_pm(r['dev_mean'], r['dev_sd'])}, test {_pm(r['test_mean'], r['test_sd'])} "
             f"over {r['n']} seed{'s' if r['n'] != 1 else ''} "
             f"({', '.join(map(str, r['seeds']))})"]
    vs = r["vs_baseline"]
    if vs is None:
        lines.append("  no baseline was trained (--baseline none)")
    elif vs["test_diff"] is None:
        lines.append(f"  vs {vs['baseline']}: no seed that both ran yet")
    elif r["baseline"] and v.get("kept_baseline"):
        top = v["ranking"][0]
        lines.append(f"  it is the baseline, {vs['baseline']}: the best found, {top['contender']}, was not ahead of it on "
                     f"dev beyond the seeds' noise (dev {100 * top['vs_baseline']['dev_diff']:+.1f} points, "
                     f"{top['vs_baseline']['dev_call']})")
    elif r["baseline"]:
        lines.append(f"  it is the baseline, {vs['baseline']}: nothing the search found beat it on mean dev accuracy")
    else:
        sd = f" (sd {100 * vs['test_diff_sd']:.1f})" if vs["test_diff_sd"] is not None else ""
        lines.append(f"  vs {vs['baseline']}: test {100 * vs['test_diff']:+.1f} points{sd}, paired over {vs['n']} "
                     f"seeds: {vs['call']}")
    if v["skips"]:
        lines.append("  best skip by family: " + ", ".join(
            f"{fam} {w['skip']} ({_pct(w['dev_accuracy'])} dev, trial {w['trial']})" for fam, w in sorted(v["skips"].items())))
    return "\n".join(lines)
