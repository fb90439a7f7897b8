"""One command that checks rdzoo on a GPU machine (about 5 minutes on one H100/H200):

1. transformer-text-base (BERT-base shape: 12 layers, d 768, 12 heads, ff 3072) trained
   for a fixed number of steps at bf16 beside transformers.BertModel of the same shape:
   same batch (32 x 512 tokens, no padding), same vocabulary (30522), same optimizer
   (AdamW, PyTorch's fused kernel), same bf16 autocast, same step; tokens per second for
   both, and rdzoo's model FLOPs utilization (MFU: FLOPs of a training step counted by
   torch.utils.flop_counter, per second, over the GPU's dense bf16 peak), eager and under
   torch.compile. Goals: rdzoo eager >= 1.0x BertModel eager, MFU >= 35%;
2. the device-agnostic tests (tests/test_device.py) on CUDA (RDZOO_TEST_DEVICE=cuda);
3. a short search (`rdzoo search --device cuda`) on the synthetic task, to its end.

It prints progress on stderr and one JSON object, last, on stdout.

    python bench/gpu_check.py                  # on a GPU machine
    python bench/gpu_check.py --smoke          # tiny sizes on the CPU, to check the script itself
    python bench/gpu_check.py --peak-tflops 312   # a GPU not in PEAK_BF16_TFLOPS

Runs from the repository root with rdzoo installed (pip install -e .) or not
(it puts src/ on the path); the search needs Optuna, the comparison transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, TFLOP/s; the first
# name that is a substring of torch.cuda.get_device_name() wins
PEAK_BF16_TFLOPS = [("H200", 989.0), ("GH200", 989.0), ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.0),
                    ("H800", 989.0), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0),
                    ("L4", 121.0), ("A10G", 70.0), ("A6000", 155.0)]
VOCAB = 30522  # BERT's WordPiece vocabulary


def log(message: str) -> None:
    sys.stderr.write(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def env_with_src() -> dict:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO / "src") + (os.pathsep + path if path else "")}


def peak_flops(name: str, override: float | None) -> float | None:
    if override:
        return override * 1e12
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in name:
            return tflops * 1e12
    return None


# --- 1. tests -------------------------------------------------------------------------------

def run_tests(device: str, select: str | None, timeout: int) -> dict:
    args = [sys.executable, "-m", "pytest", "tests/test_device.py", "-q", "-rfE", "--durations=5", "-p",
            "no:cacheprovider", "-o", "addopts="]  # the slow ones too: fp16 is slow only on the CPU
    if select:
        args += ["-k", select]
    start = time.perf_counter()
    try:
        proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env={**env_with_src(), "RDZOO_TEST_DEVICE": device})
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return {"device": device, "ok": False, "error": f"timed out after {timeout} s", "output": partial[-1500:]}
    lines = proc.stdout.strip().splitlines()
    summary = lines[-1] if lines else proc.stderr.strip()[-300:]
    counts = {}
    for part in summary.strip("= ").split(" in ")[0].split(", "):
        bits = part.split()
        if len(bits) == 2 and bits[0].isdigit():
            counts[bits[1]] = int(bits[0])
    failed = [ln[:400] for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    slowest = [ln.strip() for ln in lines if ln.strip().endswith(("call", "setup")) and "s " in ln][:5]
    return {"device": device, "ok": proc.returncode == 0, "passed": counts.get("passed", 0),
            "failed": counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0),
            "skipped": counts.get("skipped", 0), "failures": failed, "slowest": slowest, "summary": summary,
            "seconds": round(time.perf_counter() - start, 1)}


# --- 2. throughput beside BertModel ---------------------------------------------------------------

def rdzoo_model(d, layers, heads, ff, length, dropout):
    import rdzoo

    # transformer-text-base is this shape; the overrides only restate it for the smoke sizes
    return rdzoo.build("transformer-text-base", {
        "embedding.vocab_size": VOCAB, "embedding.max_len": length, "encoder.layers": layers, "encoder.d_model": d,
        "encoder.heads": heads, "encoder.ff": ff, "encoder.dropout": dropout,
        "encoder.attn_dropout": dropout,  # BertModel drops attention weights too: the same arithmetic in both
        "head.num_classes": 2})


def bert_model(d, layers, heads, ff, length, dropout):
    import torch
    from transformers import BertConfig, BertModel

    class BertClassifier(torch.nn.Module):
        """BertModel (post-LN, SDPA attention) with the same mean pooling and classifier as rdzoo's model."""

        def __init__(self):
            super().__init__()
            config = BertConfig(vocab_size=VOCAB, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                                intermediate_size=ff, hidden_dropout_prob=dropout,
                                attention_probs_dropout_prob=dropout, max_position_embeddings=length)
            config._attn_implementation = "sdpa"
            self.bert = BertModel(config, add_pooling_layer=False)
            self.fc = torch.nn.Linear(d, 2)

        def forward(self, tokens):
            return self.fc(self.bert(input_ids=tokens).last_hidden_state.mean(1))

    return BertClassifier()


def make_step(model, device):
    """One training step as rdzoo's loop takes it: bf16 autocast, fused AdamW, no host read."""
    import torch
    import torch.nn.functional as F

    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **fused)
    dtype = torch.bfloat16

    def step(tokens, labels):
        with torch.autocast(device.type, dtype=dtype):
            logits = model(tokens)
        loss = F.cross_entropy(logits.float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return step


def time_steps(step, tokens, labels, steps, device) -> float:
    from rdzoo.device import synchronize

    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step(tokens, labels)
    synchronize(device)
    return (time.perf_counter() - start) / steps


def count_step_flops(model, step, tokens, labels) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    from rdzoo.profile import _skip_dynamo_guard

    _skip_dynamo_guard()
    with FlopCounterMode(display=False) as counter:
        step(tokens, labels)
    return counter.get_total_flops()


def throughput(device, sizes, steps, repeats, compile_too, peak, deadline) -> dict:
    import torch

    d, layers, heads, ff, batch, length = sizes
    torch.manual_seed(0)
    tokens = torch.randint(1, VOCAB, (batch, length), device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    models = {"rdzoo": rdzoo_model(d, layers, heads, ff, length, 0.1).to(device)}
    try:
        models["BertModel"] = bert_model(d, layers, heads, ff, length, 0.1).to(device)
    except ImportError as exc:
        log(f"no BertModel: {exc}")
    steps_fn = {name: make_step(m, device) for name, m in models.items()}
    for name, fn in steps_fn.items():  # warm-up: kernels chosen, allocator filled
        for _ in range(3):
            fn(tokens, labels)
        log(f"{name} warmed up")
    times = {name: [] for name in models}
    for _ in range(repeats):  # interleaved, so a drifting clock or load hits both alike
        for name, fn in steps_fn.items():
            times[name].append(time_steps(fn, tokens, labels, steps, device))
    flops = count_step_flops(models["rdzoo"], steps_fn["rdzoo"], tokens, labels)
    n_params = sum(p.numel() for p in models["rdzoo"].parameters())
    n_embed = sum(p.numel() for p in models["rdzoo"].embed.parameters())
    # Kaplan et al. (2020): 6 N per token for a step (N without embeddings), plus attention's
    # 2 (QK^T) + 2 (AV) x T x d per token per layer forward, times 3 with the backward pass
    analytic = 6 * (n_params - n_embed) * batch * length + 12 * layers * batch * length * length * d
    tokens_per_step = batch * length
    out = {"d_model": d, "layers": layers, "heads": heads, "ff": ff, "batch": batch, "length": length,
           "steps": steps, "repeats": repeats, "params": n_params, "flops_per_step": flops,
           "flops_per_step_6N_plus_attention": analytic, "peak_bf16_flops": peak}
    for name, ts in times.items():
        sec = statistics.median(ts)
        out[f"{name} tokens/s"] = round(tokens_per_step / sec)
        out[f"{name} step ms"] = round(sec * 1000, 2)
    sec = statistics.median(times["rdzoo"])
    out["rdzoo MFU"] = round(flops / sec / peak, 4) if peak else None
    if "BertModel" in times:
        out["ratio rdzoo / BertModel"] = round(statistics.median(times["BertModel"]) / sec, 3)
        peak_mem = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        out["peak_memory_both_models"] = peak_mem
    if compile_too and time.perf_counter() < deadline:
        try:
            start = time.perf_counter()
            compiled = torch.compile(models["rdzoo"])
            fn = make_step(compiled, device)
            for _ in range(3):
                fn(tokens, labels)
            out["compile seconds"] = round(time.perf_counter() - start, 1)
            ts = [time_steps(fn, tokens, labels, steps, device) for _ in range(repeats)]
            csec = statistics.median(ts)
            out["rdzoo torch.compile tokens/s"] = round(tokens_per_step / csec)
            out["rdzoo torch.compile MFU"] = round(flops / csec / peak, 4) if peak else None
            if "BertModel" in times:
                out["ratio rdzoo torch.compile / BertModel"] = round(statistics.median(times["BertModel"]) / csec, 3)
        except Exception as exc:  # a compiler failure is a finding, not the end of the check
            out["compile error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    elif compile_too:
        out["compile error"] = "skipped: out of time"
    return out


# --- 3. a short search ------------------------------------------------------------------------------

SEARCH_SPACE = {
    "name": "gpu-check",
    "fixed": {"embedding": {"kind": "word", "dim": 128, "max_len": 64}, "train": {"epochs": 2, "batch_size": 64}},
    "choose": {
        "train.lr": {"float": [5.0e-4, 3.0e-3], "log": True},
        "family": {
            "transformer": {"encoder.layers": {"int": [1, 4]}, "encoder.d_model": {"choice": [128, 256]},
                            "encoder.heads": {"choice": [2, 4]}, "encoder.skip": {"choice": ["residual", "rezero"]}},
            "resnet": {"encoder.stages": {"choice": [[1, 1], [2, 2]]}, "encoder.channels": {"choice": [64, 128]},
                       "encoder.skip": {"choice": ["residual", "gated"]}},
        },
    },
}


def run_search(device: str, trials: int, timeout: int, epochs: int | None = None) -> dict:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return {"ok": False, "error": "optuna is not installed (pip install optuna, or carry its wheels)"}
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        space = Path(tmp) / "space.yaml"
        space.write_text(yaml.safe_dump(SEARCH_SPACE))
        storage = f"sqlite:///{tmp}/gpu_check.db"
        args = [sys.executable, "-m", "rdzoo.cli", "search", "--space", str(space), "--data", "synthetic",
                "--trials", str(trials), "--device", device, "--storage", storage, "--seed", "0", "--top", "10",
                "--json", "--pruner", "none", "--final", "2", "--final-seeds", "2",  # the final stage on the device too
                "--teacher", "none",
                *(["--epochs", str(epochs)] if epochs else [])]
        start = time.perf_counter()
        try:
            proc = subprocess.run(args, cwd=tmp, capture_output=True, text=True, timeout=timeout, env=env_with_src())
        except subprocess.TimeoutExpired:
            return {"ok": False, "error": f"timed out after {timeout} s"}
        seconds = round(time.perf_counter() - start, 1)
        if proc.returncode != 0:
            return {"ok": False, "exit": proc.returncode, "error": proc.stderr.strip()[-1000:], "seconds": seconds}
        result = json.loads(proc.stdout)
        best = result.get("best") or []
        verdict = (result.get("verdict") or {}).get("recommended") or {}
        return {"ok": result.get("finished") == trials and not result.get("interrupted") and bool(verdict),
                "device": device, "final_recommended": verdict.get("contender"),
                "finished": result.get("finished"), "seconds": seconds,
                "best_dev_accuracy": best[0]["dev_accuracy"] if best else None,
                "trials": [{k: r[k] for k in ("trial", "family", "dev_accuracy", "train_seconds", "peak_memory")}
                           for r in best],
                "stderr": proc.stderr.strip()[-500:]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the script, measures nothing")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps a repeat (default 10; 2 with --smoke)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, if not in the table")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile row")
    parser.add_argument("--skip", nargs="*", default=[], choices=["tests", "throughput", "search"])
    parser.add_argument("--budget", type=float, default=330, help="seconds; torch.compile is skipped past 40%% of it")
    args = parser.parse_args()
    began = time.perf_counter()
    import torch

    from rdzoo.device import env_info, resolve_device

    device = resolve_device(args.device or ("cpu" if args.smoke else "cuda"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_flops(name, args.peak_tflops)
    report = {"check": "gpu_check", "smoke": args.smoke, "device": str(device), "device_name": name,
              "env": {k: v for k, v in env_info().items() if k != "devices"}}
    log(f"device {device} ({name}); peak bf16 {peak / 1e12 if peak else '?'} TFLOP/s")
    if "throughput" not in args.skip:
        log("throughput beside BertModel ...")
        sizes = (64, 2, 2, 256, 4, 64) if args.smoke else (768, 12, 12, 3072, 32, 512)
        steps = args.steps or (2 if args.smoke else 10)
        try:
            report["throughput"] = throughput(device, sizes, steps, 2 if args.smoke else 3,
                                              not args.no_compile and not args.smoke, peak,
                                              deadline=began + 0.4 * args.budget)
        except Exception as exc:
            report["throughput"] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
        log(f"throughput: {json.dumps(report['throughput'])}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if "tests" not in args.skip:
        log("tests on the device ...")
        select = "workers or parsing or precision_is or memory_meter or out_of_memory_in_fit" if args.smoke else None
        report["tests"] = run_tests(device.type, select, timeout=300 if args.smoke else 180)
        log(f"tests: {report['tests'].get('summary') or report['tests'].get('error')}")
    if "search" not in args.skip:
        log("a short search on the device ...")
        report["search"] = run_search(str(device), 2 if args.smoke else 6, timeout=300 if args.smoke else 200,
                                      epochs=1 if args.smoke else None)
        log(f"search: finished {report['search'].get('finished')}, {report['search'].get('error', 'ok')}")
    t = report.get("throughput", {})
    mfu = max([m for m in (t.get("rdzoo MFU"), t.get("rdzoo torch.compile MFU")) if m is not None], default=None)
    report["goals"] = {
        "rdzoo_vs_BertModel_eager": t.get("ratio rdzoo / BertModel"),
        "rdzoo_vs_BertModel_at_least_1": None if t.get("ratio rdzoo / BertModel") is None
        else t["ratio rdzoo / BertModel"] >= 1.0,
        "best_mfu": mfu, "mfu_at_least_35_percent": None if mfu is None else mfu >= 0.35,
        "tests_pass": report.get("tests", {}).get("ok"), "search_finished": report.get("search", {}).get("ok"),
    }
    report["seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
