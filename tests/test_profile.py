"""What a built model costs (rdzoo.profile): one sentence's latency on one thread, and `rdzoo build` showing it."""

import json

import pytest
import torch
from typer.testing import CliRunner

from rdzoo import profile, spec
from rdzoo.cli import app
from rdzoo.registry import build_model

TINY = {"family": "transformer", "embedding": {"vocab_size": 60, "max_len": 64},
        "encoder": {"layers": 1, "d_model": 16, "heads": 2, "ff": 32}, "head": {"num_classes": 2}}
# 8 layers 16 times as wide: some 2,000 times the FLOPs, so no amount of noise on a shared machine can reorder them
LARGE = {**TINY, "encoder": {"layers": 8, "d_model": 256, "heads": 4, "ff": 1024}}


def test_sentence_latency_runs_one_thread_and_restores_the_count():
    model = build_model(spec.from_dict(TINY)).eval()
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append((torch.get_num_threads(), tuple(args[0].shape))))
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ms = profile.sentence_latency_ms(model, tokens=12, repeats=4, warmup=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert isinstance(ms, float) and ms > 0
    assert seen == [(1, (1, 12))] * 6  # warm-up and timed passes: one sentence of 12 tokens, one thread


def test_sentence_latency_defaults_to_a_typical_sentence_within_max_len():
    model = build_model(spec.from_dict({**TINY, "embedding": {"vocab_size": 60, "max_len": 20}})).eval()
    shapes = []
    model.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    profile.sentence_latency_ms(model, repeats=1, warmup=0)
    assert shapes == [(1, 20)]  # SENTENCE_TOKENS (32) cut to max_len
    model = build_model(spec.from_dict(TINY)).eval()
    shapes.clear()
    model.register_forward_pre_hook(lambda module, args: shapes.append(tuple(args[0].shape)))
    profile.sentence_latency_ms(model, repeats=1, warmup=0)
    assert shapes == [(1, profile.SENTENCE_TOKENS)]


def test_thread_count_is_restored_when_the_model_raises():
    model = build_model(spec.from_dict(TINY)).eval()

    def fail(module, args):
        raise RuntimeError("boom")
    model.register_forward_pre_hook(fail)
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        profile.sentence_latency_ms(model, repeats=1)
    assert torch.get_num_threads() == before


def test_a_much_larger_model_measures_slower():
    tiny = profile.sentence_latency_ms(build_model(spec.from_dict(TINY)).eval(), repeats=10)
    large = profile.sentence_latency_ms(build_model(spec.from_dict(LARGE)).eval(), repeats=10)
    assert large > 5 * tiny


def test_build_shows_the_sentence_latency_beside_the_batch_latency():
    runner = CliRunner()
    built = json.loads(runner.invoke(app, ["build", "kim-cnn", "--set", "embedding.vocab_size=60", "--json"]).stdout)
    assert built["sentence_latency_ms"] > 0 and built["sentence_tokens"] == profile.SENTENCE_TOKENS
    assert built["latency_ms"] > 0 and built["batch"] == 8
    text = runner.invoke(app, ["build", "kim-cnn", "--set", "embedding.vocab_size=60", "--set", "embedding.max_len=16"]).stdout
    assert "for a batch of 8," in text and "ms per sentence (16 tokens, 1 thread)" in text
