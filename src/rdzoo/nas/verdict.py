"""The final stage's verdict, computed from the stored runs alone, so that `rdzoo search`,
`rdzoo best`, `rdzoo export --best` and `rdzoo report` show the same one. Imports nothing heavy.

The contenders are ranked by mean dev score (the study's score: accuracy, or entity F1 on entity
data). The recommendation is the top of the ranking only when its paired dev difference from the
baseline is more than 2 standard errors above zero; otherwise the baseline is recommended
(`kept_baseline`): a search result that does not beat the known model beyond the seed noise on
dev is no reason to leave it. The test split plays no part in the choice.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import mean, median, stdev

from ..records import Paired, Score, SkipWinner, Standing, TrialRecord, Verdict, derive_score

LEVEL_SE = 2.0  # a paired difference within 2 standard errors of zero is "level"


def of_study(results, study: str) -> Verdict | None:
    """The verdict of a study from its stored runs (`results`: a query.Results), ranked by the
    study's score; None before a final stage ran."""
    final_rows = results.final(study)
    if not final_rows:
        return None
    score = results.score(study)
    return verdict(final_rows, results.best(study, top=10**9, score=score), score)


def verdict(final_rows: list[TrialRecord], trial_rows: list[TrialRecord] | None = None,
            score: Score | None = None) -> Verdict | None:
    """Rank the final stage's contenders by mean dev `score` (by default `derive_score` of the
    rows), compare each with the baseline, paired by seed, and recommend one.

    `final_rows` are the records of the final stage's runs (query.Results.final); `trial_rows`
    the search's complete trials, for the skip type that won in each family. Each Standing's
    `vs_baseline` holds the mean and sample sd of the per-seed differences (contender minus
    baseline) over the seeds both ran, and their calls: ahead or behind when the mean
    difference is more than 2 standard errors (sd / sqrt(n)) from zero, level otherwise.
    None when there are no final rows.
    """
    if not final_rows:
        return None
    score = score or derive_score(final_rows)
    groups: dict[str, list[TrialRecord]] = {}
    for r in final_rows:
        groups.setdefault(r.contender, []).append(r)
    ranking = sorted((_standing(label, rows, score) for label, rows in groups.items()),
                     key=lambda s: (-s.dev_mean, -s.n, s.contender))
    base = next((s for s in ranking if s.baseline), None)
    if base is not None:
        ranking = [dataclasses.replace(s, vs_baseline=_paired(s, base)) for s in ranking]
        base = next(s for s in ranking if s.baseline)
    top = ranking[0]
    kept = base is not None and top is not base and top.vs_baseline.dev_call != "ahead"
    return Verdict(score, ranking, base if kept else top, kept, base.contender if base else None,
                   skip_winners(trial_rows or [], score))


def _standing(label: str, rows: list[TrialRecord], score: Score) -> Standing:
    rows = sorted(rows, key=lambda r: r.seed)
    dev = [r.dev_score(score) for r in rows]
    test = [r.test_score(score) for r in rows]
    first = rows[0]
    seconds = [r.train_seconds for r in rows if r.train_seconds is not None]
    latency = [r.latency_ms for r in rows if r.latency_ms is not None]
    return Standing(contender=label, baseline=any(bool(r.baseline) for r in rows), trial=_source_trial(label),
                    family=first.family, skip=first.skip, params=first.params, flops=first.flops,
                    latency_ms=median(latency) if latency else None, dev_mean=mean(dev), dev_sd=_sd(dev),
                    test_mean=mean(test), test_sd=_sd(test), seeds=[r.seed for r in rows], n=len(rows),
                    train_seconds=mean(seconds) if seconds else None, vs_baseline=None, spec=first.spec,
                    dev=dev, test=test)


def _paired(c: Standing, base: Standing) -> Paired:
    common = sorted(set(c.seeds) & set(base.seeds))
    diffs = {}
    for metric in ("test", "dev"):
        mine, theirs = dict(zip(c.seeds, getattr(c, metric))), dict(zip(base.seeds, getattr(base, metric)))
        d = [mine[s] - theirs[s] for s in common]
        diffs[metric] = (mean(d) if d else None, _sd(d))
    same = c.contender == base.contender
    return Paired(base.contender, len(common), *diffs["test"], *diffs["dev"],
                  call=_call(*diffs["test"], len(common), same), dev_call=_call(*diffs["dev"], len(common), same))


def _sd(xs: list[float]) -> float | None:
    return stdev(xs) if len(xs) > 1 else None


def _call(diff, sd, n, same) -> str:
    if same or diff is None or n == 0:
        return "level"
    se = (sd or 0.0) / math.sqrt(n)
    if abs(diff) <= LEVEL_SE * se or abs(diff) < 1e-12:
        return "level"
    return "ahead" if diff > 0 else "behind"


def _source_trial(label: str) -> int | None:
    if label.startswith("trial "):
        try:
            return int(label.split()[1])
        except ValueError:
            return None
    return None


def skip_winners(trial_rows: list[TrialRecord], score: Score) -> dict[str, SkipWinner]:
    """Per family, the skip type of the best complete trial by the dev `score`, with how many
    trials tried each skip type."""
    out: dict[str, SkipWinner] = {}
    tried: dict[str, dict] = {}
    for r in trial_rows:
        value = r.dev_score(score)
        if r.state != "COMPLETE" or value is None or not r.family:
            continue
        counts = tried.setdefault(r.family, {})
        counts[r.skip] = counts.get(r.skip, 0) + 1
        if r.family not in out or value > out[r.family].dev:
            out[r.family] = SkipWinner(r.skip, value, r.trial, counts)
    return out
