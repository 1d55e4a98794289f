"""ROUGE and the Porter stemmer against rouge-score and NLTK: every precision, recall and F1."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmforge.metrics import rouge
from lmforge.metrics.porter import stem
from lmforge.metrics.rouge import (
    lcs_length,
    lcs_positions,
    rouge_corpus,
    rouge_explain,
    rouge_scores,
    tokenize,
)

rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


@pytest.fixture(scope="module")
def xsum(shared_data):
    return [
        json.loads(line) for line in (shared_data / "xsum" / "validation-1000.jsonl").open(encoding="utf-8")
    ]


@pytest.mark.parametrize("use_stemmer", [False, True])
def test_rouge_on_xsum(xsum, use_stemmer):
    """Lead sentences (a classic summarization baseline) against the reference summary; rougeLsum on
    several-line texts (the article's first lines against the summary)."""
    scorer = rouge_scorer.RougeScorer(TYPES, use_stemmer=use_stemmer)
    nonzero = 0
    for example in xsum[:: 2 if use_stemmer else 1][:500]:
        lines = [s for s in example["document"].split("\n") if s.strip()]
        for hyp in (lines[0] if lines else "", "\n".join(lines[:4])):
            ours = rouge(hyp, example["summary"], use_stemmer)
            assert ours == scorer.score(example["summary"], hyp)
            nonzero += ours["rouge2"].fmeasure > 0
    assert nonzero > 300  # real overlaps, not a corpus of zeros


def test_several_references_pick_the_best_f_per_type(xsum):
    scorer = rouge_scorer.RougeScorer(TYPES)
    for example in xsum[:100]:
        lines = [s for s in example["document"].split("\n") if s.strip()] or [""]
        refs = [example["summary"], lines[-1], lines[len(lines) // 2]]
        assert rouge(lines[0], refs) == scorer.score_multi(refs, lines[0])


def test_stemmer_equals_nltk_on_every_word_of_the_data(xsum, shared_data):
    porter = pytest.importorskip("nltk.stem.porter")
    nltk_stemmer = porter.PorterStemmer()
    words = set()
    for example in xsum:
        words.update(re.findall("[a-z0-9]+", (example["document"] + " " + example["summary"]).lower()))
    spa = (shared_data / "tatoeba-spa-eng" / "spa.txt").read_text(encoding="utf-8")
    words.update(re.findall("[a-z0-9]+", spa.lower()))
    assert len(words) > 40_000
    assert [w for w in sorted(words) if stem(w) != nltk_stemmer.stem(w)] == []


@settings(max_examples=300, deadline=None)
@given(word=st.text(alphabet="aeiouybcdglmnrstwxz", max_size=12))
def test_stemmer_equals_nltk_on_generated_words(word):
    porter = pytest.importorskip("nltk.stem.porter")
    assert stem(word) == porter.PorterStemmer().stem(word)


WORDS = ["the", "cat", "cats", "playing", "plays", "garden", "a", "in", "is", "Don't", "café", "3.5", "!!"]
text = st.lists(st.sampled_from(WORDS + ["\n", " ", "Ünï", "猫", "кот", "running", "ran"]), max_size=40).map(
    " ".join
)


@settings(max_examples=200, deadline=None)
@given(hyp=text, refs=st.lists(text, min_size=1, max_size=3), use_stemmer=st.booleans())
def test_rouge_equals_rouge_score_on_generated_text(hyp, refs, use_stemmer):
    scorer = rouge_scorer.RougeScorer(TYPES + ["rouge3"], use_stemmer=use_stemmer)
    assert rouge(hyp, refs[0], use_stemmer, rouge_types=TYPES + ["rouge3"]) == scorer.score(refs[0], hyp)
    assert rouge(hyp, refs, use_stemmer, rouge_types=TYPES + ["rouge3"]) == scorer.score_multi(refs, hyp)


def test_empty_texts_and_very_long_repetitive_lines():
    scorer = rouge_scorer.RougeScorer(TYPES)
    long_ref = " ".join(["the cat sat on the mat"] * 100)  # 600 tokens: far past one 64-bit word
    long_hyp = " ".join(["the mat sat on the cat the"] * 80)
    for hyp, ref in [("", ""), ("", "a cat"), ("a cat", ""), ("!!!", "?"), (long_hyp, long_ref)]:
        assert rouge(hyp, ref) == scorer.score(ref, hyp)


@settings(max_examples=200, deadline=None)
@given(a=st.lists(st.sampled_from("abcd"), max_size=70), b=st.lists(st.sampled_from("abcd"), max_size=70))
def test_bit_parallel_lcs_equals_the_table(a, b):
    """Past 64 tokens too: Python integers have no width limit."""
    assert lcs_length(a, b) == len(lcs_positions(a, b))
    pairs = lcs_positions(a, b)
    assert all(a[i] == b[j] for i, j in pairs)
    assert all(i1 < i2 and j1 < j2 for (i1, j1), (i2, j2) in zip(pairs, pairs[1:], strict=False))


def test_unicode_tokenizer_scores_non_latin_text():
    hyp, ref = "Кошка играет в саду", "Кошка играет в большом саду"
    assert rouge(hyp, ref)["rouge1"].fmeasure == 0  # rouge-score's tokenizer deletes Cyrillic
    assert rouge_scorer.RougeScorer(["rouge1"]).score(ref, hyp)["rouge1"].fmeasure == 0
    assert rouge(hyp, ref, tokenizer="unicode")["rouge1"].fmeasure == pytest.approx(2 * 4 / 9)
    assert tokenize("猫が庭で遊ぶ", tokenizer="unicode") == ["猫", "が", "庭", "で", "遊", "ぶ"]


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True), max_size=15), stemmed=st.booleans())
def test_unicode_tokenizer_equals_default_on_ascii(words, stemmed):
    text = " ".join(words) + "."
    assert tokenize(text, stemmed, "unicode") == tokenize(text, stemmed, "default")


def test_batch_and_corpus_means():
    hyps, refs = ["the cat sat", "a dog"], ["the cat sat down", "the dog barked"]
    per_pair = rouge_scores(hyps, refs)
    assert per_pair == [rouge(h, r) for h, r in zip(hyps, refs, strict=True)]
    mean = rouge_corpus(hyps, refs)
    assert mean["rouge1"].fmeasure == pytest.approx((per_pair[0]["rouge1"][2] + per_pair[1]["rouge1"][2]) / 2)


def test_explain_on_the_course_example():
    explained = rouge_explain("The cat plays in the garden", "The cat is playing in the garden")
    assert [g for g, _ in explained.overlaps[2]] == [("the", "cat"), ("in", "the"), ("the", "garden")]
    assert [explained.ref_tokens[i] for i, _ in explained.lcs] == ["the", "cat", "in", "the", "garden"]
    assert explained.scores["rougeL"].recall == 5 / 7


def test_unknown_type_or_tokenizer():
    with pytest.raises(ValueError, match="unknown ROUGE type"):
        rouge("a", "a", rouge_types=["rougeX"])
    with pytest.raises(ValueError, match="unknown tokenizer"):
        rouge("a", "a", tokenizer="spacy")
