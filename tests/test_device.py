"""Devices, precision, one GPU per worker, peak memory and out-of-memory trials.

Device-agnostic: the `device` fixture reads RDZOO_TEST_DEVICE (default cpu), so
`RDZOO_TEST_DEVICE=cuda pytest tests/test_device.py` runs the same tests on a GPU
(bench/gpu_check.py does). The worker assignment and the parsing are pure
functions, tested without any device.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from rdzoo import spec
from rdzoo.device import (MemoryMeter, Precision, asked_for, parse_bytes, parse_device, parse_gpus, resolve_device,
                          resolve_precision, worker_devices)
from rdzoo.errors import DeviceError, TrainingError
from rdzoo.query import Results
from rdzoo.space import load_space
from rdzoo.text.data import load_data
from rdzoo.train import fit

try:  # the search tests need Optuna; the rest run on a GPU machine without it
    import optuna  # noqa: F401
    import sqlalchemy as sa

    from rdzoo.nas import SearchConfig
    from rdzoo.nas.loop import run_trials
    HAS_OPTUNA = True
except ImportError:
    HAS_OPTUNA = False
needs_optuna = pytest.mark.skipif(not HAS_OPTUNA, reason="optuna is not installed")

CNN = {"embedding.dim": 32, "encoder.stem_channels": 32, "train.epochs": 3, "train.batch_size": 32, "train.lr": 1e-2}
TRANSFORMER = {"encoder.d_model": 64, "encoder.heads": 2, "train.lr": 2e-3, "train.epochs": 3, "train.batch_size": 32}
SPACE = {"name": "tiny-device",
         "fixed": {"embedding": {"dim": 16, "vocab_size": 200, "max_len": 32},
                   "train": {"epochs": 2, "batch_size": 64, "lr": 0.01}},
         "choose": {"family": {"resnet": {"encoder.stem_channels": {"choice": [16, 32]}, "encoder.stages": [1],
                                          "encoder.channels": 16, "encoder.skip": {"choice": ["none", "residual"]}}}}}


@pytest.fixture(scope="module")
def device():
    name = os.environ.get("RDZOO_TEST_DEVICE", "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"RDZOO_TEST_DEVICE={name} but no GPU here")
    return resolve_device(name)


@pytest.fixture(scope="module")
def synthetic():
    return load_data("synthetic")


@pytest.fixture(scope="module")
def small():
    """The search tests' data: 600 training texts, as in test_search."""
    d = load_data("synthetic")
    d.train = d.train.subset(list(range(600)))
    return d


@pytest.fixture(scope="module")
def fp32_run(synthetic, device):
    return fit(spec.load("kim-cnn", CNN), synthetic, device=device, precision="fp32")


def cli(*args, env=None):
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    return proc.returncode, proc.stdout, proc.stderr


# --- pure functions ------------------------------------------------------------------

def test_workers_take_the_gpus_in_turn():
    assert worker_devices(5, "auto", gpu_count=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert worker_devices(4, "cuda", gpu_count=8, gpus=[0, 2, 3]) == ["cuda:0", "cuda:2", "cuda:3", "cuda:0"]
    assert worker_devices(2, "cuda", gpu_count=1) == ["cuda:0", "cuda:0"]  # more workers than GPUs: they share
    assert worker_devices(3, "cuda:1", gpu_count=2) == ["cuda:1"] * 3  # one named GPU: every worker on it
    assert worker_devices(3, "auto", gpu_count=0) == ["cpu"] * 3
    assert worker_devices(2, "cpu", gpu_count=4) == ["cpu", "cpu"]
    assert worker_devices(1, "mps", gpu_count=0) == ["mps"]


@pytest.mark.parametrize("args, message", [
    ((2, "cuda", 0, None), "no CUDA device"),
    ((2, "auto", 2, [0, 2]), "no GPU 2 on this machine; it has 2"),
    ((2, "cpu", 2, [0]), "gpus picks CUDA devices, not cpu"),
    ((2, "cuda:3", 2, None), "no such GPU; this machine has 2"),
])
def test_worker_assignment_refuses_what_is_not_there(args, message):
    with pytest.raises(DeviceError, match=message):
        worker_devices(*args)


def test_parsing_devices_gpus_and_sizes():
    assert parse_device("cuda:2") == ("cuda", 2) and parse_device("CPU") == ("cpu", None)
    assert parse_gpus("0, 2,3") == [0, 2, 3]
    assert parse_bytes("8GB") == 8e9 and parse_bytes("1.5GiB") == 1.5 * 2**30 and parse_bytes("512M") == 512e6
    for bad, fn in (("tpu", parse_device), ("cpu:1", parse_device), ("0,0", parse_gpus), ("a,b", parse_gpus),
                    ("8 bananas", parse_bytes), ("-1GB", parse_bytes)):
        with pytest.raises(DeviceError):
            fn(bad)
    assert asked_for("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has") == "2.00 GiB"


def test_auto_precision_is_fp32_on_the_cpu_and_refuses_unknown_names():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == Precision("fp32", "cpu")
    assert resolve_precision("bf16", cpu).dtype == torch.bfloat16
    assert Precision("fp16", "cpu").scaler() is not None and Precision("bf16", "cpu").scaler() is None
    with pytest.raises(DeviceError, match="expected one of auto, fp32, bf16, fp16"):
        resolve_precision("fp8", cpu)


# --- the device option end to end ----------------------------------------------------

def test_missing_cuda_is_one_clear_error_with_exit_2(tmp_path):
    hidden = {"CUDA_VISIBLE_DEVICES": ""}  # no GPU for this process, also on a machine that has one
    search = [["search", "--data", "synthetic", "--device", "cuda", "--storage", str(tmp_path / "s.db")]] * HAS_OPTUNA
    for args in (["train", "kim-cnn", "--data", "synthetic", "--device", "cuda"],
                 ["build", "kim-cnn", "--device", "cuda:0"], *search):
        code, out, err = cli(*args, env=hidden)
        assert code == 2, (args, err)
        assert err.startswith("rdzoo: error: --device cuda") and "no CUDA device" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()  # refused before any work
    code, _, err = cli("train", "kim-cnn", "--device", "gpu")
    assert code == 2 and "expected one of auto, cpu, cuda, cuda:N, mps" in err


def test_train_eval_predict_on_the_device(tmp_path, device):
    run = tmp_path / "run"
    code, out, err = cli("train", "kim-cnn", "--data", "synthetic", "--device", str(device), "--json", "-o", str(run),
                         *[a for k, v in CNN.items() for a in ("--set", f"{k}={v}")], "--epochs", "2")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["device"] == str(device) and trained["precision"] in ("fp32", "bf16")
    assert trained["test_accuracy"] >= 0.9 and trained["peak_memory"] > 0
    code, out, err = cli("eval", str(run), "--data", "synthetic", "--device", str(device), "--precision",
                         trained["precision"], "--json")
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] == pytest.approx(trained["test_accuracy"])
    code, out, err = cli("predict", str(run), "a b c", "--device", str(device), "--json")
    assert code == 0, err
    assert json.loads(out)[0]["label"] in ("neg", "pos")
    code, out, err = cli("build", "kim-cnn", "--device", str(device), "--json", "--batch", "2")
    assert code == 0, err
    assert json.loads(out)["device"] == str(device) and json.loads(out)["latency_ms"] > 0


def test_model_and_metrics_live_on_the_device(fp32_run, device):
    assert next(fp32_run.model.parameters()).device.type == device.type
    m = fp32_run.metrics
    assert m["device"] == str(device) and m["precision"] == "fp32" and m["peak_memory"] > 0
    assert m["test_accuracy"] >= 0.9


# --- precision ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, overrides", [("kim-cnn", CNN), ("transformer-text-tiny", TRANSFORMER)])
def test_bf16_autocast_trains_to_the_fp32_accuracy_range(synthetic, device, fp32_run, name, overrides):
    fp32 = fp32_run if name == "kim-cnn" else fit(spec.load(name, overrides), synthetic, device=device, precision="fp32")
    result = fit(spec.load(name, overrides), synthetic, device=device, precision="bf16")
    assert result.metrics["precision"] == "bf16"
    # the same seeds, batches and steps: bf16 lands where fp32 does (kim-cnn at 1.0, the tiny
    # transformer near 0.8 after three epochs on the CPU here)
    assert abs(result.metrics["test_accuracy"] - fp32.metrics["test_accuracy"]) <= 0.05, (result.history, fp32.history)
    assert result.metrics["test_accuracy"] >= (0.9 if name == "kim-cnn" else 0.7)
    # the forward pass really ran in bf16: the classifier's output under the same autocast
    outs = []
    hook = result.model.head.fc.register_forward_hook(lambda mod, a, out: outs.append(out.dtype))
    from rdzoo.train import predict_ids

    predict_ids(result.model, [[2, 3, 4]], precision=Precision("bf16", device.type))
    hook.remove()
    assert outs == [torch.bfloat16]


def test_fp16_steps_through_the_gradient_scaler(small, device, monkeypatch):
    made, updates = [], []
    real = Precision.scaler

    def scaler(self):
        s = real(self)
        update = s.update
        s.update = lambda *a, **k: (updates.append(s.get_scale()), update(*a, **k))
        made.append(s)
        return s

    monkeypatch.setattr(Precision, "scaler", scaler)
    result = fit(spec.load("kim-cnn", {**CNN, "train.epochs": 1, "train.clip_grad": 1.0}), small, device=device,
                 precision="fp16")
    assert result.metrics["precision"] == "fp16" and len(made) == 1 and made[0] is not None
    assert len(updates) == -(-len(small.train) // 32) and updates[0] > 1  # stepped every batch, the loss scaled up
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # fp32 weights under fp16 autocast


@pytest.mark.slow  # fp16 autocast is emulated on the CPU: minutes there, seconds on a GPU
def test_fp16_trains_to_the_fp32_accuracy_range(synthetic, device, fp32_run):
    result = fit(spec.load("kim-cnn", {**CNN, "train.clip_grad": 1.0}), synthetic, device=device, precision="fp16")
    assert result.metrics["precision"] == "fp16" and result.metrics["test_accuracy"] >= 0.9, result.history


@pytest.mark.parametrize("name, overrides, precision", [("kim-cnn", CNN, "fp32"),
                                                        ("transformer-text-tiny", TRANSFORMER, "bf16")])
def test_training_is_reproducible_per_device_and_precision(small, device, name, overrides, precision):
    s = spec.load(name, {**overrides, "train.epochs": 1, "train.batch_size": 64})
    a = fit(s, small, device=device, precision=precision)
    b = fit(s, small, device=device, precision=precision)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]


def test_nan_guard_names_the_same_first_bad_step_read_every_step_or_every_n(small, device, monkeypatch):
    import rdzoo.train

    bad = spec.load("kim-cnn", {**CNN, "train.optimizer": "sgd", "train.lr": 100, "train.max_norm": 0,
                                "encoder.act": "gelu"})
    named = []
    for every in (1, 7):  # 7: the GPU's way, the first bad step kept on the device and read every 7 steps
        monkeypatch.setattr(rdzoo.train, "sync_interval", lambda dev: every)
        with pytest.raises(TrainingError, match=r"loss became (nan|inf) at epoch 1, step \d+; lower train.lr") as e:
            fit(bad, small, device=device)
        named.append(str(e.value).split(", step ")[1].split(";")[0])
    assert named[0] == named[1]


# --- memory --------------------------------------------------------------------------------

def test_memory_meter_sees_a_large_allocation(device):
    meter = MemoryMeter(device).start()
    before = meter.peak()
    block = torch.ones(64 * 2**20 // 4, device=device)  # 64 MiB
    block += 1
    assert meter.peak() - before >= 60 * 2**20
    del block


def test_out_of_memory_in_fit_frees_the_cache_and_names_batch_size_and_memory(small, device, monkeypatch):
    import rdzoo.registry
    import rdzoo.train

    freed = []

    def build(s):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 512.00 MiB. GPU 0 has ...")

    monkeypatch.setattr(rdzoo.registry, "build_model", build)
    monkeypatch.setattr(rdzoo.train, "free_cache", lambda dev: freed.append(str(dev)))
    with pytest.raises(TrainingError, match=rf"out of memory on {device}.* at train.batch_size 32 asking for "
                                            r"512.00 MiB more .*lower train.batch_size"):
        fit(spec.load("kim-cnn", CNN), small, device=device)
    assert freed == [str(device)]


@needs_optuna
def test_out_of_memory_fails_the_trial_frees_the_cache_and_the_search_goes_on(tmp_path, small, device, monkeypatch):
    import rdzoo.registry
    import rdzoo.train
    from rdzoo.nas import objective

    real_build, calls, freed = rdzoo.registry.build_model, [], []

    class OutOfMemory(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.inner = model
            self.head = model.head

        def forward(self, tokens):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                                              "capacity of 79.19 GiB of which 1.10 GiB is free.")

    def build(s):
        calls.append(s.name)
        model = real_build(s)
        return OutOfMemory(model) if len(calls) == 1 else model  # the first trial runs out of memory

    monkeypatch.setattr(rdzoo.registry, "build_model", build)
    monkeypatch.setattr(rdzoo.train, "free_cache", lambda dev: freed.append(str(dev)))
    # the model a trial builds to time one sentence before training is not the one that trains
    monkeypatch.setattr(objective, "sentence_latency", lambda spec, data=None: 1.0)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    cfg = SearchConfig(load_space(str(space)), "synthetic", "oom", f"sqlite:///{tmp_path}/s.db", trials=2, seed=0,
                       pruner="none", device=str(device))
    outcome = run_trials(cfg, small)
    assert outcome.finished == 2 and freed == [str(device)]
    with sa.create_engine(cfg.storage).connect() as conn:
        rows = conn.execute(sa.text("SELECT trial, state, error, peak_memory FROM rdzoo_results ORDER BY trial")).fetchall()
    assert [r.state for r in rows] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert "out of memory on" in rows[0].error and "train.batch_size 64" in rows[0].error and "2.00 GiB" in rows[0].error
    assert all(r.peak_memory and r.peak_memory > 0 for r in rows)  # every trial, the failed one too


@needs_optuna
def test_peak_memory_is_recorded_shown_and_usable_as_objective_and_constraint(tmp_path, small, device):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    storage = f"sqlite:///{tmp_path}/s.db"
    cfg = SearchConfig(load_space(str(space)), "synthetic", "mem", storage, trials=3, seed=0, pruner="none",
                       device=str(device), objectives=["accuracy", "memory"])
    run_trials(cfg, small)
    rows = [r.to_json() for r in Results(storage).best("mem", top=10)]
    assert len(rows) == 3 and all(r["peak_memory"] > 0 for r in rows)
    assert all(r["objective_values"][1] == r["peak_memory"] for r in rows)
    smallest = min(r["peak_memory"] for r in rows)
    assert [r.peak_memory for r in Results(storage).best("mem", top=10, max_memory=smallest)] == [smallest] * \
        sum(r["peak_memory"] == smallest for r in rows)
    from typer.testing import CliRunner

    from rdzoo.cli import app

    shown = CliRunner().invoke(app, ["best", "--storage", storage, "--study", "mem", "--json"])
    assert shown.exit_code == 0 and all(r["peak_memory"] > 0 for r in json.loads(shown.stdout))
    table = CliRunner().invoke(app, ["best", "--storage", storage, "--study", "mem"], env={"COLUMNS": "200"})
    from rdzoo.render import human_bytes

    assert "memory" in table.stdout and human_bytes(rows[0]["peak_memory"]) in table.stdout

    capped = SearchConfig(load_space(str(space)), "synthetic", "capped", storage, trials=2, seed=0, pruner="none",
                          device=str(device), max_memory=1024)
    run_trials(capped, small)
    with sa.create_engine(storage).connect() as conn:
        pruned = conn.execute(sa.text("SELECT state, error, epochs FROM rdzoo_results WHERE study = 'capped'")).fetchall()
    assert len(pruned) == 2 and all(r.state == "PRUNED" and "above --max-memory 1.02kB" in r.error and r.epochs == 1
                                    for r in pruned)


@needs_optuna
def test_a_results_table_from_before_peak_memory_is_read_and_upgraded(tmp_path):
    import sqlite3

    import optuna

    from rdzoo.store import Store

    path = tmp_path / "old.db"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{path}", direction="maximize")
    for value in (0.9, 0.8):
        study.add_trial(optuna.trial.create_trial(value=value))
    con = sqlite3.connect(path)  # the results table as an rdzoo before peak memory wrote it
    con.execute("CREATE TABLE rdzoo_results (id INTEGER PRIMARY KEY, study TEXT, trial INT, trial_id INT UNIQUE, "
                "state TEXT, family TEXT, skip TEXT, spec TEXT, params INT, flops INT, latency_ms REAL, "
                "dev_accuracy REAL, test_accuracy REAL, macro_f1 REAL, train_seconds REAL, epochs INT, "
                "objective_values TEXT, error TEXT, finished_at REAL)")
    con.execute("INSERT INTO rdzoo_results (study, trial, trial_id, state, dev_accuracy) VALUES ('s', 0, 1, 'COMPLETE', 0.9)")
    con.commit()
    con.close()
    assert Results(str(path)).best("s")[0].peak_memory is None
    Store.open(str(path), create=True)  # what a search does first
    from rdzoo.records import TrialRecord

    Store.open(str(path)).record(TrialRecord(study="s", trial=1, trial_id=2, state="COMPLETE", dev_accuracy=0.8,
                                             peak_memory=123))
    assert [r.peak_memory for r in Results(str(path)).best("s")] == [None, 123]


def test_env_and_version_name_torch_cuda_and_the_devices():
    code, out, err = cli("env", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["torch"] == torch.__version__ and info["cuda"] == torch.version.cuda
    assert [d["device"] for d in info["devices"]][0] == "cpu"
    assert len(info["devices"]) == 1 + (torch.cuda.device_count() if torch.cuda.is_available() else 0) + \
        int(torch.backends.mps.is_available())
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("rdzoo ") and f"torch {torch.__version__}" in out and "devices: cpu" in out
