import json
import re
import unicodedata

import pytest

from rdzoo.text.data import Columns, DataError, builtin_names, kfold, load_data, read_file
from rdzoo.text.tokenize import fit_tokenizer, tokenizer_from_dict
from rdzoo import spec


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_builtin_trec_is_packaged_decoded_and_named():
    d = load_data("trec")
    assert d.sizes() == {"train": 5452, "dev": 0, "test": 500}
    # the coarse classes of Li and Roth (2002), not the digits of the files; class ids stay those of 0..5
    assert d.label_names == ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"]
    assert d.train.labels.count("ABBR") == 86 and d.train.labels[0] == "DESC"
    assert d.train.texts[0] == "How did serfdom develop in and then leave Russia ?"
    # one line of the training file is not UTF-8: it alone is read as cp1252, and named
    assert d.report()["not_utf8"] == [{"file": str(d.decoding[0].file), "encoding": "cp1252", "count": 1,
                                       "lines": [66]}]
    assert any("line 66" in n for n in d.note_lines())


def test_builtin_sst2_and_ud_ewt_ship_in_the_package():
    d = load_data("sst2")
    assert d.sizes() == {"train": 6920, "dev": 872, "test": 1821} and d.label_names == ["negative", "positive"]
    d = load_data("ud-ewt")  # xz-compressed CoNLL-U, read as the files they hold
    assert d.tagging and d.sizes() == {"train": 12544, "dev": 2001, "test": 2077}
    assert len(d.label_names) == 17 and "PROPN" in d.label_names
    assert sum(map(len, d.train.texts)) == 204577  # words, without multiword tokens and empty nodes
    assert all(len(w) == len(t) for w, t in zip(d.test.texts, d.test.labels))


def test_every_builtin_folder_is_listed_with_sources_and_a_licence():
    from rdzoo.text.data import BUILTIN_DIR

    folders = sorted(p.name for p in BUILTIN_DIR.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    assert {"trec", "sst2", "ud-ewt", "wnut17"} <= set(folders)
    assert builtin_names() == folders + ["synthetic"]
    for name in folders:
        assert (BUILTIN_DIR / name / "README.md").is_file() and any((BUILTIN_DIR / name).glob("LICENSE*")), name


def test_the_builtin_wnut17_is_read_as_entity_data():
    from rdzoo.text.data import BUILTIN_DIR

    assert sorted(p.name for p in (BUILTIN_DIR / "wnut17").glob("*.conll")) == ["dev.conll", "test.conll", "train.conll"]
    assert load_data("wnut17").tagging


def test_cp1252_and_latin1_lines_and_cr_line_ends(tmp_path):
    raw = "1 caf\xe9 cr\xe8me\r\n0 na\xefve \x85 plan\r1 third line\n".encode("latin-1")
    split, _, decoding, _ = read_file(write(tmp_path / "d.txt", raw))
    assert decoding.fallback == {"cp1252": [1, 2]}  # where 0x85 is an ellipsis, not a line end
    assert split.texts == ["caf\xe9 cr\xe8me", "na\xefve \u2026 plan", "third line"]
    # 0x81 is undefined in cp1252, so this line is latin-1, where 0x85 is NEL
    raw = b"1 \x81bc\x850 second\r\n1 third"
    split, _, decoding, _ = read_file(write(tmp_path / "l.txt", raw))
    assert decoding.fallback == {"latin-1": [1, 2]} and split.texts == ["\x81bc", "second", "third"]


def test_a_utf8_file_with_one_cp1252_line_keeps_its_utf8_lines(tmp_path):
    raw = "pos un caf\xe9 cr\xe8me\nneg na\xefve\n".encode() + "pos caf\xe9 \u201cok\u201d\n".encode("cp1252") + \
        "neg cr\xe8me br\xfbl\xe9e\n".encode()
    split, _, decoding, _ = read_file(write(tmp_path / "d.txt", raw))
    assert split.texts == ["un caf\xe9 cr\xe8me", "na\xefve", "caf\xe9 \u201cok\u201d", "cr\xe8me br\xfbl\xe9e"]
    assert decoding.fallback == {"cp1252": [3]} and decoding.notes() == ["d.txt: 1 line(s) not UTF-8, read as cp1252 (line 3)"]


def test_nel_in_utf8(tmp_path):
    split, _, decoding, _ = read_file(write(tmp_path / "d.txt", "1 a b\u00850 c d".encode("utf-8")))
    assert decoding.encoding == "utf-8" and split.labels == ["1", "0"]


def test_bad_line_error_names_file_and_line_or_is_skipped(tmp_path):
    path = write(tmp_path / "d.txt", b"pos good film\nneg bad film\nlonelylabel\npos fine\n")
    with pytest.raises(DataError, match=r"d\.txt, line 3: .*no text"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    assert [(s.line, s.file) for s in skipped] == [(3, str(path))] and split.labels == ["pos", "neg", "pos"]


def test_csv_tsv_jsonl_with_chosen_columns_and_string_labels(tmp_path):
    write(tmp_path / "r.csv", b'id,review,stars\n1,"great, really",5\n2,awful,1\n3,"fine ""ok""",3\n')
    split, _, _, _ = read_file(tmp_path / "r.csv", Columns("review", "stars"))
    assert split.texts == ["great, really", "awful", 'fine "ok"'] and split.labels == ["5", "1", "3"]
    write(tmp_path / "r.tsv", b"text\tlabel\nhello world\tgreeting\nbye\tfarewell\n")
    assert read_file(tmp_path / "r.tsv")[0].labels == ["greeting", "farewell"]
    write(tmp_path / "r.jsonl", b'{"sentence": "yes", "y": 1}\n{"sentence": "no", "y": 0}\n')
    assert read_file(tmp_path / "r.jsonl", Columns("sentence", "y"))[0].labels == ["1", "0"]


def test_missing_column_lists_the_columns(tmp_path):
    write(tmp_path / "r.csv", b"review,stars\ngood,5\n")
    with pytest.raises(DataError, match=r"no column 'text' \(set it with text_col\).*names: review, stars"):
        read_file(tmp_path / "r.csv")
    write(tmp_path / "r.jsonl", b'{"text": "x"}\n')
    with pytest.raises(DataError, match="line 1.*'label'"):
        read_file(tmp_path / "r.jsonl")


def test_single_file_is_split_deterministically_and_kfold(tmp_path):
    lines = "".join(f"{i % 3} sentence number {i}\n" for i in range(100)).encode()
    write(tmp_path / "all.txt", lines)
    a, b = load_data(tmp_path / "all.txt"), load_data(tmp_path / "all.txt")
    assert a.sizes() == {"train": 90, "dev": 0, "test": 10} and a.test.texts == b.test.texts
    assert load_data(tmp_path / "all.txt", seed=1).test.texts != a.test.texts
    folds = kfold(a, 5)
    assert len(folds) == 5 and sum(len(f.test) for f in folds) == 90
    held = [t for f in folds for t in f.test.texts]
    assert sorted(held) == sorted(a.train.texts)  # every example is held out exactly once


@pytest.mark.parametrize("files, message", [
    ({"train.csv": b"text,label\na,x\nb,y\n", "test.csv": b"text,label\n"},
     r"test\.csv: the test file holds no examples; remove it to have no test split"),
    ({"train.csv": b"text,label\na,x\nb,y\n", "dev.jsonl": b'{"text": "a"}\n{"text": "b", "label": null}\n'},
     r"dev\.jsonl: the dev file holds no examples \(2 bad line\(s\) skipped\)"),
    ({"train.txt": b"\n  \n", "test.txt": b"x a\n"}, r"train\.txt: the train file holds no examples"),
])
def test_a_split_file_without_examples_is_named_when_loading(tmp_path, files, message):
    for name, raw in files.items():
        write(tmp_path / name, raw)
    with pytest.raises(DataError, match=message):
        load_data(tmp_path, on_bad_line="skip")


def test_kfold_is_stratified_so_every_fold_trains_on_what_it_tests(tmp_path):
    from rdzoo.text.data import label_set

    # a class of two: any fold that tests on one of them trains on the other, whatever the seed
    lines = "".join(f"{'a' if i % 2 else 'b'} text {i}\n" for i in range(40)) + "rare one\nrare two\n"
    d = load_data(write(tmp_path / "d.txt", lines.encode()), test_fraction=0.01, seed=3)
    assert d.train.labels.count("rare") == 2
    for seed in range(20):
        folds = kfold(d, 5, seed)
        assert all(label_set(f.test) <= label_set(f.train) for f in folds), seed
        assert sorted(len(f.test) for f in folds) in ([8] * 5, [8, 8, 8, 8, 9], [8, 8, 8, 9, 9], [8, 8, 9, 9, 9])
        assert sorted(t for f in folds for t in f.test.texts) == sorted(d.train.texts)


def test_cross_validation_refuses_a_single_example_class_before_training(tmp_path, monkeypatch):
    import rdzoo.train

    lines = "".join(f"{'a' if i % 2 else 'b'} text {i}\n" for i in range(40)) + "odd a lonely example\n"
    d = load_data(write(tmp_path / "d.txt", lines.encode()), test_fraction=0.01, seed=1)
    assert "odd" in d.train.labels
    monkeypatch.setattr(rdzoo.train, "fit", lambda *a, **k: pytest.fail("trained before the data was checked"))
    with pytest.raises(DataError, match=r"cannot cross-validate: class\(es\) 'odd' have a single example"):
        rdzoo.train.cross_validate(spec.load("kim-cnn"), d, 5)


def test_cross_validation_of_tags_checks_every_fold_before_training(tmp_path):
    text = "".join(f"w{i}\tB-x\nz\tO\n\n" for i in range(10)) + "rare\tB-y\n"
    d = load_data(write(tmp_path / "train.conll", text.encode()), test_fraction=0.01)
    with pytest.raises(DataError, match=r"cannot cross-validate with 3 folds \(seed 0\): fold \d tests on tag\(s\) "
                                        r"'B-y' that its training part lacks"):
        kfold(d, 3)


@pytest.mark.parametrize("content, message", [
    (b"", "no examples"),
    (b"pos great\n", r"1 example\(s\) are too few; the test split held out of a file without one takes them all"),
    (b"1 a\n1 b\n1 c\n", "single class"),
    (b"\x00\x01\x02binary", "binary"),
])
def test_unusable_datasets_get_clear_errors(tmp_path, content, message):
    write(tmp_path / "d.txt", content)
    with pytest.raises(DataError, match=message):
        load_data(tmp_path / "d.txt")


def test_test_label_unseen_in_training(tmp_path):
    write(tmp_path / "train.txt", b"a x y\nb y z\n")
    write(tmp_path / "test.txt", b"c z z\n")
    with pytest.raises(DataError, match="test labels never seen in training: 'c'"):
        load_data(tmp_path)


def test_unknown_dataset_suggests_builtin():
    with pytest.raises(DataError, match="did you mean 'trec'"):
        load_data("trce")


@pytest.mark.parametrize("kind", ["word", "char", "bpe"])
def test_tokenizer_round_trip(kind):
    d = load_data("trec")
    emb = spec.load("kim-cnn", {"embedding.kind": kind, "embedding.vocab_size": 500, "embedding.max_len": 20}).embedding
    tok = fit_tokenizer(emb, d.train.texts)
    assert len(tok) <= 500
    ids = tok.encode_batch(d.test.texts[:50])
    assert all(1 <= len(x) <= 20 for x in ids) and all(0 < i < len(tok) for x in ids for i in x)
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode_batch(d.test.texts[:50]) == ids


def test_word_tokenizer_rules():
    emb = spec.load("kim-cnn", {"embedding.min_freq": 2}).embedding
    tok = fit_tokenizer(emb, ["Hello, world!", "hello there", "world peace"])
    assert tok.vocab[:2] == ["<pad>", "<unk>"]
    assert set(tok.vocab[2:]) == {"hello", "world"}  # min_freq 2; punctuation split; lowercased
    assert tok.encode("HELLO, unseen") == [tok.index["hello"], 1, 1]


CONLLU = (
    "# sent_id = 1\r\n# text = Don't stop.\r\n"
    "1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\r\n"
    "1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\r\n"
    "2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\r\n"
    "3\tstop\tstop\tVERB\tVB\t_\t0\troot\t_\t_\r\n"
    "3.1\tgo\tgo\tVERB\tVB\t_\t_\t_\t0:root\t_\r\n"
    "4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\r\n"
    "\r\n"
    "1\tCaf\xe9\tcaf\xe9\tNOUN\tNN\t_\t0\troot\t_\t_\n"
)


def test_conllu_words_and_upos_tags(tmp_path):
    path = write(tmp_path / "train.conllu", CONLLU.encode("latin-1"))
    split, skipped, decoding, _ = read_file(path)
    # the multiword token `Don't` and the empty node 3.1 are not words; comments are skipped
    assert split.texts == [["Do", "n't", "stop", "."], ["Caf\xe9"]]
    assert split.labels == [["AUX", "PART", "VERB", "PUNCT"], ["NOUN"]]
    assert (skipped, decoding.encoding) == ([], "cp1252")


def test_conllu_bad_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "train.conllu", b"1\tA\ta\tDET\n2\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n")
    with pytest.raises(DataError, match=r"train.conllu, line 1: a CoNLL-U word line has 10 tab-separated fields, this one 4"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    assert split.texts == [["dog"]] and len(skipped) == 1
    with pytest.raises(DataError, match="do not apply to CoNLL-U"):
        read_file(path, Columns(text="form"))


def test_tagged_and_labelled_splits_do_not_mix(tmp_path):
    write(tmp_path / "train.conllu", CONLLU.encode("latin-1"))
    write(tmp_path / "test.txt", b"NOUN a text\n")
    with pytest.raises(DataError, match="the test split holds labelled texts, the training split tagged words"):
        load_data(tmp_path)


def test_word_tokenizer_keeps_given_words_whole():
    s = spec.load("kim-cnn", ["embedding.max_len=3"])
    tok = fit_tokenizer(s.embedding, [["Don't", "stop", "."], ["stop", "it"]])
    ids = tok.encode(["don't", "STOP", "now", "."])
    assert len(ids) == 3 and ids[0] == tok.index["don't"] and ids[1] == tok.index["stop"] and ids[2] == 1
    with pytest.raises(spec.SpecError, match="embedding.kind: 'char' splits words into pieces"):
        fit_tokenizer(spec.load("kim-cnn", ["embedding.kind=char"]).embedding, [["a", "b"]])


def test_unseen_words_fall_back_to_their_shape():
    s = spec.load("kim-cnn", ["embedding.lowercase=false", "embedding.min_freq=2", "embedding.unknown=shape"])
    words = [["The", "dog", "barking", "."], ["The", "dog", "sleeping", "."], ["Paris", "1999", "the", "dog"]]
    tok = fit_tokenizer(s.embedding, words)
    # words seen once are out; their shapes, seen twice ("-ing" twice), are in
    assert "barking" not in tok.index and "<unk:low:ng>" in tok.index and "<unk:Cap:is>" not in tok.index
    ids = tok.encode(["The", "running", "Rome", "2024"])
    assert ids[1] == tok.index["<unk:low:ng>"]  # an unseen -ing word shares the trained -ing vector
    assert ids[2] == 1 and ids[3] == 1  # shapes seen fewer than min_freq times stay <unk>
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.encode(["The", "running", "Rome"]) == ids[:3]
    assert fit_tokenizer(spec.load("kim-cnn").embedding, words).encode(["running"]) == [1]  # the default: one <unk>
    with pytest.raises(spec.SpecError, match="embedding.unknown: shape classes stand for unseen words"):
        spec.load("kim-cnn", ["embedding.kind=char", "embedding.unknown=shape"])


def test_tokens_carry_their_characters_with_a_char_cnn():
    from rdzoo.text.batching import pad
    from rdzoo.text.tokenize import char_ids

    s = spec.load("kim-cnn", ["embedding.char_dim=8"])  # lowercase words, spelt in their own case
    tok = fit_tokenizer(s.embedding, ["The dog barks", "a dog"])
    ids = tok.encode("The Zebra barks")
    assert ids[0] == [tok.index["the"], *char_ids("The")] and ids[1][0] == 1 and ids[1][1:] == char_ids("Zebra")
    assert char_ids("The")[0] != char_ids("the")[0] and len(char_ids("x" * 50)) == 20
    assert tokenizer_from_dict(json.loads(json.dumps(tok.to_dict()))).encode("The Zebra barks") == ids
    batch = pad([ids, tok.encode("dog")])
    assert batch.shape == (2, 3, 6) and batch[1, 1:].eq(0).all() and batch[1, 0, 0] == tok.index["dog"]
    with pytest.raises(spec.SpecError, match="embedding.char_dim: spells out words"):
        spec.load("kim-cnn", ["embedding.kind=bpe", "embedding.char_dim=8"])


# --- one record a line: the rules of each format (README, "Data formats") ------------------------


def test_tsv_has_no_quoting_so_an_unclosed_quote_merges_nothing(tmp_path):
    path = write(tmp_path / "d.tsv", b'text\tlabel\n"great movie\tpos\nbad film\tneg\nhe said "wow" loudly\tpos\n'
                                     b'boring plot\tneg\n')
    split, skipped, _, notes = read_file(path)
    assert split.texts == ['"great movie', "bad film", 'he said "wow" loudly', "boring plot"]
    assert split.labels == ["pos", "neg", "pos", "neg"] and skipped == []
    # the kept quote is reported: a TSV written with CSV quoting would otherwise change unseen
    assert notes == ["d.tsv: 1 field(s) start with a double quote, kept as part of the text (TSV has no quoting; line 2)"]


@pytest.mark.parametrize("raw, texts, labels", [
    (b"\xef\xbb\xbftext\tlabel\r\nok film\tpos\r\n\r\n  \t \nbad\tneg", ["ok film", "bad"], ["pos", "neg"]),  # BOM, CRLF, blank lines
    (b'label\ttext\npos\t"a ""quoted"" film"\nneg\tplain\n', ['"a ""quoted"" film"', "plain"], ["pos", "neg"]),
    (b"text\tlabel\t\nok\tpos\t\nbad\tneg\t\n", ["ok", "bad"], ["pos", "neg"]),  # trailing tabs on every line
    (b"text\tlabel\n 5 o'clock, a \"b\" \t pos \n", ["5 o'clock, a \"b\""], ["pos"]),
])
def test_tsv_near_relatives(tmp_path, raw, texts, labels):
    split, skipped, _, _ = read_file(write(tmp_path / "d.tsv", raw))
    assert (split.texts, split.labels, skipped) == (texts, labels, [])


@pytest.mark.parametrize("raw, line, why", [
    (b"text\tlabel\nok\tpos\t\nbad\tneg\n", 2, r"3 fields, the header \(line 1\) has 2 \(a trailing separator\?\)"),
    (b"text\tlabel\nok\tpos\npos\n", 3, r"1 fields, the header \(line 1\) has 2"),  # a label-only line
    (b"text\tlabel\nok\tpos\n\tneg\n", 3, "empty text"),
    (b"text\tlabel\nwith\ta tab\tpos\n", 2, "3 fields"),
])
def test_tsv_bad_lines_are_named_or_skipped_one_by_one(tmp_path, raw, line, why):
    path = write(tmp_path / "d.tsv", raw)
    with pytest.raises(DataError, match=rf"d\.tsv, line {line}: {why}"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    assert [s.line for s in skipped] == [line] and len(split) == raw.count(b"\n") - 2  # all but the header and the bad line


def test_csv_quotes_close_on_their_line_or_the_line_is_refused(tmp_path):
    path = write(tmp_path / "d.csv", b'text,label\n"great movie,pos\nbad film,neg\n"he said ""wow"", loudly",pos\n'
                                     b'boring plot,neg\n')
    with pytest.raises(DataError, match=r"d\.csv, line 2: a quoted field does not close on its line"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    # the broken line alone is left out (and named); the lines after it are not swallowed
    assert split.texts == ["bad film", 'he said "wow", loudly', "boring plot"] and split.labels == ["neg", "pos", "neg"]
    assert [(s.line, "does not close" in s.why) for s in skipped] == [(2, True)]


def test_a_csv_record_over_several_lines_is_named_whole_not_read_in_pieces(tmp_path):
    path = write(tmp_path / "d.csv", b'text,label\nok,pos\n"line one\n\nline ""two"", end",neg\nfine,pos\n')
    with pytest.raises(DataError, match=r"d\.csv, line 3: a quoted field holds a line end \(one record over lines 3-5\)"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    # its second line is not read as a record `line "two", end` of its own: every line of it is named
    assert split.texts == ["ok", "fine"] and [s.line for s in skipped] == [3, 4, 5]


@pytest.mark.parametrize("raw, result", [
    (b'\xef\xbb\xbf"text","label"\r\n"a, b",pos\r\nc,neg\r\n', (["a, b", "c"], ["pos", "neg"])),  # BOM, CRLF, quoted header
    (b'text,label\nhe said "wow" loudly,pos\nx,neg\n', (['he said "wow" loudly', "x"], ["pos", "neg"])),  # a quote mid-field is a character
    (b'text,label\n"fine" ok,pos\nx,neg\n', r"line 2: malformed CSV \(',' expected after '\"'\)"),  # text after a closing quote
    (b"text,label\nok,pos,\nx,neg\n", r"line 2: 3 fields, the header \(line 1\) has 2 \(a trailing separator\?\)"),
    (b"text,text,label\na,b,pos\n", "names column 'text' 2 times"),
])
def test_csv_near_relatives(tmp_path, raw, result):
    path = write(tmp_path / "d.csv", raw)
    if isinstance(result, str):
        with pytest.raises(DataError, match=result):
            read_file(path)
    else:
        split = read_file(path)[0]
        assert (split.texts, split.labels) == result


def test_label_tab_text_lines_split_at_the_tab(tmp_path):
    path = write(tmp_path / "t.txt", b"pos\tthe movie was ok\nneg\tthe movie was bad\npos\tthis movie was ok\n"
                                     b"neg \t this movie was bad\r\n")
    split = read_file(path)[0]
    assert split.labels == ["pos", "neg", "pos", "neg"]  # not 'neg\tthe': the label ends at a space or a tab
    assert split.texts == ["the movie was ok", "the movie was bad", "this movie was ok", "this movie was bad"]


def test_tab_separated_columns_in_a_txt_file_are_refused(tmp_path):
    path = write(tmp_path / "t.txt", b"the movie was ok\tpos\nthe movie was bad\tneg\n")
    with pytest.raises(DataError, match=r"t\.txt, line 1: a tab inside the text after the label 'the'.*\.tsv file"):
        read_file(path)


def test_jsonl_rules(tmp_path):
    raw = ('{"text": "a\u0085b \u2028 c", "label": true}\n\n{"text": " x ", "label": 1.5}\r\n'
           '{"text": "y", "label": "pos"}\n').encode()
    split, skipped, _, _ = read_file(write(tmp_path / "d.jsonl", raw))
    # NEL and LINE SEPARATOR inside a JSON string are characters, not line ends; labels are spelt as in JSON
    assert split.texts == ["a\u0085b \u2028 c", "x", "y"] and split.labels == ["true", "1.5", "pos"]
    with pytest.raises(DataError, match=r"line 1: not JSON .*not JSON Lines \(one object a line\)"):
        read_file(write(tmp_path / "a.json", b'[\n{"text": "x", "label": 1}\n]\n'))


# --- labels: one class per value, in every format (README, "Data formats", labels) ------------------------


@pytest.mark.parametrize("name, raw", [
    ("d.jsonl", b'{"text": "a", "label": 1}\n{"text": "b", "label": 1.0}\n{"text": "c", "label": 1e0}\n'
                b'{"text": "d", "label": "1.0"}\n{"text": "e", "label": 10E-1}\n{"text": "f", "label": 2.50}\n'),
    ("d.txt", b"1 a\n1.0 b\n1e0 c\n+1 d\n01 e\n2.5 f\n"),
    ("d.csv", b'text,label\na,1\nb,1.0\nc,"1e0"\nd,+1\ne,01\nf,2.50\n'),
    ("d.tsv", b"text\tlabel\na\t1\nb\t1.0\nc\t1e0\nd\t+1\ne\t1.\nf\t25e-1\n"),
])
def test_one_number_is_one_class_whatever_its_spelling_and_format(tmp_path, name, raw):
    split, skipped, _, _ = read_file(write(tmp_path / name, raw))
    # an integral number is its integer, any other its shortest decimal: never `1` and `1.0` as two classes
    assert split.labels == ["1"] * 5 + ["2.5"] and skipped == []


def test_one_text_label_is_one_class_whichever_unicode_form_it_is_typed_in(tmp_path):
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    split = read_file(write(tmp_path / "d.txt", f"{composed} good\n{decomposed} nice\nbof dull\n".encode()))[0]
    assert split.labels == [composed, composed, "bof"]


def test_a_json_number_is_read_exactly_whatever_its_size(tmp_path):
    big = "9" * 5000  # json's own int() refuses over 4,300 digits (a ValueError, not a bad line)
    raw = f'{{"text": "a", "label": {big}}}\n{{"text": "b", "label": 1e400}}\n{{"text": "c", "label": 1e-7}}\n'
    split = read_file(write(tmp_path / "d.jsonl", raw.encode()))[0]
    assert split.labels == [big, "1e+400", "0.0000001"]  # not inf: 1e400 is a number like any other


@pytest.mark.parametrize("name, raw, line, why", [
    ("d.jsonl", b'{"text": "a", "label": 0}\n{"text": "b", "label": NaN}\n{"text": "c", "label": 1}\n', 2,
     "the label 'NaN' is not a value"),
    ("d.jsonl", b'{"text": "a", "label": 0}\n{"text": "b", "label": null}\n{"text": "c", "label": 1}\n', 2,
     "the label is null"),
    ("d.jsonl", b'{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n{"text": "c", "label": -Infinity}\n', 3,
     "the label '-Infinity' is not a value"),
    ("d.jsonl", b'{"text": "a", "label": 0}\n{"text": "b", "label": " "}\n{"text": "c", "label": 1}\n', 2, "empty label"),
    ("d.csv", b"text,label\na,0\nb,nan\nc,1\nd,0\n", 3, "the label 'nan' is not a value"),
    ("d.csv", b"text,label\na,0\nb,\nc,1\nd,0\n", 3, "empty label"),
    ("d.tsv", b"text\tlabel\na\t0\nb\t1\nc\tinf\nd\t0\n", 4, "the label 'inf' is not a value"),
    ("d.txt", b"0 a\nNULL b\n1 c\n", 2, "the label 'NULL' is not a value"),
])
def test_a_label_that_is_not_a_value_is_a_bad_line(tmp_path, name, raw, line, why):
    path = write(tmp_path / name, raw)
    with pytest.raises(DataError, match=rf"{name}, line {line}: {why}"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    assert [(s.file, s.line) for s in skipped] == [(str(path), line)] and "nan" not in split.labels
    assert sorted(set(split.labels)) == ["0", "1"]  # no class of its own


@pytest.mark.parametrize("key", ["label", "text"])
def test_a_json_line_that_gives_a_key_twice_is_a_bad_line(tmp_path, key):
    """json.loads keeps the last of a key given twice; a line that says two things means neither."""
    twice = {"label": b'{"text": "c d", "label": 0, "label": 1}', "text": b'{"text": "c", "label": 1, "text": "d"}'}
    path = write(tmp_path / "d.jsonl", b'{"text": "a b", "label": 0}\n' + twice[key] + b'\n{"text": "e", "label": 1}\n')
    with pytest.raises(DataError, match=rf"d.jsonl, line 2: key '{key}' is given twice in one object"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    assert [s.line for s in skipped] == [2] and split.texts == ["a b", "e"]


def test_label_names_name_a_number_however_it_is_spelt(tmp_path):
    write(tmp_path / "d.jsonl", b'{"text": "a b", "label": 0}\n{"text": "c d", "label": 1.0}\n'
                                b'{"text": "e f", "label": 1}\n{"text": "g h", "label": 0}\n')
    d = load_data(tmp_path / "d.jsonl", label_names=write(tmp_path / "names.txt", b"0.0 neg\n1 pos\n"))
    assert sorted(label for s in (d.train, d.test) for label in s.labels) == ["neg", "neg", "pos", "pos"]
    assert load_data(tmp_path / "d.jsonl", label_names={0: "neg", 1.0: "pos"}).label_names == ["neg", "pos"]
    with pytest.raises(DataError, match="line 2: label '1' is named twice"):
        load_data(tmp_path / "d.jsonl", label_names=write(tmp_path / "names.txt", b"1 pos\n1.0 yes\n0 neg\n"))


# --- one length limit in every format: the format's rules decide, not a parser's default -----------------

def _one_long_row(name: str, text: str) -> bytes:
    """A file of `name`'s format: a row with `text` between two short ones, labels pos/neg/pos."""
    rows = [("pos", "a fine film"), ("neg", text), ("pos", "good")]
    if name.endswith(".txt"):
        return "".join(f"{lab} {t}\n" for lab, t in rows).encode()
    if name.endswith(".tsv"):
        return ("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for lab, t in rows)).encode()
    if name.endswith(".csv"):
        return ("text,label\n" + "".join(f'"{t}",{lab}\n' for lab, t in rows)).encode()
    if name.endswith(".jsonl"):
        return "".join(json.dumps({"text": t, "label": lab}) + "\n" for lab, t in rows).encode()
    if name.endswith(".conll"):  # one token a line: the long text as one token
        return "".join(f"{t.split()[0]}\t{'B-x' if lab == 'pos' else 'O'}\n\n" for lab, t in rows).encode()
    return "".join(f"1\t{t.split()[0]}\t_\t{lab}\t_\t_\t0\troot\t_\t_\n\n" for lab, t in rows).encode()


FORMATS = ["d.txt", "d.tsv", "d.csv", "d.jsonl", "d.conll", "d.conllu"]


@pytest.mark.parametrize("name", FORMATS)
def test_a_long_text_is_read_alike_from_every_format(tmp_path, name):
    import csv

    long = "x" * 150_000  # past Python csv's default field limit (131,072 characters)
    before = csv.field_size_limit()
    split, skipped, _, _ = read_file(write(tmp_path / name, _one_long_row(name, long)))
    assert csv.field_size_limit() == before  # the process's own limit is left as it was
    assert skipped == [] and len(split) == 3
    assert split.texts[1] in (long, [long])  # a text, or a sentence of one word


@pytest.mark.parametrize("name", FORMATS)
def test_one_line_limit_in_every_format_named_or_skipped(tmp_path, name):
    from rdzoo.text.data import MAX_LINE

    path = write(tmp_path / name, _one_long_row(name, "x" * (MAX_LINE + 1)))
    line = 3 if name.endswith((".tsv", ".csv", ".conll", ".conllu")) else 2
    with pytest.raises(DataError, match=rf"{name}, line {line}: a line of 1,00\d,\d\d\d characters; rdzoo reads lines "
                                        r"of up to 1,000,000 in every format"):
        read_file(path)
    split, skipped, _, _ = read_file(path, on_bad_line="skip")
    assert [s.line for s in skipped] == [line] and len(split) == 2


def test_json_nested_past_the_parsers_depth_is_a_bad_line(tmp_path):
    deep = '{"text": "a", "label": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = write(tmp_path / "d.jsonl", ('{"text": "b", "label": 0}\n' + deep + '\n{"text": "c", "label": 1}\n').encode())
    with pytest.raises(DataError, match=r"d\.jsonl, line 2: JSON nested too deeply"):
        read_file(path)
    assert read_file(path, on_bad_line="skip")[0].texts == ["b", "c"]


def test_compressed_files_and_folders(tmp_path):
    import gzip
    import lzma

    write(tmp_path / "train.tsv.gz", gzip.compress(b"text\tlabel\na\tx\nb\ty\n"))
    write(tmp_path / "test.txt.xz", lzma.compress(b"x c\n"))
    d = load_data(tmp_path)
    assert d.train.texts == ["a", "b"] and d.test.labels == ["x"]


@pytest.mark.parametrize("raw, message", [
    ("text\tlabel\nok\tpos\n".encode("utf-16"), "UTF-16 or UTF-32 text.*save it as UTF-8"),
    (b"text\tlabel\nok\tpos\n", None),
])
def test_utf16_is_named(tmp_path, raw, message):
    if message:
        with pytest.raises(DataError, match=message):
            read_file(write(tmp_path / "d.tsv", raw))
    else:
        assert read_file(write(tmp_path / "d.tsv", raw))[0].labels == ["pos"]


def test_a_bom_inside_a_joined_file_is_removed_and_reported(tmp_path):
    raw = b"\xef\xbb\xbfpos good\nneg bad\n\xef\xbb\xbfpos fine\nneg dull\n"  # two files joined with cat
    split, _, decoding, _ = read_file(write(tmp_path / "d.txt", raw))
    assert split.labels == ["pos", "neg", "pos", "neg"]  # not a third class '\ufeffpos'
    assert decoding.bom_lines == [3] and "line 3" in decoding.notes()[0]


def test_unknown_suffix_is_refused_not_guessed(tmp_path):
    with pytest.raises(DataError, match=r"cannot read \.xml files yet; it reads \.txt, \.csv"):
        read_file(write(tmp_path / "d.xml", b"<doc><s label='pos'>good</s></doc>\n"))


def test_skipped_lines_are_reported_with_file_and_line(tmp_path):
    write(tmp_path / "all.txt", b"pos good\nneg bad\nlonely\npos fine\nneg dull\npos nice\nneg poor\nalone\n")
    d = load_data(tmp_path / "all.txt", on_bad_line="skip")
    report = d.report()
    assert report["skipped_lines"] == 2 and [(s["line"], s["file"]) for s in report["skipped"]] == \
        [(3, str(tmp_path / "all.txt")), (8, str(tmp_path / "all.txt"))]
    assert len(d.train) + len(d.test) == 6  # 8 lines in: 6 examples out, 2 named as skipped
    assert any("held out 1 of 6" in n for n in report["notes"])


# --- label names --------------------------------------------------------------------------------


def test_label_names_file_names_integer_labels(tmp_path):
    write(tmp_path / "train.txt", b"0 a b\n1 c d\n2 e f\n")
    write(tmp_path / "test.txt", b"1 c\n")
    write(tmp_path / "label_names.txt", b"# value name\n0 very negative\n1 neutral\n2 positive\n")
    d = load_data(tmp_path)
    assert d.label_names == ["very negative", "neutral", "positive"] and d.test.labels == ["neutral"]
    assert any("labels named by label_names.txt" in n for n in d.notes)
    assert load_data(tmp_path, label_names={"0": "n", "1": "o", "2": "p"}).label_names == ["n", "o", "p"]


@pytest.mark.parametrize("names, message", [
    (b"0 neg\n1 pos\n", r"label\(s\) '2' have no name in names.txt; it names 0, 1"),
    (b"0 neg\n1 neg\n2 pos\n", "line 2: the name 'neg' is given to two labels"),
    (b"0 neg\n0 pos\n", "line 2: label '0' is named twice"),
    (b"0\n", r"line 1: expected `value name`"),
])
def test_label_names_that_would_change_data_are_refused(tmp_path, names, message):
    write(tmp_path / "d.txt", b"0 a b\n1 c d\n2 e f\n0 g\n")
    with pytest.raises(DataError, match=message):
        load_data(tmp_path / "d.txt", label_names=write(tmp_path / "names.txt", names))


# --- what every command that reads data reports ----------------------------------------------------


def _cli(*args, code=0):
    """The command in this process (torch is imported once); returns the result for its output."""
    from typer.testing import CliRunner

    from rdzoo.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})  # no wrapped notes
    assert result.exit_code == code, (result.output, result.exception)
    return result


TINY_TRAIN = ["--set", "embedding.dim=16", "--set", "encoder.stem_channels=16", "--set", "train.batch_size=16",
              "--epochs", "1", "-q"]
# the same with batches of 64, for the whole of TREC (a key is given once)
TINY_TRAIN_64 = [a.replace("train.batch_size=16", "train.batch_size=64") for a in TINY_TRAIN]


def _reviews(tmp_path):
    """A CSV with its own column names and integer labels, one line of it cp1252 and one broken."""
    rows = [f"{i},{'superb lovely film' if i % 2 else 'dull boring film'} {i},{i % 2}" for i in range(40)]
    raw = ("id,review,stars\n" + "\n".join(rows[:20]) + "\n").encode() + \
        "20,caf\xe9 cr\xe8me film,0\n".encode("cp1252") + '21,"unclosed,1\n'.encode() + \
        ("\n".join(rows[22:]) + "\n").encode()
    write(tmp_path / "reviews.csv", raw)
    write(tmp_path / "stars.txt", b"0 bad\n1 good\n")
    return ["--data", str(tmp_path / "reviews.csv"), "--text-col", "review", "--label-col", "stars",
            "--label-names", str(tmp_path / "stars.txt"), "--on-bad-line", "skip"]


def test_train_and_eval_report_what_the_loader_did_and_eval_reuses_the_runs_columns(tmp_path):
    data = _reviews(tmp_path)
    out = tmp_path / "run"
    trained = json.loads(_cli("train", "kim-cnn", *data, *TINY_TRAIN, "--out", out, "--json").stdout)
    report = trained["data_report"]
    assert report["skipped"] == [{"file": str(tmp_path / "reviews.csv"), "line": 23,
                                  "why": report["skipped"][0]["why"]}] and "does not close" in report["skipped"][0]["why"]
    assert report["not_utf8"] == [{"file": str(tmp_path / "reviews.csv"), "encoding": "cp1252", "count": 1, "lines": [22]}]
    assert any("held out 4 of 39" in n for n in report["notes"]) and any("no dev split" in n for n in report["notes"])
    table = _cli("train", "kim-cnn", *data, *TINY_TRAIN, "--cv", "2").stdout
    assert "line 22" in table and "1 bad line(s) skipped" in table and "--cv 2: 2 folds of the 35" in table

    # eval: the same file without --text-col/--label-col/--label-names/--seed: the run's are reused
    ev = json.loads(_cli("eval", out, "--data", tmp_path / "reviews.csv", "--json").stdout)
    assert ev["test_n"] == 4 and ev["test_accuracy"] == pytest.approx(trained["test_accuracy"])
    assert ev["data_report"]["skipped_lines"] == 1 and ev["data_report"]["not_utf8"][0]["lines"] == [22]
    assert json.loads(_cli("eval", out, "--json").stdout)["test_accuracy"] == ev["test_accuracy"]  # its own data
    assert json.loads((out / "config.json").read_text())["data_path"] == str(tmp_path / "reviews.csv")
    assert "line 22" in _cli("eval", out).stdout
    labels = _cli("predict", out, "a superb lovely film", "a dull boring film").stdout.split()
    assert set(labels) <= {"bad", "good"}
    # data with nothing to evaluate on is refused, not shown as an empty table
    (tmp_path / "only-train").mkdir()
    write(tmp_path / "only-train" / "train.csv", b"id,review,stars\n1,superb film,1\n2,dull film,0\n")
    refused = _cli("eval", out, "--data", tmp_path / "only-train", code=1)
    assert isinstance(refused.exception, DataError) and "no dev or test split to evaluate on" in str(refused.exception)


def test_train_out_refuses_an_earlier_run_unless_overwrite(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    args = ["train", "kim-cnn", *_reviews(tmp_path), *TINY_TRAIN, "--out", out]
    _cli(*args)
    before = (out / "model.safetensors").read_bytes()
    # refused before training (100,000 epochs would run into the timeout), in one line, exit status 2
    proc = subprocess.run([sys.executable, "-m", "rdzoo.cli", *map(str, args), "--epochs", "100000"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr and "--overwrite" in proc.stderr
    assert proc.stderr.count("\n") == 1 and (out / "model.safetensors").read_bytes() == before
    _cli(*args, "--set", "train.seed=1", "--overwrite")
    assert (out / "model.safetensors").read_bytes() != before


def test_trec_runs_predict_class_names(tmp_path):
    from dataclasses import replace

    import rdzoo
    from rdzoo.runs import save_run
    from rdzoo.train import fit

    def small(d):
        return replace(d, train=d.train.subset(list(range(0, 5452, 10))), test=d.test.subset(list(range(50))))

    s = spec.load("kim-cnn", {"embedding.dim": 16, "embedding.max_len": 16, "train.epochs": 1})
    result = fit(s, small(load_data("trec")))
    assert result.label_names == ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"]
    # naming the labels changes no class id, so no number: the same files without names train the same
    digits = fit(s, small(load_data("trec", label_names={str(i): str(i) for i in range(6)})))
    assert digits.label_names == ["0", "1", "2", "3", "4", "5"] and digits.metrics["test_accuracy"] == \
        result.metrics["test_accuracy"] and [h["loss"] for h in digits.history] == [h["loss"] for h in result.history]
    run = rdzoo.load(save_run(result, tmp_path / "trec", {"data": "trec"}))
    assert set(run.predict(["Who wrote Hamlet ?", "How many feet are in a mile ?"])) <= set(result.label_names)


def test_a_trec_run_evaluates_the_trec_files_in_their_integer_labels(tmp_path):
    import shutil

    from rdzoo.text.data import BUILTIN_DIR

    out = tmp_path / "run"
    _cli("train", "kim-cnn", "--data", "trec", *TINY_TRAIN_64, "--out", out)
    own = json.loads(_cli("eval", out, "--json").stdout)
    plain = tmp_path / "trec-digits"  # the same files without their label_names.txt: labels 0-5
    plain.mkdir()
    for name in ("train.txt", "test.txt"):
        shutil.copy(BUILTIN_DIR / "trec" / name, plain / name)
    ev = json.loads(_cli("eval", out, "--data", plain, "--json").stdout)
    assert ev["test_n"] == 500 and ev["test_accuracy"] == own["test_accuracy"]
    assert any(n.startswith("labels named by the run's label names (0 DESC, 1 ENTY") for n in ev["data_report"]["notes"])
    # a run saved before the names were recorded: its built-in data's label_names.txt says the same
    config = json.loads((out / "config.json").read_text())
    assert config["label_values"]["0"] == "DESC"
    (out / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "label_values"}))
    assert json.loads(_cli("eval", out, "--data", plain, "--json").stdout)["test_accuracy"] == own["test_accuracy"]
    # the other way: a run trained on the digits evaluates the built-in, named set (it knows the values)
    digits = tmp_path / "digits-run"
    _cli("train", "kim-cnn", "--data", plain, *TINY_TRAIN_64, "--out", digits)
    assert json.loads((digits / "config.json").read_text())["label_values"] is None
    own = json.loads(_cli("eval", digits, "--json").stdout)
    ev = json.loads(_cli("eval", digits, "--data", "trec", "--json").stdout)
    assert ev["test_n"] == 500 and ev["test_accuracy"] == own["test_accuracy"]
    # labels that are neither the run's names nor the values they came from are still refused, by name
    write(plain / "test.txt", b"7 What is this ?\n")
    write(plain / "train.txt", b"7 What is that ?\n8 Who is it ?\n")
    refused = _cli("eval", out, "--data", plain, code=1)
    assert "labels the model was not trained on: '7'" in str(refused.exception)


def test_data_lists_every_builtin_and_search_reports_the_loader(tmp_path):
    import yaml

    listed = {r["name"]: r for r in json.loads(_cli("data", "--json").stdout)}
    assert set(listed) == set(builtin_names())
    assert listed["ud-ewt"]["task"] == "tagging" and listed["trec"]["labels"][0] == "DESC"
    assert "wnut17" in listed  # listed even while its format cannot be read: an error row, not a crash
    space = tmp_path / "tiny.yaml"
    space.write_text(yaml.safe_dump({"name": "tiny", "fixed": {
        "family": "resnet", "embedding": {"dim": 8, "max_len": 16}, "train": {"epochs": 1, "batch_size": 16},
        "encoder": {"stem_channels": 8, "channels": 8, "stages": [1]}}, "choose": {"train.lr": {"choice": [0.01]}}}))
    args = ["search", "--space", space, *_reviews(tmp_path), "--trials", "1", "--storage", f"sqlite:///{tmp_path}/s.db",
            "--quiet"]
    report = json.loads(_cli(*args, "--json").stdout)["data_report"]
    assert report["skipped_lines"] == 1 and report["not_utf8"][0]["lines"] == [22]
    shown = _cli(*args, "--study", "again").stdout
    # said before the scores it qualifies
    assert shown.index("data: reviews.csv: 1 line(s) not UTF-8, read as cp1252 (line 22)") < shown.index("best of study")


# --- every record in comes out: round trips through each format -------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_fuzz = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                 derandomize=True)
# texts: any characters but control ones (tabs, line ends, NEL, NUL), surrogates and a BOM; no white space
# around them (it is not part of a text); quotes, commas, U+2028 and non-Latin letters included
_texts = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff"), min_size=1,
                 max_size=25).map(str.strip).filter(bool)
_labels = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), blacklist_characters="\ufeff"),
                  min_size=1, max_size=6).filter(lambda s: s.strip() == s and not any(c.isspace() for c in s)
                                                 and not re.fullmatch(r"[+-]?[0-9.eE]*|[+-]?(nan|inf|infinity)|null", s,
                                                                      re.IGNORECASE)
                                                 and unicodedata.normalize("NFC", s) == s)  # those: tested above
_rows = st.lists(st.tuples(_texts, _labels), min_size=1, max_size=12)
_ends = st.sampled_from(["\n", "\r\n", "\r"])


@_fuzz
@given(rows=_rows, ends=st.lists(_ends, min_size=13, max_size=13), blank=st.integers(0, 12))
def test_every_row_comes_back_from_every_format(tmp_path_factory, rows, ends, blank):
    import csv as csv_mod
    import io

    folder = tmp_path_factory.mktemp("rt")

    def lines_to_file(name, lines):
        lines = lines[:blank] + ["  "] + lines[blank:]  # a blank line anywhere holds no record
        return write(folder / name, "".join(line + end for line, end in zip(lines, ends + ["\n"] * 2)).encode())

    texts, labels = [t for t, _ in rows], [lab for _, lab in rows]
    got = read_file(lines_to_file("d.txt", [f"{lab} {t}" for t, lab in rows]))[0]
    assert (got.texts, got.labels) == (texts, labels)
    got = read_file(lines_to_file("d.tsv", ["text\tlabel"] + [f"{t}\t{lab}" for t, lab in rows]))[0]
    assert (got.texts, got.labels) == (texts, labels)
    buffer = io.StringIO()
    csv_mod.writer(buffer, lineterminator="\n").writerows([("label", "text"), *[(lab, t) for t, lab in rows]])
    got = read_file(lines_to_file("d.csv", buffer.getvalue().split("\n")[:-1]))[0]
    assert (got.texts, got.labels) == (texts, labels)
    got = read_file(lines_to_file("d.jsonl", [json.dumps({"text": t, "label": lab}, ensure_ascii=False)
                                              for t, lab in rows]))[0]
    assert (got.texts, got.labels) == (texts, labels)


# Latin letters U+00E0-U+00FF are bytes E0-FF in cp1252: with no byte 80-BF after them, such a line is never
# valid UTF-8, so the per-line decoder must find out which lines were written in which encoding
_latin = st.text(st.sampled_from("abc xyz,\"'" + "".join(map(chr, range(0xE0, 0x100)))), min_size=1,
                 max_size=20).map(str.strip).filter(bool)


@_fuzz
@given(rows=st.lists(st.tuples(_latin, st.sampled_from(["pos", "neg"]), st.booleans()), min_size=1, max_size=15))
def test_lines_in_two_encodings_are_each_decoded_as_written(tmp_path_factory, rows):
    raw = b"".join(f"{lab} {t}\n".encode("cp1252" if as_cp1252 else "utf-8") for t, lab, as_cp1252 in rows)
    split, _, decoding, _ = read_file(write(tmp_path_factory.mktemp("enc") / "d.txt", raw))
    assert split.texts == [t for t, _, _ in rows]
    assert decoding.fallback.get("cp1252", []) == [n for n, (t, _, c) in enumerate(rows, 1) if c and not t.isascii()]
