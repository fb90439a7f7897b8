"""The final stage's verdict, computed from the stored runs alone, so that `rdzoo search`,
`rdzoo best`, `rdzoo export --best` and `rdzoo report` show the same one. Imports nothing heavy.

The contenders are ranked by mean dev score (the study's score: accuracy, or entity F1 on entity
data). The recommendation is the top of the ranking only when its paired dev difference from the
baseline is more than 2 standard errors above zero; otherwise the baseline is recommended
(`kept_baseline`): a search result that does not beat the known model beyond the seed noise on
dev is no reason to leave it. The test split plays no part in the choice.

A search with a teacher (or one sentence's latency among its objectives) answers "the most
accurate model I can afford at my latency": its verdict also holds `tiers`, from the fastest
model of the final stage up to the teacher. Each row is, at <= X ms, the model with the best
mean dev score among those no slower than X (a row only where that model changes: the Pareto
front of the final runs), with its test score's mean and sd over seeds and its test difference
from the baseline trained without the teacher and from the teacher, paired by seed where both
ran that seed (the teacher's seeds are its runs' seeds), else the difference of the means,
marked unpaired.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import mean, median, stdev

from ..records import (TEACHER_ATTR, Paired, Score, SkipWinner, Standing, TeacherStanding, Tier, TrialRecord, Verdict,
                       derive_score)

LEVEL_SE = 2.0  # a paired difference within 2 standard errors of zero is "level"


def of_study(results, study: str) -> Verdict | None:
    """The verdict of a study from its stored runs (`results`: a query.Results), ranked by the
    study's score; None before a final stage ran."""
    from .teach import TeacherInfo

    final_rows = results.final(study)
    if not final_rows:
        return None
    score = results.score(study)
    info = TeacherInfo.from_attr(results.study_attr(study, TEACHER_ATTR))
    latency = info is not None or "sentence_latency" in results.objectives(study)
    return verdict(final_rows, results.best(study, top=10**9, score=score), score, teacher=info, latency=latency)


def verdict(final_rows: list[TrialRecord], trial_rows: list[TrialRecord] | None = None,
            score: Score | None = None, *, teacher=None, latency: bool = False) -> Verdict | None:
    """Rank the final stage's contenders by mean dev `score` (by default `derive_score` of the
    rows), compare each with the baseline, paired by seed, and recommend one.

    `final_rows` are the records of the final stage's runs (query.Results.final); `trial_rows`
    the search's complete trials, for the skip type that won in each family. Each Standing's
    `vs_baseline` holds the mean and sample sd of the per-seed differences (contender minus
    baseline) over the seeds both ran, and their calls: ahead or behind when the mean
    difference is more than 2 standard errors (sd / sqrt(n)) from zero, level otherwise (no
    seed in common: the unpaired difference of the means, `paired` False). With `teacher` (a
    nas.teach.TeacherInfo) each Standing's `vs_teacher` compares its test scores with the
    teacher's runs' likewise and the Verdict carries the teacher's row; with `latency` (or a
    teacher) it carries the latency verdict's `tiers`. None when there are no final rows.
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
    row = teacher_standing(teacher)
    if row is not None:
        ranking = [dataclasses.replace(s, vs_teacher=compare(s.seeds, s.test, row.seeds, row.test, row.contender))
                   for s in ranking]
        base = next((s for s in ranking if s.baseline), None)
    top = ranking[0]
    kept = base is not None and top is not base and top.vs_baseline.dev_call != "ahead"
    return Verdict(score, ranking, base if kept else top, kept, base.contender if base else None,
                   skip_winners(trial_rows or [], score), tiers(ranking, base, row) if latency or row else [], row)


def teacher_standing(info) -> TeacherStanding | None:
    """The teacher's row from its study attribute (a nas.teach.TeacherInfo; None: none): its test
    score of each run (seeds as its runs' specs have them), their mean and sd."""
    if info is None:
        return None
    pairs = [(seed, t) for seed, t in zip(info.seeds, info.test) if t is not None]
    test = [t for _, t in pairs]
    return TeacherStanding(info.label, list(info.runs), [s for s, _ in pairs], test, mean(test) if test else None,
                           _sd(test), len(test), list(info.dev), info.params, info.sentence_latency_ms)


def tiers(ranking: list[Standing], base: Standing | None, teacher: TeacherStanding | None) -> list[Tier]:
    """The latency verdict: from the fastest model of `ranking` (Standings with a sentence
    latency), a row each time a slower one has a better mean dev score (so each row is the most
    accurate model at <= its latency), then the teacher's row, all sorted by latency. A model
    slower than the teacher is a row only where its mean dev score beats the teacher's: one the
    teacher dominates (a small teacher on easy data) is not the most accurate at its latency.
    (On data without a dev split the teacher's dev score is on its own held-out split: the
    mean over the models' seeds is the fairest comparison there is. A teacher without a dev
    score, a run folder without metrics, dominates nothing.)"""
    rows, best = [], None
    teacher_dev = [d for d in (teacher.dev if teacher is not None else []) if d is not None]
    bar = mean(teacher_dev) if teacher_dev and teacher.sentence_latency_ms is not None else None
    for s in sorted((s for s in ranking if s.sentence_latency_ms is not None),
                    key=lambda s: (s.sentence_latency_ms, -s.dev_mean, s.contender)):
        if bar is not None and s.sentence_latency_ms >= teacher.sentence_latency_ms and s.dev_mean <= bar:
            continue
        if best is None or s.dev_mean > best.dev_mean:
            best = s
            rows.append(Tier(s.sentence_latency_ms, s.contender, "student" if s.taught else "plain", s.family, s.skip,
                             s.params, s.test_mean, s.test_sd, s.n, list(s.seeds), s.vs_baseline, s.vs_teacher))
    if teacher is not None:
        vs_base = None if base is None else compare(teacher.seeds, teacher.test, base.seeds, base.test,
                                                    base.contender)
        rows.append(Tier(teacher.sentence_latency_ms, teacher.contender, "teacher", None, None, teacher.params,
                         teacher.test_mean, teacher.test_sd, teacher.n, list(teacher.seeds), vs_base, None))
    return sorted(rows, key=lambda t: (t.max_latency_ms is None, t.max_latency_ms or 0.0, t.kind == "teacher"))


def compare(seeds: list, values: list, other_seeds: list, other_values: list, other: str) -> Paired:
    """Test scores `values` (one per seed of `seeds`) against `other`'s: the mean and sd of the
    per-seed differences over the seeds both have (a seed two runs of the teacher share is
    their mean), else (no seed in common) the difference of the means, unpaired, its call
    from both groups' standard errors ("-" where neither has a spread). Dev is not compared:
    the teacher's dev score is on another split."""
    mine, theirs = _by_seed(seeds, values), _by_seed(other_seeds, other_values)
    common = sorted(set(mine) & set(theirs))
    if common:
        d = [mine[s] - theirs[s] for s in common]
        return Paired(other, len(common), mean(d), _sd(d), None, None, _call(mean(d), _sd(d), len(common), False),
                      "-")
    if not mine or not theirs:
        return Paired(other, 0, None, None, None, None, "-", "-", paired=False)
    a, b = list(mine.values()), list(theirs.values())
    diff = mean(a) - mean(b)
    spreads = [stdev(x) ** 2 / len(x) for x in (a, b) if len(x) > 1]
    if not spreads:
        return Paired(other, 0, diff, None, None, None, "-", "-", paired=False)
    return Paired(other, 0, diff, None, None, None, _beyond(diff, math.sqrt(sum(spreads))), "-", paired=False)


def _by_seed(seeds: list, values: list) -> dict:
    groups: dict = {}
    for seed, value in zip(seeds, values):
        if value is not None:
            groups.setdefault(seed, []).append(value)
    return {seed: mean(v) for seed, v in groups.items()}


def _standing(label: str, rows: list[TrialRecord], score: Score) -> Standing:
    rows = sorted(rows, key=lambda r: r.seed)
    dev = [r.dev_score(score) for r in rows]
    test = [r.test_score(score) for r in rows]
    first = rows[0]
    seconds = [r.train_seconds for r in rows if r.train_seconds is not None]
    latency = [r.latency_ms for r in rows if r.latency_ms is not None]
    sentence = [r.sentence_latency_ms for r in rows if r.sentence_latency_ms is not None]
    taught = isinstance(first.spec, dict) and ((first.spec.get("train") or {}).get("distill") is not None)
    return Standing(contender=label, baseline=any(bool(r.baseline) for r in rows), trial=_source_trial(label),
                    family=first.family, skip=first.skip, params=first.params, flops=first.flops,
                    latency_ms=median(latency) if latency else None, dev_mean=mean(dev), dev_sd=_sd(dev),
                    test_mean=mean(test), test_sd=_sd(test), seeds=[r.seed for r in rows], n=len(rows),
                    train_seconds=mean(seconds) if seconds else None, vs_baseline=None, spec=first.spec,
                    dev=dev, test=test, sentence_latency_ms=median(sentence) if sentence else None, taught=taught)


def _paired(c: Standing, base: Standing) -> Paired:
    common = sorted(set(c.seeds) & set(base.seeds))
    if not common and c.contender != base.contender:  # no seed both ran: the unpaired difference, marked
        return compare(c.seeds, c.test, base.seeds, base.test, base.contender)
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
    # one seed in common gives no sd: no measure of the seeds' noise, so no call beyond it
    if same or diff is None or n == 0 or sd is None:
        return "level"
    return _beyond(diff, sd / math.sqrt(n))


def _beyond(diff: float, se: float) -> str:
    """A difference's call: ahead or behind where it is more than LEVEL_SE standard errors `se`
    from zero, else level."""
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
