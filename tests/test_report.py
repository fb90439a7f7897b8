"""What a search shows while it runs and at its end, and `rdzoo report` / `rdzoo dashboard`."""

import datetime
import html.parser
import json
import os
import random
import re
import shutil
import subprocess
from types import SimpleNamespace

import optuna
import pytest
import sqlalchemy as sa
import yaml
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner

from rdzoo import display as disp
from rdzoo import render
from rdzoo import report as rep
from rdzoo.cli import app
from rdzoo.nas import SearchConfig
from rdzoo.nas.loop import quiet_optuna, run_trials
from rdzoo.query import Results
from rdzoo.records import ACCURACY, TrialRecord
from rdzoo.storage import make_storage
from rdzoo.space import load_space
from rdzoo.store import Store
from rdzoo.text.data import load_data

TINY = {
    "name": "tiny",
    "fixed": {"embedding": {"dim": 8, "vocab_size": 200, "max_len": 24},
              "train": {"epochs": 1, "batch_size": 64, "lr": 0.01}},
    "choose": {"family": {
        "resnet": {"encoder.stem_channels": 8, "encoder.stages": [1], "encoder.channels": 8,
                   "encoder.skip": {"choice": ["none", "residual"]}},
        "densenet": {"encoder.stem_channels": 8, "encoder.block_config": [2], "encoder.growth_rate": 4},
    }},
}
LINE = re.compile(r"^\[[\d\- :]+\] trial (?P<trial>\d+) (?P<state>COMPLETE|PRUNED|FAIL) family=(?P<family>\w+) "
                  r"skip=(?P<skip>\w+) params=(?P<params>[\d.]+k?) dev_accuracy=(?P<dev>\d\.\d{4}) "
                  r"seconds=(?P<seconds>\d+\.\d) best=(?P<best>\d\.\d{4}) \[(?P<done>\d)/3, ETA \d+:\d\d:\d\d\]$")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """The synthetic task cut to 240/60/60 texts, as a folder of TSV files (the CLI reads it)."""
    folder = tmp_path_factory.mktemp("data")
    d = load_data("synthetic")
    for split, n in (("train", 240), ("dev", 60), ("test", 60)):
        part = getattr(d, split)
        lines = ["text\tlabel"] + [f"{t}\t{y}" for t, y in zip(part.texts[:n], part.labels[:n])]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def searched(tmp_path_factory, small_data):
    """A 3-trial search through the CLI with stderr not a terminal, as in a log file."""
    tmp = tmp_path_factory.mktemp("search")
    space = tmp / "tiny.yaml"
    space.write_text(yaml.safe_dump(TINY))
    db = tmp / "s.db"
    result = CliRunner().invoke(app, ["search", "--space", str(space), "--data", str(small_data), "--trials", "3",
                                      "--storage", str(db), "--study", "t", "--seed", "0", "--pruner", "none",
                                      "--top", "3", "--no-final"])
    return result, db, space


def test_a_search_in_a_log_writes_one_line_per_finished_trial(searched):
    result, db, _ = searched
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "search t: 0 of 3 trials finished" in lines[0]
    trials = [LINE.match(line) for line in lines[1:]]
    assert len(lines) == 4 and all(trials), result.stderr
    rows = {r.trial: r for r in Results(str(db)).best("t", top=10)}
    best = 0.0
    for done, m in enumerate(trials, 1):
        row = rows[int(m["trial"])]  # each line says what the database holds
        assert m["state"] == row.state and m["family"] == row.family and m["skip"] == row.skip
        assert float(m["dev"]) == pytest.approx(row.dev_accuracy, abs=5e-5)
        assert float(m["seconds"]) == pytest.approx(row.train_seconds, abs=0.05)
        best = max(best, row.dev_accuracy)
        assert float(m["best"]) == pytest.approx(best, abs=5e-5) and int(m["done"]) == done


def test_a_search_ends_with_a_summary_that_says_why_it_stopped(searched):
    result, db, _ = searched
    out = result.stdout
    assert "search t stopped: the study reached its target of 3 finished trials" in out
    assert "this run: 3 complete, 0 pruned, 0 failed in 0:" in out
    assert "study:    3 complete, 0 pruned, 0 failed" in out
    top = Results(str(db)).best("t", top=1)[0]
    assert f"best:     trial {top.trial}, {top.family}" in out and f"dev accuracy {top.dev_accuracy:.4f}" in out
    for command in ("rdzoo best --study t", "rdzoo export --best --study t", "rdzoo report --study t"):
        assert f"{command} --storage {db}" in out
    assert out.index("stopped:") < out.index("best of study t")  # the summary, then the table


def test_a_timeout_is_named_as_the_reason_the_search_stopped(searched, small_data):
    _, db, space = searched
    result = CliRunner().invoke(app, ["search", "--space", str(space), "--data", str(small_data), "--trials", "50",
                                      "--timeout", "1", "--storage", str(db), "--study", "t", "--seed", "0",
                                      "--pruner", "none", "--json", "--no-final"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    s = out["summary"]
    assert out["stopped_by"] == "timeout" and s["stopped_by"] == "timeout"
    finished = out["finished"]
    assert 3 <= finished < 50 and s["study_trials"]["complete"] + s["study_trials"]["pruned"] == finished
    assert s["stopped_because"] == (f"--timeout 0:00:01 ran out with {finished} of 50 trials finished; "
                                    "run the same command to continue")


def test_ctrl_c_is_named_as_the_reason(tmp_path):
    """A display that raises KeyboardInterrupt when the first trial starts stands in for Ctrl-C."""
    class Interrupting(disp.QuietDisplay):
        def trial_started(self, number, family, finished):
            raise KeyboardInterrupt

    cfg = SearchConfig(load_space(str(_write(tmp_path / "tiny.yaml", TINY))), "synthetic", "t",
                       f"sqlite:///{tmp_path}/s.db", trials=3, pruner="none")
    display = Interrupting(cfg)
    outcome = run_trials(cfg, None, display)
    assert outcome.stopped_by == "interrupted" and outcome.interrupted
    s = render.search_summary(outcome, cfg, None)
    assert s["stopped_because"].startswith("interrupted (Ctrl-C) with 0 of 3 trials finished")
    assert "run the same command to continue" in "\n".join(render.summary_lines(s, outcome.score))


def test_failures_are_named_as_the_reason_before_the_error(tmp_path, small_data):
    space = json.loads(json.dumps(TINY))  # a tagger's head on sentence labels: every trial fails in training
    space["fixed"]["head"] = {"pool": "token"}
    result = CliRunner().invoke(app, ["search", "--space", str(_write(tmp_path / "bad.yaml", space)), "--data",
                                      str(small_data), "--trials", "1", "--storage", str(tmp_path / "b.db"), "--study",
                                      "b", "--quiet", "--no-final"])
    assert "the search stopped: 10 trials of study 'b' failed" in str(result.exception)
    assert "search b stopped: too many trials failed, the last with SpecError: head.pool: token" in result.stdout
    assert "this run: 0 complete, 0 pruned, 10 failed" in result.stdout
    assert result.stderr.count("failed: SpecError: head.pool: token") == 10  # --quiet still warns


def test_a_storage_that_cannot_be_opened_is_reported_before_anything_is_drawn(tmp_path, small_data):
    (tmp_path / "notadb").write_text("not a database")
    result = CliRunner().invoke(app, ["search", "--space", str(_write(tmp_path / "tiny.yaml", TINY)), "--data",
                                      str(small_data), "--trials", "1", "--storage", str(tmp_path / "notadb")])
    assert result.exit_code != 0
    assert result.stderr == "" and result.stdout == ""  # no progress line came before the error
    assert "cannot open this storage" in str(result.exception)


def test_the_eta_counts_this_runs_pace_and_the_timeout():
    now = [100.0]
    eta = disp.Eta(target=4, timeout=None, now=lambda: now[0])
    eta.begin(finished=0)
    now[0] += 90
    assert eta.left(0) is None  # nothing finished yet: no pace to go by
    assert eta.left(2) == pytest.approx(90.0)  # 2 trials in 90 s, 2 to go (the ETA was blank here)
    resumed = disp.Eta(target=10, timeout=60, now=lambda: now[0])
    resumed.begin(finished=6)  # a resumed study: trials finished before this run do not count
    now[0] += 20
    assert resumed.left(7) == pytest.approx(40.0)  # 3 more at 20 s would take 60 s; the timeout leaves 40
    assert resumed.left(10) == 0.0


def test_the_live_display_shows_progress_eta_and_the_last_trials():
    from rich.console import Console

    cfg = SimpleNamespace(study="t", trials=4, timeout=None)
    console = Console(force_terminal=True, width=120, record=True, file=open(os.devnull, "w"))
    live = disp.LiveDisplay(cfg, console)
    live.started(SimpleNamespace(), 0, ACCURACY)
    try:
        for n, (family, acc) in enumerate((("resnet", 0.8125), ("densenet", 0.75))):
            live.trial_finished(_frozen(n), TrialRecord(trial=n, state="COMPLETE", family=family, skip="gated",
                                                        params=12345, dev_accuracy=acc, train_seconds=3.5), n + 1, 0.8125)
        live.eta.start -= 60  # two trials in a minute
        console.print(live.render())
    finally:
        live.__exit__(None, None, None)
    text = console.export_text()
    assert "2/4" in text and "best 0.8125" in text and "ETA 0:01:00" in text
    assert re.search(r"1\s+COMPLETE\s+densenet\s+gated\s+12.3k\s+0.7500\s+3.5", text)
    assert text.index("densenet") < text.index("resnet")  # the latest first


# --- rdzoo report -----------------------------------------------------------------------------


def fake_study(url: str, name: str = "s", n: int = 16, objectives=("accuracy",), seed: int = 0):
    """A study with the default space's parameters and made-up results, written through Optuna's API
    (no training): complete trials of every family, one pruned, one failed."""
    quiet_optuna()
    rng = random.Random(seed)
    space = load_space("default")
    scratch = optuna.create_study(directions=["maximize"] + ["minimize"] * (len(objectives) - 1),
                                  sampler=optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(study_name=name, storage=url, directions=[d.name.lower() for d in scratch.directions])
    study.set_user_attr("objectives", list(objectives))
    made = []
    for i in range(n):
        t = scratch.ask()
        raw = space.sample(t)
        family, skip = raw["family"], (raw.get("encoder") or {}).get("skip")
        acc = round(0.7 + 0.1 * rng.random(), 4)
        params = rng.randint(50_000, 3_000_000)
        info = {"family": family, "skip": skip, "spec": raw, "params": params, "flops": params * 64,
                "latency_ms": params / 1e5, "dev_accuracy": acc, "test_accuracy": acc - 0.01, "macro_f1": acc - 0.02,
                "train_seconds": 1.0 + i, "epochs": 4}
        state = TrialState.PRUNED if i == 3 else TrialState.FAIL if i == 5 else TrialState.COMPLETE
        values = {"accuracy": acc, "params": params, "latency": info["latency_ms"], "flops": info["flops"]}
        made.append(create_trial(state=state, params=t.params, distributions=t.distributions,
                                 values=[values[o] for o in objectives] if state == TrialState.COMPLETE else None,
                                 user_attrs={"rdzoo": info}))
        scratch.tell(t, state=TrialState.FAIL)
    study.add_trials(made)
    Store.open(url, create=True).sync(study, make_storage(url))
    return study


def _write(path, obj):
    path.write_text(yaml.safe_dump(obj))
    return path


def _frozen(number):
    return SimpleNamespace(number=number, state=TrialState.COMPLETE, datetime_start=None, datetime_complete=None)


class Page(html.parser.HTMLParser):
    """Sections, figures and every external script or stylesheet of an HTML page."""

    def __init__(self):
        super().__init__()
        self.sections, self.external, self.figures, self.section = [], [], {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a["id"]
            self.sections.append(a["id"])
            self.figures[a["id"]] = 0
        if tag == "div" and (a.get("class") or "") == "plotly-graph-div":
            self.figures[self.section] += 1
        if (tag == "script" and a.get("src")) or (tag == "link" and "stylesheet" in (a.get("rel") or "")):
            self.external.append(a.get("src") or a.get("href"))


@pytest.fixture(scope="module")
def study_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("report") / "r.db"
    fake_study(f"sqlite:///{db}", "s")
    fake_study(f"sqlite:///{db}", "m", n=10, objectives=("accuracy", "params"), seed=1)
    return db


@pytest.fixture(scope="module")
def report_html(study_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = CliRunner().invoke(app, ["report", "--storage", str(study_db), "--study", "s", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_the_report_is_one_offline_html_file_with_a_figure_per_section(report_html):
    text = report_html.read_text()
    page = Page()
    page.feed(text)
    page.close()
    assert page.external == []  # plotly.js is inlined: nothing to fetch
    assert not re.search(r"<(script|link)[^>]+(src|href)=['\"]?https?:", text)
    figures = [s for s in page.sections if s != "top"]
    assert {"history", "importances", "params", "latency", "skips"} <= set(figures)
    assert any(s.startswith("parallel-") for s in figures) and "pareto" not in figures and "final" not in figures
    assert all(page.figures[s] == 1 for s in figures), page.figures
    assert page.figures["top"] == 0 and text.count("<details>") == 10


def test_the_json_holds_the_numbers_behind_the_figures(study_db):
    result = CliRunner().invoke(app, ["report", "--storage", str(study_db), "--study", "s", "--json", "--top", "3"])
    assert result.exit_code == 0, result.output
    nums = json.loads(result.stdout)
    assert nums["files"] == [] and nums["counts"] == {"complete": 14, "pruned": 1, "failed": 1, "running": 0,
                                                       "waiting": 0}
    complete = [t for t in nums["trials"] if t["state"] == "COMPLETE"]
    best = max(complete, key=lambda t: t["dev_accuracy"])
    assert nums["history"][-1]["best_so_far"] == best["dev_accuracy"] and nums["top"][0]["trial"] == best["trial"]
    assert len(nums["top"]) == 3 and nums["top"][0]["spec"]["family"] == best["family"]
    for group in nums["by_skip"]:
        accs = [t["dev_accuracy"] for t in complete if t["family"] == group["family"] and t["skip"] == group["skip"]]
        assert group["n"] == len(accs) and group["mean"] == pytest.approx(sum(accs) / len(accs))
    scopes = {r["scope"] for r in nums["importances"]}
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{study_db}")
    shared = set.intersection(*(set(t.params) for t in study.get_trials(states=(TrialState.COMPLETE,))))
    assert "all trials" in scopes and {r["param"] for r in nums["importances"] if r["scope"] == "all trials"} \
        == shared and "family" in shared  # only what every trial sampled
    for scope in scopes - {"all trials"}:
        assert all(r["param"].startswith(f"{scope}/") for r in nums["importances"] if r["scope"] == scope)


def test_a_multi_objective_study_gets_a_pareto_front(study_db, tmp_path):
    out = tmp_path / "m.html"
    result = CliRunner().invoke(app, ["report", "--storage", str(study_db), "--study", "m", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    nums = json.loads(result.stdout)
    points = {t["trial"]: t["values"] for t in nums["trials"] if t["state"] == "COMPLETE"}
    dominated = {a for a, (acc_a, p_a) in points.items() for b, (acc_b, p_b) in points.items()
                 if acc_b >= acc_a and p_b <= p_a and (acc_b, p_b) != (acc_a, p_a)}
    assert nums["pareto"] == sorted(set(points) - dominated)
    page = Page()
    page.feed(out.read_text())
    assert page.figures["pareto"] == 1


def test_a_final_stage_gets_its_section_when_the_results_have_one(study_db, tmp_path):
    """Final-stage runs live in the companion study `<study>-final` with stage, seed and contender."""
    import sqlite3

    db = tmp_path / "f.db"
    with sqlite3.connect(study_db) as source, sqlite3.connect(db) as copy:  # the WAL's pages too
        source.backup(copy)
    url = f"sqlite:///{db}"
    final = optuna.create_study(study_name="s-final", storage=url, direction="maximize")
    seed = optuna.distributions.IntDistribution(0, 10)
    for name, s, dev in [("trial 2", 0, 0.80), ("trial 2", 1, 0.82), ("kim-cnn", 0, 0.78), ("kim-cnn", 1, 0.79)]:
        info = {"family": "resnet", "skip": "none", "spec": {"name": name}, "params": 1000, "dev_accuracy": dev,
                "test_accuracy": dev - 0.01, "stage": "final", "seed": s, "contender": name,
                "baseline": name == "kim-cnn"}
        final.add_trial(create_trial(params={"seed": s}, distributions={"seed": seed}, value=dev,
                                     user_attrs={"rdzoo": info}))
    Store.open(url).sync(final, make_storage(url))
    out = tmp_path / "f.html"
    result = CliRunner().invoke(app, ["report", "--storage", str(db), "--study", "s", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    nums = json.loads(result.stdout)
    contenders = {c["contender"]: c for c in nums["final"]}
    assert contenders["trial 2"]["dev_mean"] == pytest.approx(0.81) and contenders["trial 2"]["seeds"] == [0, 1]
    assert contenders["kim-cnn"]["dev_sd"] == pytest.approx(0.00707, abs=1e-5)
    page = Page()
    page.feed(out.read_text())
    assert page.figures["final"] == 1
    assert len(nums["trials"]) == 16  # final runs are not search trials
    # the verdict `search` and `best` print: the recommended contender and the paired differences
    assert nums["verdict"]["recommended"]["contender"] == "trial 2" and contenders["trial 2"]["recommended"]
    assert not contenders["kim-cnn"]["recommended"]
    assert contenders["trial 2"]["vs_baseline"]["test_diff"] == pytest.approx(0.025)  # (0.79 - 0.77 + 0.81 - 0.78) / 2
    best = CliRunner().invoke(app, ["best", "--storage", str(db), "--study", "s", "--json"])
    assert nums["verdict"]["ranking"] == [r for r in json.loads(best.stdout) if r["stage"] == "final"]
    section = out.read_text().split("id='final'")[1].split("</section>")[0]
    assert "recommended: trial 2" in section and "<td>1*</td><td>trial 2</td>" in section and "+2.5" in section


def test_png_figures_are_written_with_matplotlib(study_db, report_html, tmp_path):
    pytest.importorskip("matplotlib")
    result = CliRunner().invoke(app, ["report", "--storage", str(study_db), "--study", "s", "--png", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = Page()
    page.feed(report_html.read_text())
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == sorted(f"{s}.png" for s in page.sections if s != "top")  # the HTML's figures, one file each
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in tmp_path.glob("*.png"))
    assert not (tmp_path / "report.html").exists()  # --png alone writes no HTML


def test_a_missing_plotly_names_the_extra_to_install(study_db, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    result = CliRunner().invoke(app, ["report", "--storage", str(study_db), "-o", str(tmp_path / "r.html")])
    assert result.exit_code != 0 and "pip install 'rdzoo[report]'" in str(result.exception)


def test_dashboard_says_how_to_install_it(study_db, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    result = CliRunner().invoke(app, ["dashboard", "--storage", str(study_db)])
    assert result.exit_code != 0 and "pip install 'rdzoo[dashboard]'" in str(result.exception)


# --- a real browser ---------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--window-size=1200,2400"]


def chromium(page, tmp_path, *mode):
    """Run headless Chromium with no network on a file; (stdout, the console messages it logged)."""
    if CHROMIUM is None:
        if os.environ.get("RDZOO_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    proc = subprocess.run([CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", *mode, page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    return proc.stdout, console


@pytest.mark.slow
def test_the_report_renders_in_a_browser_offline_without_console_errors(report_html, tmp_path):
    # the check itself: a page with a console error is caught
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>console.error('broken on purpose'); undefinedCall();</script></body></html>")
    _, console = chromium(broken, tmp_path, "--dump-dom")
    assert any("broken on purpose" in line for line in console) and any("undefinedCall" in line for line in console)

    dom, console = chromium(report_html, tmp_path, "--dump-dom")
    assert console == [], console
    page = Page()
    page.feed(dom)
    drawn = re.findall(r"<div[^>]*id=\"fig-([\w-]+)\".*?</svg>", dom, flags=re.S)
    figures = [s for s in page.sections if s != "top"]
    for key in figures:  # plotly drew each figure: its SVG with marks in it, or the parcoords canvas
        block = dom[dom.index(f'id="fig-{key}"'):]
        block = block[:block.find("</section>")]
        assert "main-svg" in block, key
        assert re.search(r'class="(point|trace[^"]*|bars|box|parcoords[^"]*)"', block), key
    assert set(drawn) >= set(figures) - {k for k in figures if k.startswith("parallel")}

    shot = tmp_path / "report.png"
    chromium(report_html, tmp_path, f"--screenshot={shot}")
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert image.size == (1200, 2400) and len(colours) > 200  # not a blank page: axes, marks, text
    coloured = sum(n for n, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 60)
    assert coloured > 2000  # the figures' coloured marks


# --- CLI conventions --------------------------------------------------------------------------


def test_help_names_values_as_click_does_and_nothing_after_a_flag():
    runner = CliRunner()
    for command in ("search", "train", "predict", "report", "export", "best"):
        text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"}).stdout
        assert "<bool>" not in text and "<list" not in text and "<str>" not in text, command
        assert not re.search(r"--json\s+(BOOLEAN|TEXT)", text), command
    text = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "120"}).stdout
    assert re.search(r"--set\s+TEXT", text) and re.search(r"--epochs\s+INTEGER", text)
    assert "Usage: " in text and " NAME" in text and "{name}" not in text


def test_studies_json_dates_are_iso_8601(study_db):
    rows = json.loads(CliRunner().invoke(app, ["studies", "--storage", str(study_db), "--json"]).stdout)
    for row in rows:
        when = datetime.datetime.fromisoformat(row["last_update"])
        assert when.tzinfo is not None and abs((datetime.datetime.now(datetime.timezone.utc) - when).days) < 1


def test_export_json_gives_the_trial_and_its_spec(study_db, tmp_path):
    runner = CliRunner()
    out = json.loads(runner.invoke(app, ["export", "--storage", str(study_db), "--study", "s", "--best", "--json"]).stdout)
    best = Results(str(study_db)).best("s", top=1)[0]
    assert out["trial"] == best.trial and out["dev_accuracy"] == best.dev_accuracy and out["out"] is None
    assert out["spec"]["family"] == best.family and out["spec"]["name"]
    target = tmp_path / "best.yaml"
    again = json.loads(runner.invoke(app, ["export", "--storage", str(study_db), "--study", "s", "--best", "--json",
                                           "-o", str(target)]).stdout)
    assert again["out"] == str(target) and yaml.safe_load(target.read_text())["family"] == best.family


def test_the_best_table_fits_80_columns_without_cutting_names(tmp_path):
    db = tmp_path / "w.db"
    study = fake_study(f"sqlite:///{db}", "s", n=24, seed=3)
    families = {t.user_attrs["rdzoo"]["family"] for t in study.trials}
    assert "transformer" in families
    text = CliRunner().invoke(app, ["best", "--storage", str(db), "--top", "20"], env={"COLUMNS": "80"}).stdout
    assert "…" not in text and "transformer" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_list_says_what_vocabulary_its_counts_assume():
    result = CliRunner().invoke(app, ["list", "kim-cnn"], env={"COLUMNS": "100"})
    assert re.search(r"kim-cnn\s+resnet\s+none\s+9\.36M\s+30k", result.stdout)
    assert "params assume the spec's vocabulary" in result.stdout
    rows = json.loads(CliRunner().invoke(app, ["list", "kim-cnn", "--json"]).stdout)
    assert rows[0]["vocab_size"] == 30000


def test_weight_files_get_the_mode_of_the_other_run_files(tmp_path):
    import torch
    from safetensors.torch import load_file

    from rdzoo import spec
    from rdzoo.registry import build_model
    from rdzoo.weights import save

    old = os.umask(0o022)
    try:
        path = save(build_model(spec.load("kim-cnn", {"embedding.vocab_size": 50, "embedding.dim": 8})),
                    tmp_path / "model.safetensors")
        other = tmp_path / "config.json"
        other.write_text("{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == other.stat().st_mode & 0o777 == 0o644
    assert all(torch.is_tensor(t) for t in load_file(path).values())  # still a weights file


def test_dashboard_serves_the_study_database_on_localhost(study_db):
    pytest.importorskip("optuna_dashboard")
    import socket
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "rdzoo.cli", "dashboard", "--storage", str(study_db),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    studies = json.loads(response.read())
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.5)
        else:
            pytest.fail("optuna-dashboard did not answer")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert {s["study_name"] for s in studies["study_summaries"]} == {"s", "m"}
    assert f"http://127.0.0.1:{port}/dashboard/" in err


@pytest.mark.slow
def test_workers_show_their_trials_and_the_summary(tmp_path, small_data):
    import sys

    db = tmp_path / "w.db"
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", "search", "--space", str(_write(tmp_path / "t.yaml", TINY)),
                           "--data", str(small_data), "--trials", "3", "--workers", "2", "--storage", str(db),
                           "--study", "w", "--pruner", "none", "--no-final"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if " trial " in line and "family=" in line]
    assert len(lines) >= 3 and [line.split("[")[2].split(",")[0] for line in lines[:3]] == ["1/3", "2/3", "3/3"]
    assert "search w stopped: the study reached its target of 3 finished trials" in proc.stdout
