"""Students that learn from a teacher (rdzoo.distill): the spec section, the transfer set,
teacher outputs computed once and cached, the student's loss, teachers fine-tuned and kept,
and the errors for teachers that cannot teach the data.

Teachers here are small kim-cnn runs trained on the synthetic task in a few seconds."""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from statistics import mean

import pytest
import torch

from rdzoo import spec
from rdzoo.distill import augment, targets as targets_mod
from rdzoo.distill.augment import MASK, transfer_set
from rdzoo.distill.student import fit_student
from rdzoo.distill.teacher import fine_tune, resolve_teachers, teacher_key
from rdzoo.errors import SpecError
from rdzoo.runs import load_run, save_run
from rdzoo.text.batching import pad
from rdzoo.text.data import Split, TextData, load_data
from rdzoo.text.synthetic import NEGATIVE, POSITIVE
from rdzoo.train import fit

FAST = {"embedding.dim": 32, "encoder.stem_channels": 32, "train.epochs": 3, "train.batch_size": 32, "train.lr": 1e-2}
TAGGER = {"embedding.dim": 16, "train.epochs": 2, "train.batch_size": 32}


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `rdzoo ARGS` in this process, through the CLI's error boundary -> (exit status, stdout, stderr)."""
    from rdzoo.cli import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["rdzoo", *args])
        with pytest.raises(SystemExit) as stop:
            main()
        out = capsys.readouterr()
        return stop.value.code or 0, out.out, out.err

    return run


def tag_words(split: Split, n: int) -> Split:
    """The synthetic sentences as word lists, each word tagged POS/NEG (a sentiment word) or X."""
    words = [t.split() for t in split.texts[:n]]
    return Split(words, [["POS" if w in POSITIVE else "NEG" if w in NEGATIVE else "X" for w in ws] for ws in words])


@pytest.fixture(scope="module")
def synthetic():
    return load_data("synthetic")


@pytest.fixture(scope="module")
def tagged(synthetic):
    return TextData("tagged", tag_words(synthetic.train, 300), tag_words(synthetic.dev, 100),
                    tag_words(synthetic.test, 100))


@pytest.fixture(scope="module")
def teacher_run(synthetic, tmp_path_factory):
    """A kim-cnn teacher trained on the synthetic task's 2,000 clean examples (dev accuracy ~1)."""
    fitted = fit(spec.load("kim-cnn", FAST), TextData("synthetic", synthetic.train, synthetic.dev, None))
    return save_run(fitted, tmp_path_factory.mktemp("teacher") / "run", {"data": "synthetic"})


@pytest.fixture(scope="module")
def tagger_run(tagged, tmp_path_factory):
    fitted = fit(spec.load("densenet-tagger", {**TAGGER, "train.epochs": 3}), tagged)
    return save_run(fitted, tmp_path_factory.mktemp("tagger") / "run", {"data": "tagged"})


# --- the spec section -------------------------------------------------------------------


def test_the_distill_section_is_checked_by_key_path_and_filled_in():
    assert spec.load("kim-cnn").train.distill is None  # absent: plain training
    s = spec.load("kim-cnn", ["train.distill={}"]).train.distill
    assert (s.loss, s.temperature, s.alpha, s.augment_copies, s.p_mask, s.p_pos, s.p_ngram, s.ngram_max) == \
        ("mse", 1.0, 0.5, 0, 0.1, 0.1, 0.25, 5)
    kl = spec.load("kim-cnn", ["train.distill.loss=kl"])
    assert kl.train.distill.temperature == 2.0  # filled in on load, so the saved spec is explicit
    assert spec.load(kl.to_dict()) == kl
    for override, message in [
        ("train.distill.alpha=1.5", "train.distill.alpha: 1.5 is out of range"),
        ("train.distill.temperature=0", "train.distill.temperature: 0 is out of range"),
        ("train.distill.temperature=4", "train.distill.temperature: 4 softens the kl loss"),
        ("train.distill.augment_copies=-1", "train.distill.augment_copies: -1 is out of range"),
        ("train.distill.loss=ce", "train.distill.loss: 'ce' is not one of: mse, kl"),
        ("train.distill.alhpa=0.5", "train.distill.alhpa: unknown key.*did you mean 'alpha'"),
    ]:
        with pytest.raises(SpecError, match=message):
            spec.load("kim-cnn", [override])
    with pytest.raises(SpecError, match="train.distill.p_pos: p_mask 0.6 \\+ p_pos 0.5 is over 1"):
        spec.load("kim-cnn", {"train.distill.p_mask": 0.6, "train.distill.p_pos": 0.5})
    spec.check_value("resnet", "train.distill.alpha", 0.3)  # a search space may set a key inside the section
    with pytest.raises(SpecError, match="train.distill.alpha: 3 is out of range"):
        spec.check_value("resnet", "train.distill.alpha", 3)


# --- the plain path ---------------------------------------------------------------------


def test_plain_training_is_unchanged_without_a_distill_section(synthetic, tagged):
    """The losses and accuracies of the code before train.distill existed, for a fixed seed (a
    classifier and a tagger; recorded on the CPU, where the loop is deterministic)."""
    small = TextData("small", synthetic.train.subset(list(range(800))), synthetic.dev, synthetic.test)
    r = fit(spec.load("kim-cnn", FAST), small)
    assert [h["loss"] for h in r.history] == pytest.approx([0.7050918340682983, 0.6308692049980164,
                                                             0.5403657209873199], rel=1e-5)
    assert (r.metrics["dev_accuracy"], r.metrics["test_accuracy"]) == pytest.approx((0.72333333, 0.74))
    t = fit(spec.load("densenet-tagger", TAGGER), tagged)
    assert [h["loss"] for h in t.history] == pytest.approx([0.9831042587757111, 0.3535847276449203], rel=1e-5)
    assert (t.metrics["dev_accuracy"], t.metrics["test_accuracy"]) == pytest.approx((0.88009592, 0.87546700))


def test_a_student_that_ignores_its_teacher_trains_as_plain_training_does(synthetic, teacher_run):
    """alpha 0 and no copies: the student's loss is the hard loss alone, on the same texts."""
    small = TextData("small", synthetic.train.subset(list(range(400))), synthetic.dev, synthetic.test)
    plain = fit(spec.load("kim-cnn", FAST), small)
    student, info = fit_student(spec.load("kim-cnn", {**FAST, "train.distill.alpha": 0.0}), small, [str(teacher_run)])
    assert info["transfer"] == {"transfer_texts": 400, "train": 400, "augmented": 0, "unlabeled": 0}
    assert [h["loss"] for h in student.history] == pytest.approx([h["loss"] for h in plain.history], rel=1e-6)
    assert student.metrics["dev_accuracy"] == plain.metrics["dev_accuracy"]


# --- the transfer set -------------------------------------------------------------------


def test_augmentation_is_seeded_masks_replaces_by_part_of_speech_and_samples_ngrams(synthetic):
    texts, labels = synthetic.train.texts[:200], synthetic.train.labels[:200]
    s = spec.load("kim-cnn", ["train.distill.augment_copies=3"]).train.distill
    a = transfer_set(texts, labels, s, seed=1)
    assert a.texts == transfer_set(texts, labels, s, seed=1).texts  # seeded
    assert a.texts != transfer_set(texts, labels, s, seed=2).texts
    assert len(a) == 800 and a.texts[:200] == texts and a.labels[:200] == labels
    assert a.labels[200:] == [None] * 600 and a.vocab_texts == texts  # copies: no gold label, not in the vocabulary
    copies = [t.split() for t in a.texts[200:]]
    words = [w for c in copies for w in c]
    assert 0.05 < words.count(MASK) / len(words) < 0.15  # p_mask 0.1 (n-grams keep fewer words, same rate)
    shorter = sum(len(c) < len(texts[i % 200].split()) for i, c in enumerate(copies))
    assert 0.15 < shorter / 600 < 0.35  # p_ngram 0.25 (a 5-gram of a 5-word text is no shorter)
    assert all(1 <= len(c) for c in copies)
    # a replaced word is another word of the same part of speech (the UD-EWT lexicon's tag)
    lexicon = {"good": "ADJ", "bad": "ADJ", "movie": "NOUN", "film": "NOUN", "the": "DET"}
    only_pos = spec.load("kim-cnn", {"train.distill.augment_copies": 50, "train.distill.p_mask": 0,
                                     "train.distill.p_pos": 0.5, "train.distill.p_ngram": 0}).train.distill
    out = transfer_set(["the good movie", "the bad film"], ["pos", "neg"], only_pos, 0, lexicon=lexicon)
    seen = {tuple(t.split()) for t in out.texts[2:]}
    assert all(c[0] == "the" and c[1] in ("good", "bad") and c[2] in ("movie", "film") for c in seen)
    assert len(seen) == 4  # every mix turns up


def test_a_taggers_copies_keep_their_word_count_and_use_the_datas_own_parts_of_speech():
    words = [["the", "film", "was", "good"], ["a", "plot", "is", "dull", "and", "slow"]]
    tags = [["DET", "NOUN", "AUX", "ADJ"], ["DET", "NOUN", "AUX", "ADJ", "CCONJ", "ADJ"]]
    s = spec.load("kim-cnn", {"train.distill.augment_copies": 40, "train.distill.p_mask": 0.2,
                              "train.distill.p_pos": 0.5, "train.distill.p_ngram": 1.0}).train.distill
    out = transfer_set(words, tags, s, seed=0, lexicon={}, tagging=True)  # no lexicon: the tags themselves are UPOS
    for i, copy in enumerate(out.texts[2:]):
        original = words[i % 2]
        assert len(copy) == len(original)  # n-gram sampling is skipped for taggers
        for w, tag in zip(copy, tags[i % 2]):
            pool = {x for ws, ts in zip(words, tags) for x, t in zip(ws, ts) if t == tag}
            assert w == MASK or w in pool
    assert any(MASK in c for c in out.texts[2:]) and any(c[1] == "plot" for c in out.texts[2::2])


def test_unlabelled_texts_are_read_one_a_line_and_taught_by_the_teacher_alone(tmp_path, synthetic, teacher_run):
    path = tmp_path / "more.txt"
    path.write_bytes(b"a truly good film\r\n\r\nnot bad at all\ncaf\xe9 scene was dull\n")
    texts, notes = augment.read_unlabeled(path, tagged=False)
    assert texts == ["a truly good film", "not bad at all", "caf\u00e9 scene was dull"]
    assert any("1 blank line" in n for n in notes) and any("cp1252" in n for n in notes)
    assert augment.read_unlabeled(path, tagged=True)[0][1] == ["not", "bad", "at", "all"]
    s = spec.load("kim-cnn", ["train.distill.augment_copies=1"]).train.distill
    out = transfer_set(["x y"], ["pos"], s, 0, unlabeled=texts, lexicon={})
    assert out.labels == ["pos", None, None, None, None] and out.vocab_texts == ["x y", *texts]
    # the hard loss leaves the unlabelled rows out: a batch of only those has none
    from rdzoo.train import hard_loss

    model = torch.nn.Module()
    model.head = torch.nn.Module()
    logits = torch.randn(3, 2)
    assert hard_loss(model, logits, torch.tensor([-100, -100, -100])) == 0
    torch.testing.assert_close(hard_loss(model, logits, torch.tensor([1, -100, 0])),
                               torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([1, 0])))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(Exception, match="unlabeled .*empty.txt: no text in it"):
        augment.read_unlabeled(empty, tagged=False)


# --- teacher outputs --------------------------------------------------------------------


def test_teacher_outputs_are_computed_once_per_key_and_reused_by_another_process(tmp_path, synthetic, teacher_run,
                                                                                  monkeypatch):
    calls = []
    real = targets_mod.teacher_outputs

    def counted(run, texts, *args, **kwargs):
        calls.append(len(texts))
        return real(run, texts, *args, **kwargs)

    monkeypatch.setattr(targets_mod, "teacher_outputs", counted)
    run = load_run(teacher_run)
    texts = synthetic.train.texts[:50]
    settings = {"seed": 0}
    first = targets_mod.teacher_targets([run], texts, settings, ["neg", "pos"], tmp_path)
    path = Path(first.source)
    assert calls == [50] and first.logits.shape == (50, 2) and path.parent == tmp_path
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable as the run's other files are
    stamp = path.stat().st_mtime_ns
    again = targets_mod.teacher_targets([run], texts, settings, ["neg", "pos"], tmp_path)
    assert calls == [50] and torch.equal(again.logits, first.logits) and path.stat().st_mtime_ns == stamp
    # the columns follow the student's label order
    swapped = targets_mod.teacher_targets([run], texts, settings, ["pos", "neg"], tmp_path)
    assert calls == [50, 50] and torch.equal(swapped.logits, first.logits.flip(-1))
    # other texts or settings: another key
    targets_mod.teacher_targets([run], texts, {"seed": 1}, ["neg", "pos"], tmp_path)
    assert calls == [50, 50, 50] and len(list(tmp_path.glob("*.safetensors"))) == 3
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file linked into place
    # an ensemble's targets are its members' mean logits
    pair = targets_mod.teacher_targets([run, run], texts, settings, ["neg", "pos"], tmp_path)
    torch.testing.assert_close(pair.logits, first.logits)
    # another process (a search worker) loads the file without running the teacher
    code = ("import sys, json; from rdzoo.distill import targets as t; from rdzoo.runs import load_run\n"
            "def no(*a, **k): raise SystemExit('the teacher ran')\n"
            "t.teacher_outputs = no\n"
            f"out = t.teacher_targets([load_run({str(teacher_run)!r})], json.loads(sys.argv[1]), {{'seed': 0}}, "
            f"['neg', 'pos'], {str(tmp_path)!r})\n"
            "print(out.logits.sum().item())")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(texts)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) == pytest.approx(first.logits.sum().item())


def test_a_taggers_targets_are_one_row_a_word_and_words_it_cannot_see_are_left_out(tagged, tagger_run, tmp_path):
    run = load_run(tagger_run)
    texts = tagged.train.texts[:20]
    full = targets_mod.teacher_targets([run], texts, {}, run.label_names, tmp_path)
    assert full.tagged and len(full) == 20 and full.logits.shape == (sum(map(len, texts)), 3)
    assert torch.isfinite(full.logits).all()
    with torch.no_grad():
        expected = run.model(pad([run.tokenizer.encode(texts[3])]))[0]
    torch.testing.assert_close(full.example(3), expected)
    # a teacher that reads 4 words a text scores no word past them: NaN rows, masked in a batch
    run.tokenizer.max_len = 4
    short = targets_mod.teacher_targets([run], texts, {"max_len": 4}, run.label_names, tmp_path)
    rows = short.example(0)
    assert torch.isfinite(rows[:4]).all() and torch.isnan(rows[4:]).all()
    positions = [list(range(len(t))) for t in texts]
    soft, mask = short.batch([0, 1], positions, max(len(texts[0]), len(texts[1])))
    assert mask[0].tolist() == [True] * 4 + [False] * (soft.shape[1] - 4) and torch.isfinite(soft).all()
    torch.testing.assert_close(soft[0, :4], rows[:4])
    assert soft[0, 4:].eq(0).all() and mask[1, len(texts[1]):].logical_not().all()


# --- the student ------------------------------------------------------------------------


def test_the_soft_losses_follow_their_papers_and_the_mix_leaves_rows_without_a_target_out():
    from rdzoo.distill.loss import distill_loss, soft_loss

    s, t = torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(soft_loss(s, t, "mse"), ((s - t) ** 2).mean(-1))
    p = torch.softmax(t / 3, -1)
    expected = 9 * (p * (torch.log(p) - torch.log_softmax(s / 3, -1))).sum(-1)  # T^2 KL(teacher || student)
    torch.testing.assert_close(soft_loss(s, t, "kl", 3.0), expected)
    assert soft_loss(t, t, "kl", 2.0).abs().max() < 1e-6
    settings = spec.load("kim-cnn", ["train.distill.alpha=0.25"]).train.distill
    mask = torch.tensor([True, False, True, False])
    hard = torch.tensor(2.0)
    mixed = distill_loss(s, t, mask, hard, settings)
    torch.testing.assert_close(mixed, 0.25 * ((s - t) ** 2).mean(-1)[mask].mean() + 0.75 * hard)
    assert distill_loss(s, t, torch.zeros(4, dtype=torch.bool), hard, settings) == 0.75 * hard


def test_a_student_with_a_teacher_beats_the_same_student_without_it(synthetic, teacher_run):
    """300 training texts with 30% of their labels flipped: the student alone learns little;
    with a teacher trained on clean data and 3 augmented copies it learns the task."""
    rng = random.Random(0)
    few = synthetic.train.subset(list(range(1700, 2000)))
    noisy = [("neg" if y == "pos" else "pos") if rng.random() < 0.3 else y for y in few.labels]
    data = TextData("noisy", Split(few.texts, noisy), synthetic.dev, synthetic.test)
    recipe = {**FAST, "train.epochs": 8}
    alone, taught = [], []
    for seed in (0, 1):
        alone.append(fit(spec.load("kim-cnn", {**recipe, "train.seed": seed}), data).metrics["test_accuracy"])
        student, info = fit_student(spec.load("kim-cnn", {**recipe, "train.seed": seed, "train.distill.alpha": 0.9,
                                                          "train.distill.augment_copies": 3}), data, [str(teacher_run)])
        taught.append(student.metrics["test_accuracy"])
        assert info["transfer"]["augmented"] == 900 and student.spec.train.distill.alpha == 0.9
    assert mean(taught) > mean(alone) + 0.2, (alone, taught)


def test_a_tagger_student_learns_from_per_word_targets_with_and_without_a_crf(tagged, tagger_run, tmp_path):
    for crf in (False, True):
        s = spec.load("densenet-tagger", {**TAGGER, "head.crf": crf, "train.distill.augment_copies": 1,
                                          "train.distill.loss": "kl"})
        student, info = fit_student(s, tagged, [str(tagger_run)], targets=tmp_path)
        assert info["transfer"]["augmented"] == 300
        assert student.metrics["dev_accuracy"] > 0.8 and all(h["loss"] > 0 for h in student.history)


def test_an_entity_tagger_student_is_scored_by_entity_f1(tagged, tmp_path):
    """Entity tags (BIO): the teacher and the student are scored by entity F1, the CRF keeps its constraints."""
    names = {"POS": "B-pos", "NEG": "B-neg", "X": "O"}

    def entities(split):
        return Split(split.texts, [[names[t] for t in tags] for tags in split.labels])

    data = TextData("entities", entities(tagged.train), entities(tagged.dev), entities(tagged.test))
    recipe = {**TAGGER, "train.epochs": 6, "train.lr": 3e-3}
    teacher = save_run(fit(spec.load("densenet-tagger", recipe), data), tmp_path / "t", {"data": "entities"})
    s = spec.load("densenet-tagger", {**recipe, "head.crf": True, "train.epochs": 4, "train.distill.augment_copies": 1})
    student, info = fit_student(s, data, [str(teacher)])
    assert info["teachers"][0]["dev_score"] == json.loads((teacher / "metrics.json").read_text())["dev_entity_f1"]
    assert student.metrics["dev_entity_f1"] > 0.8 and "entity_f1" in student.metrics


def test_a_teacher_named_by_a_spec_is_fine_tuned_on_the_training_split_once_and_kept(synthetic, tmp_path):
    data = TextData("few", synthetic.train.subset(list(range(300))), synthetic.dev, synthetic.test)
    teacher_spec = tmp_path / "teacher.yaml"
    teacher_spec.write_text("base: kim-cnn\nembedding: {dim: 16}\nencoder: {stem_channels: 16}\n"
                            "train: {epochs: 1, batch_size: 32}\n")
    first = resolve_teachers([str(teacher_spec)], data, teacher_dir=tmp_path / "teachers")[0]
    assert first.fine_tuned and first.run.path.parent == tmp_path / "teachers"
    assert first.metrics["test_accuracy"] is None  # the test split was removed before it trained
    stamp = (first.run.path / "model.safetensors").stat().st_mtime_ns
    again = resolve_teachers([str(teacher_spec)], data, teacher_dir=tmp_path / "teachers")[0]
    assert not again.fine_tuned and again.run.path == first.run.path
    assert (again.run.path / "model.safetensors").stat().st_mtime_ns == stamp
    # other training data or another seed: another teacher
    other = TextData("few", synthetic.train.subset(list(range(301))), synthetic.dev, synthetic.test)
    folder, trained = fine_tune(spec.load(str(teacher_spec)), other, tmp_path / "teachers")
    assert trained and folder != first.run.path
    assert len(list((tmp_path / "teachers").iterdir())) == 2  # no temporary folder left behind


def test_a_shortened_teacher_has_its_own_key_and_is_found_again_by_its_epochs(synthetic, tmp_path):
    from rdzoo.distill.teacher import kept_epochs

    data = TextData("few", synthetic.train.subset(list(range(200))), synthetic.dev, synthetic.test)
    s = spec.load("kim-cnn", {"embedding.dim": 16, "encoder.stem_channels": 8, "train.epochs": 3})
    assert kept_epochs(s, data, tmp_path) is None
    folder, trained = fine_tune(s, data, tmp_path, epochs=2)
    assert trained and json.loads((folder / "config.json").read_text())["epochs"] == 2
    assert json.loads((folder / "metrics.json").read_text())["epochs"] == 2
    assert folder.name != teacher_key(s, data)  # not found as the whole recipe's teacher
    assert kept_epochs(s, data, tmp_path) == 2 and fine_tune(s, data, tmp_path, epochs=2) == (folder, False)


def test_an_epoch_is_timed_on_batches_spread_over_the_split_and_scaled_to_its_size(synthetic, monkeypatch):
    from rdzoo.distill import teacher as teacher_mod
    from rdzoo.train import FitResult

    seen = []

    def fit(s, data, **kwargs):
        seen.append((data, kwargs["epochs"]))
        return FitResult(s, None, None, [], {"train_seconds": 2.0})

    monkeypatch.setattr("rdzoo.train.fit", fit)
    s = spec.load("kim-cnn", {"train.batch_size": 10})
    assert teacher_mod.epoch_seconds(s, synthetic, batches=3) == pytest.approx(2.0 * len(synthetic.train) / 30)
    (data, epochs), = seen
    assert epochs == 1 and len(data.train) == 30 and len(data.dev) == 10 and data.test is None
    step = len(synthetic.train) / 30
    assert data.train.texts == [synthetic.train.texts[int(i * step)] for i in range(30)]  # spread, not the first 30


# --- bad input --------------------------------------------------------------------------


def test_a_teacher_that_cannot_teach_the_data_is_one_clear_error(tmp_path, synthetic, teacher_run, tagger_run,
                                                                 tagged, cli):
    other = TextData("sst", Split(["a", "b"], ["0", "1"]), Split(["c"], ["0"]), None)
    with pytest.raises(SpecError, match="teachers: .* was trained on other labels than sst's: it lacks 0, 1 and "
                                        "has neg, pos that sst has not"):
        resolve_teachers([str(teacher_run)], other)
    with pytest.raises(SpecError, match="teachers: .* is a tagger .*, but synthetic has one label a text"):
        resolve_teachers([str(tagger_run)], synthetic)
    with pytest.raises(SpecError, match="teachers: .* is a classifier .*, but tagged has tagged words"):
        resolve_teachers([str(teacher_run)], tagged)
    with pytest.raises(SpecError, match="teachers: nope-model: not a run folder"):
        resolve_teachers(["nope-model"], synthetic)
    for args, message in [
        (["--data", "trec", "--teacher", str(teacher_run)], "--teacher: .* was trained on other labels than trec's"),
        (["--data", "synthetic", "--teacher", str(tagger_run)], "--teacher: .* is a tagger"),
        (["--data", "synthetic", "--set", "train.distill.alpha=0.5"], "train.distill is set: .*--teacher"),
        (["--data", "synthetic", "--unlabeled", str(tmp_path)], "--unlabeled texts are labelled by a teacher"),
        (["--data", "synthetic", "--teacher", str(teacher_run), "--cv", "3"], "--cv .* --teacher"),
        (["--data", "synthetic", "--teacher", str(teacher_run), "--targets", "sqllite:///x.db"],
         "--targets: 'sqllite:///x.db': no database .*did you mean 'sqlite:///x.db'"),
        (["--data", "synthetic", "--teacher", str(teacher_run), "--targets", str(teacher_run / "model.safetensors")],
         "--targets: .*model.safetensors is a file, not a folder; a database is named by its URL"),
    ]:
        code, out, err = cli("train", "kim-cnn", "--epochs", "100000", *args)  # fails before training
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith("rdzoo: error: ") and re.search(message, err), err


def test_cli_trains_a_student_saves_what_it_learnt_from_and_reuses_the_teacher_outputs(tmp_path, teacher_run, cli):
    sets = [x for k, v in {**FAST, "train.epochs": 1}.items() for x in ("--set", f"{k}={v}")]
    unlabeled = tmp_path / "more.txt"
    unlabeled.write_text("a truly good film\nnot bad\n")
    args = ["train", "kim-cnn", "--data", "synthetic", *sets, "--teacher", str(teacher_run), "--unlabeled",
            str(unlabeled), "--targets-dir", str(tmp_path / "targets"), "--json"]
    code, stdout, err = cli(*args, "--out", str(tmp_path / "student"))
    assert code == 0, err
    out = json.loads(stdout)
    assert out["distill"]["transfer"] == {"transfer_texts": 2002, "train": 2000, "augmented": 0, "unlabeled": 2}
    assert out["distill"]["teachers"][0]["run"] == str(teacher_run)
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["distill"] == out["distill"] and config["spec"]["train"]["distill"]["alpha"] == 0.5
    (cached,) = (tmp_path / "targets").iterdir()
    stamp = cached.stat().st_mtime_ns
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert json.loads(stdout)["distill"]["targets"] == str(cached) and cached.stat().st_mtime_ns == stamp


def test_cli_keeps_the_teacher_outputs_in_a_study_database_for_every_later_student(tmp_path, teacher_run, cli,
                                                                                    monkeypatch):
    import sqlite3

    sets = [x for k, v in {**FAST, "train.epochs": 1}.items() for x in ("--set", f"{k}={v}")]
    url = f"sqlite:///{tmp_path}/study.db"
    args = ["train", "kim-cnn", "--data", "synthetic", *sets, "--teacher", str(teacher_run), "--targets", url, "--json"]
    code, stdout, err = cli(*args)
    assert code == 0, err
    where = json.loads(stdout)["distill"]["targets"]
    assert re.fullmatch(re.escape(url) + r" \(table rdzoo_targets, key [0-9a-f]{24}\)", where), where
    (size,) = sqlite3.connect(tmp_path / "study.db").execute("SELECT size FROM rdzoo_targets").fetchone()
    assert size > 2000 * 2 * 4  # 2,000 texts' two float32 logits
    monkeypatch.setattr(targets_mod, "teacher_outputs", lambda *a, **k: pytest.fail("the teacher ran again"))
    code, stdout, err = cli(*args[:-1], "--set", "train.clip_grad=0.5", "--json")  # another student, same texts
    assert code == 0, err
    assert json.loads(stdout)["distill"]["targets"] == where


def test_a_checkpoint_teacher_reads_masked_words_as_its_mask_and_the_student_takes_its_word_vectors(tmp_path,
                                                                                                  synthetic):
    """A teacher fine-tuned from a BERT-family checkpoint sees a masked word as [MASK]; a
    convolutional student starts its words from the same checkpoint (embedding.pretrained)."""
    pytest.importorskip("transformers")
    from test_pretrained import write_bert

    from rdzoo.text.tokenize import UNK_ID, PretrainedTokenizer, WordTokenizer

    bert = write_bert(tmp_path / "tiny-bert")
    pieces = PretrainedTokenizer.from_folder(bert, 40)
    masked = augment.for_tokenizer([f"the {MASK} film", ["a", MASK]], pieces)
    assert masked == ["the [MASK] film", ["a", "[MASK]"]]
    assert pieces.backend.token_to_id("[MASK]") in pieces.encode(masked[0])
    words = WordTokenizer.fit(["the film"], 100, 1, 64, True)
    assert augment.for_tokenizer([f"the {MASK}"], words) == [f"the {MASK}"] and words.encode(f"the {MASK}")[1] == UNK_ID
    teacher = tmp_path / "teacher.yaml"
    teacher.write_text(f"pretrained: {bert}\nencoder: {{pooler: false}}\nhead: {{pool: mean}}\n"
                       "train: {epochs: 1, batch_size: 16, lr: 1.0e-3}\n")
    data = TextData("few", synthetic.train.subset(list(range(200))), synthetic.dev.subset(list(range(100))), None)
    s = spec.load("kim-cnn", {"embedding.pretrained": str(bert), "train.epochs": 1, "train.distill.augment_copies": 1})
    student, info = fit_student(s, data, [str(teacher)], teacher_dir=tmp_path / "teachers")
    assert info["teachers"][0]["fine_tuned"] and info["transfer"]["augmented"] == 200
    assert student.spec.embedding.dim == 32 and student.spec.embedding.pretrained == str(bert)  # the checkpoint's width
