"""Accuracy / precision / recall / F1 / confusion matrix, and SQuAD EM / F1 on hand-worked examples."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmforge.metrics import accuracy, confusion_matrix, precision_recall_f1, squad_em_f1
from lmforge.metrics.squad import f1, normalize_answer


def test_accuracy_and_averages_worked_by_hand():
    # a: predicted 3 times, 2 right, 2 true -> P 2/3, R 1,   F1 2(2/3)(1)/(5/3) = 0.8
    # b: predicted 2 times, 2 right, 3 true -> P 1,   R 2/3, F1 0.8
    # c: predicted 1 time,  1 right, 1 true -> P 1,   R 1,   F1 1
    predictions = ["a", "a", "a", "b", "b", "c"]
    labels = ["a", "a", "b", "b", "b", "c"]
    assert accuracy(predictions, labels) == 5 / 6
    per_class = precision_recall_f1(predictions, labels, average=None)
    assert per_class["a"][:2] == (2 / 3, 1.0)
    assert per_class["b"][:2] == (1.0, 2 / 3)
    assert per_class["c"] == (1.0, 1.0, 1.0)
    assert per_class["a"].f1 == pytest.approx(0.8) and per_class["b"].f1 == pytest.approx(0.8)
    macro = precision_recall_f1(predictions, labels, average="macro")
    assert macro.precision == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert macro.recall == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert macro.f1 == pytest.approx((0.8 + 0.8 + 1.0) / 3)
    weighted = precision_recall_f1(predictions, labels, average="weighted")
    assert weighted.recall == pytest.approx((2 * 1 + 3 * 2 / 3 + 1 * 1) / 6)
    assert weighted.f1 == pytest.approx((2 * 0.8 + 3 * 0.8 + 1 * 1.0) / 6)
    micro = precision_recall_f1(predictions, labels, average="micro")
    assert micro.precision == micro.recall == micro.f1 == pytest.approx(5 / 6)


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix(["a", "a", "a", "b", "b", "c"], ["a", "a", "b", "b", "b", "c"])
    assert matrix.classes == ["a", "b", "c"]
    assert matrix.counts == [[2, 0, 0], [1, 2, 0], [0, 0, 1]]
    assert matrix == [[2, 0, 0], [1, 2, 0], [0, 0, 1]] and matrix[1][0] == 1 and len(matrix) == 3
    precision, recall, f1_score = precision_recall_f1(["a", "b"], ["a", "a"], average="micro")
    assert (precision, recall, f1_score) == (0.5, 0.5, 0.5)
    exact, f1_value = squad_em_f1("red car", ["red car wash"])
    assert exact == 0.0 and f1_value == pytest.approx(80.0)
    assert str(matrix).splitlines()[2].split() == ["b", "1", "2", "0"]


def test_a_class_never_predicted_has_precision_zero_not_an_error():
    per_class = precision_recall_f1([0, 0, 0], [0, 1, 1], average=None)
    assert per_class[1] == (0.0, 0.0, 0.0)


@settings(max_examples=100, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
def test_invariants(pairs):
    predictions, labels = [p for p, _ in pairs], [t for _, t in pairs]
    micro = precision_recall_f1(predictions, labels, average="micro")
    assert micro.f1 == pytest.approx(accuracy(predictions, labels))  # one label per example
    matrix = confusion_matrix(predictions, labels)
    assert sum(matrix.counts[i][i] for i in range(len(matrix.classes))) == round(
        accuracy(predictions, labels) * len(pairs)
    )
    assert sum(map(sum, matrix.counts)) == len(pairs)
    for average in ("macro", "weighted"):
        result = precision_recall_f1(predictions, labels, average=average)
        assert 0 <= result.f1 <= 1


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="unknown average"):
        precision_recall_f1([1], [1], average="samples")


# --- SQuAD v1.1: the official definition, worked by hand ----------------------------------------------------


def test_normalization_follows_the_official_order():
    assert normalize_answer("The Eiffel Tower.") == "eiffel tower"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("theater") == "theater"  # only whole words are articles
    assert normalize_answer("A-team") == "ateam"  # punctuation goes first, so "a" is no longer a word
    assert normalize_answer("  multiple\tspaces\n") == "multiple spaces"


def test_exact_match_and_f1_worked_by_hand():
    # "Denver Broncos" vs "the Denver Broncos": equal after normalization.
    assert squad_em_f1("Denver Broncos", ["the Denver Broncos"]) == (100.0, 100.0)
    # "the Broncos of Denver" -> [broncos, of, denver]; "Denver Broncos" -> [denver, broncos]
    # common 2: precision 2/3, recall 2/2, F1 = 2 * (2/3 * 1) / (2/3 + 1) = 0.8
    assert f1("the Broncos of Denver", "Denver Broncos") == pytest.approx(0.8)
    # Several answers: the best of each measure, chosen separately.
    score = squad_em_f1(["Broncos of Denver"], [["Denver Broncos", "Broncos of Denver!"]])
    assert score.exact_match == 100.0 and score.f1 == 100.0
    # Corpus: EM (1 + 0) / 2, F1 (1 + 0.8) / 2.
    score = squad_em_f1(["Denver Broncos", "the Broncos of Denver"], [["Denver Broncos"], ["Denver Broncos"]])
    assert score == pytest.approx((50.0, 90.0))


def test_empty_answers_score_zero_in_v1_1():
    assert f1("", "") == 0.0  # v1.1 has no special case for empty answers (v2.0 does)
    assert squad_em_f1("the", ["a"]).exact_match == 100.0  # both normalize to ""


def test_on_squad_dev_gold_answers_score_100(shared_data):
    data = json.loads((shared_data / "squad-v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))
    answers = [
        [a["text"] for a in qa["answers"]]
        for article in data["data"][:5]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    assert squad_em_f1([a[0] for a in answers], answers) == (100.0, 100.0)
    assert len(answers) > 100
    half = squad_em_f1([a[0].split()[0] for a in answers], answers)
    assert 0 < half.f1 < 100 and half.exact_match < half.f1
