"""Transformer throughput: rdzoo's transformer family against torch.nn.TransformerEncoder
and (when `transformers` is installed: pip install -e '.[bench]') BertModel of the same
size, in one process, side by side.

Each model is an encoder of the same shape (pre-LN for rdzoo and nn.TransformerEncoder,
BERT's post-LN for BertModel) with a word embedding, learned positions and a linear
classifier on the mean-pooled features, trained with AdamW; each row's dropout applies
to all three alike, on attention weights and sublayer outputs. Reports tokens per second
for a training step and for inference, the median of several repeats, and the ratio of
rdzoo to each peer.

    python bench/transformer_speed.py            # small (d 256, 4 layers) and base (d 768, 12 layers)
    python bench/transformer_speed.py --quick    # small only, fewer repeats (~1 minute)
    python bench/transformer_speed.py --sizes small --compile   # adds rdzoo under torch.compile
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

import rdzoo

VOCAB = 8000


class TorchEncoder(nn.Module):
    """nn.TransformerEncoder with the same embedding and head as rdzoo's model."""

    def __init__(self, d, layers, heads, ff, dropout, max_len):
        super().__init__()
        self.word = nn.Embedding(VOCAB, d, padding_idx=0)
        self.position = nn.Embedding(max_len, d)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout, activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.fc = nn.Linear(d, 2)

    def forward(self, tokens):
        x = self.word(tokens) + self.position.weight[: tokens.shape[1]]
        return self.fc(self.encoder(x).mean(1))


class BertClassifier(nn.Module):
    def __init__(self, d, layers, heads, ff, dropout, max_len):
        super().__init__()
        from transformers import BertConfig, BertModel

        config = BertConfig(vocab_size=VOCAB, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=ff, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                            max_position_embeddings=max_len, attn_implementation="sdpa")
        self.bert = BertModel(config, add_pooling_layer=False)
        self.fc = nn.Linear(d, 2)

    def forward(self, tokens):
        return self.fc(self.bert(input_ids=tokens).last_hidden_state.mean(1))


def rdzoo_model(d, layers, heads, ff, dropout, max_len):
    return rdzoo.build({"family": "transformer", "embedding": {"vocab_size": VOCAB, "max_len": max_len},
                        "encoder": {"layers": layers, "d_model": d, "heads": heads, "ff": ff, "dropout": dropout,
                                    "attn_dropout": dropout},  # BERT and nn.TE drop attention weights too
                        "head": {"pool": "mean", "num_classes": 2}})


def time_train(model, tokens, labels, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(tokens), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:  # the first step warms up the allocator and kernels
            times.append(time.perf_counter() - start)
    return times


def time_infer(model, tokens, steps):
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(steps + 1):
            start = time.perf_counter()
            model(tokens)
            if i:
                times.append(time.perf_counter() - start)
    return times


def compiled_rdzoo_model(*shape):
    return torch.compile(rdzoo_model(*shape))  # compiled on its first (untimed) step


def run(size, d, layers, heads, ff, batch, length, dropout, steps, repeats, compile_too=False):
    builders = {"rdzoo": rdzoo_model, "nn.TransformerEncoder": TorchEncoder}
    if compile_too:
        builders["rdzoo torch.compile"] = compiled_rdzoo_model
    try:
        import transformers  # noqa: F401

        builders["BertModel"] = BertClassifier
    except ImportError:
        pass
    torch.manual_seed(0)
    tokens = torch.randint(1, VOCAB, (batch, length))
    labels = torch.randint(0, 2, (batch,))
    models = {name: build(d, layers, heads, ff, dropout, length) for name, build in builders.items()}
    train = {name: [] for name in models}
    infer = {name: [] for name in models}
    for _ in range(repeats):  # interleaved, so drifts in machine load hit every model alike
        for name, model in models.items():
            train[name].append(statistics.median(time_train(model, tokens, labels, steps)))
            infer[name].append(statistics.median(time_infer(model, tokens, steps)))
    n_tokens = batch * length
    row = {"size": size, "d_model": d, "layers": layers, "batch": batch, "length": length, "dropout": dropout}
    for name in models:
        row[f"{name} train tok/s"] = round(n_tokens / statistics.median(train[name]))
        row[f"{name} infer tok/s"] = round(n_tokens / statistics.median(infer[name]))
    for peer in models:
        if peer == "rdzoo torch.compile":  # > 1: compiling makes rdzoo faster
            row["torch.compile train speed-up"] = round(statistics.median(train["rdzoo"]) / statistics.median(train[peer]), 3)
            row["torch.compile infer speed-up"] = round(statistics.median(infer["rdzoo"]) / statistics.median(infer[peer]), 3)
        elif peer != "rdzoo":
            row[f"train ratio vs {peer}"] = round(statistics.median(train[peer]) / statistics.median(train["rdzoo"]), 3)
            row[f"infer ratio vs {peer}"] = round(statistics.median(infer[peer]) / statistics.median(infer["rdzoo"]), 3)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", nargs="*", default=["small", "base"], choices=["small", "base"])
    parser.add_argument("--compile", action="store_true", help="also time rdzoo's model under torch.compile")
    args = parser.parse_args()
    sizes = {"small": ("small", 256, 4, 4, 1024), "base": ("base", 768, 12, 12, 3072)}
    configs = [sizes["small"]] if args.quick else [sizes[s] for s in args.sizes]
    rows = []
    for size, d, layers, heads, ff in configs:
        # the base size takes seconds a step on 2 cores: fewer steps and repeats
        steps, repeats = (3, 3) if args.quick else ((5, 5) if size == "small" else (2, 3))
        for dropout in (0.1, 0.0):
            row = run(size, d, layers, heads, ff, 32, 128, dropout, steps, repeats, args.compile)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"benchmark": "transformer_speed", "rows": rows}))


if __name__ == "__main__":
    main()
