import json
import subprocess
import sys

import pytest
import torch

import rdzoo
from rdzoo import spec, weights
from rdzoo.registry import build_model
from rdzoo.profile import dummy_batch


def run(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("overrides", [
    {"embedding.vocab_size": 60},
    {"embedding.vocab_size": 60, "embedding.positions": "sinusoidal", "encoder.skip": "dwa"},
])
def test_safetensors_round_trip_gives_identical_outputs(tmp_path, overrides):
    s = spec.load("transformer-text-tiny", overrides)
    model = build_model(s).eval()
    path = weights.save(model, tmp_path / "m.safetensors")
    again = rdzoo.load(path)
    tokens = dummy_batch(s, 4, 16)
    with torch.no_grad():
        torch.testing.assert_close(again(tokens), model(tokens), rtol=0, atol=0)
    assert again.spec == s


def test_batchnorm_statistics_survive_the_round_trip(tmp_path):
    model = build_model(spec.load("resnet-text-10", {"embedding.vocab_size": 60}))
    model.train()
    model(dummy_batch(model.spec, 4, 16))  # moves the running statistics
    model.eval()
    again = rdzoo.load(weights.save(model, tmp_path / "r.safetensors"))
    tokens = dummy_batch(model.spec, 2, 16)
    with torch.no_grad():
        torch.testing.assert_close(again(tokens), model(tokens), rtol=0, atol=0)


def test_tampered_and_foreign_files_get_clear_errors(tmp_path):
    from safetensors.torch import save_file

    model = build_model(spec.load("kim-cnn", {"embedding.vocab_size": 60}))
    path = weights.save(model, tmp_path / "k.safetensors")
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(weights.WeightsError, match="damaged|not a readable"):
        rdzoo.load(tmp_path / "cut.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(weights.WeightsError, match="not a readable"):
        rdzoo.load(tmp_path / "junk.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(weights.WeightsError, match="without an rdzoo spec"):
        rdzoo.load(tmp_path / "foreign.safetensors")
    # a spec that does not match the tensors
    other = build_model(spec.load("kim-cnn", {"embedding.vocab_size": 61}))
    from safetensors.torch import save_file as save_raw
    save_raw(dict(other.state_dict()), str(tmp_path / "mismatch.safetensors"),
             metadata={"format": weights.FORMAT, "spec": json.dumps(model.spec.to_dict())})
    with pytest.raises(weights.WeightsError, match="do not match"):
        rdzoo.load(tmp_path / "mismatch.safetensors")


def test_cli_list_show_build_json(tmp_path):
    rows = json.loads(run("list", "densenet-text*", "--json").stdout)
    assert [r["name"] for r in rows] == ["densenet-text-121", "densenet-text-small", "densenet-text-tiny"]
    assert all(r["family"] == "densenet" and r["params"] > 0 for r in rows)
    shown = run("show", "resnet-text-18", "--set", "encoder.skip=gated").stdout
    assert "skip: gated" in shown
    out = tmp_path / "m.safetensors"
    built = json.loads(run("build", "resnet-text-18", "--set", "encoder.stages=[1,1,1,1]", "--out", str(out), "--json").stdout)
    assert built["params"] == rdzoo.plan.count_params(spec.load("resnet-text-10"))
    assert built["flops"] > 0 and built["output_shape"] == [8, 2] and out.is_file()
    assert rdzoo.load(out).spec.encoder.stages == [1, 1, 1, 1]


def test_bert_base_arch_cli_count():
    built = json.loads(run("build", "bert-base-arch", "--json", "--batch", "1", "--seq-len", "8").stdout)
    assert built["params"] == 109_482_240


def test_cli_errors_are_one_line_with_exit_status_2(tmp_path):
    proc = run("build", "resnet-text-81", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "rdzoo: error: unknown model 'resnet-text-81'; did you mean 'resnet-text-18'?"
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: densenet\nencoder: {growht_rate: 12}\n")
    proc = run("show", str(bad), check=False)
    assert proc.returncode == 2 and "did you mean 'growth_rate'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_list_and_help_do_not_import_torch():
    code = ("import sys; from rdzoo.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['list']); assert r.exit_code == 0, r.output; "
            "print(' '.join(m for m in ('torch', 'timm', 'optuna') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_zoo_path_adds_folders_and_duplicates_are_errors(tmp_path, monkeypatch):
    from rdzoo import registry

    (tmp_path / "my-net.yaml").write_text("base: resnet-text-10\nname: my-net\n")
    monkeypatch.setenv("RDZOO_ZOO_PATH", str(tmp_path))
    assert "my-net" in rdzoo.list_models("my-*")
    assert spec.load("my-net").encoder.stages == [1, 1, 1, 1]
    (tmp_path / "kim-cnn.yaml").write_text("family: resnet\n")
    monkeypatch.setenv("RDZOO_ZOO_PATH", str(tmp_path) + "/")
    with pytest.raises(spec.SpecError, match="defined twice"):
        registry.list_models()
