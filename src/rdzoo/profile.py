"""What a built model costs: parameters, FLOPs, latency and per-stage shapes."""

from __future__ import annotations

import statistics
import sys
import time
from contextlib import contextmanager

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop


def count_params(model: torch.nn.Module) -> int:
    """Number of parameters (elements, not bytes), trainable or not."""
    return sum(p.numel() for p in model.parameters())


def dummy_batch(spec, batch: int, length: int, seed: int = 0, word_chars: int = 8) -> torch.Tensor:
    """Random token ids with the second half of every other row padded; with a character CNN,
    (batch, length, 1 + word_chars) ids: every word spelt with `word_chars` characters."""
    from .text.tokenize import CHAR_BUCKETS

    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, spec.embedding.vocab_size, (batch, length), generator=g)
    if spec.embedding.char_dim:
        chars = torch.randint(1, CHAR_BUCKETS, (batch, length, word_chars), generator=g)
        tokens = torch.cat([tokens.unsqueeze(-1), chars], -1)
    if batch > 1 and length > 1:
        tokens[1::2, length // 2:] = 0
    return tokens


def _skip_dynamo_guard() -> None:
    """Let FlopCounterMode dispatch without importing torch._dynamo.

    Every TorchDispatchMode wraps its dispatch in torch._disable_dynamo, whose
    first call imports torch._dynamo: 1.3 s here, longer than the rest of
    `rdzoo build`. With dynamo not loaded nothing is being compiled, so the
    guard has nothing to disable; pre-filling its cache with the plain function
    skips the import. Where torch's internals differ, this does nothing.
    """
    if "torch._dynamo" in sys.modules:
        return
    try:
        from torch.utils.flop_counter import _FlopCounterMode
    except ImportError:
        return
    raw = getattr(_FlopCounterMode.__dict__.get("__torch_dispatch__"), "__wrapped__", None)
    if raw is not None and not hasattr(raw, "__dynamo_disable"):
        setattr(raw, "__dynamo_disable", raw)


def flops(model: torch.nn.Module, tokens: torch.Tensor) -> int:
    """FLOPs of one forward pass on `tokens` (batch, tokens), counted by torch.utils.flop_counter
    (attention included; a multiply-add counts as 2 FLOPs)."""
    _skip_dynamo_guard()
    aten = torch.ops.aten
    # the CPU attention kernel has no formula in torch's registry; it costs what the others do
    cpu_sdpa = {aten._scaled_dot_product_flash_attention_for_cpu: sdpa_flop.__wrapped__}
    # grad mode keeps transformer layers off the fused inference kernel, which the counter cannot see into
    with torch.enable_grad(), FlopCounterMode(display=False, custom_mapping=cpu_sdpa) as counter:
        model(tokens)
    return counter.get_total_flops()


SENTENCE_TOKENS = 32  # a long typical sentence: the 90th percentile in words of SST-2 and UD-EWT (medians 19, 14)


@contextmanager
def torch_threads(threads: int | None):
    """torch's intra-op thread count set to `threads` inside the block (None: left as it is),
    the count it had restored after, also when the block raises."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def latency(model: torch.nn.Module, tokens: torch.Tensor, repeats: int = 5, *, warmup: int = 1,
            threads: int | None = None, min_seconds: float = 0.0) -> float:
    """Median seconds of one forward pass (inference mode) on `tokens` (batch, tokens).

    `warmup` untimed passes come first (allocator, kernel choice); then at least
    `repeats` timed passes, more until `min_seconds` have been timed. `threads`
    fixes torch's intra-op thread count for the measurement (restored after),
    so the figure does not depend on how many cores the process was given; the
    median is robust to the few passes another process on a shared machine
    slows down.
    """
    from .device import synchronize

    times = []
    with torch_threads(threads), torch.inference_mode():
        for _ in range(max(warmup, 0)):
            model(tokens)
        synchronize(tokens.device)  # on a GPU, time work done, not work queued
        spent = 0.0
        while len(times) < repeats or (spent < min_seconds and len(times) < 10 * repeats):
            start = time.perf_counter()
            model(tokens)
            synchronize(tokens.device)
            times.append(time.perf_counter() - start)
            spent += times[-1]
    return statistics.median(times)


def sentence_latency_ms(model: torch.nn.Module, tokens: int | None = None, repeats: int = 20, *,
                        warmup: int = 3) -> float:
    """Milliseconds to score one sentence, the deployment latency: the median of `repeats` timed
    forward passes (inference mode), after `warmup` untimed ones, of a batch of 1 sentence of
    `tokens` tokens (default SENTENCE_TOKENS; at most the model's embedding.max_len), with
    torch on one intra-op thread (`torch_threads(1)`: the old count is restored after), on the
    device the model's parameters are on.

    Batch 1 on one thread is what answering one request on one core costs; `latency` on a
    batch measures throughput instead. The ids are `dummy_batch`'s (random, no padding), so
    any model with a spec can be timed; export.sentence_latency_ms times an ONNX file on the
    same input the same way.
    """
    spec = model.spec
    device = next(model.parameters()).device
    length = min(tokens or SENTENCE_TOKENS, spec.embedding.max_len)
    one = dummy_batch(spec, 1, length).to(device)
    return latency(model, one, repeats, warmup=warmup, threads=1) * 1000


def stage_shapes(model: torch.nn.Module, tokens: torch.Tensor) -> list[dict]:
    """Each summary module's {name, type, params, output_shape} (a parameter count, and the shape as
    a list, e.g. [batch, tokens, channels]), from one forward pass on `tokens`."""
    rows = []
    hooks = []
    for name, module in model.summary_modules():
        def hook(mod, args, out, name=name):
            tensor = out[0] if isinstance(out, tuple) else out
            rows.append({"name": name, "type": type(mod).__name__, "params": count_params(mod),
                         "output_shape": list(tensor.shape)})
        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            model(tokens)
    finally:
        for h in hooks:
            h.remove()
    return rows


def build_report(spec, batch: int, length: int, device, precision, out=None) -> dict:
    """`rdzoo build`: build `spec`'s model (seed 0; a `pretrained:` body's weights copied in), run
    a dummy batch of `batch` x `length` tokens and report its stages, parameters, FLOPs of one
    sequence, a batch's latency (ms, on `device` at `precision`) and one sentence's
    (`sentence_latency_ms`, one thread); with `out`, the initial weights saved there."""
    from .registry import create_model

    model = create_model(spec, seed=0).eval()  # with a checkpoint's weights, so that `out` saves them
    one = dummy_batch(spec, 1, length)
    tokens = dummy_batch(spec, batch, length)
    stages = stage_shapes(model, tokens)
    counted = flops(model, one)
    model, tokens = model.to(device), tokens.to(device)
    with precision.autocast():
        seconds = latency(model, tokens, repeats=3)
        sentence_ms = sentence_latency_ms(model)
    result = {
        "name": spec.name, "family": spec.family, "skip": spec.skip, "params": count_params(model), "flops": counted,
        "seq_len": length, "batch": batch, "latency_ms": round(seconds * 1000, 3), "device": str(device),
        "precision": precision.name,
        # deployment latency: one sentence of typical length on one thread
        "sentence_latency_ms": round(sentence_ms, 3), "sentence_tokens": min(SENTENCE_TOKENS, spec.embedding.max_len),
        "output_shape": stages[-1]["output_shape"], "stages": stages,
    }
    if out is not None:
        from .weights import save

        result["out"] = str(save(model, out))
    return result
