"""A trained model as an ONNX graph, checked and timed under onnxruntime (`rdzoo export RUN --format onnx`).

`to_onnx` traces the model with torch.export (batch, tokens and, with a character CNN,
characters per word left dynamic) and converts the program with torch.onnx's exporter
(`dynamo=True`, onnxscript's translations). The graph takes what `TextModel.forward`
takes: `tokens`, the (batch, tokens) ids of the run's tokenizer (tokenizer.json), right
padded with id 0, or (batch, tokens, 1 + characters) ids with a character CNN; the
padding mask is computed inside the graph from the ids, as `forward` computes it. Its
output `logits` is (batch, classes), or (batch, tokens, tags) for a tagger: the per-word
scores, which a CRF tagger decodes with Viterbi outside the graph. The spec and the
label names ride in the file's metadata (`rdzoo.spec`, `rdzoo.label_names`), and a CRF's
transition, start and end scores (`rdzoo.crf`, forbidden moves at -10,000, as `crf.CRF`
scores them).

`check` compares onnxruntime's logits with PyTorch's on padded batches of several lengths
and refuses a graph that strays; `quantize_int8` is onnxruntime's dynamic quantisation
(int8 weights, activations quantised on the fly); `sentence_latency_ms` times one sentence
on one thread the way `profile.sentence_latency_ms` times PyTorch.

Needs the `onnx` extra (onnx, onnxruntime, onnxscript): `pip install 'rdzoo[onnx]'`.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ExportError, MissingExtra

FORMAT = "rdzoo.onnx/1"
INPUT, OUTPUT = "tokens", "logits"
TOLERANCE = 1e-4  # onnxruntime against PyTorch: absolute, plus the same relative to the logit
EXTRA = "pip install 'rdzoo[onnx]'"


def need_onnx() -> None:
    """Raise MissingExtra (one line naming `pip install 'rdzoo[onnx]'`) unless onnx, onnxruntime,
    onnxscript and onnx_ir all import."""
    missing = []
    for module in ("onnx", "onnxruntime", "onnxscript", "onnx_ir"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtra(f"ONNX export needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                           f"not installed: {EXTRA}")


def example_tokens(spec, lengths: list[int], total: int | None = None, seed: int = 0):
    """A right-padded batch of texts of the given lengths, padded to `total` tokens (default: the
    longest): (batch, tokens) ids in [1, vocab_size), or (batch, tokens, 1 + 7) with a character
    CNN, each word spelt with 1 to 7 characters (the rest 0, as `batching.pad` pads them)."""
    import torch

    from .text.tokenize import CHAR_BUCKETS

    g = torch.Generator().manual_seed(seed)
    total = total or max(lengths)
    ids = torch.randint(1, spec.embedding.vocab_size, (len(lengths), total), generator=g)
    valid = torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]  # (batch, tokens)
    ids = ids.masked_fill(~valid, 0)
    if not spec.embedding.char_dim:
        return ids
    chars = torch.randint(1, CHAR_BUCKETS, (len(lengths), total, 7), generator=g)
    spelt = torch.randint(1, 8, (len(lengths), total, 1), generator=g)  # characters in each word
    chars = chars.masked_fill((torch.arange(7) >= spelt) | ~valid.unsqueeze(-1), 0)
    return torch.cat([ids.unsqueeze(-1), chars], -1)


def check_batches(spec) -> list:
    """The batches `check` scores: four texts (the longest, one token, an odd and an even length)
    all padded past the longest, and one text alone without padding."""
    total = min(spec.embedding.max_len, 24)
    longest = max(total - 3, 1)
    lengths = [longest, 1, max(longest // 2, 1) | 1, min(2, longest)]
    return [example_tokens(spec, lengths, total, seed=1), example_tokens(spec, [min(5, total)], seed=2)]


def to_onnx(model, path: str | Path, label_names: list[str] | None = None) -> Path:
    """Write `model` (a TextModel) to `path` as ONNX with dynamic batch and token axes (see the
    module notes for its input and output); returns the path.

    The model is traced in eval mode and put back in the mode it was in. The file is written
    beside `path` and renamed into place, so a failed export leaves no partial file. Raises
    MissingExtra without the onnx extra, ExportError when torch.export or the ONNX conversion
    cannot handle the model (or the file would pass protobuf's 2 GB limit), OSError when the
    file cannot be written.
    """
    need_onnx()
    import torch
    import torch.fx.experimental._config as fx_config

    path = Path(path)
    spec = model.spec
    was_training = model.training
    model.eval()
    example = example_tokens(spec, [min(spec.embedding.max_len, 16)] * 2)
    auto = torch.export.Dim.AUTO  # dynamic where the model lets it be; `check` proves the sizes it was not traced at
    axes = {0: auto, 1: auto, **({2: auto} if example.dim() == 3 else {})}
    try:
        # size-oblivious: trace for a general size rather than specialise sizes 0 and 1
        # (one token, a batch of one), whose graphs would be the general one anyway
        with fx_config.patch(backed_size_oblivious=True), torch.no_grad():
            program = torch.export.export(model, (example,), dynamic_shapes={"tokens": axes})
        onnx_program = torch.onnx.export(program, (example,), dynamo=True, input_names=[INPUT],
                                         output_names=[OUTPUT], verbose=False)
    except Exception as exc:  # torch raises many kinds here; a user sees the first line
        raise ExportError(f"{spec.name}: ONNX export failed: {_first_line(exc)}") from exc
    finally:
        model.train(was_training)
    onnx_model = onnx_program.model
    _name_axes(onnx_model, ["batch", "tokens", "characters"][:example.dim()])
    onnx_model.graph.inputs[0].doc_string = (
        "token ids from the run's tokenizer.json, right padded with 0: (batch, tokens), or (batch, tokens, "
        "1 + characters) with a character CNN")
    onnx_model.graph.outputs[0].doc_string = "(batch, classes) logits, or (batch, tokens, tags) per-word scores"
    onnx_model.metadata_props.update({"format": FORMAT, "rdzoo.spec": json.dumps(spec.to_dict()),
                                      "rdzoo.label_names": json.dumps(label_names or [])})
    crf = getattr(model.head, "crf", None)
    if crf is not None:  # what a Viterbi decoder needs beside the per-word scores, forbidden moves included
        trans, start, end = (t.detach().tolist() for t in crf.scores())
        onnx_model.metadata_props["rdzoo.crf"] = json.dumps({"transitions": trans, "start": start, "end": end})
    tmp = path.with_name(path.name + ".tmp")
    try:
        onnx_program.save(tmp, external_data=False)
    except ValueError as exc:  # protobuf's 2 GB limit on one file
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{path}: the model does not fit one ONNX file ({_first_line(exc)})") from None
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _name_axes(onnx_model, names: list[str]) -> None:
    """Rename the input's traced size symbols (s27, ...) to `names` wherever a shape names them."""
    import onnx_ir as ir

    graph = onnx_model.graph
    symbols = {d.value: name for d, name in zip(graph.inputs[0].shape.dims, names)
               if isinstance(d, ir.SymbolicDim) and d.value}
    if not symbols:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, symbols)) + r")\b")
    values = [*graph.inputs, *graph.outputs, *(v for node in graph for v in node.outputs)]
    for value in values:
        if value.shape is None:
            continue
        dims = [ir.SymbolicDim(pattern.sub(lambda m: symbols[m.group(1)], d.value))
                if isinstance(d, ir.SymbolicDim) and d.value else d for d in value.shape.dims]
        value.shape = ir.Shape(dims)


def session(path: str | Path, threads: int = 1):
    """An onnxruntime InferenceSession on the CPU with `threads` intra-op threads and one inter-op
    thread (sequential execution), all graph optimisations on."""
    need_onnx()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess, tokens):
    """Logits (numpy) of a session on `tokens`, a (batch, tokens[, 1 + characters]) tensor or array of ids."""
    import numpy as np

    ids = tokens.numpy() if hasattr(tokens, "numpy") else np.asarray(tokens)
    return sess.run([OUTPUT], {INPUT: ids.astype(np.int64)})[0]


def check(model, path: str | Path, tolerance: float = TOLERANCE) -> float:
    """Score `check_batches` with the model (eval mode) and with onnxruntime on the file; returns
    the largest absolute logit difference. Raises ExportError when one passes `tolerance` plus
    `tolerance` times the logit's size (numpy.allclose's test), or the graph refuses a batch
    (a size the trace fixed)."""
    import numpy as np
    import torch

    sess = session(path)
    worst = 0.0
    was_training = model.training
    model.eval()
    try:
        for tokens in check_batches(model.spec):
            with torch.no_grad():
                expected = model(tokens).float().numpy()
            try:
                got = run(sess, tokens)
            except Exception as exc:  # onnxruntime's own error types
                raise ExportError(f"{path}: onnxruntime cannot run a batch of shape {tuple(tokens.shape)}: "
                                  f"{_first_line(exc)}") from exc
            if got.shape != expected.shape:
                raise ExportError(f"{path}: onnxruntime gives logits of shape {got.shape}, PyTorch {expected.shape}")
            worst = max(worst, float(np.abs(got - expected).max(initial=0.0)))
            if not np.allclose(got, expected, rtol=tolerance, atol=tolerance):
                raise ExportError(f"{path}: onnxruntime's logits differ from PyTorch's by up to {worst:.2e} "
                                  f"(allowed {tolerance:g}) on a batch of shape {tuple(tokens.shape)}")
    finally:
        model.train(was_training)
    return worst


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    """onnxruntime's dynamic quantisation of an ONNX file: weights of the MatMul, Gemm, Conv and
    Gather (embedding) nodes stored as signed int8 (QuantType.QInt8, one scale per tensor),
    activations quantised at run time; returns `target`. Raises MissingExtra without the extra,
    ExportError when onnxruntime cannot quantise the graph."""
    need_onnx()
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    # quantize_dynamic logs advice to pre-process the graph first (quant_pre_process): its shape
    # inference fails on torch.onnx's graphs, and without it kim-cnn's int8 file came out the same
    logging.disable(logging.WARNING)
    try:
        quantize_dynamic(Path(source), tmp, weight_type=QuantType.QInt8)
    except Exception as exc:  # onnxruntime's and onnx's own error types
        tmp.unlink(missing_ok=True)
        raise ExportError(f"{source}: int8 quantisation failed: {_first_line(exc)}") from exc
    finally:
        logging.disable(logging.NOTSET)
    tmp.replace(target)
    return target


def sentence_latency_ms(path: str | Path, spec, tokens: int | None = None, repeats: int = 20, *,
                        warmup: int = 3) -> float:
    """Milliseconds onnxruntime takes to score one sentence: the median of `repeats` timed runs,
    after `warmup` untimed ones, of a batch of 1 with `tokens` tokens (default
    profile.SENTENCE_TOKENS; at most embedding.max_len) on one intra-op thread
    (SessionOptions.intra_op_num_threads = 1). The same input and method as
    `profile.sentence_latency_ms`, so the two compare."""
    from .profile import SENTENCE_TOKENS, dummy_batch

    sess = session(path, threads=1)
    length = min(tokens or SENTENCE_TOKENS, spec.embedding.max_len)
    ids = dummy_batch(spec, 1, length).numpy()
    for _ in range(max(warmup, 0)):
        run(sess, ids)
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        run(sess, ids)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000



@dataclass(frozen=True)
class OnnxExport:
    """What `export_run` did: the run folder, the ONNX file and its graph's input and output shapes,
    the largest logit difference from PyTorch, one sentence's latency (ms) under PyTorch and
    onnxruntime (fp32, and int8 when quantised) on `tokens` tokens and one thread, the files' sizes
    (bytes), and the model's name, family and whether it is a CRF tagger."""

    run: str
    out: str
    quantize: str | None
    input_shape: list
    output_shape: list
    max_abs_diff: float
    tokens: int
    latency_ms: dict
    bytes: dict
    name: str
    family: str
    crf: bool

    def to_json(self) -> dict:
        """The export for --json (run, out, format, quantize, input, output, max_abs_diff,
        sentence_tokens, threads, latency_ms in ms to 4 places, bytes)."""
        return {"run": self.run, "out": self.out, "format": "onnx", "quantize": self.quantize,
                "input": {"name": INPUT, "shape": self.input_shape}, "output": {"name": OUTPUT, "shape": self.output_shape},
                "max_abs_diff": self.max_abs_diff, "sentence_tokens": self.tokens, "threads": 1,
                "latency_ms": {k: round(v, 4) for k, v in self.latency_ms.items()}, "bytes": self.bytes}


def export_run(run: str | Path, out: str | Path | None = None, quantize: str | None = None,
               tokens: int | None = None) -> OnnxExport:
    """`rdzoo export RUN --format onnx`: write a run folder's model as ONNX to `out` (default
    RUN/model.onnx, its folder made; int8 with `quantize` "int8"), check its logits against
    PyTorch's (`check`) and time one sentence of `tokens` tokens (default
    profile.SENTENCE_TOKENS, at most embedding.max_len) under PyTorch and onnxruntime.

    Raises MissingExtra without the onnx packages (before loading anything), WeightsError for a
    folder that is not a run, ExportError when the export or the check fails, OSError when
    `out` cannot be written."""
    import tempfile

    need_onnx()  # before loading anything: one line naming the extra
    from . import profile
    from .runs import load_run

    run = Path(run)
    loaded = load_run(run)
    model, spec = loaded.model, loaded.model.spec
    out = Path(out) if out is not None else run / "model.onnx"
    length = min(tokens or profile.SENTENCE_TOKENS, spec.embedding.max_len)
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "fp32.onnx" if quantize else out  # `out` holds the model asked for
        to_onnx(model, fp32, loaded.label_names)
        if quantize:
            quantize_int8(fp32, out)
        diff = check(model, fp32)
        ms = {"pytorch": profile.sentence_latency_ms(model, length),
              "onnxruntime": sentence_latency_ms(fp32, spec, length)}
        size = {"fp32": fp32.stat().st_size}
        if quantize:
            ms["onnxruntime_int8"] = sentence_latency_ms(out, spec, length)
            size["int8"] = out.stat().st_size
    tagger = spec.head.pool == "token"
    return OnnxExport(str(run), str(out), quantize, ["batch", "tokens", *(["characters"] if spec.embedding.char_dim else [])],
                      ["batch", *(["tokens"] if tagger else []), spec.head.num_classes], diff, length, ms, size,
                      spec.name, spec.family, bool(tagger and spec.head.crf))
