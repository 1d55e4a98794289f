"""`lmforge eval`: each metric on files, JSON output, explain, and one-line errors naming file and line."""

from __future__ import annotations

import json

import pytest

from lmforge.metrics import bleu, chrf, rouge_corpus, squad_em_f1

HYPS = ["The cat plays in the garden", "", "A dog barks at the postman ."]
REFS = ["The cat is playing in the garden", "Nothing here", "The dog barks at the mailman."]


@pytest.fixture
def files(tmp_path):
    def write(name: str, lines: list[str]) -> str:
        path = tmp_path / name
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return str(path)

    return write


def test_bleu_text_and_json(cli, files):
    hyp, ref = files("hyp.txt", HYPS), files("ref.txt", REFS)
    code, out, err = cli("eval", "bleu", "--hyp", hyp, "--ref", ref)
    assert code == 0, err
    assert out.startswith(str(bleu(HYPS, [REFS])))
    code, out, _ = cli("eval", "bleu", "--hyp", hyp, "--ref", ref, "--json", "--tokenize", "intl")
    payload = json.loads(out)
    expected = bleu(HYPS, [REFS], tokenize="intl")
    assert payload["score"] == expected.score and payload["counts"] == expected.counts


def test_bleu_several_references_from_files_and_jsonl_lists(cli, files, tmp_path):
    hyp, ref, ref2 = files("hyp.txt", HYPS), files("ref.txt", REFS), files("ref2.txt", HYPS)
    expected = bleu(HYPS, [REFS, HYPS]).score
    assert json.loads(cli("eval", "bleu", "--hyp", hyp, "--ref", ref, ref2, "--json")[1])["score"] == expected
    jsonl = tmp_path / "refs.jsonl"
    jsonl.write_text("".join(json.dumps({"refs": [r, h]}) + "\n" for r, h in zip(REFS, HYPS, strict=True)))
    out = cli("eval", "bleu", "--hyp", hyp, "--ref", jsonl, "--ref-field", "refs", "--json")[1]
    assert json.loads(out)["score"] == expected


def test_bleu_explain_on_the_course_example(cli, files):
    hyp, ref = files("hyp.txt", HYPS[:1]), files("ref.txt", REFS[:1])
    code, out, _ = cli("eval", "bleu", "--hyp", hyp, "--ref", ref, "--explain")
    assert code == 0
    assert "1-grams  5/6 match   precision 83.33%" in out
    assert 'unmatched  "cat plays" · "plays in"' in out
    assert "exp(1 - 7/6) = 0.8465" in out
    assert "= 32.16" in out
    payload = json.loads(cli("eval", "bleu", "--hyp", hyp, "--ref", ref, "--explain", "--json")[1])
    orders = payload["sentences_explained"][0]["orders"]
    assert [o["match_count"] for o in orders] == [5, 3, 1, 0]


def test_chrf(cli, files):
    hyp, ref = files("hyp.txt", HYPS), files("ref.txt", REFS)
    payload = json.loads(cli("eval", "chrf", "--hyp", hyp, "--ref", ref, "--json", "--word-order", "2")[1])
    assert payload["score"] == chrf(HYPS, [REFS], word_order=2).score and payload["name"] == "chrF2++"


def test_rouge_jsonl_fields_and_explain(cli, files, tmp_path):
    jsonl = tmp_path / "out.jsonl"
    jsonl.write_text("".join(json.dumps({"summary": h, "id": i}) + "\n" for i, h in enumerate(HYPS)))
    ref = files("ref.txt", REFS)
    out = cli("eval", "rouge", "--hyp", jsonl, "--hyp-field", "summary", "--ref", ref, "--json", "--stem")[1]
    payload = json.loads(out)
    expected = rouge_corpus(HYPS, REFS, True)
    assert payload["rougeL"]["fmeasure"] == expected["rougeL"].fmeasure
    assert payload["rouge2"]["recall"] == expected["rouge2"].recall and payload["pairs"] == 3
    code, out, _ = cli(
        "eval", "rouge", "--hyp", jsonl, "--hyp-field", "summary", "--ref", ref, "--explain", "--limit", "1"
    )
    assert "[the] [cat] is playing [in] [the] [garden]" in out
    assert "pair 2" not in out


def test_accuracy_f1_and_confusion_matrix(cli, files):
    pred, gold = (
        files("pred.txt", ["pos", "neg", "neg", "pos"]),
        files("gold.txt", ["pos", "pos", "neg", "pos"]),
    )
    assert "accuracy = 75.00%  (3/4)" in cli("eval", "accuracy", "--pred", pred, "--gold", gold)[1]
    payload = json.loads(cli("eval", "f1", "--pred", pred, "--gold", gold, "--average", "micro", "--json")[1])
    assert payload["f1"] == 0.75
    assert payload["confusion_matrix"] == {"classes": ["neg", "pos"], "counts": [[1, 0], [1, 2]]}


def test_squad_official_format_and_lines(cli, tmp_path, files):
    data = {"data": [{"paragraphs": [{"qas": [
        {"id": "q1", "answers": [{"text": "Denver Broncos"}, {"text": "the Broncos"}]},
        {"id": "q2", "answers": [{"text": "1889"}]},
        {"id": "q3", "answers": [{"text": "Paris"}]},
    ]}]}]}  # fmt: skip
    (tmp_path / "dev.json").write_text(json.dumps(data))
    (tmp_path / "pred.json").write_text(json.dumps({"q1": "Broncos", "q2": "in 1889"}))
    code, out, _ = cli(
        "eval", "squad", "--data", tmp_path / "dev.json", "--pred", tmp_path / "pred.json", "--json"
    )
    payload = json.loads(out[out.index("{") :])
    expected = squad_em_f1(
        ["Broncos", "in 1889", "\0"], [["Denver Broncos", "the Broncos"], ["1889"], ["Paris"]]
    )
    assert (payload["exact_match"], payload["f1"], payload["count"]) == (*expected, 3)
    assert payload["exact_match"] == pytest.approx(100 / 3)
    answers = tmp_path / "answers.jsonl"
    answers.write_text('{"answers": ["Denver Broncos", "the Broncos"]}\n{"answers": "1889"}\n')
    out = cli("eval", "squad", "--pred", files("p.txt", ["Broncos", "in 1889"]), "--ref", answers, "--json")[
        1
    ]
    assert json.loads(out)["exact_match"] == 50.0


@pytest.mark.parametrize(
    "hyp_lines, ref_lines, message",
    [
        (
            ["a", "b", "c"],
            ["a", "b"],
            "hyp.txt has 3 items but .*ref.txt has 2: item 3 of .*hyp.txt has no counterpart",
        ),
        ([], ["a"], "hyp.txt: empty file"),
    ],
)
def test_mismatched_and_empty_files_are_one_line_errors(cli, files, hyp_lines, ref_lines, message):
    code, out, err = cli(
        "eval", "bleu", "--hyp", files("hyp.txt", hyp_lines), "--ref", files("ref.txt", ref_lines)
    )
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err


def test_bad_json_names_file_and_line(cli, files, tmp_path):
    bad = tmp_path / "hyp.jsonl"
    bad.write_text('{"hypothesis": "a"}\n\n{"hypothesis": "b"\n')
    code, _, err = cli("eval", "rouge", "--hyp", bad, "--ref", files("ref.txt", ["a", "b"]))
    assert code == 2 and f"{bad}:3: not valid JSON" in err
    bad.write_text('{"text": "a"}\n')
    code, _, err = cli("eval", "rouge", "--hyp", bad, "--ref", files("ref.txt", ["a"]))
    assert code == 2 and f"{bad}:1: no field 'hypothesis' (fields: text); choose one with --hyp-field" in err


def test_missing_file_fails_before_reading(cli, files, tmp_path):
    code, _, err = cli("eval", "chrf", "--hyp", files("hyp.txt", ["a"]), "--ref", tmp_path / "nope.txt")
    assert code == 2 and "nope.txt: no such file" in err


def test_console_script_help(cli_process):
    result = cli_process("eval", "--help", timeout=60)
    assert result.returncode == 0
    for metric in ("bleu", "chrf", "rouge", "accuracy", "f1", "squad"):
        assert metric in result.stdout


def test_bad_option_values_fail_before_any_file_is_read(cli, tmp_path):
    missing = tmp_path / "missing.txt"  # were the files read first, the error would be about this file
    code, _, err = cli("eval", "rouge", "--hyp", missing, "--ref", missing, "--types", "rouge1,rougeX")
    assert code == 2 and "--types: unknown ROUGE type 'rougeX'" in err
    code, _, err = cli(
        "eval", "bleu", "--hyp", missing, "--ref", missing, "--smooth", "exp", "--smooth-value", "2"
    )
    assert code == 2 and "--smooth-value applies to floor and add-k" in err
