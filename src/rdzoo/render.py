"""Everything rdzoo prints: number formats, tables, the lines of a search and its summary,
and the one JSON output path.

The library returns typed records (`records.py`); this module turns them into text (rich
tables on a terminal, plain lines in a log) or JSON (`emit_json`), so a number is formatted in
one place. rich is imported inside the functions that draw, so that `rdzoo --help` stays light.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

# --- numbers ----------------------------------------------------------------------------------


def human(n: float) -> str:
    """12345678 -> '12.3M'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


def human_bytes(n: float | None) -> str:
    """1536000000 -> '1.5GB' (decimal units, as --max-memory reads them); None -> '-'."""
    if n is None:
        return "-"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{int(n)}B"


def clock(seconds: float | None) -> str:
    """3725.2 -> '1:02:05'; None -> '-:--:--'."""
    if seconds is None:
        return "-:--:--"
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def count(n) -> str:
    """A count with thousands separated: 1234567 -> '1,234,567'; '-' for None."""
    return "-" if n is None else f"{n:,}"


def frac(value, digits: int = 4) -> str:
    """A fraction (a score) to 4 places, '-' when there is none."""
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def num(value, digits: int = 1) -> str:
    """A measurement (seconds, milliseconds) to 1 place, '-' when there is none."""
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def pct(x) -> str:
    """A fraction as a percentage to 1 place: 0.8125 -> '81.2'; '-' for None."""
    return "-" if x is None else f"{100 * x:.1f}"


def pm(mean, sd) -> str:
    """A mean and sd of fractions as percentages: '81.2 +- 0.7' (the mean alone without an sd)."""
    return f"{pct(mean)} +- {pct(sd)}" if sd is not None else pct(mean)


def points(diff) -> str:
    """A difference of fractions in percentage points, signed: 0.012 -> '+1.2'."""
    return f"{100 * diff:+.1f}"


def ms(value) -> str:
    """Milliseconds with three significant digits ('0.412', '12.3'); '-' for None."""
    return "-" if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"


# --- output -----------------------------------------------------------------------------------


def console():
    """A rich Console on stdout. Written to a file or a pipe with no COLUMNS set, tables get 200
    columns instead of rich's 80, so that a log keeps every cell whole."""
    from rich.console import Console

    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(width=200) if piped else Console()


def console_err():
    """A rich Console on stderr, for progress and messages that must not mix with --json."""
    from rich.console import Console

    return Console(stderr=True)


def emit_json(obj) -> None:
    """Write `obj` as indented JSON to stdout (values JSON lacks, such as paths, as strings)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def say(text: str, err: bool = False) -> None:
    """One plain line (no rich markup) on stdout, or on stderr with `err`; never broken at the
    console's width (a pipe's is 80), so a log keeps each line whole."""
    (console_err() if err else console()).print(text, markup=False, highlight=False, soft_wrap=True)


def write_err(text: str) -> None:
    """A line on stderr, flushed at once (for logs)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def stamp() -> str:
    """The local time as a log line's prefix: '[2024-05-01 12:00:00]'."""
    return time.strftime("[%Y-%m-%d %H:%M:%S]")


# --- tables of trials and of the final stage --------------------------------------------------


def neck_of(record) -> str | None:
    """A record's neck (a TrialRecord's or a Standing's spec) as `family/skip` (`resnet/gated`), "-"
    for none; None when its spec is not known."""
    spec = record.spec
    if not isinstance(spec, dict):
        return None
    neck = spec.get("neck")
    return f"{neck.get('family')}/{(neck.get('encoder') or {}).get('skip')}" if isinstance(neck, dict) else "-"


def best_table(rows, score, title: str):
    """The best trials (TrialRecords) as a rich table that fits 80 columns: params, FLOPs,
    latency, memory, accuracies and, on a study ranked by another score (entity F1), its columns."""
    from rich.table import Table

    extra = score.name != "accuracy"  # the study's own score beside the accuracies
    necks = any(neck_of(r) not in (None, "-") for r in rows)  # a neck column where some trial has one
    sentence = any(r.sentence_latency_ms is not None for r in rows)  # one sentence's ms, where recorded
    # one space between columns and none at the edges: the table fits 80 columns whole
    # instead of cutting "transformer" to "transfo…"
    table = Table("#", "trial", "family", "skip", *(("neck",) if necks else ()), "params", "FLOPs", "ms",
                  *(("sent ms",) if sentence else ()), "memory",
                  "dev acc", "test acc", *((f"dev {score.name}", f"test {score.name}") if extra else ()), "train s",
                  title=title, box=None, collapse_padding=True, pad_edge=False)
    for column in table.columns[2:4]:
        column.no_wrap, column.overflow = True, "fold"
    for rank, r in enumerate(rows, 1):
        table.add_row(str(rank), str(r.trial), r.family or "-", r.skip or "-", *((neck_of(r) or "-",) if necks else ()),
                      human(r.params or 0), human(r.flops or 0), num(r.latency_ms),
                      *((ms(r.sentence_latency_ms),) if sentence else ()), human_bytes(r.peak_memory),
                      frac(r.dev_accuracy), frac(r.test_accuracy),
                      *((frac(r.dev_score(score)), frac(r.test_score(score))) if extra else ()), num(r.train_seconds))
    return table if rows else "no completed trials match"


def versus(s) -> str:
    """A Standing's test difference from the baseline: '+1.2 sd 0.8 ahead' (paired by seed; the
    table has a seeds column), '~-4.1 behind' unpaired, 'baseline' or '-' (`difference`)."""
    text = difference(s.vs_baseline, seeds=False)
    return "baseline" if s.baseline and text != "-" else text


def final_table(v, title: str):
    """The final stage's ranking (a records.Verdict): mean +- sd over seeds of the study's score in
    %, and the paired difference from the baseline; the recommended contender's rank carries a *."""
    from rich.table import Table

    short = v.score.short
    necks = any(neck_of(s) not in (None, "-") for s in v.ranking)
    sentence = any(s.sentence_latency_ms is not None for s in v.ranking)
    table = Table("#", "contender", "family", "skip", *(("neck",) if necks else ()), "params", "ms",
                  *(("sent ms",) if sentence else ()), f"dev {short} %", f"test {short} %", "seeds",
                  "vs baseline (test)", title=title, box=None)
    for rank, s in enumerate(v.ranking, 1):
        table.add_row(f"{rank}*" if s is v.recommended else str(rank), s.contender, s.family or "-", s.skip or "-",
                      *((neck_of(s) or "-",) if necks else ()), human(s.params or 0), num(s.latency_ms),
                      *((ms(s.sentence_latency_ms),) if sentence else ()),
                      pm(s.dev_mean, s.dev_sd), pm(s.test_mean, s.test_sd), str(s.n), versus(s))
    return table


def difference(p, seeds: bool = True) -> str:
    """A records.Paired test difference in points: '+1.2 sd 0.8 ahead (3 seeds)' paired by seed
    (without the seed count when `seeds` is False), '~-4.1 behind' unpaired (the difference of
    the means: no seed in common), '-' for none."""
    if p is None or p.test_diff is None:
        return "-"
    if not p.paired:
        return f"~{points(p.test_diff)} {p.call}".rstrip(" -")
    sd = f" sd {100 * p.test_diff_sd:.1f}" if p.test_diff_sd is not None else ""
    return f"{points(p.test_diff)}{sd} {p.call}" + (f" ({p.n} seed{'s' if p.n != 1 else ''})" if seeds else "")


TIER_KINDS = {"student": "student", "plain": "no teacher", "teacher": "teacher"}


def tier_model(t) -> str:
    """A Tier's model in words: 'trial 12 (student, resnet/gated, 38.2k params)'."""
    parts = [TIER_KINDS.get(t.kind, t.kind)]
    if t.family:
        parts.append(f"{t.family}/{t.skip}" if t.skip else t.family)
    if t.params is not None:
        parts.append(f"{human(t.params)} params")
    return f"{t.contender} ({', '.join(parts)})"


def tier_score(t) -> str:
    """A Tier's test score in %: '88.1 +- 0.5 (3 seeds)'; the teacher's '95.2 (1 run, seed 0)' or, for
    several runs, their mean and sd, '95.0 +- 0.2 (3 runs, seeds 1, 2, 3, each alone)'."""
    if t.test_mean is None:
        return "-"
    seeds = ", ".join(map(str, t.seeds))
    if t.kind == "teacher":  # its runs as given: one, or an ensemble's members each scored alone
        runs = f"1 run, seed {seeds}" if t.n == 1 else f"{t.n} runs, seeds {seeds}, each alone"
    else:
        runs = f"{t.n} seed{'s' if t.n != 1 else ''}"
    return f"{pm(t.test_mean, t.test_sd)} ({runs})"


def latency_table(v, title: str):
    """The latency verdict (a records.Verdict's `tiers`) as a rich table: at <= X ms, the most
    accurate model, its test score (mean +- sd over seeds, %), and its test difference from the
    baseline trained without the teacher and from the teacher, in points (~: unpaired)."""
    from rich.table import Table

    short = v.score.short
    base = v.baseline or "baseline"
    teacher = v.teacher.contender if v.teacher else "teacher"
    table = Table("at <= ms", "model", f"test {short} %", f"vs {base} (no teacher)", f"vs teacher {teacher}",
                  title=title, box=None, caption="~ unpaired: no seed in common, the difference of the means",
                  caption_justify="left")
    for t in v.tiers:
        table.add_row(ms(t.max_latency_ms), tier_model(t), tier_score(t), *tier_versus(v, t))
    return table


def tier_versus(v, t) -> tuple[str, str]:
    """A Tier's two differences as table cells: from the baseline without the teacher ('baseline'
    on its own row) and from the teacher ('teacher' on its own row)."""
    own_baseline = t.kind == "plain" and t.contender == v.baseline
    return ("baseline" if own_baseline else difference(t.vs_baseline),
            "teacher" if t.kind == "teacher" else difference(t.vs_teacher))


def latency_title(study: str) -> str:
    """The latency verdict's title."""
    return f"the most accurate model at each latency, {study} (one sentence, batch 1, one thread)"


def tiers_line(v) -> str:
    """One line on the latency verdict (a records.Verdict with `tiers`): how many rows, from what
    latency to what, and where the table is."""
    first, last = v.tiers[0], v.tiers[-1]

    def name(t):  # the teacher can share a zoo name with the baseline
        return f"the teacher {t.contender}" if t.kind == "teacher" else t.contender

    span = (f"{name(first)} at <= {ms(first.max_latency_ms)} ms" if len(v.tiers) == 1 else
            f"from {name(first)} at <= {ms(first.max_latency_ms)} ms to {name(last)} at <= "
            f"{ms(last.max_latency_ms)} ms")
    return (f"  at each latency: {len(v.tiers)} row{'s' if len(v.tiers) != 1 else ''}, {span} (the table "
            "'the most accurate model at each latency')")


def final_title(study: str) -> str:
    """The final stage table's title."""
    return f"final stage of {study} (mean +- sd over seeds; * recommended)"


def verdict_lines(v) -> list[str]:
    """The verdict (a records.Verdict, or None before a final stage ran) as a few plain lines
    (scores in %)."""
    if not v:
        return ["no final stage yet: run `rdzoo search` again without --no-final to retrain the best trials"]
    r = v.recommended
    size = f", {r.params:,} parameters" if r.params is not None else ""
    speed = f", {r.latency_ms:.1f} ms a batch" if r.latency_ms is not None else ""
    lines = [f"recommended: {r.contender} ({r.family}, skip {r.skip}{size}{speed})",
             f"  {v.score.name}: dev {pm(r.dev_mean, r.dev_sd)}, test {pm(r.test_mean, r.test_sd)} "
             f"over {r.n} seed{'s' if r.n != 1 else ''} ({', '.join(map(str, r.seeds))})"]
    vs = r.vs_baseline
    if vs is None:
        lines.append("  no baseline was trained (--baseline none)")
    elif vs.test_diff is None:
        lines.append(f"  vs {vs.baseline}: no seed that both ran yet")
    elif r.baseline and v.kept_baseline:
        top = v.ranking[0]
        lines.append(f"  it is the baseline, {vs.baseline}: the best found, {top.contender}, was not ahead of it on "
                     f"dev beyond the seeds' noise (dev {points(top.vs_baseline.dev_diff)} points, "
                     f"{top.vs_baseline.dev_call})")
    elif r.baseline:
        lines.append(f"  it is the baseline, {vs.baseline}: nothing the search found beat it on mean dev "
                     f"{v.score.name}")
    else:
        sd = f" (sd {100 * vs.test_diff_sd:.1f})" if vs.test_diff_sd is not None else ""
        lines.append(f"  vs {vs.baseline}: test {points(vs.test_diff)} points{sd}, paired over {vs.n} seed{'s' if vs.n != 1 else ''}: {vs.call}")
    if v.skips:
        lines.append("  best skip by family: " + ", ".join(
            f"{fam} {w.skip} ({pct(w.dev)} dev, trial {w.trial})" for fam, w in sorted(v.skips.items())))
    if v.tiers:
        lines.append(tiers_line(v))
    return lines


def studies_table(rows):
    """The studies (records.StudySummary) as a rich table: trials by state, best dev score of the
    study's score ('0.8125 acc', '0.4200 F1'; Optuna's best value for a study without rdzoo
    results), last update."""
    import datetime

    from rich.table import Table

    table = Table("study", "complete", "pruned", "failed", "running", "waiting", "best dev", "last update", box=None)
    for r in rows:
        when = datetime.datetime.fromtimestamp(r.last_update).strftime("%Y-%m-%d %H:%M:%S") \
            if r.last_update is not None else "-"
        best = (f"{r.best_score:.4f} {r.score.short}" if r.best_score is not None
                else f"{r.best_value:.4g} value" if r.best_value is not None else "-")
        c = r.counts
        table.add_row(r.study, *(str(n) for n in (c.complete, c.pruned, c.failed, c.running, c.waiting)), best, when)
    return table


def studies_json(rows) -> list[dict]:
    """The studies for --json; last_update as ISO 8601 with the UTC offset."""
    import datetime

    out = []
    for r in rows:
        row = r.to_json()
        if isinstance(row["last_update"], (int, float)):
            row["last_update"] = datetime.datetime.fromtimestamp(row["last_update"]).astimezone() \
                .isoformat(timespec="seconds")
        out.append(row)
    return out


def verdict_tables(out, verdict, study: str) -> None:
    """Print a final stage's tables on console `out`: the most accurate model at each latency
    (where the verdict has its tiers), then the final ranking."""
    if verdict.tiers:
        out.print(latency_table(verdict, latency_title(study)))
    out.print(final_table(verdict, final_title(study)))


def leaderboard(board, as_json: bool) -> None:
    """`rdzoo best`: a records.Leaderboard as JSON (the final stage's contenders first, then the
    trials) or as the final stage's table and the trials' table."""
    if as_json:
        return emit_json(board.to_json())
    out = console()
    if board.verdict:
        verdict_tables(out, board.verdict, board.study)
    if board.pareto:
        title = f"Pareto front of {board.study} ({', '.join(board.objectives)})"
    else:
        title = f"best of study {board.study}"
    out.print(best_table(board.trials, board.score, title))


# --- a search while it runs -------------------------------------------------------------------


def log_line(record, score, finished: int, target: int, best, eta: float | None) -> str:
    """`[time] trial 3 COMPLETE family=resnet skip=gated params=1.2M dev_accuracy=0.8125 seconds=12.3
    best=0.8125 [4/10, ETA 0:01:10]`: one finished trial (a TrialRecord) for a log file, with the
    study's `score` (dev_entity_f1 on entity data) and its best so far."""
    params = human(record.params) if record.params is not None else "-"
    text = (f"{stamp()} trial {record.trial} {record.state} family={record.family or '-'} "
            f"skip={record.skip or '-'} params={params} {score.dev}={frac(record.dev_score(score))} "
            f"seconds={num(record.train_seconds)} best={frac(best)} [{finished}/{target}, ETA {clock(eta)}]")
    if record.error:
        text += f" error: {record.error}"
    return text


def failed_line(record) -> str:
    """A failed trial's warning: 'trial 3 failed: TrainingError: ...'."""
    return f"trial {record.trial} failed: {record.error or 'no recorded error'}"


def live_view(study: str, target: int, finished: int, best, elapsed: float, eta: float | None, current: str | None,
              last, score):
    """The live view of a search as a rich renderable: a progress line (bar, trials finished of
    the target, best score, elapsed, ETA, the running trial), and the last finished trials
    (TrialRecords, latest first) once there are some."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    head = Table.grid(padding=(0, 1))
    bar = ProgressBar(total=target, completed=min(finished, target), width=24)
    head.add_row(f"[bold]search {study}[/]", bar, f"{finished}/{target}", f"best {frac(best)}",
                 f"elapsed {clock(elapsed)}", f"ETA {clock(eta)}", f"running {current}" if current else "")
    if not last:
        return head
    table = Table("trial", "state", "family", "skip", "params", f"dev {score.short}", "seconds", box=None,
                  title="last finished", title_justify="left")
    for r in last:
        table.add_row(str(r.trial), r.state, r.family or "-", r.skip or "-",
                      human(r.params) if r.params is not None else "-", frac(r.dev_score(score)), num(r.train_seconds))
    return Group(head, table)


def opening_line(study: str, finished: int, target: int, timeout: float | None) -> str:
    """A log's first line: the study, the trials finished of the target and the --timeout."""
    limit = f", timeout {clock(timeout)}" if timeout else ""
    return f"{stamp()} search {study}: {finished} of {target} trials finished{limit}"


def final_run_line(done: int, total: int, label: str, seed: int) -> str:
    """The final stage's progress: 'final stage 2/6: trial 3, seed 1'."""
    return f"final stage {done + 1}/{total}: {label}, seed {seed}"


# --- the end of a search ----------------------------------------------------------------------


def stop_text(outcome, cfg) -> str:
    """Why the search (a records.Outcome of `cfg`, a SearchConfig) stopped, in words."""
    reason, finished = outcome.stopped_by, outcome.finished
    if reason == "target":
        return f"the study reached its target of {cfg.trials} finished trials (--trials)"
    if reason == "timeout" and outcome.for_final:
        return (f"the trials stopped with {finished} of {cfg.trials} finished, to leave the final stage its share "
                f"of --timeout {clock(cfg.timeout)}; run the same command to continue")
    if reason == "timeout":
        return (f"--timeout {clock(cfg.timeout)} ran out with {finished} of {cfg.trials} trials finished; "
                "run the same command to continue")
    if reason == "interrupted":
        return f"interrupted (Ctrl-C) with {finished} of {cfg.trials} trials finished; run the same command to continue"
    if reason == "failures":
        return f"too many trials failed, the last with {outcome.error or 'no recorded error'}"
    return reason


BEST_KEYS = ("trial", "family", "skip", "params", "dev_accuracy", "test_accuracy", "dev_entity_f1", "entity_f1",
             "latency_ms", "sentence_latency_ms")


def search_summary(outcome, cfg, storage_option: str | None) -> dict:
    """The end of a search as data (the `--json` output's `summary`): trials by state in the
    study and in this run, elapsed seconds, why it stopped, the best trial, the next commands."""
    where = f" --study {cfg.study}" + (f" --storage {storage_option}" if storage_option else "")
    best = outcome.best[0] if outcome.best else None
    run = outcome.this_run
    return {
        "study": cfg.study, "stopped_by": outcome.stopped_by, "stopped_because": stop_text(outcome, cfg),
        "elapsed_seconds": round(outcome.seconds, 3), "study_trials": outcome.counts.to_json(),
        "this_run": {"complete": run.complete, "pruned": run.pruned, "failed": run.failed},
        "best": None if best is None else {k: best.get(k) for k in BEST_KEYS},
        "next": [f"rdzoo best{where}", f"rdzoo export --best{where} -o best.yaml", f"rdzoo report{where} -o report.html"],
    }


def summary_lines(s: dict, score, verdict: list[str] | None = None) -> list[str]:
    """The summary (`search_summary`) as the lines a person reads at the end of a search; the
    final stage's `verdict` lines go between the search's own numbers and what to run next."""
    c, r = s["study_trials"], s["this_run"]
    running = f", {c['running']} running" if c["running"] else ""
    lines = [
        f"search {s['study']} stopped: {s['stopped_because']}",
        f"  this run: {r['complete']} complete, {r['pruned']} pruned, {r['failed']} failed in {clock(s['elapsed_seconds'])}",
        f"  study:    {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed{running}",
    ]
    b = s["best"]
    if b is not None:
        lines.append(f"  best:     trial {b['trial']}, {b['family']} (skip {b['skip']}), {human(b['params'] or 0)} "
                     f"parameters, dev {score.name} {frac(b[score.dev])}, test {score.name} {frac(b[score.test])}")
    else:
        lines.append("  best:     no completed trial yet")
    if verdict is not None:
        lines.append("  verdict:")
        lines.extend(f"    {line}" for line in verdict)
    lines.append("  next:     " + "\n            ".join(s["next"]))
    return lines


def search_end(outcome, cfg, top: int, as_json: bool, data_report: dict | None, storage_option: str | None) -> None:
    """The end of `rdzoo search` (a records.Outcome of `cfg`): the summary (why it stopped, trials
    by state, the best, the final stage's verdict, what to run next), the final ranking and the
    `top` best trials, as text on stdout or as one JSON object; after Ctrl-C in the final stage,
    one line saying how to go on."""
    if outcome.stopped_in == "final":
        say(f"stopped in the final stage: its finished runs are kept in {cfg.storage}; run the same command to "
            "continue", err=True)
        return
    if outcome.workers is not None and any(c not in (0, 130) for c in outcome.workers):
        say(f"workers exited with {outcome.workers}", err=True)
    if not outcome.opened:
        return  # no worker opened the study: each said why
    s = search_summary(outcome, cfg, storage_option)
    if as_json:
        return emit_json({**outcome.to_json(), "summary": s, "best": [r.to_json() for r in outcome.best[:top]],
                          "verdict": outcome.verdict.to_json() if outcome.verdict else None,
                          **({"data_report": data_report} if data_report else {})})
    # a final stage whose every seed was cut has no verdict yet, only the line on its cut seeds below
    shown = verdict_lines(outcome.verdict) if outcome.verdict is not None else [] if outcome.final else None
    cut = outcome.final.cut if outcome.final else None
    if cut:
        them = "them" if len(cut) > 1 else "it"
        seed = outcome.final.cut_seconds / len(cut)
        how = (f"the same command adds {them}, keeping that time for {them} before more trials"
               if cfg.timeout is None or seed < cfg.timeout else  # else no run of this command ever fits one seed:
               # twice a seed leaves the command's start (data, teacher found again) and a trial beside it
               f"a seed takes about {clock(seed)}, more than --timeout {clock(cfg.timeout)} holds: the same command "
               f"with --timeout {math.ceil(2 * seed / 60)}m (or none) adds {them}")
        shown.append(f"final stage: seed{'s' if len(cut) > 1 else ''} {', '.join(map(str, cut))} left out to end by "
                     f"--timeout (about {clock(outcome.final.cut_seconds)} of runs); {how}")
    out = console()
    for note in (data_report or {}).get("notes", []):  # what the scores below were measured on, first
        out.print(f"data: {note}", markup=False, highlight=False)
    sys.stdout.write("\n".join(summary_lines(s, outcome.score, shown)) + "\n")
    if outcome.verdict is not None:
        verdict_tables(out, outcome.verdict, cfg.study)
    if top > 0:
        out.print(best_table(outcome.best[:top], outcome.score, f"best of study {cfg.study}"))


# --- export and report ------------------------------------------------------------------------


def exported(chosen, spec, out, as_json: bool) -> None:
    """An exported spec (a spec.Spec, from an nas.Chosen): its YAML on stdout when there is no file
    `out`, else a line saying what was written; --json: where it came from, the file and the spec."""
    if as_json:
        return emit_json({**chosen.summary, "out": str(out) if out else None, "spec": spec.to_dict()})
    if out is None:
        sys.stdout.write(spec.to_yaml())
    else:
        say(f"wrote {out}: {chosen.what}", err=True)


def onnx_export(result, as_json: bool) -> None:
    """`rdzoo export RUN --format onnx` (an export.OnnxExport): the file, its input and output, the
    check against PyTorch, one sentence's latency under PyTorch and onnxruntime, and the int8
    file's size and speed."""
    if as_json:
        return emit_json(result.to_json())
    ms, size = result.latency_ms, result.bytes
    shape = lambda dims: " x ".join(map(str, dims))  # noqa: E731
    lines = [f"wrote {result.out}: {result.name} ({result.family}){' int8' if result.quantize else ''}, input tokens "
             f"({shape(result.input_shape)}) ids from {os.path.join(result.run, 'tokenizer.json')}, 0 = padding; "
             f"output logits ({shape(result.output_shape)})",
             f"onnxruntime's fp32 logits match PyTorch's within {result.max_abs_diff:.1e} on padded batches",
             f"per sentence ({result.tokens} tokens, batch 1, 1 thread, median): PyTorch {ms['pytorch']:.3f} ms, "
             f"onnxruntime fp32 {ms['onnxruntime']:.3f} ms ({ms['onnxruntime'] / ms['pytorch']:.2f}x)"]
    if result.quantize:
        lines.append(f"int8: {human_bytes(size['fp32'])} -> {human_bytes(size['int8'])} ({size['int8'] / size['fp32']:.2f}x), "
                     f"onnxruntime {ms['onnxruntime']:.3f} -> {ms['onnxruntime_int8']:.3f} ms per sentence "
                     f"({ms['onnxruntime_int8'] / ms['onnxruntime']:.2f}x)")
    if result.crf:
        lines.append("a CRF tagger: the logits are per-word scores; its transition, start and end scores are in the "
                     "file's metadata (rdzoo.crf) for Viterbi decoding")
    for line in lines:
        say(line)


def report_written(nums: dict, written: list, as_json: bool) -> None:
    """The end of `rdzoo report`: --json the numbers and the files; else the study's trials by
    state on stderr and each file written on stdout."""
    if as_json:
        return emit_json({**nums, "files": [str(p) for p in written]})
    c = nums["counts"]
    say(f"study {nums['study']}: {c['complete']} complete, {c['pruned']} pruned, {c['failed']} failed trials", err=True)
    for path in written:
        sys.stdout.write(f"wrote {path}\n")


# --- the other commands' tables ---------------------------------------------------------------


def env(info: dict) -> None:
    """`rdzoo env`: the versions on one line, a table of the devices, and where --device auto runs."""
    from rich.table import Table

    c = console()
    c.print(f"rdzoo {info['rdzoo']}  python {info['python']}  torch {info['torch']}  "
            f"CUDA {info['cuda'] or 'none (a CPU-only build)'}  cuDNN {info['cudnn'] or '-'}  "
            f"optuna {info['optuna'] or 'not installed'}  timm {info['timm'] or 'not installed'}")
    table = Table("device", "name", "memory", "compute capability", "bf16", box=None)
    for d in info["devices"]:
        table.add_row(d["device"], d["name"], human_bytes(d.get("memory")), d.get("capability", "-"),
                      "yes" if d["bf16"] else "no")
    c.print(table)
    c.print(f"--device auto runs on {info['auto_device']}")


def zoo(rows: list[dict], pattern: str) -> None:
    """`rdzoo list`: the zoo's models (name, family, skip, params, vocab_size, description), each
    description cut to the width the other columns leave."""
    from rich.table import Table

    heads = ("name", "family", "skip", "params", "vocab")
    cells = [(r["name"], r["family"], r["skip"], "-" if r["params"] is None else human(r["params"]),
              human(r["vocab_size"]) if r.get("vocab_size") is not None else "-") for r in rows]
    widths = [max([len(column)] + [len(c[i]) for c in cells]) for i, column in enumerate(heads)]
    out = console()
    room = max(out.width - sum(widths) - 2 * 6, 10)  # the description gets what the other columns leave
    table = Table(*heads, "description", box=None)
    for r, c in zip(rows, cells):
        text = r["description"]
        table.add_row(*c, text if len(text) <= room else text[: room - 1] + "…")
    out.print(table if rows else f"no model matches {pattern!r}")
    if rows:  # the embedding table is most of a small model: it shrinks with the data's vocabulary
        out.print("params assume the spec's vocabulary (vocab: embedding.vocab_size); trained on data with "
                  "fewer words, the model has fewer", markup=False, highlight=False)


def built(result: dict) -> None:
    """`rdzoo build` (profile.build_report): the stages' table, then parameters, FLOPs and both latencies."""
    from rich.table import Table

    table = Table("module", "type", "output shape", "params",
                  title=f"{result['name']} ({result['family']}, skip: {result['skip']})")
    for row in result["stages"]:
        table.add_row(row["name"], row["type"], "x".join(map(str, row["output_shape"])), human(row["params"]))
    c = console()
    c.print(table)
    c.print(f"params {result['params']:,}  |  FLOPs/sequence ({result['seq_len']} tokens) {human(result['flops'])}  |  "
            f"latency {result['latency_ms']:.1f} ms for a batch of {result['batch']}, "
            f"{result['sentence_latency_ms']:.2f} ms per sentence ({result['sentence_tokens']} tokens, 1 thread) on "
            f"{result['device']} ({result['precision']})")
    if result.get("out"):
        c.print(f"saved {result['out']}")


def datasets(rows: list[dict]) -> None:
    """`rdzoo data`: each dataset's splits, classes and notes (or why it cannot be read), and for
    entity data the entities of each type per split."""
    from rich.table import Table

    table = Table("dataset", "train", "dev", "test", "classes", "notes", box=None)
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], "-", "-", "-", "-", f"cannot be read: {r['error']}")
            continue
        table.add_row(r["name"], str(r["train"]), str(r["dev"] or "-"), str(r["test"] or "-"), str(r["classes"]),
                      "; ".join(r["notes"]))
    out = console()
    out.print(table)
    for r in rows:
        if "entities" in r:
            splits = list(r["entities"])
            kinds = sorted({k for counts in r["entities"].values() for k in counts})
            counts = Table("entity type", *splits, title=f"{r['name']}: entities", box=None)
            for kind in kinds + ["all"]:
                counts.add_row(kind, *[str(sum(r["entities"][s].values()) if kind == "all" else r["entities"][s].get(kind, 0))
                                       for s in splits])
            out.print(counts)


def metrics_table(title: str, metrics: dict):
    """A two-column rich table of metric -> value, fractions to 4 places."""
    from rich.table import Table

    table = Table("metric", "value", title=title, box=None)
    for key, value in metrics.items():
        if isinstance(value, float):
            value = frac(value)
        elif isinstance(value, dict):  # per entity type
            value = ", ".join(f"{k} {frac(v)}" for k, v in value.items())
        table.add_row(key, str(value))
    return table


def distill_rows(info: dict | None) -> dict:
    """What a student learnt from, as rows of a metrics table: each teacher (its run, whether it
    was fine-tuned now, its dev score), the transfer set's sizes and the cached outputs' file."""
    if not info:
        return {}
    rows = {}
    for i, t in enumerate(info["teachers"]):
        dev = f", dev {frac(t['dev_score'])}" if isinstance(t["dev_score"], (int, float)) else ""
        rows["teacher" if i == 0 else f"teacher ({i + 1})"] = \
            f"{t['teacher']} -> {t['run']}{' (fine-tuned now)' if t['fine_tuned'] else ''}{dev}"
    size = info["transfer"]
    rows["transfer set"] = (f"{size['transfer_texts']} texts: {size['train']} training, {size['augmented']} augmented, "
                            f"{size['unlabeled']} unlabelled")
    rows["teacher outputs"] = info["targets"]
    return rows


def report_rows(report: dict) -> dict:
    """A data report's notes as rows of a metrics table: data, data (2), ..."""
    return {("data" if i == 0 else f"data ({i + 1})"): note for i, note in enumerate(report["notes"])}


def trained(result: dict, title: str) -> None:
    """`rdzoo train`'s metrics table: the metrics, what a student learnt from, what the load did."""
    shown = {k: v for k, v in result.items() if k not in ("folds", "name", "data", "data_report", "distill")}
    console().print(metrics_table(title, {**shown, **distill_rows(result.get("distill")),
                                          **report_rows(result["data_report"])}))


def evaluated(result: dict, title: str, held_out: str) -> None:
    """`rdzoo eval`'s metrics table, with the `held out` row saying what was scored."""
    shown = {k: v for k, v in result.items() if k not in ("run", "data", "held_out", "data_report")}
    console().print(metrics_table(title, {**shown, "held out": held_out, **report_rows(result["data_report"])}))


def predictions(rows: list[dict]) -> None:
    """`rdzoo predict` (runs.Run.describe's rows): a label a line; a tagger's words as word/TAG; an
    entity tagger's sentence with its entities marked `[Empire State Building](location)`."""
    from .text.conll import mark_entities

    for r in rows:
        if "entities" in r:
            sys.stdout.write(mark_entities(r["text"], r["entities"]) + "\n")
        elif "tags" in r:
            sys.stdout.write(" ".join(f"{w}/{g or '_'}" for w, g in zip(r["words"], r["tags"])) + "\n")
        else:
            sys.stdout.write(f"{r['label']}\n")
