import json

import pytest

from rdzoo.text.data import Columns, DataError, kfold, load_data, read_file
from rdzoo.text.tokenize import fit_tokenizer, tokenizer_from_dict
from rdzoo import spec

from conftest import DATASETS


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_builtin_trec_is_packaged_and_decoded():
    d = load_data("trec")
    assert d.sizes() == {"train": 5452, "dev": 0, "test": 500}
    assert d.label_names == ["0", "1", "2", "3", "4", "5"]
    assert any("cp1252" in n for n in d.notes)  # the training file is not UTF-8


def test_shared_sst2_folder_with_dev_split():
    d = load_data(DATASETS / "sst2")
    assert d.sizes() == {"train": 6920, "dev": 872, "test": 1821}


def test_cp1252_and_latin1_files_and_cr_line_ends(tmp_path):
    raw = "1 caf\xe9 cr\xe8me\r\n0 na\xefve \x85 plan\r1 third line\n".encode("latin-1")
    split, _, encoding = read_file(write(tmp_path / "d.txt", raw))
    assert encoding == "cp1252"  # where 0x85 is an ellipsis, not a line end
    assert split.texts == ["caf\xe9 cr\xe8me", "na\xefve \u2026 plan", "third line"]
    # 0x81 is undefined in cp1252, so this file is latin-1, where 0x85 is NEL
    raw = b"1 \x81bc\x850 second\r\n1 third"
    split, _, encoding = read_file(write(tmp_path / "l.txt", raw))
    assert encoding == "latin-1" and split.texts == ["\x81bc", "second", "third"]


def test_nel_in_utf8(tmp_path):
    split, _, encoding = read_file(write(tmp_path / "d.txt", "1 a b\u00850 c d".encode("utf-8")))
    assert encoding == "utf-8" and split.labels == ["1", "0"]


def test_bad_line_error_names_file_and_line_or_is_skipped(tmp_path):
    path = write(tmp_path / "d.txt", b"pos good film\nneg bad film\nlonelylabel\npos fine\n")
    with pytest.raises(DataError, match=r"d\.txt, line 3: .*no text"):
        read_file(path)
    split, skipped, _ = read_file(path, on_bad_line="skip")
    assert skipped == 1 and split.labels == ["pos", "neg", "pos"]


def test_csv_tsv_jsonl_with_chosen_columns_and_string_labels(tmp_path):
    write(tmp_path / "r.csv", b'id,review,stars\n1,"great, really",5\n2,awful,1\n3,"fine ""ok""",3\n')
    split, _, _ = read_file(tmp_path / "r.csv", Columns("review", "stars"))
    assert split.texts == ["great, really", "awful", 'fine "ok"'] and split.labels == ["5", "1", "3"]
    write(tmp_path / "r.tsv", b"text\tlabel\nhello world\tgreeting\nbye\tfarewell\n")
    assert read_file(tmp_path / "r.tsv")[0].labels == ["greeting", "farewell"]
    write(tmp_path / "r.jsonl", b'{"sentence": "yes", "y": 1}\n{"sentence": "no", "y": 0}\n')
    assert read_file(tmp_path / "r.jsonl", Columns("sentence", "y"))[0].labels == ["1", "0"]


def test_missing_column_lists_the_columns(tmp_path):
    write(tmp_path / "r.csv", b"review,stars\ngood,5\n")
    with pytest.raises(DataError, match="no column 'text'.*--text-col.*review, stars"):
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
    split, skipped, encoding = read_file(path)
    # the multiword token `Don't` and the empty node 3.1 are not words; comments are skipped
    assert split.texts == [["Do", "n't", "stop", "."], ["Caf\xe9"]]
    assert split.labels == [["AUX", "PART", "VERB", "PUNCT"], ["NOUN"]]
    assert (skipped, encoding) == (0, "cp1252")


def test_conllu_bad_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "train.conllu", b"1\tA\ta\tDET\n2\tdog\tdog\tNOUN\tNN\t_\t0\troot\t_\t_\n")
    with pytest.raises(DataError, match=r"train.conllu, line 1: a CoNLL-U word line has 10 tab-separated fields, this one 4"):
        read_file(path)
    split, skipped, _ = read_file(path, on_bad_line="skip")
    assert split.texts == [["dog"]] and skipped == 1
    with pytest.raises(DataError, match="do not apply to CoNLL-U"):
        read_file(path, Columns(text="form"))


def test_shared_ud_ewt_folder_with_ud_file_names():
    d = load_data(DATASETS / "ud-ewt")
    assert d.tagging and d.sizes() == {"train": 12544, "dev": 2001, "test": 2077}
    assert len(d.label_names) == 17 and "PROPN" in d.label_names
    assert sum(map(len, d.train.texts)) == 204577  # words, without multiword tokens and empty nodes
    assert all(len(w) == len(t) for w, t in zip(d.test.texts, d.test.labels))


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
