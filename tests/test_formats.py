"""The data format table: a format is one registration (`formats.register(Format(...))`), read by
file suffix everywhere data is read; a suffix is read one way."""

import pytest

from rdzoo.errors import DataError
from rdzoo.text import formats
from rdzoo.text.data import load_data, read_file
from rdzoo.text.dataset import Split
from rdzoo.text.formats import FORMATS, Format, known_formats, register


def read_pipes(lines, where, bad, columns, scheme):
    """`label|text` lines: a toy format."""
    texts, labels = [], []
    for n, line in enumerate(lines, 1):
        label, sep, text = line.partition("|")
        if not sep:
            bad(where, n, "expected label|text")
            continue
        texts.append(text)
        labels.append(label)
    return Split(texts, labels), [f"{len(texts)} piped lines"]


@pytest.fixture
def pipes():
    before = dict(FORMATS)
    yield register(Format("pipes", (".psv",), read_pipes, no_columns="do not apply to pipes"))
    FORMATS.clear()  # the registration is undone: the table is as it was
    FORMATS.update(before)


def test_a_new_format_is_one_registration(pipes, tmp_path):
    (tmp_path / "train.psv").write_text("a|one\nb|two\nbroken\na|three\n")
    (tmp_path / "test.psv.gz").write_bytes(__import__("gzip").compress(b"b|four\n"))
    split, skipped, _, notes = read_file(tmp_path / "train.psv", on_bad_line="skip")
    assert split.texts == ["one", "two", "three"] and [s.line for s in skipped] == [3] and notes == ["3 piped lines"]
    data = load_data(tmp_path, on_bad_line="skip")  # a folder's split files are found by the table too
    assert data.test.texts == ["four"] and data.skipped == 1
    assert ".psv" in known_formats() and known_formats().startswith(".txt, .csv, .tsv, .jsonl, .json, .conllu, .conll")
    with pytest.raises(DataError, match=r"train.psv: columns do not apply to pipes"):
        read_file(tmp_path / "train.psv", formats.Columns("x"))


def test_a_suffix_is_read_one_way(pipes):
    with pytest.raises(ValueError, match="suffix '.psv' is already read as pipes"):
        register(Format("other", (".psv",), read_pipes))
    assert FORMATS[".json"] is FORMATS[".jsonl"] and FORMATS[""] is FORMATS[".txt"]


def test_an_unknown_suffix_lists_the_table(tmp_path):
    (tmp_path / "d.psv").write_text("a|b\n")
    with pytest.raises(DataError, match=r"d.psv: rdzoo cannot read .psv files yet; it reads .txt, .csv, .tsv, "
                                        r".jsonl, .json, .conllu, .conll and `label text` files without a suffix"):
        read_file(tmp_path / "d.psv")
