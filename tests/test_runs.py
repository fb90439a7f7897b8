"""A run records what it was split from, and `rdzoo eval` never scores as held out an example the run
trained on: its own unchanged data gives its own test split, changed data the examples it never trained
on, other data its splits less those; an older run without a record still evaluates, with a note."""

import json
import random
import shutil

import pytest

from rdzoo.errors import DataError, WeightsError
from rdzoo.runs import load_run
from rdzoo.text.data import Split, load_data
from rdzoo.text.heldout import HASH_BYTES, SplitRecord, example_hash

TINY = ["--set", "embedding.dim=16", "--set", "encoder.stem_channels=16", "--set", "train.batch_size=16",
        "--epochs", "1", "-q"]
POS, NEG = "good great fine superb lovely".split(), "bad awful poor dull boring".split()


def _cli(*args, code=0):
    """The command in this process; returns the result (its exception for a failure)."""
    from typer.testing import CliRunner

    from rdzoo.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})
    assert result.exit_code == code, (result.output, result.exception)
    return result


def _examples(start: int, stop: int, seed: int = 1) -> list[dict]:
    """Distinct labelled texts, numbered start..stop-1."""
    rng = random.Random(seed + start)
    return [{"text": f"a {rng.choice(POS if i % 2 else NEG)} film number {i}", "label": "pos" if i % 2 else "neg"}
            for i in range(start, stop)]


def _write(path, rows, mode="w"):
    with open(path, mode) as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def _train(tmp_path, data):
    out = tmp_path / "run"
    trained = json.loads(_cli("train", "kim-cnn", "--data", data, *TINY, "--out", out, "--json").stdout)
    return out, trained


def _eval(*args):
    return json.loads(_cli("eval", *args, "--json").stdout)


def test_unchanged_data_scores_the_test_split_training_reported(tmp_path):
    data = _write(tmp_path / "d.jsonl", _examples(0, 200))
    out, trained = _train(tmp_path, data)
    held = load_data(data, seed=0).test  # the split the loader holds out of the file, seed 0
    for ev in (_eval(out), _eval(out, "--data", data)):  # the run's data, found or named
        assert ev["held_out"]["check"] == "unchanged" and ev["held_out"]["excluded"] == 0
        assert ev["test_n"] == len(held) == 20 and ev["test_accuracy"] == pytest.approx(trained["test_accuracy"])
    copy = shutil.copy(data, tmp_path / "copy.jsonl")  # the same bytes elsewhere are the run's data too
    assert _eval(out, "--data", copy)["held_out"]["check"] == "unchanged"
    assert "data unchanged since training (sha256 of d.jsonl as recorded)" in _cli("eval", out).stdout


def test_lines_appended_after_training_are_scored_and_training_examples_are_not(tmp_path):
    rows = _examples(0, 200)
    data = _write(tmp_path / "d.jsonl", rows)
    out, _ = _train(tmp_path, data)
    held = load_data(data, seed=0).test
    new = _examples(200, 240)
    _write(data, new, mode="a")
    drawn_again = load_data(data, seed=0).test  # what eval scored before: mostly training examples
    assert len(set(drawn_again.texts) - set(held.texts) - {r["text"] for r in new}) > 0

    ev = _eval(out)
    assert ev["held_out"]["check"] == "changed" and ev["held_out"]["changed_files"] == ["d.jsonl"]
    assert ev["test_n"] == len(held) + len(new) == 60 and ev["held_out"]["excluded"] == 180
    # the score is the run's on exactly the examples it never saw: the old test split and the new lines
    unseen = Split(held.texts + [r["text"] for r in new], held.labels + [r["label"] for r in new])
    assert ev["test_accuracy"] == pytest.approx(load_run(out).evaluate(unseen)["accuracy"])
    table = _cli("eval", out).stdout
    assert "d.jsonl changed since training" in table and "180 left out as trained on" in table


def test_changed_data_with_nothing_unseen_is_one_error(tmp_path):
    data = _write(tmp_path / "d.jsonl", _examples(0, 100))
    out, _ = _train(tmp_path, data)
    trained_on = load_data(data, seed=0).train  # train and dev: what the run fitted and picked its epoch on
    _write(data, [{"text": t, "label": label} for t, label in zip(trained_on.texts, trained_on.labels)])
    result = _cli("eval", out, code=1)
    assert isinstance(result.exception, DataError)
    from rdzoo.cli import in_cli_terms

    assert "d.jsonl changed since training" in str(result.exception) and "--data" in in_cli_terms(result.exception)


def test_a_folder_whose_test_file_grew_scores_its_unseen_test_examples_and_its_dev(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    train = _examples(0, 80)
    _write(folder / "train.jsonl", train)
    _write(folder / "dev.jsonl", _examples(80, 100))
    _write(folder / "test.jsonl", _examples(100, 120))
    out, trained = _train(tmp_path, folder)
    _write(folder / "test.jsonl", train[:3] + _examples(120, 130), mode="a")  # 3 of them trained on

    ev = _eval(out)
    assert ev["held_out"]["check"] == "changed" and ev["held_out"]["changed_files"] == ["test.jsonl"]
    assert ev["test_n"] == 30 and ev["held_out"]["excluded"] == 3
    assert ev["dev_n"] == 20 and ev["dev_accuracy"] == pytest.approx(trained["dev_accuracy"])


def test_other_data_is_scored_less_the_examples_the_run_trained_on(tmp_path):
    data = _write(tmp_path / "d.jsonl", _examples(0, 200))
    out, _ = _train(tmp_path, data)
    trained_on = load_data(data, seed=0).train
    other = tmp_path / "other"
    other.mkdir()
    _write(other / "train.jsonl", _examples(300, 340))
    seen = [{"text": t, "label": label} for t, label in zip(trained_on.texts[:5], trained_on.labels[:5])]
    _write(other / "test.jsonl", seen + _examples(400, 420))

    ev = _eval(out, "--data", other)
    assert ev["held_out"]["check"] == "other" and ev["held_out"]["excluded"] == 5 and ev["test_n"] == 20
    assert "left out 5 of its 25 dev/test examples" in ev["held_out"]["note"]
    _write(other / "test.jsonl", _examples(400, 420))
    ev = _eval(out, "--data", other)
    assert ev["held_out"]["excluded"] == 0 and "none of its 20 dev/test examples" in ev["held_out"]["note"]


def test_a_run_without_a_split_record_still_evaluates_with_a_note(tmp_path):
    data = _write(tmp_path / "d.jsonl", _examples(0, 200))
    out, trained = _train(tmp_path, data)
    (out / "split.json").unlink()  # a run saved before runs kept a record
    config = json.loads((out / "config.json").read_text())
    del config["split"]
    (out / "config.json").write_text(json.dumps(config))

    ev = _eval(out)
    assert ev["held_out"]["check"] == "unrecorded" and "cannot be checked" in ev["held_out"]["note"]
    assert ev["test_n"] == 20 and ev["test_accuracy"] == pytest.approx(trained["test_accuracy"])


@pytest.mark.parametrize("damage, message", [
    (None, "split.json, which is missing"),
    ("{", "damaged split record"),
    ('{"version": 1, "files": [], "train": "AAAA", "dev": "", "test": ""}', "not a multiple of 8"),
])
def test_a_missing_or_damaged_split_record_is_one_error(tmp_path, damage, message):
    data = _write(tmp_path / "d.jsonl", _examples(0, 60))
    out, _ = _train(tmp_path, data)
    if damage is None:
        (out / "split.json").unlink()
    else:
        (out / "split.json").write_text(damage)
    result = _cli("eval", out, code=1)
    assert isinstance(result.exception, WeightsError) and message in str(result.exception)


def test_the_record_holds_8_bytes_an_example_and_reads_back(tmp_path):
    data = load_data(_write(tmp_path / "d.jsonl", _examples(0, 200)), seed=0)
    record = SplitRecord.of(data, 0.1, 0)
    assert [len(getattr(record, s)) // HASH_BYTES for s in ("train", "dev", "test")] == [162, 18, 20]
    assert record.test == b"".join(example_hash(t) for t in data.test.texts)
    assert record.files[0]["file"] == str(tmp_path / "d.jsonl") and len(record.files[0]["sha256"]) == 64
    assert SplitRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    # train and dev together are the file's training examples, none of them test
    seen = {record.seen()[i:i + HASH_BYTES] for i in range(0, len(record.seen()), HASH_BYTES)}
    assert seen == {example_hash(t) for t in data.train.texts} and not seen & {example_hash(t) for t in data.test.texts}


def test_the_same_files_read_another_way_are_checked_by_their_examples(tmp_path):
    rows = [{**r, "summary": f"in short: {r['text']}"} for r in _examples(0, 100)]
    data = _write(tmp_path / "d.jsonl", rows)
    out, _ = _train(tmp_path, data)
    ev = _eval(out, "--text-col", "summary")  # other texts from the same bytes: none was trained on
    assert ev["held_out"]["check"] == "changed" and ev["held_out"]["changed_files"] == []
    assert "files are as recorded but the split drawn again differs" in ev["held_out"]["note"]
    assert ev["test_n"] == 100 and ev["held_out"]["excluded"] == 0


def test_generated_data_is_checked_by_its_examples():
    from rdzoo.text.heldout import held_out

    record = SplitRecord.of(load_data("synthetic"), 0.1, 0)
    assert record.files == []
    same = held_out(load_data("synthetic"), record, "synthetic", own=True)
    assert same.check == "unchanged" and len(same.test) == 500 and "generated again alike" in same.note
    data = load_data("synthetic")  # a generator that changed: 10 training examples among 20 test ones
    data.test = Split(data.train.texts[:10] + data.test.texts[:20], data.train.labels[:10] + data.test.labels[:20])
    changed = held_out(data, record, "synthetic", own=True)
    assert changed.check == "changed" and changed.excluded == 10 and changed.test.texts == data.test.texts[10:]
