"""A search whose trials are students of a teacher (rdzoo.nas.teach): the teacher fine-tuned once
and kept beside the study, its outputs computed once per key and reused by a rerun and another
worker, one sentence's latency as a column, an objective and a constraint checked before
training, the latency verdict, and the default teacher with and without its checkpoint package."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from rdzoo import train
from rdzoo.cli import app
from rdzoo.distill import targets as targets_mod
from rdzoo.errors import SpecError
from rdzoo.nas import FinalStage, SearchConfig, run, teach
from rdzoo.nas.loop import run_trials
from rdzoo.space import load_space
from rdzoo.text.data import load_data

SPACE = {
    "name": "tiny",
    "fixed": {"embedding": {"dim": 16, "vocab_size": 200, "max_len": 32},
              "train": {"epochs": 2, "batch_size": 64, "lr": 0.01}},
    "choose": {"family": {
        "resnet": {"encoder.stem_channels": {"choice": [8, 16, 32]}, "encoder.stages": {"choice": [[1], [1, 1]]},
                   "encoder.channels": 16, "encoder.skip": {"choice": ["none", "residual"]}}}},
}
TEACHER = "base: kim-cnn\nembedding: {dim: 16, vocab_size: 500}\nencoder: {stem_channels: 16}\ntrain: {epochs: 1}\n"


@pytest.fixture(scope="module")
def data():
    d = load_data("synthetic")
    d.train = d.train.subset(list(range(600)))
    return d


@pytest.fixture
def files(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(SPACE))
    (tmp_path / "teacher.yaml").write_text(TEACHER)
    return tmp_path


def config(tmp, **kw):
    base = dict(space=load_space(str(tmp / "tiny.yaml")), data_name="synthetic", study="t",
                storage=f"sqlite:///{tmp}/s.db", trials=3, seed=0, pruner="none")
    return SearchConfig(**{**base, **kw})


def counted(monkeypatch):
    """Count the teacher's forward passes over a transfer set (distill.targets.teacher_outputs)."""
    calls = []
    real = targets_mod.teacher_outputs

    def count(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(targets_mod, "teacher_outputs", count)
    return calls


def rows(db, sql):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


# --- the teacher, once ------------------------------------------------------------------------


def test_the_teacher_and_its_outputs_are_made_once_and_reused_by_a_rerun_and_another_worker(files, data, monkeypatch):
    calls = counted(monkeypatch)
    teacher = str(files / "teacher.yaml")
    cfg = config(files, teachers=[teacher], final_runs="never")
    first = run(cfg, data)
    assert first.finished == 3 and cfg.objectives == ["accuracy", "sentence_latency"]
    assert len(calls) == 1  # one transfer set for every trial of the run, not one a trial
    kept = list((files / "teachers").iterdir())  # beside the SQLite file
    assert len(kept) == 1
    attr = json.loads(rows(files / "s.db", "SELECT value_json FROM study_user_attributes WHERE key = 'teacher'")[0][0])
    assert attr["teachers"] == [teacher] and attr["runs"] == [str(kept[0])]
    assert 0 <= attr["test"][0] <= 1 and attr["sentence_latency_ms"] > 0 and attr["params"] > 0
    # every trial trained as a student: its spec carries train.distill
    specs = [json.loads(s) for (s,) in rows(files / "s.db", "SELECT spec FROM rdzoo_results")]
    assert len(specs) == 3 and all(s["train"]["distill"] is not None for s in specs)

    # the same study again, with a larger target: the kept teacher, the cached outputs
    again = run(config(files, teachers=[teacher], final_runs="never", trials=5), data)
    assert again.finished == 5 and len(calls) == 1
    assert list((files / "teachers").iterdir()) == kept
    assert rows(files / "s.db", "SELECT count(*) FROM rdzoo_targets") == [(1,)]

    # another worker process on the study: it must not run the teacher at all
    script = (
        "import sys\n"
        "from rdzoo.distill import targets as t\n"
        "def no(*a, **k): raise SystemExit('the teacher ran')\n"
        "t.teacher_outputs = no\n"
        "from rdzoo.nas import SearchConfig, run\n"
        "from rdzoo.space import load_space\n"
        "from rdzoo.text.data import load_data\n"
        "d = load_data('synthetic'); d.train = d.train.subset(list(range(600)))\n"
        f"cfg = SearchConfig(load_space({str(files / 'tiny.yaml')!r}), 'synthetic', 't', "
        f"{cfg.storage!r}, trials=6, seed=0, pruner='none', teachers=None, final_runs='never')\n"
        "out = run(cfg, d)\n"
        "print(out.finished, cfg.teachers)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "6" and teacher in done.stdout  # no --teacher: the study's own
    assert rows(files / "s.db", "SELECT count(*) FROM rdzoo_targets") == [(1,)]


def test_a_study_keeps_its_teacher(files, data):
    teacher = str(files / "teacher.yaml")
    run(config(files, teachers=[teacher], final_runs="never", trials=1), data)
    lines = []
    cfg = config(files, teachers=None, final_runs="never", trials=1)
    teach.settle(cfg, lines.append)  # no --teacher: the study's, said in one line
    assert cfg.teachers == [teacher] and cfg.objectives == ["accuracy", "sentence_latency"]
    assert len(lines) == 1 and "learns from its teacher teacher again, kept in" in lines[0]
    with pytest.raises(SpecError, match="teachers: study 't' was searched with teacher .*, not --teacher none"):
        teach.settle(config(files, teachers=[], final_runs="never"))
    with pytest.raises(SpecError, match="--teacher none means no teacher"):
        teach.given(["none", teacher])


def test_seeds_that_draw_no_copies_from_one_split_share_the_teachers_outputs(files, data, monkeypatch):
    from dataclasses import replace

    from rdzoo import spec

    calls = counted(monkeypatch)
    cfg = config(files, teachers=[str(files / "teacher.yaml")])
    teach.settle(cfg)
    teaching = teach.prepare(cfg, data)  # the search's own set: seed 0 of the space
    assert len(calls) == 1 and teaching.seeds_share_outputs and teaching.seed_seconds() == 0.0
    student = spec.load("kim-cnn", {"embedding.dim": 8, "encoder.stem_channels": 8, "train.epochs": 1})
    for seed in (1, 2):  # the final stage's seeds: the data's own dev split, no copies, the same set
        teaching.outputs(spec.load(student, {"train.seed": seed, "train.distill": {}}).train, data)
    assert len(calls) == 1
    copies = spec.load(student, {"train.seed": 1, "train.distill.augment_copies": 1}).train
    teaching.outputs(copies, data)  # copies are drawn by the seed: a set of its own
    assert len(calls) == 2
    no_dev = replace(data, dev=None)  # each seed holds its own dev split out: another training split
    for seed in (1, 2):
        teaching.outputs(spec.load(student, {"train.seed": seed, "train.distill": {}}).train, no_dev)
    assert len(calls) == 4


# --- one sentence's latency -------------------------------------------------------------------


def test_max_latency_prunes_a_trial_before_it_trains_with_its_reason(files, data, monkeypatch):
    def no_training(*a, **k):
        raise AssertionError("a trial above --max-latency was trained")

    monkeypatch.setattr(train, "fit", no_training)
    cfg = config(files, trials=2, max_latency=1e-4)  # 0.1 microseconds: no model is that fast
    outcome = run_trials(cfg, data)
    assert outcome.counts.pruned == 2 and outcome.counts.complete == 0
    got = rows(files / "s.db", "SELECT state, epochs, train_seconds, sentence_latency_ms, params, error "
                               "FROM rdzoo_results")
    assert len(got) == 2
    for state, epochs, seconds, latency, params, error in got:
        assert state == "PRUNED" and epochs is None and seconds is None  # no epoch trained
        assert latency > 1e-4 and params > 0
        assert error == f"sentence latency {latency:.2f} ms above --max-latency 0.0001 ms"


def test_every_trial_records_one_sentences_latency_and_it_can_be_an_objective(files, data):
    cfg = config(files, objectives=["accuracy", "sentence_latency"], trials=2)
    outcome = run_trials(cfg, data)
    assert outcome.counts.complete == 2
    got = rows(files / "s.db", "SELECT sentence_latency_ms, objective_values, dev_accuracy FROM rdzoo_results")
    for latency, values, _ in got:
        assert latency > 0 and json.loads(values)[1] == latency
    # the live view's best is the best score of the front's trade-offs
    import optuna

    from rdzoo.nas.loop import best_value

    study = optuna.load_study(study_name="t", storage=cfg.storage)
    assert best_value(study) == max(dev for _, _, dev in got)


# --- the default teacher, and none -------------------------------------------------------------


def test_teacher_none_is_the_single_objective_search(files):
    result = CliRunner().invoke(app, ["search", "--space", str(files / "tiny.yaml"), "--data", "synthetic",
                                      "--trials", "2", "--epochs", "1", "--no-final", "--teacher", "none",
                                      "--storage", f"sqlite:///{files}/s.db", "--json"])
    assert result.exit_code == 0, result.output
    assert "no teacher" not in result.output  # no line about installing one
    attrs = dict(rows(files / "s.db", "SELECT key, value_json FROM study_user_attributes"))
    assert json.loads(attrs["objectives"]) == ["accuracy"] and "teacher" not in attrs
    assert not (files / "teachers").exists()
    specs = [json.loads(s) for (s,) in rows(files / "s.db", "SELECT spec FROM rdzoo_results")]
    assert specs and all(s["train"]["distill"] is None for s in specs)


# --- the final stage and the latency verdict --------------------------------------------------


def test_the_final_stage_retrains_the_latency_front_as_students_and_the_verdict_pairs_every_row(files, data):
    from rdzoo import spec
    from rdzoo.runs import save_run
    from rdzoo.text.data import TextData

    clean = TextData("synthetic", data.train, data.dev, None)
    runs = []
    for seed in (1, 2):  # two teacher runs: an ensemble whose rows pair with the final stage's seeds 1 and 2
        fitted = train.fit(spec.load(str(files / "teacher.yaml"), {"train.seed": seed}), clean)
        runs.append(str(save_run(fitted, files / f"teacher-{seed}", {"data": "synthetic"})))
    (files / "base.yaml").write_text(TEACHER)  # a small kim-cnn as the baseline
    cfg = config(files, teachers=runs, trials=4, final=FinalStage(2, 2, str(files / "base.yaml")))
    outcome = run(cfg, data)
    assert outcome.final is not None and outcome.final.seeds == [1, 2]
    # the students learnt on the final stage's augmented copies (FinalStage.copies); the baseline alone
    assert outcome.final.copies == FinalStage().copies == 2
    final_specs = [(json.loads(s), b) for s, b in rows(files / "s.db", "SELECT spec, baseline FROM rdzoo_results "
                                                      "WHERE stage = 'final'")]
    assert {(s["train"]["distill"] or {}).get("augment_copies") if s["train"].get("distill") else None
            for s, b in final_specs} == {2, None}
    assert all((s["train"].get("distill") is None) == bool(b) for s, b in final_specs)
    v = outcome.verdict
    assert v.teacher.seeds == [1, 2] and v.teacher.n == 2 and v.teacher.contender == "teacher-1 + teacher-2"
    by_name = {s.contender: s for s in v.ranking}
    assert not by_name[v.baseline].taught and all(s.taught for s in v.ranking if not s.baseline)
    assert [t.kind for t in v.tiers].count("teacher") == 1 and len(v.tiers) >= 2
    latencies = [t.max_latency_ms for t in v.tiers]
    assert latencies == sorted(latencies)
    for t in v.tiers:  # every difference paired by seed: both ran seeds 1 and 2
        if t.contender != v.baseline:
            assert t.vs_baseline.paired and t.vs_baseline.n == 2, t
        if t.kind != "teacher":
            assert t.vs_teacher.paired and t.vs_teacher.n == 2, t
            s = by_name[t.contender]
            teacher_by_seed = dict(zip(v.teacher.seeds, v.teacher.test))
            assert t.vs_teacher.test_diff == pytest.approx(sum(x - teacher_by_seed[seed] for x, seed in
                                                               zip(s.test, s.seeds)) / 2)
    # each row is the most accurate (mean dev) of the final models no slower than it
    for t in (t for t in v.tiers if t.kind != "teacher"):
        faster = [s for s in v.ranking if s.sentence_latency_ms <= t.max_latency_ms]
        assert by_name[t.contender].dev_mean == max(s.dev_mean for s in faster)

    # best and its --json show the same verdict, from the stored runs alone
    args = ["--study", "t", "--storage", cfg.storage]
    shown = CliRunner().invoke(app, ["best", *args])
    assert shown.exit_code == 0, shown.output
    assert "the most accurate model at each latency" in shown.output and "teacher-1 + teacher-2" in shown.output
    board = json.loads(CliRunner().invoke(app, ["best", *args, "--json"]).output)
    final = [r for r in board if r["stage"] == "final"]
    assert final and all(r["sentence_latency_ms"] > 0 and "vs_teacher" in r for r in final)
    report = json.loads(CliRunner().invoke(app, ["report", *args, "--json"]).output)
    assert report["verdict"]["tiers"] == v.to_json()["tiers"]
    assert all(t["sentence_latency_ms"] > 0 for t in report["top"])
    pytest.importorskip("plotly")
    written = CliRunner().invoke(app, ["report", *args, "-o", str(files / "r.html")])
    assert written.exit_code == 0, written.output
    page = (files / "r.html").read_text()
    assert "at &lt;= ms" in page and "vs teacher teacher-1 + teacher-2" in page and "<th>sent ms</th>" in page


def test_the_final_stages_copies_shrink_to_fit_the_timeout_and_stay_the_same_for_every_seed(files, data,
                                                                                           monkeypatch, capsys):
    import time

    import optuna

    from rdzoo import spec
    from rdzoo.nas import final as final_stage

    (files / "base.yaml").write_text(TEACHER)
    cfg = config(files, teachers=[str(files / "teacher.yaml")], trials=3, final_runs="never",
                 final=FinalStage(2, 2, str(files / "base.yaml"), copies=3))
    teach.settle(cfg)
    teaching = teach.prepare(cfg, data)
    run_trials(cfg, data, None, teaching)
    study = optuna.load_study(study_name="t", storage=cfg.storage)
    base = spec.load(str(files / "base.yaml")).to_dict()

    def need(n):  # both seeds' runs with n copies, and the teacher's outputs for each seed's transfer set
        return 2 * teaching.seed_seconds(n) + final_stage.estimate_seconds(study, 2, [1, 2], base, True, copies=n)

    assert need(0) < need(1) < need(2) < need(3)
    monkeypatch.setattr(time, "monotonic", lambda: 0.0)
    said = []
    nothing = final_stage.run_final(cfg, data, teaching=teaching, deadline=-1.0, say=said.append)  # every seed cut
    assert said == []  # nothing decided, and no word on copies for students that do not train
    from rdzoo.nas import chosen
    from rdzoo.query import Results

    pending = chosen(Results(cfg.storage), "t")  # the best trial, said to be one while the stage is pending
    assert pending.summary["stage"] == "search" and "final stage of t has no finished seed yet" in pending.note
    assert nothing.ran == 0 and nothing.cut == [1, 2]
    assert "copies" not in optuna.load_study(study_name="t-final", storage=cfg.storage).user_attrs
    # the end names the cut seeds and how to add them, and no --no-final that was never given
    from rdzoo import render
    from rdzoo.records import Outcome, derive_score

    outcome = Outcome("t", derive_score([]), 3, 3, "target", 1.0, final=nothing)
    capsys.readouterr()
    render.search_end(outcome, cfg, 0, False, None, None)
    end = capsys.readouterr().out
    assert "left out to end by --timeout" in end and "--no-final" not in end, end
    assert "the same command adds them, keeping that time" in end  # no --timeout: a rerun adds them
    # a --timeout that one seed's runs do not fit in: a rerun would never add them, so the line says what would
    assert nothing.cut_seconds > 0
    cfg.timeout = nothing.cut_seconds / 4
    render.search_end(outcome, cfg, 0, False, None, None)
    end = capsys.readouterr().out
    assert "more than --timeout" in end and "(or none) adds them" in end and "keeping that time" not in end, end
    said = []
    done = final_stage.run_final(cfg, data, teaching=teaching, deadline=(need(1) + need(2)) / 2, say=said.append)
    assert done.copies == 1 and done.cut == [] and done.ran == done.runs
    assert said == ["final stage: its students learn from the teacher on 1 augmented copy of each training text "
                    "(not 3: the most that fit --timeout)"]
    final = optuna.load_study(study_name="t-final", storage=cfg.storage)
    assert final.user_attrs["copies"] == 1
    copies = {(json.loads(s)["train"].get("distill") or {}).get("augment_copies", "alone")
              for (s,) in rows(files / "s.db", "SELECT spec FROM rdzoo_results WHERE stage = 'final'")}
    assert copies == {1, "alone"}
    # the stage keeps its copies: a rerun asked for more trains its students alike, and keeps time for that many
    assert final_stage.stage_copies(final.user_attrs.get("copies"), final_stage.done_runs(final), 3) == 1
    cfg.reserve = final_stage.reserve(cfg, teaching)
    from rdzoo.nas.loop import typical_trial_seconds

    margin = 2 * (typical_trial_seconds(study) * 2 + teaching.seed_seconds(1))
    assert cfg.reserve(study) == pytest.approx(margin)
    # under --timeout, a final stage with copies keeps at least FINAL_SHARE of the time left after the teacher
    cfg.deadline = 10_000.0  # time.monotonic() is 0 here
    assert final_stage.reserve(cfg, teaching)(study) == pytest.approx(final_stage.FINAL_SHARE * 10_000.0)
    assert final_stage.reserve(cfg, None)(study) < 100  # a plain search: its final stage has no copies to spend it on
    cfg.final = FinalStage(2, 2, str(files / "base.yaml"), copies=0)
    assert final_stage.reserve(cfg, teaching)(study) == pytest.approx(margin)
    # a student's run grows with its transfer set; a spec that is no student does not
    assert final_stage.growth({"train": {"distill": {}}}, 2) == 3.0
    assert final_stage.growth({"train": {"distill": {"augment_copies": 3}}}, 1) == 1.0
    assert final_stage.growth({"train": {}}, 2) == 1.0


def test_a_difference_without_a_common_seed_is_the_unpaired_difference_of_the_means():
    from rdzoo.nas.verdict import compare

    paired = compare([1, 2], [0.8, 0.9], [2, 1], [0.7, 0.7], "b")
    assert paired.paired and paired.n == 2 and paired.test_diff == pytest.approx(0.15)
    unpaired = compare([1, 2], [0.8, 0.9], [0], [0.99], "teacher")
    assert not unpaired.paired and unpaired.n == 0 and unpaired.test_diff == pytest.approx(-0.14)
    assert unpaired.call == "behind"  # 0.14 below: more than twice the students' standard error (0.05)
    # the final table's column marks an unpaired difference as the latency table does
    from types import SimpleNamespace

    from rdzoo.render import difference, versus

    assert versus(SimpleNamespace(vs_baseline=unpaired, baseline=False)) == difference(unpaired) == "~-14.0 behind"
    assert versus(SimpleNamespace(vs_baseline=paired, baseline=False)) == "+15.0 sd 7.1 ahead"
    assert difference(paired) == "+15.0 sd 7.1 ahead (2 seeds)"
    assert versus(SimpleNamespace(vs_baseline=paired, baseline=True)) == "baseline"


def test_a_model_the_teacher_dominates_is_no_row_of_the_latency_verdict():
    from rdzoo.nas.verdict import tiers
    from rdzoo.records import Standing, TeacherStanding

    def standing(name, ms, dev):
        return Standing(name, False, None, "resnet", "residual", 1000, None, None, dev, None, dev, None, [0], 1,
                        None, None, None, [dev], [dev], sentence_latency_ms=ms, taught=True)

    teacher = TeacherStanding("kim-cnn", ["t"], [0], [0.99], 0.99, None, 1, [0.98], 5000, 0.6)
    fast, dominated, better = standing("trial 1", 0.2, 0.90), standing("trial 2", 0.9, 0.95), \
        standing("trial 3", 1.5, 0.99)
    rows = tiers([fast, dominated, better], None, teacher)
    # trial 2 is slower than the teacher and less accurate on dev: not a row; trial 3 beats the teacher on dev
    assert [(t.contender, t.kind) for t in rows] == [("trial 1", "student"), ("kim-cnn", "teacher"),
                                                      ("trial 3", "student")]
    assert [t.contender for t in tiers([fast, dominated], None, None)] == ["trial 1", "trial 2"]  # no teacher: both
    # a teacher without a dev score (a run folder without metrics.json) dominates nothing
    unscored = TeacherStanding("kim-cnn", ["t"], [0], [0.99], 0.99, None, 1, [None], 5000, 0.6)
    assert [t.contender for t in tiers([fast, dominated], None, unscored)] == ["trial 1", "kim-cnn", "trial 2"]


def test_the_final_stage_spreads_its_contenders_over_the_latency_front():
    from rdzoo.nas.final import Contender, front

    def c(n, dev, ms):
        out = Contender(f"trial {n}", {}, n)
        out.dev, out.latency = dev, ms
        return out

    trials = [c(0, 0.80, 1.0), c(1, 0.85, 2.0), c(2, 0.84, 3.0), c(3, 0.90, 4.0), c(4, 0.91, 8.0), c(5, 0.95, 9.0),
              c(6, 0.70, 0.5)]
    # the front from the fastest: 6, 0, 1, 3, 4, 5 (trial 2 is slower and worse than trial 1)
    assert [x.source for x in front(trials, 10)] == [6, 0, 1, 3, 4, 5]
    assert [x.source for x in front(trials, 3)] == [6, 1, 5] or [x.source for x in front(trials, 3)] == [6, 3, 5]
    assert [x.source for x in front(trials, 1)] == [5]  # one: the most accurate


# --- the main job: `rdzoo search` with no options -----------------------------------------------


def search_args(files, *more):
    return ["search", "--space", str(files / "tiny.yaml"), "--data", "synthetic", "--trials", "2", "--epochs", "1",
            "--storage", f"sqlite:///{files}/s.db", "--study", "t", *more]


def test_the_main_job_without_the_checkpoint_package_says_how_to_install_it_and_searches_as_before(files, monkeypatch):
    monkeypatch.delenv("RDZOO_TEACHER")
    monkeypatch.setattr(teach, "installed", lambda module: False)
    result = CliRunner().invoke(app, search_args(files, "--no-final"))
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if "no teacher" in line]
    assert said == [f"no teacher: minilm-l6's checkpoint is not installed; `{teach.INSTALL}` makes every trial a "
                    "student of it (--teacher none hides this line)"]
    attrs = dict(rows(files / "s.db", "SELECT key, value_json FROM study_user_attributes"))
    assert json.loads(attrs["objectives"]) == ["accuracy"] and "teacher" not in attrs


def test_the_main_job_learns_from_minilm_when_its_checkpoint_package_is_installed(files, monkeypatch):
    pytest.importorskip(teach.DEFAULT_PACKAGE)
    monkeypatch.delenv("RDZOO_TEACHER")
    cfg = config(files, teachers=None)
    lines = []
    teach.settle(cfg, lines.append)
    assert cfg.teachers == ["minilm-l6"] and cfg.objectives == ["accuracy", "sentence_latency"] and lines == []


def test_the_main_job_with_a_default_teacher_ends_with_the_latency_verdict(files, monkeypatch):
    """The whole path of `rdzoo search` with no --teacher where the default teacher is installed,
    with a small spec standing in for minilm-l6 (whose fine-tuning takes minutes)."""
    monkeypatch.delenv("RDZOO_TEACHER")
    monkeypatch.setattr(teach, "installed", lambda module: True)
    monkeypatch.setattr(teach, "DEFAULT_TEACHER", str(files / "teacher.yaml"))
    (files / "base.yaml").write_text(TEACHER)
    result = CliRunner().invoke(app, search_args(files, "--final", "2", "--final-seeds", "1", "--baseline",
                                                 str(files / "base.yaml")))
    assert result.exit_code == 0, result.output
    assert "the most accurate model at each latency" in result.stdout and "teacher (teacher" in result.stdout
    assert len(list((files / "teachers").iterdir())) == 1
    assert f"teacher teacher: fine-tuning it on the training split, once (kept in {files / 'teachers'})" \
        in result.stderr.splitlines()
    # the same command again: the study's teacher, said in one line, nothing fine-tuned or computed again
    calls = counted(monkeypatch)
    again = CliRunner().invoke(app, search_args(files, "--final", "2", "--final-seeds", "1", "--baseline",
                                                str(files / "base.yaml")))
    assert again.exit_code == 0, again.output
    assert [line for line in again.stderr.splitlines() if "learns from its teacher" in line] == [
        f"study t learns from its teacher teacher again, kept in {next((files / 'teachers').iterdir())}"]
    assert calls == [] and len(list((files / "teachers").iterdir())) == 1
    assert "fine-tuning" not in again.stderr


def test_the_timeout_covers_the_teachers_fine_tuning_and_a_cut_teacher_is_not_kept(files, monkeypatch, capsys):
    from rdzoo.cli import main

    (files / "slow.yaml").write_text(TEACHER.replace("epochs: 1", "epochs: 50"))
    # an epoch timed shorter than it runs: fine-tuning starts, and the deadline stops it
    monkeypatch.setattr("rdzoo.distill.teacher.epoch_seconds", lambda *a, **k: 0.001)
    monkeypatch.setattr(sys, "argv", ["rdzoo", *search_args(files, "--teacher", str(files / "slow.yaml"),
                                                            "--timeout", "1s")])
    with pytest.raises(SystemExit) as stop:
        main()  # through the command line's error boundary
    err = capsys.readouterr().err
    lines = err.splitlines()  # the note that it fine-tunes, then one error line
    assert stop.value.code == 1 and len(lines) == 2 and lines[0].startswith("teacher slow: fine-tuning")
    assert "Traceback" not in err
    assert "rdzoo: error: the teacher slow was still fine-tuning when --timeout 0:00:01 ran out (epoch " in err
    assert "give a longer --timeout" in err
    assert not (files / "teachers").exists() or not any((files / "teachers").iterdir())  # nothing cut short kept


def timed(monkeypatch, seconds: float) -> list:
    """Every epoch of a teacher timed at `seconds`; the list collects the specs timed."""
    timed_specs = []

    def epoch_seconds(spec, data, **kwargs):
        timed_specs.append(spec)
        return seconds

    monkeypatch.setattr("rdzoo.distill.teacher.epoch_seconds", epoch_seconds)
    return timed_specs


def test_a_teacher_is_fine_tuned_for_the_epochs_that_fit_its_share_of_the_timeout_and_kept_so(files, monkeypatch):
    monkeypatch.delenv("RDZOO_TEACHER")
    monkeypatch.setattr(teach, "installed", lambda module: True)
    (files / "four.yaml").write_text(TEACHER.replace("epochs: 1", "epochs: 4"))
    monkeypatch.setattr(teach, "DEFAULT_TEACHER", str(files / "four.yaml"))
    specs = timed(monkeypatch, 100.0)  # 40% of 10 minutes holds two epochs of 100 s
    result = CliRunner().invoke(app, search_args(files, "--no-final", "--timeout", "10m"))
    assert result.exit_code == 0, result.output
    assert [s.train.epochs for s in specs] == [4]
    assert "teacher four: about 0:01:40 an epoch here; fine-tuning 2 of its recipe's 4 epochs, to keep within 40% " \
           "of --timeout 0:10:00" in result.stderr.splitlines()
    (kept,) = (files / "teachers").iterdir()
    assert json.loads((kept / "config.json").read_text())["epochs"] == 2
    # the study again, with no --timeout: its two-epoch teacher is found, not timed or fine-tuned again
    again = CliRunner().invoke(app, search_args(files, "--no-final", "--trials", "3"))
    assert again.exit_code == 0, again.output
    assert len(specs) == 1 and "fine-tuning" not in again.stderr and len(list((files / "teachers").iterdir())) == 1


def test_the_default_teacher_that_does_not_fit_the_timeout_leaves_a_plain_search_said_in_one_line(files, monkeypatch):
    monkeypatch.delenv("RDZOO_TEACHER")
    monkeypatch.setattr(teach, "installed", lambda module: True)
    monkeypatch.setattr(teach, "DEFAULT_TEACHER", str(files / "teacher.yaml"))
    timed(monkeypatch, 1000.0)
    result = CliRunner().invoke(app, search_args(files, "--no-final", "--timeout", "10m"))
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("no teacher")]
    assert len(said) == 1 and said[0].startswith("no teacher: one epoch of teacher takes about 0:16:40 here")
    assert "(a new --study with --timeout 42m or more, at this machine's speed now, learns from it;" in said[0]
    attrs = dict(rows(files / "s.db", "SELECT key, value_json FROM study_user_attributes"))
    assert json.loads(attrs["objectives"]) == ["accuracy"] and "teacher" not in attrs
    assert not (files / "teachers").exists()
    assert rows(files / "s.db", "SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'") == [(2,)]


def test_a_named_teacher_that_does_not_fit_the_timeout_is_refused_before_it_trains(files, monkeypatch, capsys):
    from rdzoo.cli import main

    timed(monkeypatch, 1000.0)
    monkeypatch.setattr(sys, "argv", ["rdzoo", *search_args(files, "--teacher", str(files / "teacher.yaml"),
                                                            "--timeout", "10m")])
    with pytest.raises(SystemExit) as stop:
        main()
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "rdzoo: error: teacher teacher: one epoch takes about 0:16:40 here, more than the 40% of --timeout 0:10:00 "
        "a teacher may use; give --timeout 42m or more (at this machine's speed now), a teacher already trained (a run "
        "folder), or --teacher none")
    assert not (files / "teachers").exists()
    assert not (files / "s.db").exists()  # refused before the study was opened: no empty database left behind
