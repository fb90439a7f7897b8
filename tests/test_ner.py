"""Named entities: the CoNLL loader, span-level scores, the CRF, and an entity tagger end to end."""

import itertools
import json
import random
import re

import pytest
import torch

from rdzoo import metrics, plan, spec
from rdzoo.crf import CRF, allowed_transitions
from rdzoo.errors import DataError, SpecError
from rdzoo.text.conll import entity_counts, entity_spans, mark_entities
from rdzoo.text.data import load_data, read_file


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# --- loader ----------------------------------------------------------------------------


def test_two_columns_with_both_sentence_ends(tmp_path):
    # WNUT-17: a sentence ends with an empty line or with a line holding a single tab
    path = write(tmp_path / "train.conll", "Empire\tB-location\nState\tI-location\nBuilding\tI-location\n\t\n"
                                           "hi\tO\n@bob\tB-person\n\nlast\tO\n")
    split, skipped, _, _ = read_file(path)
    assert split.texts == [["Empire", "State", "Building"], ["hi", "@bob"], ["last"]]
    assert split.labels == [["B-location", "I-location", "I-location"], ["O", "B-person"], ["O"]]
    assert skipped == []


def test_conll2003_columns_tag_last_and_docstart_skipped(tmp_path):
    path = write(tmp_path / "train.conll", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"
                                           "German JJ B-NP B-MISC\n\n-DOCSTART- -X- -X- O\nPeter NNP B-NP B-PER\n"
                                           "Blackburn NNP I-NP I-PER\n")
    split, _, _, _ = read_file(path)
    assert split.texts == [["EU", "rejects", "German"], ["Peter", "Blackburn"]]
    assert split.labels == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"]]
    assert entity_counts(split.labels) == {"ORG": 1, "MISC": 1, "PER": 1}


def test_iobes_tags(tmp_path):
    path = write(tmp_path / "train.conll", "New\tB-loc\nYork\tE-loc\nis\tO\nbig\tO\n\nParis\tS-loc\nand\tO\n"
                                           "Big\tB-org\nBlue\tI-org\nInc\tE-org\n")
    split, _, _, _ = read_file(path)
    assert len(split) == 2 and entity_counts(split.labels) == {"loc": 2, "org": 1}
    assert metrics.entities(split.labels[1]) == [("loc", 0, 0), ("org", 2, 4)]
    # IOBES must close what it opens: B- then O is broken
    write(tmp_path / "bad.conll", "New\tB-loc\nYork\tO\n\nParis\tS-loc\n")
    with pytest.raises(DataError, match=r"bad\.conll, line 2: malformed IOBES tag sequence \(B-loc -> O\)"):
        read_file(tmp_path / "bad.conll")


def test_broken_bio_sequence_is_an_error_or_skipped_and_counted(tmp_path):
    text = "a\tO\nb\tB-x\n\nc\tO\nd\tI-x\n\ne\tB-x\nf\tI-y\n\ng\tB-x\nh\tI-x\n"
    path = write(tmp_path / "train.conll", text)
    with pytest.raises(DataError, match=r"line 5: malformed BIO tag sequence \(O -> I-x\).*on_bad_line skip"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    assert len(skipped) == 2  # I-x after O, and I-y after B-x: neither repaired nor kept
    assert split.texts == [["a", "b"], ["g", "h"]]


def test_line_without_a_tag_is_named(tmp_path):
    path = write(tmp_path / "train.conll", "a\tO\nlonely\nb\tB-x\n")
    with pytest.raises(DataError, match=r"line 2: expected a token and its tag"):
        read_file(path)


def test_folder_of_conll_files_and_the_dev_test_splits(tmp_path):
    write(tmp_path / "train.conll", "Paris\tB-loc\nis\tO\n\nBob\tB-per\nran\tO\n")
    write(tmp_path / "dev.conll", "Bob\tB-per\n")
    write(tmp_path / "test.conll", "Paris\tB-loc\n")
    d = load_data(tmp_path)
    assert d.tagging and d.sizes() == {"train": 2, "dev": 1, "test": 1}
    assert d.label_names == ["B-loc", "B-per", "O"]


def _entity_file(n_sentences=100):
    """Entity sentences, three words each (`Bob runs home`: B-PER O O), a blank line after each."""
    return "".join(f"Bob{i}\tB-PER\nruns\tO\nhome\tO\n\n" for i in range(n_sentences))


def test_one_stray_tag_does_not_turn_entity_data_into_plain_tagging(tmp_path):
    text = _entity_file(100)
    text = text.replace("runs\tO", "runs\t0", 1)  # line 2: the digit zero, once in 300 tags
    text += "Ann\tO\nLee\tI-PER\n"  # an I-PER after O: still broken BIO, not plain tags
    path = write(tmp_path / "train.conll", text)
    with pytest.raises(DataError, match=r"train\.conll, line 2: tag '0' is not a BIO tag \(O, B-type, I-type\) "
                                        r"\(the digit zero; outside is the letter O\)"):
        read_file(path)
    split, skipped, _, notes = read_file(path, on_bad_line="skip")
    assert [s.line for s in skipped] == [2, 402] and len(split) == 99  # both sentences dropped, and counted
    assert notes == ["train.conll: entity tagging (BIO): 3 of 4 distinct tags and 301 of 302 words are O or "
                     "B-/I-/E-/S-type"]
    d = load_data(path, on_bad_line="skip")
    assert d.tagging and "0" not in d.label_names and d.skipped == 2
    assert any("entity tagging (BIO)" in n for n in d.note_lines())


def test_one_stray_s_tag_does_not_turn_bio_into_iobes(tmp_path):
    path = write(tmp_path / "train.conll", _entity_file(50) + "Paris\tS-LOC\n")  # IOBES would break every B-PER
    with pytest.raises(DataError, match=r"line 201: tag 'S-LOC' is not a BIO tag"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    assert len(skipped) == 1 and len(split) == 50
    iobes = write(tmp_path / "iobes.conll", "New\tB-LOC\nYork\tE-LOC\n\nParis\tS-LOC\n\nBob\tB-PER\nSmith\tE-PER\n")
    assert read_file(iobes)[3] == ["iobes.conll: entity tagging (IOBES): 5 of 5 distinct tags and 5 of 5 words are "
                                   "O or B-/I-/E-/S-type"]


@pytest.mark.parametrize("text, why", [
    ("The\tDT\ndog\tNN\nbarks\tVBZ\n\nA\tDT\ncat\tB-x\n", "1 of 4 distinct tags and 1 of 5 words .*, not most of either"),
    ("Bob\tI-PER\nruns\tO\n\nAnn\tI-PER\n", "no tag opens an entity"),  # IOB1 without B-: not read as BIO
])
def test_tags_that_are_mostly_not_entity_tags_are_plain_tagging_and_say_why(tmp_path, text, why):
    split, skipped, _, notes = read_file(write(tmp_path / "train.conll", text))
    assert skipped == [] and len(split) == 2  # read as given, without the checks
    assert len(notes) == 1 and re.match(rf"train\.conll: tagging without entity scores: .*{why}", notes[0])


def test_dev_and_test_files_are_read_as_the_train_file(tmp_path):
    write(tmp_path / "train.conll", _entity_file(5))
    write(tmp_path / "dev.conll", "Bob\tB-PER\nruns\tO\n")
    write(tmp_path / "test.conll", "runs\tO\nhome\t0\n\nAnn\tO\n")  # alone no entity tags; in the data set a stray
    with pytest.raises(DataError, match=r"test\.conll, line 2: tag '0' is not a BIO tag"):
        load_data(tmp_path)
    d = load_data(tmp_path, on_bad_line="skip")
    assert d.sizes() == {"train": 5, "dev": 1, "test": 1} and d.skipped == 1


def test_builtin_wnut17_counts():
    d = load_data("wnut17")
    assert d.sizes() == {"train": 3394, "dev": 1009, "test": 1287}
    assert sum(map(len, d.train.texts)) == 62730 and sum(map(len, d.test.texts)) == 23394
    assert d.skipped == 0 and len(d.label_names) == 13
    train = entity_counts(d.train.labels)
    assert set(train) == {"person", "location", "group", "creative-work", "corporation", "product"}
    assert sum(train.values()) == 1975  # train.conll's B- tags, counted with grep -c $'\tB-'


def test_cli_data_shows_entities_per_type(capsys):
    from rdzoo.cli import app
    from typer.testing import CliRunner

    out = CliRunner().invoke(app, ["data", "wnut17", "--json"])
    assert out.exit_code == 0, out.output
    row = json.loads(out.output)[0]
    assert row["task"] == "entity tagging" and "train.conll: entity tagging (BIO): 13 of 13 distinct tags" in row["notes"][0]
    assert row["train"] == 3394 and sum(row["entities"]["test"].values()) == 1079
    assert set(row["entities"]["dev"]) == {"person", "location", "group", "creative-work", "corporation", "product"}


# --- span scores -------------------------------------------------------------------------


def test_entity_scores_on_hand_made_cases():
    gold = [["B-per", "I-per", "O", "B-loc"], ["O", "B-org", "I-org"]]
    # the person's span is one word short (wrong), the location right, the organisation typed wrong,
    # and an extra location in the second sentence
    pred = [["B-per", "O", "O", "B-loc"], ["B-loc", "B-per", "I-per"]]
    s = metrics.entity_scores(gold, pred)
    assert s["support"] == 3
    assert s["precision"] == pytest.approx(1 / 4) and s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    assert s["per_type"]["loc"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert s["per_type"]["org"]["f1"] == 0.0 and s["per_type"]["per"]["support"] == 1
    assert metrics.entity_scores(gold, gold)["f1"] == 1.0
    # conlleval reads an I- with no open entity as the start of one; an untagged word (None) is O
    assert metrics.entities(["O", "I-per", "I-per", "B-loc", "I-org"]) == [("per", 1, 2), ("loc", 3, 3), ("org", 4, 4)]
    assert metrics.entities(["B-per", None, "I-per"]) == [("per", 0, 0), ("per", 2, 2)]
    assert metrics.entity_scores([["O"]], [["O"]])["f1"] == 0.0  # no entities at all: nothing found, nothing to find


def test_entity_scores_equal_seqeval_on_random_sequences():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    for tags in (["O", "B-a", "I-a", "B-b", "I-b"], ["O", "B-a", "I-a", "E-a", "S-a", "B-b", "E-b", "S-b"]):
        for _ in range(40):
            gold = [[rng.choice(tags) for _ in range(rng.randint(1, 9))] for _ in range(rng.randint(1, 6))]
            pred = [[rng.choice(tags) for _ in g] for g in gold]
            ours = metrics.entity_scores(gold, pred)
            assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, pred))
            assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, pred))
            assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, pred))
            report = seqeval.classification_report(gold, pred, output_dict=True, zero_division=0)
            for kind, s in ours["per_type"].items():
                if s["support"]:
                    assert s["f1"] == pytest.approx(report[kind]["f1-score"])


def test_entity_spans_as_character_offsets():
    text = "I saw  Empire State Building today"
    spans = entity_spans(text, ["O", "O", "B-location", "I-location", "I-location", "O"])
    assert spans == [{"text": "Empire State Building", "type": "location", "start": 7, "end": 28}]
    assert mark_entities(text, spans) == "I saw  [Empire State Building](location) today"


# --- CRF -----------------------------------------------------------------------------------


def brute_force(crf, emissions, n):
    """Every tag sequence of length n, scored the CRF's way with its masked transitions."""
    trans, start, end = crf.scores()
    k = emissions.shape[-1]
    scores = {}
    for path in itertools.product(range(k), repeat=n):
        s = start[path[0]] + end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
        s = s + sum(trans[a, b] for a, b in zip(path, path[1:]))
        scores[path] = s
    return scores


def random_crf(tags, seed=0):
    torch.manual_seed(seed)
    crf = CRF(len(tags))
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    crf.constrain(tags)
    return crf


@pytest.mark.parametrize("tags", [["B-a", "B-b", "I-a", "I-b", "O"], ["A", "B", "C"], ["B-x", "E-x", "I-x", "O", "S-x"]])
def test_crf_log_likelihood_and_viterbi_equal_brute_force(tags):
    crf = random_crf(tags)
    k, lengths = len(tags), [4, 1, 3]
    emissions = torch.randn(len(lengths), max(lengths), k)
    mask = torch.arange(max(lengths))[None, :] < torch.tensor(lengths)[:, None]
    gold = torch.randint(0, k, (len(lengths), max(lengths)))
    ll = crf.log_likelihood(emissions, gold, mask)
    best = crf.decode(emissions, mask)
    for b, n in enumerate(lengths):
        scores = brute_force(crf, emissions[b], n)
        log_z = torch.logsumexp(torch.stack(list(scores.values())), 0)
        path = tuple(gold[b, :n].tolist())
        assert ll[b].item() == pytest.approx((scores[path] - log_z).item(), rel=1e-6, abs=1e-4)
        assert tuple(best[b]) == max(scores, key=lambda p: scores[p].item())
    # the probabilities of every sequence sum to one
    n = lengths[0]
    total = torch.logsumexp(torch.stack([crf.log_likelihood(emissions[:1, :n], torch.tensor([p]), mask[:1, :n])[0]
                                         for p in itertools.product(range(k), repeat=n)]), 0)
    assert total.item() == pytest.approx(0.0, abs=1e-4)


def test_crf_decodes_only_valid_bio_even_against_the_scores():
    tags = ["B-a", "I-a", "I-b", "O"]
    crf = CRF(len(tags))
    crf.constrain(tags)
    emissions = torch.full((1, 3, 4), -5.0)
    emissions[0, :, 2] = 5.0  # I-b everywhere scores best, but an I-b never opens an entity
    path = [tags[i] for i in crf.decode(emissions, torch.ones(1, 3, dtype=torch.bool))[0]]
    assert "I-b" not in path
    pairs, start, end = allowed_transitions(tags)
    assert not start[1] and not pairs[3, 1] and pairs[0, 1] and not pairs[0, 2] and end.all()


def test_crf_is_in_the_parameter_count():
    s = spec.load("densenet-tagger", ["embedding.dim=16", "encoder.stem_channels=8", "encoder.growth_rate=8",
                                      "head.num_classes=13", "head.crf=true", "embedding.vocab_size=50"])
    from rdzoo.registry import build_model

    model = build_model(s)
    assert plan.count_params(s) == sum(p.numel() for p in model.parameters())
    assert plan.count_params(s) - plan.count_params(spec.load(s, {"head.crf": False})) == 13 * 13 + 2 * 13


# --- end to end ----------------------------------------------------------------------------

SENTENCES = [
    ("I flew to Paris today", "O O O B-loc O"), ("Bob Smith met Alice", "B-per I-per O B-per"),
    ("the Empire State Building is tall", "O B-loc I-loc I-loc O O"), ("Alice lives in Berlin", "B-per O O B-loc"),
    ("we love New York", "O O B-loc I-loc"), ("Bob went to London", "B-per O O B-loc"),
]


def tiny_ner(tmp_path):
    tmp_path.mkdir()
    lines = []
    for _ in range(6):
        for words, tags in SENTENCES:
            lines += [f"{w}\t{t}" for w, t in zip(words.split(), tags.split())] + [""]
    write(tmp_path / "train.conll", "\n".join(lines))
    write(tmp_path / "test.conll", "\n".join(lines[: 6 * 6]))
    return load_data(tmp_path)


def test_crf_tagger_trains_saves_reloads_and_predicts_the_same_spans(tmp_path):
    from rdzoo.runs import load_run, save_run
    from rdzoo.train import fit

    data = tiny_ner(tmp_path / "data")
    s = spec.load("densenet-tagger", ["embedding.dim=32", "encoder.stem_channels=32", "encoder.growth_rate=16",
                                      "head.crf=true", "train.epochs=8", "train.lr=0.01", "train.ema_decay=0",
                                      "train.batch_size=8", "embedding.char_dim=8"])
    fitted = fit(s, data)
    m = fitted.metrics
    assert {"dev_entity_f1", "entity_f1", "entity_precision", "entity_recall", "entity_f1_per_type"} <= set(m)
    assert m["entity_f1"] > 0.5 and set(m["entity_f1_per_type"]) == {"loc", "per"}
    assert fitted.model.head.crf is not None and fitted.model.head.crf.allowed.sum() < 25  # constrained
    assert plan.count_params(fitted.spec) == m["params"]
    texts = ["Bob flew to Paris", "Alice met Bob Smith in New York"]
    save_run(fitted, tmp_path / "run", {"data": "tiny"})
    before = [entity_spans(t, tags) for t, tags in zip(texts, load_run(tmp_path / "run").predict(texts))]
    run = load_run(tmp_path / "run")
    assert torch.equal(run.model.head.crf.allowed, fitted.model.head.crf.allowed)
    assert run.entities(texts) == before
    assert any(e["type"] == "per" for e in before[0] + before[1])
    # the CLI: spans inline, and as JSON
    from typer.testing import CliRunner

    from rdzoo.cli import app

    out = CliRunner().invoke(app, ["predict", str(tmp_path / "run"), *texts, "--json"])
    assert out.exit_code == 0, out.output
    assert [r["entities"] for r in json.loads(out.output)] == before
    out = CliRunner().invoke(app, ["predict", str(tmp_path / "run"), texts[0]])
    assert out.output.strip() == mark_entities(texts[0], before[0])
    out = CliRunner().invoke(app, ["eval", str(tmp_path / "run"), "--data", str(tmp_path / "data"), "--json"])
    assert json.loads(out.output)["test_entity_f1"] == pytest.approx(m["entity_f1"])


def test_crf_needs_tagged_data():
    from rdzoo.train import fit

    s = spec.load("kim-cnn", ["head.crf=true", "train.epochs=1"])
    with pytest.raises(SpecError, match="head.crf"):
        fit(s, load_data("synthetic"))


# --- search ----------------------------------------------------------------------------------


def test_every_point_of_the_ner_space_is_an_entity_tagger():
    import optuna

    from rdzoo.space import load_space

    space = load_space("ner")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    families, crfs = set(), set()
    for _ in range(100):
        s = spec.from_dict(space.sample(study.ask()))
        assert s.head.pool == "token" and s.embedding.char_dim > 0
        families.add(s.family)
        crfs.add(s.head.crf)
    assert families == {"resnet", "densenet", "transformer"} and crfs == {False, True}


def test_search_on_entities_maximises_dev_entity_f1_and_best_shows_it(tmp_path):
    import yaml
    from typer.testing import CliRunner

    from rdzoo.cli import app
    from rdzoo.nas import SearchConfig
    from rdzoo.nas.loop import run_trials
    from rdzoo.query import Results
    from rdzoo.space import load_space

    data = tiny_ner(tmp_path / "data")
    space = {"name": "tiny-ner", "fixed": {"family": "densenet", "embedding": {"dim": 16, "char_dim": 8},
                                           "encoder": {"stem_channels": 16, "block_config": [2], "growth_rate": 8},
                                           "train": {"epochs": 3, "batch_size": 8}},
             # a float beside the CRF choice: no two trials draw the same point (a repeat is not trained)
             "choose": {"head.crf": {"choice": [False, True]}, "train.lr": {"float": [0.005, 0.02]}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(space))
    db = tmp_path / "s.db"
    cfg = SearchConfig(space=load_space(str(tmp_path / "s.yaml")), data_name="tiny", study="t",
                       storage=f"sqlite:///{db}", trials=2, seed=0, pruner="none")
    run_trials(cfg, data)
    rows = [r.to_json() for r in Results(str(db)).best("t", top=5)]
    assert len(rows) == 2 and all(r["dev_entity_f1"] is not None and r["entity_f1"] is not None for r in rows)
    assert rows[0]["dev_entity_f1"] >= rows[1]["dev_entity_f1"]  # sorted by what was maximised
    import optuna

    study = optuna.load_study(study_name="t", storage=f"sqlite:///{db}")
    assert sorted(t.value for t in study.trials) == sorted(r["dev_entity_f1"] for r in rows)
    out = CliRunner().invoke(app, ["best", "--storage", str(db), "--json"])
    assert out.exit_code == 0 and [r["entity_f1"] for r in json.loads(out.output)] == [r["entity_f1"] for r in rows]
    out = CliRunner().invoke(app, ["best", "--storage", str(db)], env={"COLUMNS": "200"})
    assert "test entity F1" in out.output
    # the floor, the Pareto front and the study list use the same score: dev entity F1
    store = Results(str(db))
    floor = rows[0]["dev_entity_f1"]
    kept = store.best("t", top=5, min_accuracy=floor)
    assert [r.trial for r in kept] == [r["trial"] for r in rows if r["dev_entity_f1"] >= floor]
    front = [r.to_json() for r in store.pareto("t", ["accuracy", "params"])]
    assert front[0]["dev_entity_f1"] == floor
    assert all(not (r["dev_entity_f1"] >= f["dev_entity_f1"] and r["params"] <= f["params"] and r != f)
               for f in front for r in rows)  # nothing in the study dominates a point of the front
    listed = {s.study: s.to_json() for s in store.summary()}["t"]
    assert listed["best_dev_entity_f1"] == floor and listed["best_dev_accuracy"] is not None
    out = CliRunner().invoke(app, ["studies", "--storage", str(db)], env={"COLUMNS": "200"})
    assert f"{floor:.4f} F1" in out.output
    # the final stage retrains the best with fresh seeds and ranks by the same score
    from rdzoo.nas import FinalStage
    from rdzoo.nas.final import run_final
    from rdzoo.nas.verdict import of_study

    cfg.final = FinalStage(1, 2, None)
    run_final(cfg, data)
    final_rows = store.final("t")
    assert len(final_rows) == 2 and all(r.dev_entity_f1 is not None and r.entity_f1 is not None for r in final_rows)
    finals = optuna.load_study(study_name="t-final", storage=f"sqlite:///{db}")
    assert sorted(t.value for t in finals.trials) == sorted(r.dev_entity_f1 for r in final_rows)
    v = of_study(store, "t")
    assert v.score.name == "entity F1"
    assert v.recommended.test_mean == pytest.approx(sum(r.entity_f1 for r in final_rows) / 2)
    out = CliRunner().invoke(app, ["best", "--storage", str(db)], env={"COLUMNS": "200"})
    assert "dev F1 %" in out.output


def test_a_search_on_entities_logs_and_sums_up_dev_entity_f1():
    from types import SimpleNamespace

    from rdzoo.records import ACCURACY, SCORES, Outcome, TrialCounts, TrialRecord
    from rdzoo.render import log_line, search_summary, summary_lines

    f1 = SCORES["entity F1"]
    row = TrialRecord(trial=3, state="COMPLETE", family="densenet", skip="dense", params=1000, dev_accuracy=0.91,
                      dev_entity_f1=0.25, train_seconds=1.0)
    assert "dev_entity_f1=0.2500" in log_line(row, f1, 1, 2, 0.25, None) and "dev_accuracy" not in log_line(row, f1, 1, 2, 0.25, None)
    assert "dev_accuracy=0.9100" in log_line(row.replace(dev_entity_f1=None), ACCURACY, 1, 2, 0.91, None)
    cfg = SimpleNamespace(study="s", trials=2, timeout=None)
    best = TrialRecord(trial=3, family="densenet", skip="dense", params=1000, dev_accuracy=0.91, test_accuracy=0.9,
                       dev_entity_f1=0.25, entity_f1=0.125, latency_ms=1.0)
    outcome = Outcome("s", f1, 2, 2, "target", 1.0, counts=TrialCounts(complete=2), this_run=TrialCounts(complete=2),
                      best=[best])
    text = "\n".join(summary_lines(search_summary(outcome, cfg, None), outcome.score))
    assert "dev entity F1 0.2500, test entity F1 0.1250" in text


def test_every_reader_of_an_entity_study_ranks_by_entity_f1(tmp_path, capsys):
    """The study's score (entity F1) is recorded once, with the study, and every reader takes it
    from there: the live view, the log lines, the summary, `best`, `studies`, `report --json` and
    `export --best` all name the same best trial by dev entity F1. The live view showed word
    accuracy, the report ranked and drew by it, and a trial pruned by --max-memory stored its
    F1 under dev_accuracy."""
    import os
    import re

    import optuna
    import yaml
    from rich.console import Console
    from typer.testing import CliRunner

    from rdzoo import display as disp
    from rdzoo import nas
    from rdzoo.cli import app
    from rdzoo.render import search_end
    from rdzoo.space import load_space

    data = tiny_ner(tmp_path / "data")
    space = {"name": "tiny-ner", "fixed": {"family": "densenet", "embedding": {"dim": 16, "char_dim": 8},
                                           "encoder": {"stem_channels": 16, "block_config": [2], "growth_rate": 8},
                                           "train": {"epochs": 2, "batch_size": 8}},
             "choose": {"head.crf": {"choice": [False, True]}, "train.lr": {"float": [0.002, 0.03], "log": True}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(space))
    db = f"sqlite:///{tmp_path / 's.db'}"
    cfg = nas.SearchConfig(load_space(str(tmp_path / "s.yaml")), "tiny", "t", db, trials=3, seed=0, pruner="none",
                           final_runs="never")
    console = Console(force_terminal=True, width=160, record=True, file=open(os.devnull, "w"))
    live, log = disp.LiveDisplay(cfg, console), disp.LogDisplay(cfg)

    class Both(disp.BaseDisplay):  # the live view and the log, fed by one search
        def started(self, *args):
            live.started(*args), log.started(*args)

        def trial_started(self, *args):
            live.trial_started(*args), log.trial_started(*args)

        def trial_finished(self, *args):
            live.trial_finished(*args), log.trial_finished(*args)

        def __exit__(self, *exc):
            return live.__exit__(*exc)

    outcome = nas.run(cfg, data, display=Both(cfg))
    console.print(live.render())
    search_end(outcome, cfg, 3, False, None, None)
    out, err = capsys.readouterr()

    study = optuna.load_study(study_name="t", storage=db)
    assert study.user_attrs["score"] == "entity F1"  # decided once, with the study
    f1 = {t.number: t.user_attrs["rdzoo"]["dev_entity_f1"] for t in study.trials}
    assert {t.number: t.value for t in study.trials} == f1  # the objective and the pruner's value
    best = max(sorted(f1), key=lambda n: f1[n])

    # the log: each line's score is the trial's F1, its running best the best F1 so far
    lines = [m for m in map(re.compile(r"trial (\d+) COMPLETE .* dev_entity_f1=(\d\.\d{4}) .* best=(\d\.\d{4})").search,
                            err.splitlines()) if m]
    assert len(lines) == 3 and all(float(m[2]) == pytest.approx(f1[int(m[1])], abs=5e-5) for m in lines)
    assert float(lines[-1][3]) == pytest.approx(f1[best], abs=5e-5)
    # the live view: its best and its table of the study's score
    view = console.export_text()
    assert f"best {f1[best]:.4f}" in view and "dev F1" in view and "dev acc" not in view
    for n, value in f1.items():
        assert re.search(rf"\b{n}\s+COMPLETE\s+densenet\s+dense\s+\S+\s+{value:.4f}", view), view
    # the summary
    assert f"best:     trial {best}, densenet" in out and f"dev entity F1 {f1[best]:.4f}" in out

    runner = CliRunner()

    def cli_json(*args):
        result = runner.invoke(app, [*args, "--storage", db, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    ranked = cli_json("best", "--study", "t", "--top", "3")
    assert [r["trial"] for r in ranked] == sorted(f1, key=lambda n: (-f1[n], n))
    listed = {s["study"]: s for s in cli_json("studies")}["t"]
    assert listed["score"] == "entity F1" and listed["best_dev_entity_f1"] == f1[best]
    report = cli_json("report", "--study", "t")
    assert report["score"] == "entity F1" and report["top"][0]["trial"] == best
    assert [h["dev_entity_f1"] for h in report["history"]] == [f1[n] for n in sorted(f1)]
    assert cli_json("export", "--study", "t", "--best")["trial"] == best

    # a trial pruned by --max-memory keeps its entity F1 as entity F1
    capped = nas.SearchConfig(cfg.space, "tiny", "capped", db, trials=1, seed=0, pruner="none", max_memory=1024,
                              final_runs="never")
    nas.run(capped, data)
    (pruned,) = optuna.load_study(study_name="capped", storage=db).trials
    info = pruned.user_attrs["rdzoo"]
    assert pruned.state.name == "PRUNED" and "above --max-memory" in info["error"]
    assert info["dev_entity_f1"] is not None and "dev_accuracy" not in info
