"""`rdzoo report`: one self-contained HTML file about a study, its numbers as JSON,
and its figures as PNG images.

The trials come from Optuna's tables (the study as Optuna holds it now: states,
values, parameters) joined with rdzoo's results table (family, skip type,
parameters, latency, accuracies, the spec) by trial id. The sections:

  history      best dev accuracy over trials (optuna.visualization)
  importances  which sampled parameters mattered (Optuna's default evaluator,
               PED-ANOVA; for the whole study and within each family, since a
               family decides which parameters exist)
  parallel     parallel coordinates of the parameters (optuna.visualization)
  pareto       the Pareto front of a multi-objective study (optuna.visualization)
  params       dev accuracy against parameters, by family and skip type
  latency      dev accuracy against latency, by family and skip type
  skips        dev accuracy by skip type within each family
  final        the final stage's contenders with their spread over seeds
               (only when the results table has rows with stage = 'final')
  top          the top-N trials with their specs

plotly (the `report` extra) draws the HTML figures, with plotly.js inlined once
so that the file opens offline and makes no network request; matplotlib (the
`png` extra) draws the PNG images. `numbers` needs neither.
"""

from __future__ import annotations

import html
import json
import math
import statistics
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .errors import MissingExtra, StoreError

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
    """A study as the report sees it: Optuna's study and one dict per trial (rdzoo's numbers,
    Optuna's state), plus the results table's rows of a final stage, if any."""
    name: str
    url: str
    study: object  # optuna.Study
    objectives: list[str]
    trials: list[dict]
    final: list[dict] = field(default_factory=list)

    @property
    def complete(self) -> list[dict]:
        """The COMPLETE trials that have a dev accuracy, in trial order."""
        return [t for t in self.trials if t["state"] == "COMPLETE" and t["dev_accuracy"] is not None]


def load(storage: str, study: str) -> StudyData:
    """Read a study: Optuna's trials with the results table's row of each (by trial id).

    Rows whose trial Optuna no longer holds are left out; states are Optuna's.
    Raises StoreError when the study is not in Optuna's tables."""
    import optuna

    from .query import Results, shown_url
    from .search import make_storage, quiet_optuna

    quiet_optuna()
    results = Results(storage)
    try:
        ostudy = optuna.load_study(study_name=study, storage=make_storage(storage))
    except KeyError:
        raise StoreError(f"{shown_url(storage)}: Optuna holds no study {study!r}") from None
    # by Optuna's study id, not the name the row was written under (a study can be renamed)
    rows = results.rows("SELECT * FROM rdzoo_results WHERE study_id = :sid", {"sid": ostudy._study_id})
    for row in rows:
        for key in ("spec", "objective_values"):
            row[key] = json.loads(row[key]) if isinstance(row.get(key), str) else row.get(key)
    by_id = {r["trial_id"]: r for r in rows if r.get("stage") in (None, "search")}
    final_ids = {r["trial_id"] for r in rows if r.get("stage") == "final"}  # seeds of the final stage, not search trials
    trials = []
    for t in ostudy.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus") or t._trial_id in final_ids:
            continue
        info = by_id.get(t._trial_id) or t.user_attrs.get("rdzoo") or {}
        trials.append({
            "trial": t.number, "state": t.state.name, "values": t.values, "params_sampled": t.params,
            "family": info.get("family") or t.params.get("family"), "skip": info.get("skip"),
            "params": info.get("params"), "flops": info.get("flops"), "latency_ms": info.get("latency_ms"),
            "dev_accuracy": info.get("dev_accuracy"), "test_accuracy": info.get("test_accuracy"),
            "macro_f1": info.get("macro_f1"), "train_seconds": info.get("train_seconds"),
            "epochs": info.get("epochs"), "spec": info.get("spec"), "error": info.get("error"),
        })
    # the final stage's runs: rows of the companion study `<study>-final` (search.final)
    final = results.final(study) + [r for r in rows if r.get("stage") == "final"]
    objectives = ostudy.user_attrs.get("objectives") or ["accuracy"]
    return StudyData(study, shown_url(storage), ostudy, list(objectives), trials, final)


def study_names(storage: str) -> list[str]:
    """The studies Optuna holds in a storage, sorted."""
    import optuna

    from .search import make_storage, quiet_optuna

    quiet_optuna()
    return sorted(optuna.get_all_study_names(make_storage(storage)))


# --- the numbers ----------------------------------------------------------------------------


def _stats(values: list[float]) -> dict:
    return {"n": len(values), "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "median": statistics.median(values), "max": max(values)}


def history(data: StudyData) -> list[dict]:
    """Dev accuracy of each complete trial in order, with the best so far."""
    out, best = [], -math.inf
    for t in sorted(data.complete, key=lambda t: t["trial"]):
        best = max(best, t["dev_accuracy"])
        out.append({"trial": t["trial"], "dev_accuracy": t["dev_accuracy"], "best_so_far": best})
    return out


def importances(data: StudyData) -> list[dict]:
    """Parameter importances for dev accuracy (Optuna's default evaluator, PED-ANOVA: fast,
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
    """Dev accuracy of complete trials by family and skip type: n, mean, sd, min, median, max."""
    groups: dict[tuple, list[float]] = {}
    for t in data.complete:
        groups.setdefault((t["family"] or "?", t["skip"] or "?"), []).append(t["dev_accuracy"])
    return [{"family": f, "skip": s, **_stats(v)} for (f, s), v in sorted(groups.items())]


def pareto(data: StudyData) -> list[int]:
    """Trial numbers on the Pareto front of a multi-objective study (Optuna's best_trials)."""
    if len(data.study.directions) < 2:
        return []
    return sorted(t.number for t in data.study.best_trials)


def contender(row: dict) -> str:
    """The name a final-stage row is grouped under: its contender, else its spec's name."""
    for key in ("contender", "source_trial", "parent_trial"):
        if row.get(key) is not None:
            return str(row[key]) if key == "contender" else f"trial {row[key]}"
    spec = row.get("spec") or {}
    return str(spec.get("name") or f"{row.get('family')}/{row.get('skip')}/{row.get('params')}")


def final_stage(data: StudyData) -> list[dict]:
    """The final stage's contenders: dev and test score over seeds (mean, sd, each seed); the score
    (`score`) is accuracy, or entity F1 on entity-tagged data (storage.score_of)."""
    from .storage import SCORE_COLUMNS, score_of

    complete = [r for r in data.final if r.get("state", "COMPLETE") == "COMPLETE"]
    score = score_of(complete)
    dev_key, test_key = SCORE_COLUMNS[score]
    groups: dict[str, list[dict]] = {}
    for row in complete:
        if row.get(dev_key) is not None:
            groups.setdefault(contender(row), []).append(row)
    out = []
    for name, rows in groups.items():
        rows.sort(key=lambda r: (r.get("seed") is None, r.get("seed") or 0))
        dev = [r[dev_key] for r in rows]
        test = [r[test_key] for r in rows if r.get(test_key) is not None]
        out.append({"contender": name, "score": score, "family": rows[0].get("family"), "skip": rows[0].get("skip"),
                    "params": rows[0].get("params"), "seeds": [r.get("seed") for r in rows], "dev": dev, "test": test,
                    "dev_mean": statistics.fmean(dev), "dev_sd": statistics.stdev(dev) if len(dev) > 1 else 0.0,
                    "test_mean": statistics.fmean(test) if test else None,
                    "test_sd": statistics.stdev(test) if len(test) > 1 else (0.0 if test else None)})
    return sorted(out, key=lambda c: -c["dev_mean"])


def top(data: StudyData, n: int) -> list[dict]:
    """The n complete trials with the highest dev accuracy (ties: the earlier trial)."""
    return sorted(data.complete, key=lambda t: (-t["dev_accuracy"], t["trial"]))[:n]


def counts(data: StudyData) -> dict:
    """The study's trials by Optuna state: {complete, pruned, failed, running, waiting} -> count."""
    out = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "waiting": 0}
    names = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}
    for t in data.trials:
        out[names[t["state"]]] += 1
    return out


def numbers(data: StudyData, n_top: int = 10) -> dict:
    """Everything the figures show, as JSON-ready data (the output of `rdzoo report --json`)."""
    keep = ("trial", "state", "family", "skip", "params", "flops", "latency_ms", "dev_accuracy", "test_accuracy",
            "macro_f1", "train_seconds", "epochs", "values")
    return {
        "study": data.name, "storage": data.url, "objectives": data.objectives,
        "directions": [d.name.lower() for d in data.study.directions], "counts": counts(data),
        "history": history(data), "importances": importances(data),
        "trials": [{k: t[k] for k in keep} for t in data.trials], "by_skip": by_skip(data),
        "pareto": pareto(data), "final": final_stage(data),
        "top": [{**{k: t[k] for k in keep}, "spec": t["spec"]} for t in top(data, n_top)],
    }


# --- the figures (plotly) -------------------------------------------------------------------


def _need_plotly():
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise MissingExtra(INSTALL_PLOTLY) from None
    return go


def _colour(family: str, known: list[str]) -> str:
    if family in FAMILY_COLOURS:
        return FAMILY_COLOURS[family]
    return OTHER_COLOURS[known.index(family) % len(OTHER_COLOURS)] if family in known else OTHER_COLOURS[0]


def _hover(t: dict) -> str:
    lat = f"{t['latency_ms']:.1f} ms" if t["latency_ms"] is not None else "-"
    return (f"trial {t['trial']}<br>{t['family']} / skip {t['skip']}<br>{t['params'] or 0:,} parameters<br>"
            f"latency {lat}<br>dev accuracy {t['dev_accuracy']:.4f}")


def _scatter(data: StudyData, x_key: str, x_title: str):
    """Dev accuracy against x: one trace per (family, skip), colour = family, marker = skip type."""
    go = _need_plotly()
    points = [t for t in data.complete if t[x_key] is not None]
    families = sorted({t["family"] or "?" for t in points})
    skips = sorted({t["skip"] or "?" for t in points})
    fig = go.Figure()
    for family in families:
        for skip in skips:
            group = [t for t in points if (t["family"] or "?") == family and (t["skip"] or "?") == skip]
            if not group:
                continue
            fig.add_trace(go.Scatter(
                x=[t[x_key] for t in group], y=[t["dev_accuracy"] for t in group], mode="markers",
                name=f"{family} / {skip}", legendgroup=family, text=[_hover(t) for t in group], hoverinfo="text",
                marker={"color": _colour(family, families), "symbol": SKIP_SYMBOLS[skips.index(skip) % len(SKIP_SYMBOLS)],
                        "size": 10, "line": {"width": 1, "color": "white"}}))
    fig.update_layout(xaxis={"title": x_title, "type": "log"}, yaxis={"title": "dev accuracy"},
                      legend={"title": "family / skip"})
    return fig


def _skips_figure(data: StudyData):
    """Dev accuracy by skip type within each family: boxes with every trial as a point."""
    go = _need_plotly()
    families = sorted({t["family"] or "?" for t in data.complete})
    fig = go.Figure()
    for family in families:
        group = sorted((t for t in data.complete if (t["family"] or "?") == family), key=lambda t: t["skip"] or "?")
        fig.add_trace(go.Box(x=[[family] * len(group), [t["skip"] or "?" for t in group]],
                             y=[t["dev_accuracy"] for t in group], name=family, boxpoints="all", jitter=0.4,
                             pointpos=0, marker={"color": _colour(family, families)},
                             text=[f"trial {t['trial']}" for t in group]))
    fig.update_layout(yaxis={"title": "dev accuracy"}, xaxis={"title": "family / skip type"}, showlegend=False)
    return fig


def _importances_figure(rows: list[dict]):
    go = _need_plotly()
    fig = go.Figure()
    for scope in dict.fromkeys(r["scope"] for r in rows):
        part = sorted((r for r in rows if r["scope"] == scope), key=lambda r: r["importance"])
        fig.add_trace(go.Bar(x=[r["importance"] for r in part], y=[r["param"] for r in part], orientation="h",
                             name=f"{scope} ({part[0]['trials']} trials)",
                             marker={"color": FAMILY_COLOURS.get(scope, "#7f7f7f")}))
    fig.update_layout(xaxis={"title": "importance for dev accuracy (within its scope, sums to 1)"},
                      yaxis={"title": "", "automargin": True}, legend={"title": "scope"},
                      height=max(360, 28 * len(rows) + 120))
    return fig


def _final_figure(contenders: list[dict]):
    go = _need_plotly()
    fig = go.Figure()
    for c in contenders:
        fig.add_trace(go.Box(y=c["dev"], name=c["contender"], boxpoints="all", jitter=0.3, pointpos=0,
                             boxmean="sd", text=[f"seed {s}" for s in c["seeds"]],
                             marker={"color": FAMILY_COLOURS.get(c["family"], "#7f7f7f")}))
    fig.update_layout(yaxis={"title": "dev accuracy over seeds"}, showlegend=False)
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
    target = {"target": (lambda t: t.values[0]), "target_name": "dev accuracy"} if multi else {}
    out = []

    hist = Section("history", "Optimization history", "Dev accuracy of each complete trial and the best so far.")
    if data.complete:
        hist.figure = ov.plot_optimization_history(data.study, **target)
        hist.figure.update_layout(yaxis={"title": "dev accuracy"}, title=None)
    else:
        hist.note = "No complete trial yet."
    out.append(hist)

    imp = Section("importances", "Parameter importances",
                  "How much each sampled parameter explains dev accuracy (Optuna's default evaluator, PED-ANOVA): "
                  "over all trials for the parameters every trial has, and within each family for its own.")
    if nums["importances"]:
        imp.figure = _importances_figure(nums["importances"])
    else:
        imp.note = f"Needs at least {MIN_IMPORTANCE_TRIALS} complete trials with a parameter that varies."
    out.append(imp)

    groups = family_studies(data.study)
    for family, sub in groups.items():
        title = "Parallel coordinates" + (f": {family}" if family else "")
        par = Section(f"parallel-{family}" if family else "parallel", title,
                      "Each line a complete trial" + (f" of the {family} family" if family else "")
                      + ", coloured by dev accuracy, across the parameters it sampled.")
        par.figure = ov.plot_parallel_coordinate(sub, **target)
        par.figure.update_layout(title=None)
        out.append(par)
    if not groups:
        out.append(Section("parallel", "Parallel coordinates", "Each line a complete trial.",
                           note="Needs at least two complete trials."))

    if multi:
        front = Section("pareto", "Pareto front", f"Objectives: {', '.join(data.objectives)}; "
                        "the front's trials are highlighted.")
        front.figure = ov.plot_pareto_front(data.study, target_names=[_objective_title(o) for o in data.objectives])
        front.figure.update_layout(title=None)
        out.append(front)

    for key, column, title in (("params", "params", "parameters"), ("latency", "latency_ms", "latency (ms)")):
        sec = Section(key, f"Dev accuracy against {title}",
                      f"Every complete trial; colour = family, marker = skip type; {title} on a log scale"
                      + (" (a batch of 32 sequences of 64 tokens, on the machine that ran the trial)."
                         if key == "latency" else "."))
        if any(t[column] is not None for t in data.complete):
            sec.figure = _scatter(data, column, title)
        else:
            sec.note = "No complete trial with this number yet."
        out.append(sec)

    sk = Section("skips", "Skip types within each family", "Dev accuracy of every complete trial, grouped by "
                 "family and skip type; the box spans the quartiles, the line is the median.")
    if data.complete:
        sk.figure = _skips_figure(data)
    else:
        sk.note = "No complete trial yet."
    out.append(sk)

    if nums["final"]:
        fin = Section("final", "Final stage", "Each contender retrained with several seeds: dev accuracy of each seed, "
                      "the box's dashed line is the mean and sd.")
        fin.figure = _final_figure(nums["final"])
        fin.html = _final_table(nums["final"])
        out.append(fin)

    out.append(Section("top", f"Top {len(nums['top'])} trials", "By dev accuracy; open a row's spec to read it, "
                       "or write it to a file with rdzoo export --trial N.", html=_top_table(nums["top"])))
    return out


def _objective_title(objective: str) -> str:
    return {"accuracy": "dev accuracy", "latency": "latency (ms)"}.get(objective, objective)


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _final_table(contenders: list[dict]) -> str:
    score = html.escape(contenders[0]["score"]) if contenders else "accuracy"
    head = (f"<tr><th>contender</th><th>family</th><th>skip</th><th>seeds</th><th>dev {score} mean ± sd</th>"
            f"<th>test {score} mean ± sd</th></tr>")
    rows = "".join(
        f"<tr><td>{html.escape(c['contender'])}</td><td>{html.escape(str(c['family']))}</td>"
        f"<td>{html.escape(str(c['skip']))}</td><td>{len(c['dev'])}</td>"
        f"<td>{c['dev_mean']:.4f} ± {c['dev_sd']:.4f}</td>"
        f"<td>{_fmt(c['test_mean'])} ± {_fmt(c['test_sd'])}</td></tr>" for c in contenders)
    return f"<table>{head}{rows}</table>"


def _top_table(rows: list[dict]) -> str:
    import yaml

    if not rows:
        return "<p class='note'>No complete trial yet.</p>"
    head = ("<tr><th>#</th><th>trial</th><th>family</th><th>skip</th><th>params</th><th>FLOPs</th><th>ms</th>"
            "<th>dev acc</th><th>test acc</th><th>train s</th><th>spec</th></tr>")
    body = []
    for rank, t in enumerate(rows, 1):
        spec = yaml.safe_dump(t["spec"], sort_keys=False) if t["spec"] else "(not recorded)"
        body.append(
            f"<tr><td>{rank}</td><td>{t['trial']}</td><td>{html.escape(str(t['family']))}</td>"
            f"<td>{html.escape(str(t['skip']))}</td><td>{_fmt(t['params'])}</td><td>{_fmt(t['flops'])}</td>"
            f"<td>{_fmt(t['latency_ms'], 1)}</td><td>{_fmt(t['dev_accuracy'])}</td><td>{_fmt(t['test_accuracy'])}</td>"
            f"<td>{_fmt(t['train_seconds'], 1)}</td>"
            f"<td><details><summary>spec</summary><pre>{html.escape(spec)}</pre></details></td></tr>")
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
    best = nums["top"][0] if nums["top"] else None
    best_text = (f"best: trial {best['trial']}, {html.escape(str(best['family']))} (skip {html.escape(str(best['skip']))}), "
                 f"dev accuracy {best['dev_accuracy']:.4f}" if best else "no complete trial yet")
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
    _need_plotly()
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

    if nums["history"]:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        h = nums["history"]
        ax.scatter([p["trial"] for p in h], [p["dev_accuracy"] for p in h], s=18, label="trial")
        ax.step([p["trial"] for p in h], [p["best_so_far"] for p in h], where="post", color="C3", label="best so far")
        ax.set(xlabel="trial", ylabel="dev accuracy", title=f"Optimization history of {data.name}")
        ax.legend()
        save(fig, "history")
    if nums["importances"]:
        rows = nums["importances"]
        fig, ax = plt.subplots(figsize=(8, max(3, 0.3 * len(rows) + 1)))
        labels = [f"{r['param']} [{r['scope']}]" for r in rows][::-1]
        ax.barh(labels, [r["importance"] for r in rows][::-1],
                color=[FAMILY_COLOURS.get(r["scope"], "#7f7f7f") for r in rows][::-1])
        ax.set(xlabel="importance for dev accuracy (within its scope)", title="Parameter importances")
        save(fig, "importances")
    import optuna.visualization.matplotlib as ovm

    multi = len(data.study.directions) > 1
    target = {"target": (lambda t: t.values[0]), "target_name": "dev accuracy"} if multi else \
        {"target_name": "dev accuracy"}
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
        pts = [t for t in data.trials if t["state"] == "COMPLETE" and t["values"]]
        for on, style in ((False, {"color": "#bbbbbb", "label": "trial"}), (True, {"color": "C3", "label": "Pareto front"})):
            sel = [t for t in pts if (t["trial"] in front) == on]
            ax.scatter([t["values"][1] for t in sel], [t["values"][0] for t in sel], **style)
        ax.set(xlabel=_objective_title(x_obj), ylabel="dev accuracy", title="Pareto front")
        ax.legend()
        save(fig, "pareto")
    for key, column, title in (("params", "params", "parameters"), ("latency", "latency_ms", "latency (ms)")):
        points = [t for t in data.complete if t[column] is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(8, 5))
        families = sorted({t["family"] or "?" for t in points})
        skips = sorted({t["skip"] or "?" for t in points})
        for family in families:
            for i, skip in enumerate(skips):
                g = [t for t in points if (t["family"] or "?") == family and (t["skip"] or "?") == skip]
                if g:
                    ax.scatter([t[column] for t in g], [t["dev_accuracy"] for t in g], label=f"{family} / {skip}",
                               color=_colour(family, families), marker=MPL_MARKERS[i % len(MPL_MARKERS)])
        ax.set(xscale="log", xlabel=title, ylabel="dev accuracy", title=f"Dev accuracy against {title}")
        ax.legend(fontsize="small", title="family / skip")
        save(fig, key)
    if nums["by_skip"]:
        groups = nums["by_skip"]
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(groups) + 2), 5))
        values = [[t["dev_accuracy"] for t in data.complete if (t["family"] or "?") == g["family"]
                   and (t["skip"] or "?") == g["skip"]] for g in groups]
        ax.boxplot(values, tick_labels=[f"{g['family']}\n{g['skip']}" for g in groups])
        for i, v in enumerate(values, 1):
            ax.scatter([i] * len(v), v, s=12, color=_colour(groups[i - 1]["family"], []), zorder=3)
        ax.set(ylabel="dev accuracy", title="Skip types within each family")
        save(fig, "skips")
    if nums["final"]:
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(nums["final"]) + 2), 5))
        ax.boxplot([c["dev"] for c in nums["final"]], tick_labels=[c["contender"] for c in nums["final"]], showmeans=True)
        for i, c in enumerate(nums["final"], 1):
            ax.scatter([i] * len(c["dev"]), c["dev"], s=14, zorder=3)
        ax.set(ylabel="dev accuracy over seeds", title="Final stage")
        save(fig, "final")
    return written
