"""What a built model costs: parameters, FLOPs, latency and per-stage shapes."""

from __future__ import annotations

import statistics
import sys
import time

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

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    times = []
    try:
        with torch.inference_mode():
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
    finally:
        torch.set_num_threads(previous)
    return statistics.median(times)


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
