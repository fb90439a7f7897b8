"""Local worker processes on one study: `workers.run_workers` called directly, and the
options `rdzoo search --workers N` hands each worker."""

import pytest
import yaml
from typer.testing import CliRunner

from rdzoo import workers
from rdzoo.cli import app
from rdzoo.display import BaseDisplay
from rdzoo.query import Results
from rdzoo.nas import SearchConfig, default_study
from rdzoo.space import load_space

TINY = {
    "name": "tiny",
    "fixed": {"family": "resnet", "embedding": {"dim": 8, "vocab_size": 200, "max_len": 16},
              "encoder": {"stages": [1], "channels": 8, "stem_channels": 8},
              "train": {"epochs": 1, "batch_size": 128, "lr": 0.01}},
    "choose": {"encoder.skip": {"choice": ["none", "residual", "gated", "rezero"]},
               "train.lr": {"float": [0.001, 0.02], "log": True}},  # no two draws the same: none is a repeat
}


class Recorder(BaseDisplay):
    """A display that keeps the rows it is shown (and, not being silent, keeps the workers quiet)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.rows = []

    def show(self, row):
        self.rows.append(row)


def _space(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.mark.slow  # two processes that import torch: seconds each on a busy machine
def test_two_workers_finish_one_study_and_the_parent_sees_every_trial(tmp_path):
    space = _space(tmp_path)
    storage = f"sqlite:///{tmp_path}/w.db"
    cfg = SearchConfig(load_space(str(space)), "synthetic", "w", storage, trials=2, pruner="none")
    options = ["--space", str(space), "--data", "synthetic", "--trials", "2", "--storage", storage,
               "--pruner", "none", "--seed", "0"]
    display = Recorder(cfg)
    outcome = workers.run_workers(options, ["cpu", "cpu"], cfg, display)
    assert outcome.exit_code == 0 and outcome.workers == [0, 0]
    assert outcome.finished == 2 and outcome.stopped_by == "target"
    assert sorted(r.trial for r in display.rows) == [0, 1] and outcome.ran == 2
    assert [(r.state, r.family) for r in display.rows] == [("COMPLETE", "resnet")] * 2, display.rows
    assert len(Results(storage).best("w", top=10)) == 2  # each trial has its results row


def test_no_study_opened_gives_no_outcome_and_the_workers_codes(tmp_path):
    cfg = SearchConfig(load_space(str(_space(tmp_path))), "synthetic", "w", f"sqlite:///{tmp_path}/w.db", trials=2)
    # a space file that is not there: each worker stops with exit status 2 before opening the study
    outcome = workers.run_workers(["--space", str(tmp_path / "missing.yaml")], ["cpu", "cpu"], cfg, Recorder(cfg))
    assert not outcome.opened and outcome.exit_code == 1 and outcome.workers == [2, 2]


def test_search_hands_each_worker_the_options_given_and_its_own_device(tmp_path, monkeypatch):
    seen = {}

    def fake_run_workers(options, devices, cfg, display, *, env=None, final_follows=False):
        from rdzoo.records import ACCURACY, Outcome

        seen.update(options=options, devices=devices, study=cfg.study, final_follows=final_follows)
        return Outcome(cfg.study, ACCURACY, 0, 0, "failures", 0.0, workers=[1, 1], opened=False)

    monkeypatch.setattr(workers, "run_workers", fake_run_workers)
    space = str(_space(tmp_path))
    result = CliRunner().invoke(app, ["search", "--workers", "2", "--device", "cpu", "--space", space,
                                      "--data", "synthetic", "-n", "3", "--seed", "1", "--top", "2", "--quiet",
                                      "--timeout=5m", "--storage", str(tmp_path / "s.db")])
    assert result.exit_code == 1 and "workers exited with [1, 1]" in result.output
    # in the command's order of options, by their long names; --workers, --device, --study, --quiet
    # and --top are the parent's: run_workers gives each worker its own. The parent settles the
    # teacher and objectives (here none: RDZOO_TEACHER) and hands on what is left of --timeout
    assert seen["options"][:-6] == ["--space", space, "--data", "synthetic", "--trials", "3",
                                    "--storage", str(tmp_path / "s.db"), "--seed", "1"]
    assert seen["options"][-6:-1] == ["--teacher", "none", "--objectives", "accuracy", "--timeout"]
    assert 250 <= int(seen["options"][-1]) <= 300
    assert seen["devices"] == ["cpu", "cpu"] and seen["study"] == "tiny-synthetic" and seen["final_follows"]


def test_worker_command_and_default_study_name():
    cmd = workers.worker_command(["--trials", "3"], "s", "cuda:1")
    assert cmd[1:] == ["-m", "rdzoo.cli", "search", "--trials", "3", "--study", "s", "--quiet", "--top", "0",
                       "--no-final", "--device", "cuda:1"]
    assert default_study("tiny", "synthetic") == "tiny-synthetic"
    assert default_study("tiny", "~/data/reviews.csv") == "tiny-reviews"
    assert default_study("tiny", "data/trec/") == "tiny-trec"


def test_the_parent_of_workers_shows_the_best_score_of_a_two_objective_study(tmp_path):
    import optuna

    from rdzoo.display import watch_workers

    storage = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="t", storage=storage, directions=["maximize", "minimize"])
    bests = []

    class Recording:  # what watch_workers tells a display
        def started(self, study, finished, score=None):
            pass

        def trial_finished(self, frozen, record, finished, best):
            bests.append(best)

    class Worker:  # finishes two students of a teacher while it runs, then exits
        polls = 0

        def poll(self):
            Worker.polls += 1
            if Worker.polls == 2:
                for values in ([0.7, 1.0], [0.9, 2.0], [0.8, 0.5]):
                    study.add_trial(optuna.trial.create_trial(values=values))
            return None if Worker.polls <= 2 else 0

    watch_workers([Worker()], storage, "t", Recording(), every=0.01)
    assert bests == [0.7, 0.9, 0.9]  # the best first objective, the score, as it comes
