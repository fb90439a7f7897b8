"""`rdzoo report`: one self-contained HTML file about a study, its numbers as JSON,
and its figures as PNG images.

The trials come from Optuna's tables (the study as Optuna holds it now: states,
values, parameters) joined with rdzoo's results table (family, skip type,
parameters, latency, scores, the spec) as `records.TrialRecord`s. Every figure
and number is of the study's score (dev accuracy, or dev entity F1 on entity
data), and the final stage is the verdict `rdzoo search` and `best` show
(`nas.verdict`). The sections:

  history      best dev score over trials (optuna.visualization)
  importances  which sampled parameters mattered (Optuna's default evaluator,
               PED-ANOVA; for the whole study and within each family, since a
               family decides which parameters exist)
  parallel     parallel coordinates of the parameters (optuna.visualization)
  pareto       the Pareto front of a multi-objective study (optuna.visualization)
  params       dev score against parameters, by family and skip type
  latency      dev score against latency, by family and skip type
  skips        dev score by skip type within each family
  final        the final stage's contenders with their spread over seeds, the
               recommended one and the paired differences from the baseline
               (only after a final stage)
  top          the top-N trials with their specs

plotly (the `report` extra) draws the HTML figures, with plotly.js inlined once
so that the file opens offline and makes no network request; matplotlib (the
`png` extra) draws the PNG images. `numbers` needs neither.
"""

from __future__ import annotations

import html
import math
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import render
from .errors import MissingExtra, StoreError
from .records import ACCURACY, Score, TrialCounts, TrialRecord, Verdict

SECTIONS = ("history", "importances", "parallel", "pareto", "params", "latency", "skips", "final", "top")
FAMILY_COLOURS = {"resnet": "#1f77b4", "densenet": "#2ca02c", "transformer": "#d62728"}
OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
SKIP_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "pentagon", "hexagon")
MPL_MARKERS = ("o", "s", "D", "^", "x", "*", "P", "p", "h")
MIN_IMPORTANCE_TRIALS = 5  # complete trials a scope needs before its importances mean anything
INSTALL_PLOTLY = "rdzoo report needs plotly for the HTML file: pip install 'rdzoo[report]'"
INSTALL_MATPLOTLIB = "rdzoo report --png needs matplotlib: pip install 'rdzoo[png]'"


@dataclass
class StudyData:
    """A study as the report sees it: Optuna's study, one TrialRecord per trial (rdzoo's numbers,
    Optuna's state and values), the score that ranks it and its final stage's verdict, if any."""
    name: str
    url: str
    study: object  # optuna.Study
    objectives: list[str]
    trials: list[TrialRecord]
    score: Score = ACCURACY
    verdict: Verdict | None = None

    @property
    def complete(self) -> list[TrialRecord]:
        """The COMPLETE trials that have a dev score, in trial order."""
        return [t for t in self.trials if t.state == "COMPLETE" and t.dev_score(self.score) is not None]

    def dev(self, t: TrialRecord) -> float | None:
        """A trial's dev score (the study's score)."""
        return t.dev_score(self.score)

    @property
    def dev_title(self) -> str:
        """'dev accuracy', 'dev entity F1': the axis title of the study's score."""
        return f"dev {self.score.name}"


def load(results, study: str) -> StudyData:
    """Read a study through `results` (a query.Results on its storage): Optuna's trials with
    the results table's row of each (by trial number), its score and its final stage's verdict
    (`nas.verdict.of_study`, as `search` and `best` show it).

    Rows whose trial Optuna no longer holds are left out; states are Optuna's.
    Raises StoreError when the study is not in Optuna's tables."""
    import optuna

    from .nas.loop import quiet_optuna
    from .nas.verdict import of_study
    from .query import shown_url
    from .storage import make_storage

    quiet_optuna()
    storage = results.storage
    try:
        ostudy = optuna.load_study(study_name=study, storage=make_storage(storage))
    except KeyError:
        raise StoreError(f"{shown_url(storage)}: Optuna holds no study {study!r}") from None
    # by Optuna's study id, not the name the row was written under (a study can be renamed)
    rows = results.rows("SELECT * FROM rdzoo_results WHERE study_id = :sid AND stage IS NULL",
                        {"sid": results.study_id(study)})
    by_number = {r["trial"]: TrialRecord.from_row(r) for r in rows}
    trials = []
    for t in ostudy.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):
            continue
        row = by_number.get(t.number)
        if row is None or row.datetime_start != t.datetime_start:  # no row (yet): the trial's own attributes
            row = TrialRecord.from_attrs(t.user_attrs.get("rdzoo") or {})
        trials.append(row.replace(trial=t.number, state=t.state.name, objective_values=t.values,
                                  family=row.family or t.params.get("family")))
    objectives = ostudy.user_attrs.get("objectives") or ["accuracy"]
    return StudyData(study, shown_url(storage), ostudy, list(objectives), trials, results.score(study),
                     of_study(results, study))


# --- the numbers ----------------------------------------------------------------------------


def _stats(values: list[float]) -> dict:
    return {"n": len(values), "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "median": statistics.median(values), "max": max(values)}


def history(data: StudyData) -> list[dict]:
    """The dev score of each complete trial in order, with the best so far (under the score's
    column: `dev_accuracy`, `dev_entity_f1`)."""
    out, best = [], -math.inf
    for t in sorted(data.complete, key=lambda t: t.trial):
        best = max(best, data.dev(t))
        out.append({"trial": t.trial, data.score.dev: data.dev(t), "best_so_far": best})
    return out


def importances(data: StudyData) -> list[dict]:
    """Parameter importances for the dev score (Optuna's default evaluator, PED-ANOVA: fast,
    and it ranks by how the best trials' parameters differ from the rest): over the whole
    study for the parameters every trial has, and within each family for that family's own
    parameters. A scope needs MIN_IMPORTANCE_TRIALS complete trials; rows: scope, param,
    importance (each scope's sum to 1), trials."""
    import optuna

    # a custom target is minimized by PED-ANOVA: accuracy goes in negated
    target = (lambda t: -t.values[0]) if len(data.study.directions) > 1 else None
    complete = [t for t in data.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    # a family's parameters exist on its own trials only: the whole study's scope takes the
    # parameters every complete trial has (the evaluator would otherwise rank them all)
    shared = sorted(set.intersection(*(set(t.params) for t in complete))) if complete else []
    scopes: list[tuple[str, list[str]]] = [("all trials", shared)] if shared else []
    families = sorted({t.params.get("family") for t in complete if t.params.get("family")})
    for family in families:
        own = sorted({p for t in complete if t.params.get("family") == family for p in t.params
                      if p.startswith(f"{family}/")})
        if own:
            scopes.append((family, own))
    out = []
    for scope, params in scopes:
        n = sum(1 for t in complete if set(params) <= set(t.params))
        if n < MIN_IMPORTANCE_TRIALS:
            continue
        try:
            with warnings.catch_warnings():  # it warns that a custom target is minimized: it is negated above
                warnings.simplefilter("ignore", UserWarning)
                values = optuna.importance.get_param_importances(data.study, params=params, target=target)
        except (ValueError, RuntimeError):  # nothing varies, or too few trials for the evaluator
            continue
        out.extend({"scope": scope, "param": p, "importance": float(v), "trials": n} for p, v in values.items())
    return out


def by_skip(data: StudyData) -> list[dict]:
    """The dev score of complete trials by family and skip type: n, mean, sd, min, median, max."""
    groups: dict[tuple, list[float]] = {}
    for t in data.complete:
        groups.setdefault((t.family or "?", t.skip or "?"), []).append(data.dev(t))
    return [{"family": f, "skip": s, **_stats(v)} for (f, s), v in sorted(groups.items())]


def pareto(data: StudyData) -> list[int]:
    """Trial numbers on the Pareto front of a multi-objective study (Optuna's best_trials)."""
    if len(data.study.directions) < 2:
        return []
    return sorted(t.number for t in data.study.best_trials)


def final_stage(data: StudyData) -> list[dict]:
    """The final stage's contenders as the verdict ranks them (`nas.verdict`): the score's dev and
    test values of each seed, their mean and sd (0 for one seed), whether the verdict recommends
    it, and its paired difference from the baseline (`vs_baseline`)."""
    v = data.verdict
    if v is None:
        return []
    return [{"contender": s.contender, "score": v.score.name, "family": s.family, "skip": s.skip, "params": s.params,
             "seeds": s.seeds, "dev": s.dev, "test": s.test, "dev_mean": s.dev_mean, "dev_sd": s.dev_sd or 0.0,
             "test_mean": s.test_mean, "test_sd": s.test_sd or 0.0, "recommended": s is v.recommended,
             "vs_baseline": s.vs_baseline.to_json() if s.vs_baseline else None} for s in v.ranking]


def top(data: StudyData, n: int) -> list[TrialRecord]:
    """The n complete trials with the highest dev score (ties: the earlier trial)."""
    return sorted(data.complete, key=lambda t: (-data.dev(t), t.trial))[:n]


TRIAL_KEYS = ("trial", "state", "family", "skip", "params", "flops", "latency_ms", "sentence_latency_ms",
              "dev_accuracy", "test_accuracy", "macro_f1", "train_seconds", "epochs", "dev_entity_f1", "entity_f1")


def _trial_json(t: TrialRecord) -> dict:
    return {**{k: getattr(t, k) for k in TRIAL_KEYS}, "values": t.objective_values}


def numbers(data: StudyData, n_top: int = 10) -> dict:
    """Everything the figures show, as JSON-ready data (the output of `rdzoo report --json`), with
    the study's score and the final stage's verdict as `rdzoo search --json` and `best` give it."""
    return {
        "study": data.name, "storage": data.url, "objectives": data.objectives, "score": data.score.name,
        "directions": [d.name.lower() for d in data.study.directions],
        "counts": TrialCounts.of(t.state for t in data.trials).to_json(),
        "history": history(data), "importances": importances(data),
        "trials": [_trial_json(t) for t in data.trials], "by_skip": by_skip(data),
        "pareto": pareto(data), "final": final_stage(data),
        "verdict": data.verdict.to_json() if data.verdict else None,
        "top": [{**_trial_json(t), "spec": t.spec} for t in top(data, n_top)],
    }


# --- the figures (plotly) -------------------------------------------------------------------


def need_plotly():
    """plotly's graph_objects module. Raises MissingExtra naming the `report` extra without it."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise MissingExtra(INSTALL_PLOTLY) from None
    return go


def _colour(family: str, known: list[str]) -> str:
    if family in FAMILY_COLOURS:
        return FAMILY_COLOURS[family]
    return OTHER_COLOURS[known.index(family) % len(OTHER_COLOURS)] if family in known else OTHER_COLOURS[0]


def _hover(data: StudyData, t: TrialRecord) -> str:
    lat = f"{render.num(t.latency_ms)} ms" if t.latency_ms is not None else "-"
    return (f"trial {t.trial}<br>{t.family} / skip {t.skip}<br>{render.count(t.params or 0)} parameters<br>"
            f"latency {lat}<br>{data.dev_title} {render.frac(data.dev(t))}")


def _scatter(data: StudyData, x_key: str, x_title: str):
    """The dev score against x: one trace per (family, skip), colour = family, marker = skip type."""
    go = need_plotly()
    points = [t for t in data.complete if getattr(t, x_key) is not None]
    families = sorted({t.family or "?" for t in points})
    skips = sorted({t.skip or "?" for t in points})
    fig = go.Figure()
    for family in families:
        for skip in skips:
            group = [t for t in points if (t.family or "?") == family and (t.skip or "?") == skip]
            if not group:
                continue
            fig.add_trace(go.Scatter(
                x=[getattr(t, x_key) for t in group], y=[data.dev(t) for t in group], mode="markers",
                name=f"{family} / {skip}", legendgroup=family, text=[_hover(data, t) for t in group], hoverinfo="text",
                marker={"color": _colour(family, families), "symbol": SKIP_SYMBOLS[skips.index(skip) % len(SKIP_SYMBOLS)],
                        "size": 10, "line": {"width": 1, "color": "white"}}))
    fig.update_layout(xaxis={"title": x_title, "type": "log"}, yaxis={"title": data.dev_title},
                      legend={"title": "family / skip"})
    return fig


def _skips_figure(data: StudyData):
    """The dev score by skip type within each family: boxes with every trial as a point."""
    go = need_plotly()
    families = sorted({t.family or "?" for t in data.complete})
    fig = go.Figure()
    for family in families:
        group = sorted((t for t in data.complete if (t.family or "?") == family), key=lambda t: t.skip or "?")
        fig.add_trace(go.Box(x=[[family] * len(group), [t.skip or "?" for t in group]],
                             y=[data.dev(t) for t in group], name=family, boxpoints="all", jitter=0.4,
                             pointpos=0, marker={"color": _colour(family, families)},
                             text=[f"trial {t.trial}" for t in group]))
    fig.update_layout(yaxis={"title": data.dev_title}, xaxis={"title": "family / skip type"}, showlegend=False)
    return fig


def _importances_figure(rows: list[dict], title: str):
    go = need_plotly()
    fig = go.Figure()
    for scope in dict.fromkeys(r["scope"] for r in rows):
        part = sorted((r for r in rows if r["scope"] == scope), key=lambda r: r["importance"])
        fig.add_trace(go.Bar(x=[r["importance"] for r in part], y=[r["param"] for r in part], orientation="h",
                             name=f"{scope} ({part[0]['trials']} trials)",
                             marker={"color": FAMILY_COLOURS.get(scope, "#7f7f7f")}))
    fig.update_layout(xaxis={"title": f"importance for {title} (within its scope, sums to 1)"},
                      yaxis={"title": "", "automargin": True}, legend={"title": "scope"},
                      height=max(360, 28 * len(rows) + 120))
    return fig


def _final_figure(contenders: list[dict], title: str):
    go = need_plotly()
    fig = go.Figure()
    for c in contenders:
        fig.add_trace(go.Box(y=c["dev"], name=c["contender"], boxpoints="all", jitter=0.3, pointpos=0,
                             boxmean="sd", text=[f"seed {s}" for s in c["seeds"]],
                             marker={"color": FAMILY_COLOURS.get(c["family"], "#7f7f7f")}))
    fig.update_layout(yaxis={"title": f"{title} over seeds"}, showlegend=False)
    return fig


def family_studies(study) -> dict:
    """The complete trials of each family as an in-memory study with the family's prefix taken
    off its parameter names ("resnet/encoder.skip" -> "encoder.skip"), for figures that need
    one set of parameters; {None: study} when the space has no family choice. Families with
    fewer than two complete trials are left out."""
    import optuna
    from optuna.trial import TrialState, create_trial

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    families = sorted({t.params["family"] for t in complete if "family" in t.params})
    if not families:
        return {None: study} if len(complete) >= 2 else {}
    out = {}
    for family in families:
        own = [t for t in complete if t.params.get("family") == family]
        if len(own) < 2:
            continue
        sub = optuna.create_study(directions=study.directions)
        prefix = f"{family}/"
        for t in own:
            keep = {k: k[len(prefix):] if k.startswith(prefix) else k for k in t.params if k != "family"}
            sub.add_trial(create_trial(params={keep[k]: t.params[k] for k in keep},
                                       distributions={keep[k]: t.distributions[k] for k in keep},
                                       values=t.values, user_attrs={"number": t.number}))
        out[family] = sub
    return out


@dataclass
class Section:
    """One section of the report: its anchor `key`, title, text, and a plotly figure, an HTML
    fragment, or a note saying why there is no figure."""

    key: str
    title: str
    text: str
    figure: object = None  # a plotly Figure
    html: str = ""  # instead of a figure (the top-N table)
    note: str = ""  # why there is no figure


def sections(data: StudyData, nums: dict) -> list[Section]:
    """The report's sections in order; one figure each, or a note saying why there is none."""
    import optuna.visualization as ov

    multi = len(data.study.directions) > 1
    dev = data.dev_title
    target = {"target": (lambda t: t.values[0]), "target_name": dev} if multi else {}
    out = []

    hist = Section("history", "Optimization history", f"The {dev} of each complete trial and the best so far.")
    if data.complete:
        hist.figure = ov.plot_optimization_history(data.study, **target)
        hist.figure.update_layout(yaxis={"title": dev}, title=None)
    else:
        hist.note = "No complete trial yet."
    out.append(hist)

    imp = Section("importances", "Parameter importances",
                  f"How much each sampled parameter explains the {dev} (Optuna's default evaluator, PED-ANOVA): "
                  "over all trials for the parameters every trial has, and within each family for its own.")
    if nums["importances"]:
        imp.figure = _importances_figure(nums["importances"], dev)
    else:
        imp.note = f"Needs at least {MIN_IMPORTANCE_TRIALS} complete trials with a parameter that varies."
    out.append(imp)

    groups = family_studies(data.study)
    for family, sub in groups.items():
        title = "Parallel coordinates" + (f": {family}" if family else "")
        par = Section(f"parallel-{family}" if family else "parallel", title,
                      "Each line a complete trial" + (f" of the {family} family" if family else "")
                      + f", coloured by {dev}, across the parameters it sampled.")
        par.figure = ov.plot_parallel_coordinate(sub, **target)
        par.figure.update_layout(title=None)
        out.append(par)
    if not groups:
        out.append(Section("parallel", "Parallel coordinates", "Each line a complete trial.",
                           note="Needs at least two complete trials."))

    if multi:
        front = Section("pareto", "Pareto front", f"Objectives: {', '.join(data.objectives)}; "
                        "the front's trials are highlighted.")
        front.figure = ov.plot_pareto_front(data.study, target_names=[_objective_title(o, dev) for o in data.objectives])
        front.figure.update_layout(title=None)
        out.append(front)

    for key, column, title in (("params", "params", "parameters"), ("latency", "latency_ms", "latency (ms)")):
        sec = Section(key, f"{dev.capitalize()} against {title}",
                      f"Every complete trial; colour = family, marker = skip type; {title} on a log scale"
                      + (" (a batch of 32 sequences of 64 tokens, on the machine that ran the trial)."
                         if key == "latency" else "."))
        if any(getattr(t, column) is not None for t in data.complete):
            sec.figure = _scatter(data, column, title)
        else:
            sec.note = "No complete trial with this number yet."
        out.append(sec)

    sk = Section("skips", "Skip types within each family", f"The {dev} of every complete trial, grouped by "
                 "family and skip type; the box spans the quartiles, the line is the median.")
    if data.complete:
        sk.figure = _skips_figure(data)
    else:
        sk.note = "No complete trial yet."
    out.append(sk)

    if data.verdict is not None:
        fin = Section("final", "Final stage", f"Each contender retrained with several seeds: the {dev} of each seed, "
                      "the box's dashed line is the mean and sd. " + " ".join(render.verdict_lines(data.verdict)))
        fin.figure = _final_figure(nums["final"], dev)
        fin.html = (_tiers_table(data.verdict) if data.verdict.tiers else "") + _final_table(data.verdict)
        out.append(fin)

    out.append(Section("top", f"Top {len(nums['top'])} trials", f"By {dev}; open a row's spec to read it, "
                       "or write it to a file with rdzoo export --trial N.",
                       html=_top_table(top(data, len(nums["top"])), data.score)))
    return out


def _objective_title(objective: str, dev: str) -> str:
    return {"accuracy": dev, "latency": "latency (ms)", "sentence_latency": "one sentence's latency (ms)"}.get(
        objective, objective)


def _cell(text) -> str:
    return f"<td>{html.escape(str(text))}</td>"


def _final_table(v: Verdict) -> str:
    """The verdict's ranking as an HTML table, as `rdzoo search` and `best` print it: the
    recommended contender marked *, mean +- sd over seeds in %, the paired test difference
    from the baseline."""
    short = html.escape(v.score.short)
    head = ("<tr><th>#</th><th>contender</th><th>family</th><th>skip</th><th>seeds</th>"
            f"<th>dev {short} % mean ± sd</th><th>test {short} % mean ± sd</th><th>vs baseline (test)</th></tr>")
    rows = "".join(
        "<tr>" + "".join(_cell(x) for x in (f"{rank}*" if s is v.recommended else rank, s.contender, s.family, s.skip,
                                            s.n, render.pm(s.dev_mean, s.dev_sd).replace("+-", "±"),
                                            render.pm(s.test_mean, s.test_sd).replace("+-", "±"), render.versus(s)))
        + "</tr>" for rank, s in enumerate(v.ranking, 1))
    return f"<table>{head}{rows}</table>"


def _tiers_table(v: Verdict) -> str:
    """The latency verdict as an HTML table, as `rdzoo search` and `best` print it
    (`render.latency_table`): at <= X ms the most accurate model, its test score, its test
    differences from the baseline without the teacher and from the teacher (~: unpaired)."""
    base, teacher = v.baseline or "baseline", v.teacher.contender if v.teacher else "teacher"
    head = ("<tr><th>at &lt;= ms</th><th>model</th>"
            f"<th>test {html.escape(v.score.short)} % mean ± sd</th><th>vs {html.escape(base)} (no teacher)</th>"
            f"<th>vs teacher {html.escape(teacher)}</th></tr>")
    rows = "".join(
        "<tr>" + "".join(_cell(x) for x in (
            render.ms(t.max_latency_ms), render.tier_model(t), render.tier_score(t).replace("+-", "±"),
            *render.tier_versus(v, t))) + "</tr>" for t in v.tiers)
    return (f"<p>The most accurate model at each latency (one sentence, batch 1, one thread).</p>"
            f"<table>{head}{rows}</table>"
            "<p class='note'>~ unpaired: no seed in common, the difference of the means.</p>")


def _top_table(rows: list[TrialRecord], score: Score) -> str:
    import yaml

    if not rows:
        return "<p class='note'>No complete trial yet.</p>"
    extra = score.name != "accuracy"
    head = ("<tr><th>#</th><th>trial</th><th>family</th><th>skip</th><th>params</th><th>FLOPs</th><th>ms</th>"
            "<th>sent ms</th><th>dev acc</th><th>test acc</th>" + (f"<th>dev {score.short}</th><th>test {score.short}</th>" if extra else "")
            + "<th>train s</th><th>spec</th></tr>")
    body = []
    for rank, t in enumerate(rows, 1):
        spec = yaml.safe_dump(t.spec, sort_keys=False) if t.spec else "(not recorded)"
        cells = (rank, t.trial, t.family, t.skip, render.count(t.params), render.count(t.flops), render.num(t.latency_ms),
                 render.ms(t.sentence_latency_ms), render.frac(t.dev_accuracy),
                 render.frac(t.test_accuracy),
                 *((render.frac(t.dev_score(score)), render.frac(t.test_score(score))) if extra else ()),
                 render.num(t.train_seconds))
        body.append("<tr>" + "".join(_cell(x) for x in cells)
                    + f"<td><details><summary>spec</summary><pre>{html.escape(spec)}</pre></details></td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 2em; }
.meta, .note { color: #555; } nav a { margin-right: 1em; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { padding: 0.25em 0.6em; text-align: left;
       border-bottom: 1px solid #ddd; vertical-align: top; }
pre { font-size: 0.85em; background: #f6f6f6; padding: 0.5em; max-height: 30em; overflow: auto; }
.figure { min-height: 360px; }
"""


def render_html(data: StudyData, nums: dict) -> str:
    """The report as one HTML document: plotly.js inlined once in the head, one figure per section."""
    import plotly.offline

    secs = sections(data, nums)
    c = nums["counts"]
    best = top(data, 1)
    best_text = (f"best: trial {best[0].trial}, {html.escape(str(best[0].family))} (skip {html.escape(str(best[0].skip))}), "
                 f"{data.dev_title} {render.frac(data.dev(best[0]))}" if best else "no complete trial yet")
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
             f"<title>rdzoo report: {html.escape(data.name)}</title><style>{STYLE}</style>"
             f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>",
             f"<h1>Study {html.escape(data.name)}</h1>",
             f"<p class='meta'>{html.escape(data.url)} · objectives: {html.escape(', '.join(data.objectives))} · "
             f"{c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed"
             + (f", {c['running']} running" if c["running"] else "") + f" · {best_text}</p>",
             "<nav>" + "".join(f"<a href='#{s.key}'>{html.escape(s.title)}</a>" for s in secs) + "</nav>"]
    config = {"displaylogo": False, "responsive": True}
    for s in secs:
        parts.append(f"<section id='{s.key}'><h2>{html.escape(s.title)}</h2><p>{html.escape(s.text)}</p>")
        if s.figure is not None:
            s.figure.update_layout(template="plotly_white", margin={"t": 30})
            parts.append("<div class='figure'>" + s.figure.to_html(full_html=False, include_plotlyjs=False,
                                                                    div_id=f"fig-{s.key}", config=config) + "</div>")
        if s.html:
            parts.append(s.html)
        if s.note:
            parts.append(f"<p class='note'>{html.escape(s.note)}</p>")
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(data: StudyData, nums: dict, path: Path) -> Path:
    """Write `render_html`'s document to `path` (UTF-8); returns the path.

    Raises MissingExtra when plotly (the `report` extra) is not installed."""
    need_plotly()
    text = render_html(data, nums)
    path.write_text(text, encoding="utf-8")
    return path


# --- the figures as PNG (matplotlib) --------------------------------------------------------


def write_png(data: StudyData, nums: dict, folder: Path) -> list[Path]:
    """The report's figures as PNG files in `folder` (matplotlib; plotly's own image export
    needs kaleido, which downloads a browser). Returns the files written.

    Raises MissingExtra when matplotlib (the `png` extra) is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra(INSTALL_MATPLOTLIB) from None
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        path = folder / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)

    dev = data.dev_title
    if nums["history"]:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        h = nums["history"]
        ax.scatter([p["trial"] for p in h], [p[data.score.dev] for p in h], s=18, label="trial")
        ax.step([p["trial"] for p in h], [p["best_so_far"] for p in h], where="post", color="C3", label="best so far")
        ax.set(xlabel="trial", ylabel=dev, title=f"Optimization history of {data.name}")
        ax.legend()
        save(fig, "history")
    if nums["importances"]:
        rows = nums["importances"]
        fig, ax = plt.subplots(figsize=(8, max(3, 0.3 * len(rows) + 1)))
        labels = [f"{r['param']} [{r['scope']}]" for r in rows][::-1]
        ax.barh(labels, [r["importance"] for r in rows][::-1],
                color=[FAMILY_COLOURS.get(r["scope"], "#7f7f7f") for r in rows][::-1])
        ax.set(xlabel=f"importance for {dev} (within its scope)", title="Parameter importances")
        save(fig, "importances")
    import optuna.visualization.matplotlib as ovm

    multi = len(data.study.directions) > 1
    target = {"target": (lambda t: t.values[0]), "target_name": dev} if multi else {"target_name": dev}
    for family, sub in family_studies(data.study).items():  # the HTML's figures, drawn by Optuna's matplotlib twins
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" and the single-objective target note
            ax = ovm.plot_parallel_coordinate(sub, **target)
        ax.figure.set_size_inches(max(8, 1.2 * len(sub.trials[0].params) + 2), 5)
        ax.set_title("Parallel coordinates" + (f": {family}" if family else ""))
        save(ax.figure, f"parallel-{family}" if family else "parallel")
    if len(data.study.directions) > 1 and data.complete:
        fig, ax = plt.subplots(figsize=(7, 5))
        front = set(nums["pareto"])
        x_obj = data.objectives[1]
        pts = [t for t in data.trials if t.state == "COMPLETE" and t.objective_values]
        for on, style in ((False, {"color": "#bbbbbb", "label": "trial"}), (True, {"color": "C3", "label": "Pareto front"})):
            sel = [t for t in pts if (t.trial in front) == on]
            ax.scatter([t.objective_values[1] for t in sel], [t.objective_values[0] for t in sel], **style)
        ax.set(xlabel=_objective_title(x_obj, dev), ylabel=dev, title="Pareto front")
        ax.legend()
        save(fig, "pareto")
    for key, column, title in (("params", "params", "parameters"), ("latency", "latency_ms", "latency (ms)")):
        points = [t for t in data.complete if getattr(t, column) is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(8, 5))
        families = sorted({t.family or "?" for t in points})
        skips = sorted({t.skip or "?" for t in points})
        for family in families:
            for i, skip in enumerate(skips):
                g = [t for t in points if (t.family or "?") == family and (t.skip or "?") == skip]
                if g:
                    ax.scatter([getattr(t, column) for t in g], [data.dev(t) for t in g], label=f"{family} / {skip}",
                               color=_colour(family, families), marker=MPL_MARKERS[i % len(MPL_MARKERS)])
        ax.set(xscale="log", xlabel=title, ylabel=dev, title=f"{dev.capitalize()} against {title}")
        ax.legend(fontsize="small", title="family / skip")
        save(fig, key)
    if nums["by_skip"]:
        groups = nums["by_skip"]
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(groups) + 2), 5))
        values = [[data.dev(t) for t in data.complete if (t.family or "?") == g["family"]
                   and (t.skip or "?") == g["skip"]] for g in groups]
        ax.boxplot(values, tick_labels=[f"{g['family']}\n{g['skip']}" for g in groups])
        for i, v in enumerate(values, 1):
            ax.scatter([i] * len(v), v, s=12, color=_colour(groups[i - 1]["family"], []), zorder=3)
        ax.set(ylabel=dev, title="Skip types within each family")
        save(fig, "skips")
    if nums["final"]:
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(nums["final"]) + 2), 5))
        ax.boxplot([c["dev"] for c in nums["final"]], tick_labels=[c["contender"] for c in nums["final"]], showmeans=True)
        for i, c in enumerate(nums["final"], 1):
            ax.scatter([i] * len(c["dev"]), c["dev"], s=14, zorder=3)
        ax.set(ylabel=f"{dev} over seeds", title="Final stage")
        save(fig, "final")
    return written
