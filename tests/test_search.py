import json

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from rdzoo import plan, spec
from rdzoo.cli import app
from rdzoo.errors import TrainingError
from rdzoo.nas import SearchConfig
from rdzoo.nas.loop import run_trials
from rdzoo.space import load_space, parse_space
from rdzoo.spec import SpecError
from rdzoo.query import Results
from rdzoo.storage import recover_dead_workers
from rdzoo.store import Store
from rdzoo.text.data import load_data

TINY = {
    "name": "tiny",
    "fixed": {"embedding": {"dim": 16, "vocab_size": 200, "max_len": 32},
              "train": {"epochs": 3, "batch_size": 64, "lr": 0.01}},
    "choose": {"family": {
        "resnet": {"encoder.stem_channels": {"choice": [16, 32]}, "encoder.stages": {"choice": [[1], [1, 1]]},
                   "encoder.channels": 16, "encoder.skip": {"choice": ["none", "residual", "gated", "rezero"]}},
        "densenet": {"encoder.stem_channels": 16, "encoder.block_config": {"choice": [[2], [2, 2]]},
                     "encoder.growth_rate": {"int": [4, 12], "step": 4}, "encoder.compression": {"float": [0.5, 1.0]}},
    }},
}


@pytest.fixture(scope="module")
def data():
    d = load_data("synthetic")
    d.train = d.train.subset(list(range(600)))
    return d


def tiny_space(tmp_path, space=TINY):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(space))
    return load_space(str(path))


def config(tmp_path, **kw):
    base = dict(space=tiny_space(tmp_path), data_name="synthetic", study="t", storage=f"sqlite:///{tmp_path}/s.db",
                trials=6, seed=0, pruner="none")
    return SearchConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def searched(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("search")
    cfg = config(tmp)
    outcome = run_trials(cfg, data)
    return cfg, outcome


def test_search_writes_optuna_tables_and_results(searched):
    cfg, outcome = searched
    assert outcome.finished == 6 and not outcome.interrupted
    engine = sa.create_engine(cfg.storage)
    with engine.connect() as conn:
        tables = set(sa.inspect(engine).get_table_names())
        assert {"studies", "trials", "rdzoo_results"} <= tables
        optuna_done = conn.execute(sa.text("SELECT count(*) FROM trials WHERE state = 'COMPLETE'")).scalar()
        rows = conn.execute(sa.text("SELECT trial, state, family, params, dev_accuracy, test_accuracy, flops, latency_ms, spec "
                                    "FROM rdzoo_results")).fetchall()
    assert optuna_done == 6 and len(rows) == 6
    for trial, state, family, params, dev, test, flops, latency, spec_json in rows:
        assert state == "COMPLETE" and family in ("resnet", "densenet")
        assert 0 <= dev <= 1 and 0 <= test <= 1 and flops > 0 and latency > 0
        assert plan.count_params(spec.from_dict(json.loads(spec_json))) == params  # the spec is complete


def test_resume_adds_to_the_same_study(searched, data):
    cfg, _ = searched
    again = run_trials(SearchConfig(**{**cfg.__dict__, "trials": 8}), data)
    assert again.finished == 8 and again.ran == 2
    same = run_trials(SearchConfig(**{**cfg.__dict__, "trials": 8}), data)
    assert same.ran == 0  # the target is met: nothing runs, nothing restarts
    assert len(Results(cfg.storage).best("t", top=100)) == 8


def test_failing_trials_are_recorded_and_the_search_goes_on(tmp_path, data):
    space = json.loads(json.dumps(TINY))
    space["fixed"]["train"].update(optimizer="sgd", lr=100, max_norm=0, clip_grad=0)
    space["choose"]["family"] = {"resnet": {"encoder.act": {"choice": ["gelu"]}, "encoder.norm": "none",
                                            "encoder.skip": "none", "encoder.stages": [], "encoder.channels": [],
                                            "encoder.stem_channels": 32}}
    cfg = config(tmp_path, space=tiny_space(tmp_path, space), trials=2)
    outcome = run_trials(cfg, data)
    assert outcome.stopped_by == "failures"
    with pytest.raises(TrainingError, match="the search stopped: 10 trials of study 't' failed, the last with "
                                            "TrainingError: the loss became nan"):
        raise outcome.failure()
    engine = sa.create_engine(cfg.storage)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT state, error FROM rdzoo_results")).fetchall()
        optuna_failed = conn.execute(sa.text("SELECT count(*) FROM trials WHERE state = 'FAIL'")).scalar()
    assert rows and all(state == "FAIL" and "loss became" in error for state, error in rows)
    assert optuna_failed == len(rows) == 10  # it went on after the first failure, then gave up


def test_a_trial_that_fails_before_it_trains_records_why(tmp_path, data, monkeypatch):
    """An error before training (here, timing the built model) is the trial's recorded error, not
    "no recorded error"."""
    from rdzoo.nas import objective

    def broken(spec, data):
        raise RuntimeError("the model could not be timed")

    monkeypatch.setattr(objective, "sentence_latency", broken)
    outcome = run_trials(config(tmp_path, trials=1), data)
    with pytest.raises(TrainingError, match="failed, the last with RuntimeError: the model could not be timed"):
        raise outcome.failure()
    engine = sa.create_engine(f"sqlite:///{tmp_path}/s.db")
    with engine.connect() as conn:
        errors = [e for (e,) in conn.execute(sa.text("SELECT error FROM rdzoo_results WHERE state = 'FAIL'"))]
    assert len(errors) == 10 and all("could not be timed" in e for e in errors), errors


def test_invalid_samples_are_pruned_with_their_reason(tmp_path, data):
    space = json.loads(json.dumps(TINY))
    space["choose"]["family"] = {"resnet": {"encoder.stages": {"choice": [[1, 1]]}, "encoder.channels": [8]}}
    cfg = config(tmp_path, space=tiny_space(tmp_path, space), trials=1)
    run_trials(cfg, data)
    rows = Store.open(cfg.storage)._execute(sa.text("SELECT state, error FROM rdzoo_results"))
    assert rows[0][0] == "PRUNED" and "one width per stage" in rows[0][1]


def test_pruning_stops_bad_trials_early(tmp_path, data):
    space = json.loads(json.dumps(TINY))
    space["fixed"]["train"]["epochs"] = 4
    space["choose"]["train.lr"] = {"float": [1e-6, 3e-2], "log": True}
    cfg = config(tmp_path, space=tiny_space(tmp_path, space), trials=8, pruner="median", sampler="random")
    run_trials(cfg, data)
    pruned = [r for r in Store.open(cfg.storage)._execute(sa.text("SELECT epochs FROM rdzoo_results WHERE state = 'PRUNED'"))]
    assert pruned and any(r[0] < 4 for r in pruned)  # stopped before its last epoch


def test_a_trial_is_pruned_before_its_last_epoch_never_at_it(tmp_path, data, monkeypatch):
    import optuna

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    monkeypatch.setattr("rdzoo.nas.loop.make_pruner", lambda name, epochs: AlwaysPrune())
    space = json.loads(json.dumps(TINY))
    for epochs, state in ((1, "COMPLETE"), (2, "PRUNED")):
        space["fixed"]["train"]["epochs"] = epochs
        folder = tmp_path / str(epochs)
        folder.mkdir()
        cfg = config(folder, space=tiny_space(folder, space), trials=2, pruner="median")
        run_trials(cfg, data)
        rows = Store.open(cfg.storage)._execute(sa.text("SELECT state, epochs FROM rdzoo_results"))
        # one epoch: trained to the end, so complete whatever the pruner says; two: stopped after the first
        assert [tuple(r) for r in rows] == [(state, 1), (state, 1)]


def test_best_filters_top_n_and_export_rebuilds(searched, tmp_path):
    cfg, _ = searched
    runner = CliRunner()
    out = runner.invoke(app, ["best", "--storage", cfg.storage, "--study", "t", "--top", "3", "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert len(rows) == 3 and [r["dev_accuracy"] for r in rows] == sorted((r["dev_accuracy"] for r in rows), reverse=True)
    for key in ("trial", "family", "params", "dev_accuracy", "test_accuracy", "spec"):
        assert key in rows[0]
    every = Results(cfg.storage).best("t", top=100)
    small = sorted(r.params for r in every)[len(every) // 2]
    out = runner.invoke(app, ["best", "--storage", cfg.storage, "--family", "resnet", "--max-params", str(small), "--json"])
    assert all(r["family"] == "resnet" and r["params"] <= small for r in json.loads(out.output))
    out = runner.invoke(app, ["best", "--storage", cfg.storage, "--sort", "params", "--top", "100", "--json"])
    params = [r["params"] for r in json.loads(out.output)]
    assert params == sorted(params)
    target = tmp_path / "found.yaml"
    out = runner.invoke(app, ["export", "--storage", cfg.storage, "--best", "-o", str(target)])
    assert out.exit_code == 0, out.output
    assert plan.count_params(spec.load(str(target))) == rows[0]["params"]
    trial = rows[-1]["trial"]
    out = runner.invoke(app, ["export", "--storage", cfg.storage, "--trial", str(trial)])
    assert plan.count_params(spec.from_dict(yaml.safe_load(out.output))) == rows[-1]["params"]


@pytest.mark.parametrize("text, message", [
    ("choose: {family: {resnet: {encoder.stagse: {choice: [[1]]}}}}", "did you mean 'stages'"),
    ("choose: {family: {resnt: {}}}", "did you mean 'resnet'"),
    ("choose: {train.lr: {float: [1, 0.1]}, family: {resnet: {}}}", "low 1 is above high 0.1"),
    ("choose: {train.lr: {float: [0, 0.1], log: true}, family: {resnet: {}}}", "log range needs low > 0"),
    ("choose: {family: {densenet: {encoder.skip: {choice: [residual]}}}}", "not supported"),
    ("choose: {family: {densenet: {encoder.growth_rate: {int: [1, 8], stpe: 2}}}}", "did you mean 'step'"),
    ("choose: {family: {densenet: {encoder.growth_rate: {choice: [8, 8]}}}}", "twice"),
    ("chose: {}", "did you mean 'choose'"),
    ("choose: {family: {transformer: {encoder.heads: {choice: [two]}}}}", "expected an integer"),
    ("- a\n- b", "must be a mapping"),
])
def test_malformed_space_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_space(str(path))


def test_shipped_spaces_load():
    from rdzoo.space import list_spaces

    assert {"default", "cnn-skips", "densenet", "transformer"} <= set(list_spaces())
    default = load_space("default")
    assert set(default.families) == {"resnet", "densenet", "transformer"}
    skips = {c for f in default.families.values() for k, p in f.items() if k == "encoder.skip" and p.kind == "choice" for c in p.choices}
    assert {"none", "residual", "gated", "rezero", "dwa", "deepnorm"} <= skips


def test_every_point_of_the_tagging_space_is_a_tagger():
    import optuna

    space = load_space("tagging")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    families = set()
    for _ in range(200):  # every sampled spec passes the length check of head.pool: token
        s = spec.from_dict(space.sample(study.ask()))
        assert s.head.pool == "token" and s.embedding.kind == "word"
        families.add(s.family)
    assert families == {"resnet", "densenet", "transformer"}


def test_replay_a_trial_with_fixed_trial():
    import optuna

    space = parse_space(TINY)
    fixed = optuna.trial.FixedTrial({"family": "densenet", "densenet/encoder.block_config": "[2, 2]",
                                     "densenet/encoder.growth_rate": 8, "densenet/encoder.compression": 0.75})
    s = spec.from_dict(space.sample(fixed))
    assert s.family == "densenet" and s.encoder.block_config == [2, 2] and s.encoder.compression == 0.75


def test_an_exported_trial_trains_to_the_same_accuracy(searched, data, tmp_path):
    from rdzoo.train import fit

    cfg, _ = searched
    row = Results(cfg.storage).best("t", top=1)[0]
    target = tmp_path / "again.yaml"
    assert CliRunner().invoke(app, ["export", "--storage", cfg.storage, "--trial", str(row.trial), "-o", str(target)]).exit_code == 0
    again = fit(spec.load(str(target)), data).metrics
    assert again["dev_accuracy"] == pytest.approx(row.dev_accuracy, abs=0.02)
    assert again["params"] == row.params


def test_multi_objective_search_and_pareto_front(tmp_path, data):
    cfg = config(tmp_path, trials=4, sampler="nsga2", objectives=["accuracy", "params"])
    outcome = run_trials(cfg, data)
    assert outcome.finished == 4
    rows = [r.to_json() for r in Results(cfg.storage).best("t", top=10)]
    assert all(len(r["objective_values"]) == 2 for r in rows)
    out = CliRunner().invoke(app, ["best", "--storage", cfg.storage, "--pareto", "--json"])
    assert out.exit_code == 0, out.output
    front = json.loads(out.output)

    def dominates(a, b):
        better_or_equal = a["dev_accuracy"] >= b["dev_accuracy"] and a["params"] <= b["params"]
        return better_or_equal and (a["dev_accuracy"], a["params"]) != (b["dev_accuracy"], b["params"])

    assert front and not any(dominates(o, f) for f in front for o in rows)
    assert all(any(dominates(f, o) or (f["dev_accuracy"], f["params"]) == (o["dev_accuracy"], o["params"])
                   for f in front) for o in rows)  # everything off the front is dominated by it


def test_gp_sampler_runs(tmp_path, data):
    assert run_trials(config(tmp_path, trials=2, sampler="gp"), data).finished == 2


def test_a_trial_whose_worker_died_before_naming_itself_is_recovered(tmp_path):
    """Killed between creating a trial and its first heartbeat, a worker leaves a RUNNING
    trial with no owner that Optuna never calls stale; left alone, a search whose target
    counts it would wait for it forever."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'orphan.db'}")
    study.ask()  # what the dead worker left: RUNNING, no worker name, no heartbeat
    assert recover_dead_workers(study) == 0  # young: its worker may be about to name itself
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]
    assert recover_dead_workers(study, orphan_after=0) == 1
    failed, retry = study.get_trials()
    assert failed.state == TrialState.FAIL and retry.state == TrialState.WAITING
    assert retry.user_attrs["retry_of"] == failed.number
    named = study.ask()
    named.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
    assert recover_dead_workers(study, orphan_after=0) == 0  # named by a worker on another machine: its heartbeat decides


def test_a_full_disk_stops_the_search_with_one_error_and_it_resumes(tmp_path):
    """SQLite cannot grow the database (file writes over a limit fail, as on a full disk): one
    error line, the trials finished before are kept, and the same command then continues."""
    import resource
    import signal
    import subprocess
    import sys

    import optuna

    db = tmp_path / "s.db"
    space = tmp_path / "tiny.yaml"
    # a float beside the choices: no two trials draw the same point (a repeat gets the earlier
    # trial's value and no results row of its own, which would make the counts below differ)
    space.write_text(yaml.safe_dump({**TINY, "choose": {**TINY["choose"], "train.lr": {"float": [0.001, 0.02]}}}))

    def search(trials, limit=None):
        args = ["search", "--space", str(space), "--data", "synthetic", "--trials", str(trials), "--epochs", "1",
                "--storage", str(db), "--study", "t", "--pruner", "none", "--quiet", "--no-final"]
        return subprocess.run([sys.executable, "-m", "rdzoo.cli", *args], capture_output=True, text=True,
                              timeout=300, preexec_fn=limit)

    def finished():
        study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
        return len([t for t in study.trials if t.state.is_finished() and t.state.name != "FAIL"])

    assert search(1).returncode == 0 and finished() == 1
    cap = db.stat().st_size + 64 * 1024

    def full_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))

    proc = search(50, full_disk)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert "could not write to the study storage" in proc.stderr and "run the same command" in proc.stderr
    kept = finished()
    assert 1 <= kept < 50
    assert search(kept + 2).returncode == 0 and finished() == kept + 2
    assert len(Results(f"sqlite:///{db}").best("t", top=100)) == kept + 2


def test_search_errors_name_the_library_parameter_and_the_cli_its_option(tmp_path, data):
    import optuna

    from rdzoo.cli import in_cli_terms
    from rdzoo.nas.loop import make_pruner, make_sampler

    for make, path in ((lambda: make_sampler("tps", None), "sampler"), (lambda: make_pruner("meridian", 3), "pruner")):
        with pytest.raises(SpecError) as caught:
            make()
        assert caught.value.path == path and "is not one of" in caught.value.message
        assert in_cli_terms(caught.value).startswith(f"--{path}: ")
    cfg = config(tmp_path)
    optuna.create_study(study_name="t", storage=cfg.storage, direction="maximize").set_user_attr("space", "another")
    with pytest.raises(SpecError) as caught:
        run_trials(cfg, data)
    assert caught.value.path == "study" and "was run with space 'another', not 'tiny'" in caught.value.message
    assert "--" not in str(caught.value)  # the library's own terms
    assert in_cli_terms(caught.value).startswith("--study: study 't' was run with space 'another'")
    optuna.create_study(study_name="u", storage=cfg.storage, directions=["maximize", "minimize"])
    with pytest.raises(SpecError) as caught:
        run_trials(config(tmp_path, study="u"), data)
    assert caught.value.path == "objectives" and in_cli_terms(caught.value).startswith("--objectives: study 'u'")
    assert in_cli_terms(SpecError("train.lr", "must be positive")) == "train.lr: must be positive"  # spec keys stay


def test_a_storage_failure_in_a_background_thread_is_left_to_the_main_thread():
    """Optuna's heartbeat thread may meet a full disk first: its failure is not printed; any
    other thread's exception still reaches the hook that was there before."""
    import threading

    import sqlalchemy as sa

    from rdzoo.nas.loop import quiet_storage_threads

    def fail(exc):
        def run():
            raise exc
        t = threading.Thread(target=run)
        t.start()
        t.join()

    seen, outer = [], threading.excepthook
    threading.excepthook = lambda args: seen.append(type(args.exc_value).__name__)
    try:
        previous = quiet_storage_threads()
        fail(sa.exc.OperationalError("COMMIT", {}, Exception("database or disk is full")))
        fail(ValueError("a bug"))
        threading.excepthook = previous
        fail(sa.exc.OperationalError("COMMIT", {}, Exception("database or disk is full")))
    finally:
        threading.excepthook = outer
    assert seen == ["ValueError", "OperationalError"]


def test_tables_written_to_a_file_keep_every_cell_whole(searched):
    cfg, _ = searched
    out = CliRunner().invoke(app, ["best", "--storage", cfg.storage, "--study", "t"], env={"COLUMNS": ""})
    assert out.exit_code == 0 and "dev acc" in out.output and "…" not in out.output
    narrow = CliRunner().invoke(app, ["best", "--storage", cfg.storage, "--study", "t"], env={"COLUMNS": "60"})
    assert "…" in narrow.output  # a width the user set is kept


def test_a_search_and_its_best_from_python(tmp_path, data):
    """`rdzoo.search` and `rdzoo.best` for a notebook: the typed outcome and records, as the
    command line's --json has them."""
    import rdzoo
    from rdzoo.records import Outcome, TrialRecord

    storage = f"sqlite:///{tmp_path}/api.db"
    outcome = rdzoo.search(tiny_space(tmp_path), data, data_name="synthetic", study="api", storage=storage,
                           trials=2, final=False, seed=0, pruner="none")
    assert isinstance(outcome, Outcome) and outcome.finished == 2 and outcome.stopped_by == "target"
    assert outcome.verdict is None and all(isinstance(r, TrialRecord) for r in outcome.best)
    board = rdzoo.best("api", storage, top=2)
    assert [r.trial for r in board.trials] == [r.trial for r in outcome.best]
    assert board.score.name == "accuracy" and board.trials[0].dev_accuracy >= board.trials[1].dev_accuracy
    out = CliRunner().invoke(app, ["best", "--storage", storage, "--study", "api", "--top", "2", "--json"])
    assert json.loads(out.stdout) == json.loads(json.dumps(board.to_json(), default=str))


def test_the_typical_trial_is_a_drawn_one_once_three_are_complete():
    import optuna

    from rdzoo.nas.loop import typical_trial_seconds

    study = optuna.create_study()
    assert typical_trial_seconds(study) == 0.0

    def add(seconds, start=None):
        attrs = {"rdzoo": {"train_seconds": seconds}, **({"start": start} if start else {})}
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs=attrs))

    for i, seconds in enumerate([88, 68, 67, 161, 154]):  # TREC's start models on half a core
        add(seconds, start=f"model-{i}")
    add(20)
    add(12)
    assert typical_trial_seconds(study) == 68  # two drawn trials: the median of all seven
    add(31)
    assert typical_trial_seconds(study) == 20  # three: the drawn ones stand for the next
