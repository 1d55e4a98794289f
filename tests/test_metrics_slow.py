"""Longer differential runs (`pytest -m slow`): whole datasets, every option, against the references."""

from __future__ import annotations

import json
import random

import pytest

from lmforge.metrics import bleu, chrf, rouge
from lmforge.metrics.bleu import SMOOTH_DEFAULTS, TOKENIZERS, compute_bleu

pytestmark = pytest.mark.slow
sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")


@pytest.mark.parametrize("tokenize", TOKENIZERS)
def test_whole_tatoeba_every_smoothing_and_case(shared_data, tokenize):
    """All 118,964 pairs. References: the Spanish side, and as a second reference the other Spanish
    translation of the same English sentence where Tatoeba has one (else None). Hypotheses: the Spanish
    side with a fifth of its words dropped."""
    rng = random.Random(tokenize)
    text = (shared_data / "tatoeba-spa-eng" / "spa.txt").read_text("utf-8")
    pairs = [line.split("\t") for line in text.splitlines()]
    refs = [spanish for _, spanish in pairs]
    hyps = [" ".join(w for w in r.split() if rng.random() > 0.2) for r in refs]
    refs2 = [pairs[i - 1][1] if pairs[i - 1][0] == pairs[i][0] else None for i in range(len(pairs))]
    for lowercase in (False, True):
        ours = bleu(hyps, [refs, refs2], tokenize=tokenize, lowercase=lowercase)
        metric = sacrebleu.BLEU(tokenize=tokenize, lowercase=lowercase)
        per_sentence = metric._extract_corpus_statistics(hyps, [refs, refs2])
        stats = [sum(column) for column in zip(*per_sentence, strict=True)]
        assert [ours.sys_len, ours.ref_len, *ours.counts, *ours.totals] == stats
        for smooth in SMOOTH_DEFAULTS:  # smoothing only acts on the summed statistics
            mine = compute_bleu(stats[2:6], stats[6:], stats[0], stats[1], smooth)
            theirs = sacrebleu.BLEU.compute_bleu(stats[2:6], stats[6:], stats[0], stats[1], smooth)
            assert (mine.score, mine.counts, mine.totals, mine.precisions, mine.bp) == (
                theirs.score, theirs.counts, theirs.totals, theirs.precisions, theirs.bp
            )  # fmt: skip
    assert chrf(hyps[::5], [refs[::5]]).score == sacrebleu.corpus_chrf(hyps[::5], [refs[::5]]).score


@pytest.mark.parametrize("use_stemmer", [False, True])
def test_all_of_xsum_multi_sentence_both_sides(shared_data, use_stemmer):
    """rougeLsum with several sentences on both sides: the article's lines against the summary split in
    two lines, and every type with several references."""
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=use_stemmer)
    for line in (shared_data / "xsum" / "validation-1000.jsonl").open(encoding="utf-8"):
        example = json.loads(line)
        lines = [s for s in example["document"].split("\n") if s.strip()][:6]
        words = example["summary"].split()
        summary = " ".join(words[: len(words) // 2]) + "\n" + " ".join(words[len(words) // 2 :])
        hyp = "\n".join(lines)
        assert rouge(hyp, summary, use_stemmer) == scorer.score(summary, hyp)
        refs = [summary, *lines[:2]]
        assert rouge(lines[-1] if lines else "", refs, use_stemmer) == scorer.score_multi(
            refs, lines[-1] if lines else ""
        )
