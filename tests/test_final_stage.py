"""The final stage, its verdict, the spaces' start models, and no repeated work in seeded searches."""

import dataclasses
import json

import optuna
import pytest
import yaml
from typer.testing import CliRunner

from rdzoo import plan, spec
from rdzoo.cli import app
from rdzoo.nas import FinalStage, SearchConfig
from rdzoo.nas.final import final_seeds, run_final, run_key
from rdzoo.nas.loop import make_sampler, run_trials, trial_seed
from rdzoo.nas.objective import Objective
from rdzoo.nas.verdict import verdict
from rdzoo.query import Results
from rdzoo.records import TrialRecord
from rdzoo.render import verdict_lines
from rdzoo.space import list_spaces, load_space, parse_space
from rdzoo.spec import SpecError
from rdzoo.text.data import load_data

TINY = {
    "name": "tiny",
    "fixed": {"embedding": {"dim": 8, "vocab_size": 200, "max_len": 24},
              "train": {"epochs": 1, "batch_size": 64, "lr": 0.01}},
    "choose": {"family": {
        "resnet": {"encoder.stem_channels": {"choice": [8, 16]}, "encoder.stages": {"choice": [[1], [1, 1]]},
                   "encoder.channels": 8, "encoder.skip": {"choice": ["none", "residual", "gated", "rezero"]}},
        "densenet": {"encoder.stem_channels": 8, "encoder.block_config": {"choice": [[2], [2, 2]]},
                     "encoder.growth_rate": {"int": [4, 12], "step": 4}, "encoder.compression": {"float": [0.5, 1.0]}},
    }},
}
BASE = {"name": "tiny-kim", "family": "resnet", "embedding": {"kind": "word", "dim": 8, "max_len": 24},
        "encoder": {"stem_channels": 8, "stem_kernels": [3, 4], "stages": [], "channels": [], "skip": "none",
                    "norm": "none"},
        "head": {"pool": "max", "dropout": 0.5}, "train": {"epochs": 1, "batch_size": 64, "lr": 0.01}}


@pytest.fixture(scope="module")
def data():
    d = load_data("synthetic")
    d.train, d.dev, d.test = d.train.subset(list(range(300))), d.dev.subset(list(range(100))), d.test.subset(list(range(100)))
    return d


def write(tmp, name, obj):
    path = tmp / name
    path.write_text(yaml.safe_dump(obj))
    return str(path)


def config(tmp, **kw):
    base = dict(space=parse_space(TINY), data_name="synthetic", study="t", storage=f"sqlite:///{tmp}/s.db",
                trials=3, seed=0, pruner="none")
    return SearchConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data):
    """A 3-trial search and its final stage with K=2, S=2 and a tiny baseline."""
    tmp = tmp_path_factory.mktemp("final")
    cfg = config(tmp)
    run_trials(cfg, data)
    base = write(tmp, "tiny-kim.yaml", BASE)
    cfg.final = FinalStage(2, 2, base)
    done = run_final(cfg, data)
    return cfg, base, done


def test_final_stage_retrains_top_k_and_the_baseline_with_the_same_seeds(finished):
    cfg, base, done = finished
    assert done.seeds == [1, 2] and len(done.contenders) == 3 and done.ran == done.runs == 6
    rows = Results(cfg.storage).final("t")
    assert len(rows) == 6 and all(r.stage == "final" and r.state == "COMPLETE" for r in rows)
    by_contender = {}
    for r in rows:
        by_contender.setdefault(r.contender, set()).add(r.seed)
    assert set(map(frozenset, by_contender.values())) == {frozenset({1, 2})}  # paired: every seed for everyone
    baseline = [r for r in rows if r.baseline]
    assert {r.seed for r in baseline} == {1, 2} and baseline[0].contender == "tiny-kim"
    assert all(r.spec["train"]["seed"] == r.seed for r in rows)
    # Optuna's own tools see the runs: a companion study with the seed as a parameter
    final = optuna.load_study(study_name="t-final", storage=cfg.storage)
    assert sorted(t.params["seed"] for t in final.trials) == [1, 1, 1, 2, 2, 2]
    assert {t.params["source"] for t in final.trials} >= {-1}
    assert all(t.value == t.user_attrs["rdzoo"]["dev_accuracy"] for t in final.trials)


def test_verdict_pairs_by_seed_against_the_baseline(finished):
    cfg, base, _ = finished
    store = Results(cfg.storage)
    rows = store.final("t")
    v = verdict(rows, store.best("t", top=100))
    assert v.baseline == "tiny-kim" and len(v.ranking) == 3
    assert [c.dev_mean for c in v.ranking] == sorted((c.dev_mean for c in v.ranking), reverse=True)
    for c in v.ranking:
        runs = {r.seed: r for r in rows if r.contender == c.contender}
        base_runs = {r.seed: r for r in rows if r.baseline}
        diffs = [runs[s].test_accuracy - base_runs[s].test_accuracy for s in (1, 2)]
        assert c.vs_baseline.n == 2
        assert c.vs_baseline.test_diff == pytest.approx(sum(diffs) / 2)
        assert c.vs_baseline.call in ("ahead", "level", "behind")
    assert set(v.skips) <= {"resnet", "densenet"} and v.skips


def test_final_stage_resumes_after_an_interruption(tmp_path, data, monkeypatch):
    import rdzoo.train

    cfg = config(tmp_path, final=FinalStage(2, 2, None))
    run_trials(cfg, data)
    real, calls = rdzoo.train.fit, []

    def fit_then_stop(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C, or a kill: the run in progress is lost, nothing else
        return real(*args, **kw)

    monkeypatch.setattr(rdzoo.train, "fit", fit_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_final(cfg, data)
    assert len(Results(cfg.storage).final("t")) == 2
    monkeypatch.setattr(rdzoo.train, "fit", real)
    again = run_final(cfg, data)
    assert again.ran == 2 and again.runs == 4  # only the missing runs
    rows = Results(cfg.storage).final("t")
    assert sorted((r.contender, r.seed) for r in rows) == sorted(
        {(r.contender, r.seed) for r in rows})  # no run twice
    assert len(rows) == 4
    assert run_final(cfg, data).ran == 0


def test_best_json_and_export_of_the_recommended_spec(finished, tmp_path):
    cfg, base, _ = finished
    runner = CliRunner()
    result = runner.invoke(app, ["best", "--storage", cfg.storage, "--study", "t", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    head = [r for r in rows if r["stage"] == "final"]
    assert len(head) == 3 and rows[: len(head)] == head  # the final ranking comes first
    for key in ("dev_mean", "dev_sd", "test_mean", "test_sd", "seeds", "vs_baseline"):
        assert key in head[0]
    assert head[0]["seeds"] == [1, 2] and head[0]["vs_baseline"]["n"] == 2
    assert any(r["stage"] == "search" for r in rows)
    text = runner.invoke(app, ["best", "--storage", cfg.storage, "--study", "t"]).output
    assert "final stage of t" in text and "+-" in text
    out = tmp_path / "rec.yaml"
    result = runner.invoke(app, ["export", "--best", "--storage", cfg.storage, "--study", "t", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rebuilt = spec.load(str(out))
    (rec,) = [r for r in head if r["recommended"]]
    assert plan.count_params(rebuilt) == rec["params"]
    assert run_key(rebuilt.to_dict()) == run_key(rec["spec"])


def test_a_baseline_the_search_found_shares_its_runs(tmp_path, data):
    cfg = config(tmp_path, trials=2)
    run_trials(cfg, data)
    best = Results(cfg.storage).best("t", top=1)[0]
    base = write(tmp_path, "same.yaml", {**best.spec, "name": "same"})
    cfg.final = FinalStage(1, 1, base)
    done = run_final(cfg, data)
    assert done.runs == 1  # one contender that is also the baseline
    v = verdict(Results(cfg.storage).final("t"))
    assert v.recommended.baseline and v.recommended.vs_baseline.call == "level"


def test_final_seeds_are_fresh_and_shared():
    assert final_seeds(3) == [1, 2, 3]
    assert final_seeds(3, screening_seed=2) == [1, 3, 4]


# --- spaces that hold the zoo's sentence models -------------------------------------------


@pytest.mark.parametrize("name", [n for n in list_spaces() if load_space(n).start])
def test_start_models_are_points_of_their_space(name):
    space = load_space(name)
    for model in space.start:
        sampled = spec.from_dict(space.sample(optuna.trial.FixedTrial(space.params_for(model))))
        want = spec.load(model).to_dict()
        got = sampled.to_dict()
        for key in ("name", "description"):
            want.pop(key), got.pop(key)
        assert got == want


def test_default_space_starts_from_every_sentence_model():
    assert set(load_space("default").start) >= {"kim-cnn", "resnet-sent", "densenet-sent", "densenet-sent-char",
                                                 "transformer-sent"}


def test_a_start_model_outside_the_space_is_refused():
    with pytest.raises(SpecError, match="kim-cnn.*stem_channels is 100"):
        parse_space({**TINY, "start": ["kim-cnn"]}).params_for("kim-cnn")


def test_start_models_are_trained_first_and_never_pruned(tmp_path, data, monkeypatch):
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    write(zoo, "tiny-kim.yaml", {**BASE, "embedding": {**BASE["embedding"], "vocab_size": 200},
                                 "encoder": {**BASE["encoder"], "stages": [1], "channels": [8],
                                                     "skip": "residual", "stem_kernels": [3], "norm": "batch"}})
    monkeypatch.setenv("RDZOO_ZOO_PATH", str(zoo))
    space = parse_space({**TINY, "fixed": {**TINY["fixed"], "head": {"pool": "max", "dropout": 0.5},
                                           "encoder": {"norm": "batch"}},
                         "choose": {"family": {"resnet": {**TINY["choose"]["family"]["resnet"],
                                                          "encoder.stem_kernels": {"choice": [[3], [3, 4]]}}}},
                         "start": ["tiny-kim"]})
    cfg = config(tmp_path, space=space, trials=2)
    run_trials(cfg, data)
    study = optuna.load_study(study_name="t", storage=cfg.storage)
    first = study.trials[0]
    assert first.user_attrs["start"] == "tiny-kim" and first.state.name == "COMPLETE"
    assert run_key(first.user_attrs["rdzoo"]["spec"]) == run_key(spec.load("tiny-kim").to_dict())
    run_trials(SearchConfig(**{**cfg.__dict__, "trials": 3}), data)  # resumed: not queued again
    assert sum(1 for t in optuna.load_study(study_name="t", storage=cfg.storage).trials if "start" in t.user_attrs) == 1


# --- no repeated work ------------------------------------------------------------------------


def _fake_train(self, trial, spec_):
    """Record the trial as trained without training: these tests are about what is sampled."""
    trial.set_user_attr("rdzoo", {"family": spec_.family, "skip": spec_.skip, "spec": spec_.to_dict()})
    return 0.5


def _trained_params(storage):
    study = optuna.load_study(study_name="t", storage=storage)
    return [json.dumps(t.params, sort_keys=True) for t in study.trials if "rdzoo" in t.user_attrs]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_resumed_seeded_study_draws_new_architectures(tmp_path, data, monkeypatch, sampler):
    monkeypatch.setattr(Objective, "_train", _fake_train)
    cfg = config(tmp_path, trials=4, sampler=sampler)
    run_trials(cfg, data)
    run_trials(SearchConfig(**{**cfg.__dict__, "trials": 8}), data)
    trained = _trained_params(cfg.storage)
    assert len(trained) == 8 and len(set(trained)) == 8
    study = optuna.load_study(study_name="t", storage=cfg.storage)
    assert not any("repeat_of" in t.user_attrs for t in study.trials)


def test_two_seeded_workers_draw_different_architectures():
    space = parse_space(TINY)
    study = optuna.create_study()
    drawn = []
    for worker in (0, 1):  # both start on an empty study with --seed 0, as --workers 2 does
        study.sampler = make_sampler("tpe", trial_seed(0, worker, 0))
        trials = [study.ask() for _ in range(3)]
        for t in trials:
            space.sample(t)
        drawn.append([json.dumps(t.params, sort_keys=True) for t in trials])
    assert not set(drawn[0]) & set(drawn[1])


def test_a_repeated_draw_is_not_trained_again(tmp_path, data, monkeypatch):
    monkeypatch.setattr(Objective, "_train", _fake_train)
    monkeypatch.setattr("rdzoo.nas.loop.trial_seed", lambda seed, worker, tried: seed)  # the old behaviour
    cfg = config(tmp_path, trials=4, sampler="random")
    run_trials(cfg, data)
    study = optuna.load_study(study_name="t", storage=cfg.storage)
    repeats = [t for t in study.trials if "repeat_of" in t.user_attrs]
    assert repeats and all("rdzoo" not in t.user_attrs for t in repeats)
    assert all(t.value == study.trials[t.user_attrs["repeat_of"]].value for t in repeats)
    trained = _trained_params(cfg.storage)
    assert len(trained) == len(set(trained))


@pytest.mark.slow
def test_two_cli_workers_with_one_seed_train_no_architecture_twice(tmp_path):
    import subprocess
    import sys

    space = write(tmp_path, "tiny.yaml", TINY)
    db = f"sqlite:///{tmp_path}/w.db"
    subprocess.run([sys.executable, "-m", "rdzoo.cli", "search", "--space", space, "--data", "synthetic",
                    "--storage", db, "--study", "t", "--trials", "6", "--seed", "0", "--workers", "2",
                    "--no-final", "--pruner", "none"], check=True, timeout=900, cwd=tmp_path)
    trained = _trained_params(db)
    assert len(trained) >= 6 and len(trained) == len(set(trained))


def test_the_trials_leave_time_for_the_final_stage(finished, tmp_path, data):
    from rdzoo.nas.final import estimate_seconds
    from rdzoo.nas.final import plan as final_plan

    cfg, base, _ = finished
    study = optuna.load_study(study_name="t", storage=cfg.storage)

    spent = {t.number: t.user_attrs["rdzoo"]["train_seconds"] for t in study.trials if t.state.name == "COMPLETE"}
    top = [spent[c.source] for c in final_plan(study, 2, BASE, "b") if c.source >= 0]
    assert len(top) == 2
    # the top 2 and a baseline the search never trained (counted as the slowest contender), 2 seeds
    assert estimate_seconds(study, 2, [1, 2], BASE) == pytest.approx(2 * (sum(top) + max(top)))
    # a baseline of an architecture a trial trained (another recipe: a start model trained as a student)
    # counts as that trial's time, not the slowest
    third = [t for t in study.trials if t.state.name == "COMPLETE" and t.number not in
             [c.source for c in final_plan(study, 2, BASE, "b")]][0]
    like_third = json.loads(json.dumps(third.user_attrs["rdzoo"]["spec"]))
    like_third["train"]["lr"] = 0.123
    assert estimate_seconds(study, 2, [1], like_third) == pytest.approx(sum(top) + spent[third.number])
    other = config(tmp_path, trials=5, timeout=3600, reserve=lambda s: 4000)
    outcome = run_trials(other, data)
    assert outcome.ran == 0 and outcome.timed_out
    # the end says why the trials stopped: not that --timeout ran out, an hour before it does
    from rdzoo.render import stop_text

    assert stop_text(outcome, other) == ("the trials stopped with 0 of 5 finished, to leave the final stage its "
                                         "share of --timeout 1:00:00; run the same command to continue")
    assert outcome.for_final
    (tmp_path / "late").mkdir()
    late = config(tmp_path / "late", trials=5, timeout=1e-3, reserve=lambda s: 0.0)
    assert not run_trials(late, data).for_final  # --timeout itself ran out: said so
    ran_out = dataclasses.replace(outcome, for_final=False)  # the deadline itself passed
    assert stop_text(ran_out, other).startswith("--timeout 1:00:00 ran out with 0 of 5")


def test_latency_is_timed_on_a_fixed_thread_count_after_warm_up():
    import torch

    from rdzoo import profile

    calls, threads = [], []

    class Probe(torch.nn.Module):
        def forward(self, x):
            calls.append(1)
            threads.append(torch.get_num_threads())
            return x * 2

    before = torch.get_num_threads()
    seconds = profile.latency(Probe(), torch.ones(4, 8), repeats=5, warmup=3, threads=1)
    assert seconds >= 0 and len(calls) == 3 + 5 and set(threads) == {1}
    assert torch.get_num_threads() == before  # restored for training


def _final_row(contender, seed, dev, test, baseline=False, **more):
    return TrialRecord(contender=contender, baseline=baseline, seed=seed, dev_accuracy=dev, test_accuracy=test,
                       family="resnet", skip="residual", params=10, flops=20, latency_ms=1.0, train_seconds=2.0,
                       spec={"name": contender}, stage="final", state="COMPLETE", **more)


@pytest.mark.parametrize("devs, kept", [
    ([0.81, 0.82, 0.83], False),  # +1 to +3 points, seed by seed: ahead beyond the noise, the search's pick
    ([0.80, 0.83, 0.79], True),  # +0.67 on average with an sd of 2.1: level on dev, the baseline stays
])
def test_the_recommendation_leaves_the_baseline_only_when_ahead_of_it_on_dev(devs, kept):
    base = [_final_row("kim-cnn", s, 0.80 + 0.01 * (s - 2), 0.90, baseline=True) for s in (1, 2, 3)]
    found = [_final_row("trial 7", s, d + 0.01 * (s - 2), 0.50) for s, d in zip((1, 2, 3), devs)]
    v = verdict(base + found)
    assert v.ranking[0].contender == "trial 7"  # the ranking is by mean dev either way
    assert v.kept_baseline is kept
    assert v.recommended.contender == ("kim-cnn" if kept else "trial 7")
    assert v.ranking[0].vs_baseline.dev_call == ("level" if kept else "ahead")
    text = "\n".join(verdict_lines(v))
    assert ("was not ahead of it on dev" in text) is kept


def test_one_seed_measures_no_noise_so_nothing_is_called_ahead_or_behind_and_the_baseline_stays():
    base = [_final_row("kim-cnn", 1, 0.80, 0.90, baseline=True)]
    found = [_final_row("trial 7", 1, 0.85, 0.80)]  # +5 dev, -10 test, on the one seed the stage had time for
    v = verdict(base + found)
    assert v.ranking[0].contender == "trial 7" and v.kept_baseline and v.recommended.contender == "kim-cnn"
    assert (v.ranking[0].vs_baseline.call, v.ranking[0].vs_baseline.dev_call) == ("level", "level")


def test_on_entity_data_the_final_stage_ranks_and_pairs_by_entity_f1():
    # word accuracy favours trial 3, entity F1 (what an entity search maximised) trial 5
    rows = []
    for s in (1, 2, 3):
        for name, acc, f1, base in (("kim-cnn", 0.90, 0.20, True), ("trial 3", 0.95, 0.22, False),
                                    ("trial 5", 0.91, 0.30 + 0.01 * s, False)):
            rows.append(_final_row(name, s, acc, acc, baseline=base, dev_entity_f1=f1, entity_f1=f1 - 0.05))
    v = verdict(rows)
    assert v.score.name == "entity F1"
    assert [c.contender for c in v.ranking] == ["trial 5", "trial 3", "kim-cnn"]
    top = v.ranking[0]
    assert top.test_mean == pytest.approx(0.27) and top.vs_baseline.test_diff == pytest.approx(0.12)
    assert v.recommended.contender == "trial 5" and "entity F1: dev" in "\n".join(verdict_lines(v))
    # without entity F1 on the rows, accuracy ranks as before
    assert verdict([_final_row("a", 1, 0.5, 0.5), _final_row("b", 1, 0.6, 0.6)]).score.name == "accuracy"


def test_a_trial_still_training_when_the_timeout_runs_out_stops_at_its_epoch(tmp_path, data):
    """--timeout is a promise: a trial whose share of the time runs out mid-training is pruned
    at the end of that epoch, with the reason, and the search then stops as timed out."""
    import time

    cfg = config(tmp_path, trials=3, timeout=3600, epochs=3)
    asked = []

    def reserve(study):  # leaves the first trial 10 ms to start, then nothing: it cannot train to its end
        asked.append(study)
        return cfg.deadline - time.monotonic() - (0.01 if len(asked) == 1 else -1.0)

    cfg.reserve = reserve
    outcome = run_trials(cfg, data)
    study = optuna.load_study(study_name="t", storage=cfg.storage)
    assert outcome.timed_out and outcome.ran == 1
    (trial,) = study.trials
    info = trial.user_attrs["rdzoo"]
    assert trial.state.name == "PRUNED" and info["epochs"] == 1
    assert info["error"] == "stopped at epoch 1 of 3: --timeout ran out"


def test_the_final_stage_runs_only_the_seeds_that_fit_before_the_deadline(tmp_path, data, monkeypatch):
    import time

    cfg = config(tmp_path, trials=3)
    run_trials(cfg, data)
    clock = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def on_run(done, total, contender, seed):
        clock[0] += 35.0  # each run "takes" 35 s: one seed of 3 runs ends at 105 s, past the deadline

    cfg.final = FinalStage(2, 3, write(tmp_path, "b.yaml", BASE))
    done = run_final(cfg, data, on_run=on_run, deadline=100.0)
    assert done.ran == 3 and done.cut == [2, 3]
    rows = Results(cfg.storage).final("t")
    assert sorted({r.seed for r in rows}) == [1] and len(rows) == 3  # whole seeds only: every contender paired
    from rdzoo.nas import chosen

    # the exported spec's description says the stage was cut, and how to finish it
    assert "mean over 1 of its 3 seeds (seeds 2, 3 not trained yet; the same search command adds them)" in \
        chosen(Results(cfg.storage), "t").description
    # a rerun keeps time for the two seeds left out, not for the whole stage again
    from rdzoo.nas.final import done_runs, estimate_seconds, reserve
    from rdzoo.nas.loop import typical_trial_seconds

    study = optuna.load_study(study_name="t", storage=cfg.storage)
    base = spec.load(write(tmp_path, "b.yaml", BASE)).to_dict()
    done_final = done_runs(optuna.load_study(study_name="t-final", storage=cfg.storage))
    left = estimate_seconds(study, 2, [2, 3], base)
    assert len(done_final) == 3 and 0 < left < estimate_seconds(study, 2, [1, 2, 3], base)
    assert estimate_seconds(study, 2, [1, 2, 3], base, done=done_final) == pytest.approx(left)
    assert done.cut_seconds == pytest.approx(left, abs=0.1)
    assert reserve(cfg)(study) == pytest.approx(left + 3 * typical_trial_seconds(study))
    # with no deadline the same call adds the seeds left out, and nothing is trained twice
    again = run_final(cfg, data)
    assert again.ran == 6 and again.cut == []
    assert "mean over 3 seeds (" in chosen(Results(cfg.storage), "t").description
