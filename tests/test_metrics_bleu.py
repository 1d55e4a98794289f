"""BLEU and chrF against sacrebleu: every statistic, on real data and on generated text."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmforge.metrics import bleu, chrf, sentence_bleu
from lmforge.metrics.bleu import SMOOTH_DEFAULTS, TOKENIZERS, bleu_explain, tokenize_corpus

sacrebleu = pytest.importorskip("sacrebleu")
from sacrebleu.metrics import BLEU, CHRF  # noqa: E402

SMOOTHINGS = list(SMOOTH_DEFAULTS)


def assert_same_bleu(ours, theirs):
    assert ours.score == theirs.score
    assert list(ours.counts) == list(theirs.counts)
    assert list(ours.totals) == list(theirs.totals)
    assert ours.precisions == theirs.precisions
    assert ours.bp == theirs.bp
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)


def perturb(sentence: str, rng: random.Random) -> str:
    """A plausible system output: drop, swap and repeat some words."""
    words = [w for w in sentence.split() if rng.random() > 0.15]
    if len(words) > 2 and rng.random() < 0.3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    if words and rng.random() < 0.2:
        words.insert(rng.randrange(len(words)), rng.choice(words))
    return " ".join(words)


@pytest.fixture(scope="module")
def tatoeba(shared_data):
    """3,000 Spanish sentences of Tatoeba, spread over the file (short and long ones), with system-like
    outputs and a second reference (another sentence's perturbation, sometimes missing)."""
    pairs = (shared_data / "tatoeba-spa-eng" / "spa.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(0)
    refs = [line.split("\t")[1] for line in pairs[:: len(pairs) // 3000]][:3000]
    hyps = [perturb(r, rng) for r in refs]
    refs2 = [perturb(r, rng) if rng.random() < 0.8 else None for r in refs]
    return hyps, refs, refs2


@pytest.mark.parametrize("tokenize", TOKENIZERS)
@pytest.mark.parametrize("smooth_method", SMOOTHINGS)
def test_corpus_bleu_on_tatoeba(tatoeba, tokenize, smooth_method):
    hyps, refs, _ = tatoeba
    ours = bleu(hyps, [refs], tokenize=tokenize, smooth_method=smooth_method)
    theirs = sacrebleu.corpus_bleu(hyps, [refs], tokenize=tokenize, smooth_method=smooth_method)
    assert_same_bleu(ours, theirs)
    assert 10 < ours.score < 90  # a real score, not a degenerate 0 or 100


@pytest.mark.parametrize("tokenize", ["13a", "intl"])
def test_corpus_bleu_two_references_lowercase_on_tatoeba(tatoeba, tokenize):
    hyps, refs, refs2 = tatoeba
    ours = bleu(hyps, [refs, refs2], tokenize=tokenize, lowercase=True)
    theirs = sacrebleu.corpus_bleu(hyps, [refs, refs2], tokenize=tokenize, lowercase=True)
    assert_same_bleu(ours, theirs)
    single = bleu(hyps, [refs], tokenize=tokenize, lowercase=True)
    assert ours.score > single.score  # a second reference can only add matches


def test_sentence_bleu_on_tatoeba(tatoeba):
    hyps, refs, refs2 = tatoeba
    for hyp, ref, ref2 in list(zip(hyps, refs, refs2, strict=True))[::10]:
        references = [ref] if ref2 is None else [ref, ref2]
        assert_same_bleu(sentence_bleu(hyp, references), sacrebleu.sentence_bleu(hyp, references))


def test_chrf_on_tatoeba(tatoeba):
    hyps, refs, refs2 = tatoeba
    assert chrf(hyps, [refs]).score == sacrebleu.corpus_chrf(hyps, [refs]).score
    plus = chrf(hyps[:500], [refs[:500], refs2[:500]], word_order=2)
    assert plus.score == CHRF(word_order=2).corpus_score(hyps[:500], [refs[:500], refs2[:500]]).score
    assert plus.name == "chrF2++"


# --- generated text: the corners ---------------------------------------------------------------------------

# Words that make n-grams repeat, punctuation every tokenizer treats differently, digits next to . , -,
# mteval's escapes, non-Latin scripts, combining marks, emoji and odd whitespace.
PIECES = [
    "the", "cat", "the", "a", ".", ",", "-", "3", "3.5", "1,000", "2-3", "'s", "(x)", "&amp;", "&quot;",
    "<skipped>", "Ünïcödé", "İ", "ß", "猫", "の", "😀", "e\u0301", "\u2189", "...", "--", "'", '"', "?!",
    "$", "%", "\t", "\u00a0", "\u2028", "\n", " ",
]  # fmt: skip
text = st.lists(st.sampled_from(PIECES), max_size=25).map(lambda parts: "".join(
    p if i % 3 else p + " " for i, p in enumerate(parts)))  # fmt: skip
corpus = st.integers(1, 6).flatmap(lambda n: st.tuples(
    st.lists(text, min_size=n, max_size=n), st.lists(text, min_size=n, max_size=n),
    st.lists(st.one_of(st.none(), text), min_size=n, max_size=n)))  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(text, min_size=1, max_size=8), tokenize=st.sampled_from(TOKENIZERS), lower=st.booleans()
)
def test_tokenize_corpus_equals_sacrebleu_tokenizers(lines, tokenize, lower):
    metric = BLEU(tokenize=tokenize, lowercase=lower)
    expected = [metric._preprocess_segment(line).split() for line in lines]
    assert tokenize_corpus(lines, tokenize, lower) == expected


# Lines where a rule's context is the start or end of the line: mteval-13a pads lines with spaces, intl
# does not, and lmforge tokenizes all lines in one pass, so these are where a wrong join would show.
TRICKY_LINES = [
    "3.", ".5", "1,000.", "a.,5", "x-1", "1-", "-1", "5,", ",5", "a..b", "1..2", ".", ",", "-", "",
    "It costs 3.50.", "(1.5)", "1.\u2028.2", "end 7.", "7.\n.8", "a-\nb", "x<skipped>y", "&amp;quot;",
]  # fmt: skip


@pytest.mark.parametrize("tokenize", TOKENIZERS)
def test_tokenize_corpus_on_lines_whose_edges_matter(tokenize):
    metric = BLEU(tokenize=tokenize)
    lines = [line.encode().decode("unicode_escape") for line in TRICKY_LINES]
    expected = [metric._preprocess_segment(line).split() for line in lines]
    assert tokenize_corpus(lines, tokenize) == expected
    for line, tokens in zip(lines, expected, strict=True):  # alone, first, last and between others
        assert tokenize_corpus([line], tokenize) == [tokens]
        assert tokenize_corpus([line, "7."], tokenize)[0] == tokens
        assert tokenize_corpus(["7.", line, ".7"], tokenize)[1] == tokens


@settings(max_examples=150, deadline=None)
@given(
    data=corpus, tokenize=st.sampled_from(TOKENIZERS), smooth=st.sampled_from(SMOOTHINGS), lower=st.booleans()
)
def test_corpus_bleu_equals_sacrebleu_on_generated_text(data, tokenize, smooth, lower):
    hyps, refs, refs2 = data
    for streams in ([refs], [refs, refs2]):
        ours = bleu(hyps, streams, tokenize=tokenize, smooth_method=smooth, lowercase=lower)
        theirs = sacrebleu.corpus_bleu(
            hyps, streams, tokenize=tokenize, smooth_method=smooth, lowercase=lower
        )
        assert_same_bleu(ours, theirs)


@settings(max_examples=100, deadline=None)
@given(hyp=text, refs=st.lists(text, min_size=1, max_size=3), tokenize=st.sampled_from(TOKENIZERS),
       smooth=st.sampled_from(SMOOTHINGS), value=st.sampled_from([None, 0.01, 0.5, 2]))  # fmt: skip
def test_sentence_bleu_equals_sacrebleu_on_generated_text(hyp, refs, tokenize, smooth, value):
    ours = sentence_bleu(hyp, refs, tokenize=tokenize, smooth_method=smooth, smooth_value=value)
    theirs = sacrebleu.sentence_bleu(hyp, refs, tokenize=tokenize, smooth_method=smooth, smooth_value=value)
    assert_same_bleu(ours, theirs)


@settings(max_examples=100, deadline=None)
@given(data=corpus, word_order=st.sampled_from([0, 2]), lower=st.booleans(), space=st.booleans(),
       eps=st.booleans())  # fmt: skip
def test_chrf_equals_sacrebleu_on_generated_text(data, word_order, lower, space, eps):
    hyps, refs, refs2 = data
    for streams in ([refs], [refs, refs2]):
        ours = chrf(
            hyps, streams, word_order=word_order, lowercase=lower, whitespace=space, eps_smoothing=eps
        )
        metric = CHRF(word_order=word_order, lowercase=lower, whitespace=space, eps_smoothing=eps)
        assert ours.score == metric.corpus_score(hyps, streams).score


def test_empty_hypotheses_and_references():
    cases = [([""], [[""]]), (["", "a b"], [["a b", ""]]), (["a"], [[""]]), ([""], [["a b c"]])]
    for hyps, refs in cases:
        for smooth in SMOOTHINGS:
            assert_same_bleu(
                bleu(hyps, refs, smooth_method=smooth),
                sacrebleu.corpus_bleu(hyps, refs, smooth_method=smooth),
            )
        assert chrf(hyps, refs).score == sacrebleu.corpus_chrf(hyps, refs).score


def test_very_long_lines_with_repeated_ngrams():
    rng = random.Random(1)
    vocab = ["the", "cat", "sat", "on", "mat", ".", "a", "dog"]
    refs = [" ".join(rng.choice(vocab) for _ in range(5000)) for _ in range(3)]
    hyps = [" ".join(rng.choice(vocab) for _ in range(4000)) for _ in range(3)]
    assert_same_bleu(bleu(hyps, [refs]), sacrebleu.corpus_bleu(hyps, [refs]))
    assert chrf(hyps, [refs]).score == sacrebleu.corpus_chrf(hyps, [refs]).score


def test_explain_counts_agree_with_the_score():
    hyp, ref = "The cat plays in the garden", "The cat is playing in the garden"
    explained = bleu_explain(hyp, [ref])
    assert [o.match_count for o in explained.orders] == explained.result.counts == [5, 3, 1, 0]
    assert [o.total for o in explained.orders] == explained.result.totals == [6, 5, 4, 3]
    assert [" ".join(g) for g, _ in explained.orders[0].unmatched] == ["plays"]
    assert_same_bleu(explained.result, sacrebleu.sentence_bleu(hyp, [ref]))


def test_clipping_is_shown():
    explained = bleu_explain("the the the cat", ["the cat"])
    assert explained.orders[0].matched == [(("the",), 3, 1), (("cat",), 1, 1)]


def test_bad_arguments_say_what_to_do():
    with pytest.raises(TypeError, match="list of streams"):
        bleu(["a"], ["a"])
    with pytest.raises(ValueError, match="2 lines but there are 1"):
        bleu(["a"], [["a", "b"]])
    with pytest.raises(ValueError, match="unknown tokenize"):
        bleu(["a"], [["a"]], tokenize="13b")
    with pytest.raises(ValueError, match="unknown smooth_method"):
        bleu(["a"], [["a"]], smooth_method="laplace")


def test_cycle_collector_is_restored():
    import gc

    assert gc.isenabled()
    bleu(["a b"], [["a b"]])
    assert gc.isenabled()
    gc.disable()
    try:
        bleu(["a b"], [["a b"]])
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
