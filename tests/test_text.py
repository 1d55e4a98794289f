from __future__ import annotations

import json

import pytest

from lmforge.errors import CorpusError, MissingFileError
from lmforge.text import Corpus, iter_chunks, read_corpus, read_items, read_text, resolve_files, stdlib_files


def test_plain_text_lines_skip_blank(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("first line\n\n  \nsecond\r\nthird")
    assert list(read_corpus([path])) == ["first line", "second", "third"]


def test_plain_text_whole_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffone\ntwo\n".encode())
    assert list(read_corpus([path], unit="file")) == ["one\ntwo\n"]


def test_jsonl_field(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps({"document": "doc one", "id": 1}) + "\n\n" + json.dumps({"document": "dos"}) + "\n"
    )
    assert list(read_corpus([path], field="document")) == ["doc one", "dos"]


def test_jsonl_errors_name_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok"}\n{"text": oops}\n')
    with pytest.raises(CorpusError, match=r"d\.jsonl:2: not valid JSON"):
        list(read_corpus([path]))
    path.write_text('{"text": "ok"}\n{"body": "x"}\n')
    with pytest.raises(CorpusError, match=r"d\.jsonl:2: no field 'text' \(fields: body\)"):
        list(read_corpus([path]))
    path.write_text('{"text": 3}\n')
    with pytest.raises(CorpusError, match="is int, not a string"):
        list(read_corpus([path]))
    path.write_text("[1, 2]\n")
    with pytest.raises(CorpusError, match="expected a JSON object"):
        list(read_corpus([path]))


def test_csv_with_quotes_and_newlines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,text\n1,"hello, world"\n2,"two\nlines"\n')
    assert list(read_corpus([path])) == ["hello, world", "two\nlines"]


def test_tsv_glue_style_no_quoting(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text('sentence\tlabel\nit \'s "fine" \t1\nbad \t0\n')
    assert list(read_corpus([path])) == ['it \'s "fine"', "bad"]
    assert list(read_corpus([path], column="label")) == ["1", "0"]


def test_table_errors(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\nx\ty\n")
    with pytest.raises(CorpusError, match=r"t\.tsv:1: no 'text' or 'sentence' column \(columns: a, b\)"):
        list(read_corpus([path]))
    with pytest.raises(CorpusError, match="no column 'c'"):
        list(read_corpus([path], column="c"))
    path.write_text("text\tb\nx\ty\tz\n")
    with pytest.raises(CorpusError, match=r"t\.tsv:2: 3 cells, but the header has 2"):
        list(read_corpus([path]))


def test_directory_is_walked_in_order(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("bee\n")
    (tmp_path / "a.txt").write_text("ay\n")
    (tmp_path / "sub" / "c.jsonl").write_text('{"text": "sea"}\n')
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    assert list(read_corpus([tmp_path])) == ["ay", "bee", "sea"]


def test_non_utf8_names_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes(b"fine\ncaf\xe9 au lait\n")
    with pytest.raises(CorpusError, match=r"latin\.txt: byte 8 \(line 2\) is not valid UTF-8"):
        list(read_corpus([path]))
    with pytest.raises(CorpusError, match=r"byte 8 \(line 2\)"):
        read_text(path)


def test_read_items_one_text_per_line_and_its_errors(tmp_path, monkeypatch):
    """What `classify --file`, `translate --file` and `generate --prompts` read: a non-UTF-8 file used to
    escape as a UnicodeDecodeError traceback."""
    import io

    good = tmp_path / "good.txt"
    good.write_bytes("\ufeffcafé\r\n\n  \nsecond line\n".encode())
    assert read_items(good) == ["café", "second line"]
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(CorpusError, match=r"^--file .*latin.txt: byte 8 \(line 2\) is not valid UTF-8"):
        read_items(latin, option="--file")
    (tmp_path / "blank.txt").write_text(" \n\n")
    with pytest.raises(CorpusError, match=r"blank.txt: no text \(empty\); expected one prompt per line"):
        read_items(tmp_path / "blank.txt", what="prompt")
    with pytest.raises(MissingFileError, match=r"^--file .*absent.txt: no such file$"):
        read_items(tmp_path / "absent.txt", option="--file")
    with pytest.raises(CorpusError, match="a directory"):
        read_items(tmp_path)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"one\n\ntwo\n")))
    assert read_items("-") == ["one", "two"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xff\n")))
    with pytest.raises(CorpusError, match="standard input: byte 0"):
        read_items("-")


def test_empty_corpus_is_an_error(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n")
    with pytest.raises(CorpusError, match="empty corpus"):
        list(read_corpus([path]))
    (tmp_path / "d").mkdir()
    with pytest.raises(CorpusError, match="has no files ending in"):
        Corpus([tmp_path / "d"])


def test_missing_path_fails_before_reading(tmp_path):
    (tmp_path / "ok.txt").write_text("x\n")
    with pytest.raises(MissingFileError, match="nope.txt: no such file"):
        resolve_files([tmp_path / "ok.txt", tmp_path / "nope.txt"])
    with pytest.raises(CorpusError, match="no input files"):
        resolve_files([])


def test_corpus_is_reiterable_and_streams(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("".join(f"line {i}\n" for i in range(10_000)))
    corpus = Corpus([path])
    stream = iter(corpus)
    assert next(stream) == "line 0"  # nothing forces the whole file to be read first
    assert sum(1 for _ in corpus) == 10_000


def test_stdlib_corpus_is_present_and_readable():
    files = stdlib_files()
    assert len(files) > 100
    assert any(p.name == "argparse.py" for p in files)
    assert all("site-packages" not in p.parts for p in files)
    assert "ArgumentParser" in read_text(next(p for p in files if p.name == "argparse.py"))


def test_shared_wikitext_reads(shared_data):
    docs = list(read_corpus([shared_data / "wikitext-2" / "valid.txt"]))
    assert len(docs) > 1000 and any("=" in d for d in docs)
    sst = list(read_corpus([shared_data / "sst2" / "dev.tsv"]))
    assert len(sst) == 872
    xsum = list(read_corpus([shared_data / "xsum" / "validation-1000.jsonl"], field="summary"))
    assert len(xsum) == 1000


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 1 << 20])
def test_check_finds_the_first_bad_byte_across_chunk_boundaries(tmp_path, chunk_bytes):
    from lmforge.text import check_utf8

    good = tmp_path / "good.txt"
    good.write_text("naïve café\n你好 🙂\n" * 3)
    check_utf8(good, chunk_bytes)
    bad = tmp_path / "bad.txt"
    bad.write_bytes("你好\nnaïve\n".encode() + b"caf\xe9\n")
    offset = len("你好\nnaïve\n".encode()) + 3
    with pytest.raises(CorpusError, match=rf"bad.txt: byte {offset} \(line 3\) is not valid UTF-8"):
        check_utf8(bad, chunk_bytes)
    cut = tmp_path / "cut.txt"
    cut.write_bytes("ok 你".encode()[:-1])  # ends inside a character
    with pytest.raises(CorpusError, match=r"cut.txt: byte 3 \(line 1\)"):
        check_utf8(cut, chunk_bytes)


def test_corpus_check_reads_ahead_of_the_work(tmp_path):
    (tmp_path / "a.txt").write_text("fine\n")
    (tmp_path / "b.txt").write_bytes(b"\n" * 5 + b"\xff")
    with pytest.raises(CorpusError, match=r"b.txt: byte 5 \(line 6\)"):
        Corpus([tmp_path / "a.txt", tmp_path / "b.txt"]).check()
    (tmp_path / "c.txt").write_text(" \n\n")
    with pytest.raises(CorpusError, match="empty corpus"):
        Corpus([tmp_path / "c.txt"]).check()
    assert list(Corpus([tmp_path / "a.txt"]).check()) == ["fine"]


def test_chunks_keep_every_character_and_cut_only_between_lines_of_text(tmp_path):
    path = tmp_path / "a.txt"
    text = "\ufeffFirst line.\r\n\nSecond.  \nthird\n    indented\n\tx\nEnd\nlast, no newline"
    path.write_bytes(text.encode())
    whole = read_text(path)
    for size in (1, 5, 20, 10**6):
        pieces = list(iter_chunks(path, chunk_chars=size))
        assert "".join(pieces) == whole
        for before, after in zip(pieces[:-1], pieces[1:], strict=True):
            # a cut sits where a newline stands between two visible characters
            assert before.endswith("\n") and before.rstrip("\r\n")[-1:].strip() and after[:1].strip()
    # not after a blank line, a line ending in a space, or before an indented line
    assert list(iter_chunks(path, chunk_chars=1)) == [
        "First line.\r\n\nSecond.  \nthird\n    indented\n\tx\n",
        "End\n",
        "last, no newline",
    ]
    assert list(read_corpus([path], unit="chunk")) == [whole]


def test_unknown_unit_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("x\n")
    with pytest.raises(CorpusError, match="unit must be one of 'line', 'file', 'chunk', got 'page'"):
        Corpus([tmp_path / "a.txt"], unit="page")
