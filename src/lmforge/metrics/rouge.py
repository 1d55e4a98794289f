"""ROUGE-N, ROUGE-L and ROUGE-Lsum (Lin, 2004), identical to Google's `rouge-score` on English, faster.

What is here:
- `tokenize(text)`: rouge-score's tokenizer (lower-case, runs of a-z0-9, optional Porter stemming of
  words longer than 3 letters), and `tokenizer="unicode"`: letters and digits of every script, each
  CJK / Thai / Lao / Khmer / Myanmar character its own token — rouge-score's default deletes every
  non-ASCII letter, so Russian, Chinese or Arabic text silently scores 0;
- `rouge(hypothesis, reference)`: precision, recall and F1 for rouge1, rouge2, rougeL, rougeLsum (any
  rougeN), one or several references (the best F per type, as rouge-score's `score_multi`);
- `rouge_scores` / `rouge_corpus`: many pairs at once (per pair, or the mean over pairs);
- `rouge_explain`: the overlapping n-grams and the longest common subsequence behind the numbers.

Note the argument order: the hypothesis (system output) first, as everywhere in lmforge — rouge-score's
`score(target, prediction)` takes the reference first.

ROUGE-L's LCS length is computed bit-parallel (Allison & Dix, 1986; Hyyrö, 2004): one big-integer
addition per hypothesis token instead of a row of the dynamic-programming table. ROUGE-Lsum needs the LCS
itself, the same one rouge-score's backtracking picks, so it uses the table.

    >>> scores = rouge("The cat plays in the garden", "The cat is playing in the garden")
    >>> [round(scores[t].fmeasure, 4) for t in ("rouge1", "rouge2", "rougeL")]
    [0.7692, 0.5455, 0.7692]
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lmforge.metrics.porter import stem

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
TOKENIZERS = ("default", "unicode")


class Score(NamedTuple):
    """Precision, recall and F1 of one ROUGE type (fractions in [0, 1]; rouge-score's `Score`)."""

    precision: float
    recall: float
    fmeasure: float


_ZERO = Score(precision=0, recall=0, fmeasure=0)  # rouge-score returns integer zeros for empty input

# --- tokenization ----------------------------------------------------------------------------------------

_ASCII_WORD = re.compile(r"[a-z0-9]+")
_unicode_word = None  # compiled on first use: `regex` knows Unicode scripts


def _unicode_pattern():
    import regex

    # One token per character in scripts written without spaces between words; elsewhere runs of letters,
    # digits and combining marks.
    no_spaces = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
    return regex.compile(rf"[{no_spaces}]|[^\s{no_spaces}\p{{P}}\p{{S}}\p{{Z}}\p{{C}}]+")


def tokenize(text: str, use_stemmer: bool = False, tokenizer: str = "default") -> list[str]:
    """ROUGE tokens of a text.

    default: rouge-score's — lower-case, keep runs of a-z and 0-9 (everything else separates words, so
    `don't` is `don t` and `café` is `caf`), Porter-stem words of more than 3 letters when asked.
    unicode: NFKC-normalised and lower-cased, runs of letters/digits/marks of any script, each character
    its own token in scripts written without spaces; ASCII words are stemmed as in the default.

        >>> tokenize("The cats' toys, aren't they?", use_stemmer=True)
        ['the', 'cat', 'toy', 'aren', 't', 'they']
        >>> tokenize("Кошка спит на 猫の上", tokenizer="unicode")
        ['кошка', 'спит', 'на', '猫', 'の', '上']
    """
    if tokenizer == "default":
        tokens = _ASCII_WORD.findall(text.lower())
    elif tokenizer == "unicode":
        global _unicode_word
        if _unicode_word is None:
            _unicode_word = _unicode_pattern()
        tokens = _unicode_word.findall(unicodedata.normalize("NFKC", text).lower())
    else:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of {', '.join(TOKENIZERS)}")
    if use_stemmer:
        if tokenizer == "default":
            tokens = [stem(t) if len(t) > 3 else t for t in tokens]
        else:
            tokens = [stem(t) if len(t) > 3 and _ASCII_WORD.fullmatch(t) else t for t in tokens]
    return tokens


# --- the three kinds of ROUGE ----------------------------------------------------------------------------


def _fmeasure(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ngrams(tokens: list[str], n: int) -> list:
    if n == 1:
        return tokens
    return list(zip(*(tokens[i:] for i in range(n)), strict=False))


def _overlap(hyp_grams: list, ref_grams: list) -> int:
    """Σ over n-grams of min(count in hypothesis, count in reference).

    When one side has no repeated n-gram every min is 0 or 1: the size of a set intersection (in C).
    """
    hyp_counts, ref_counts = Counter(hyp_grams), Counter(ref_grams)
    if len(hyp_counts) == len(hyp_grams) or len(ref_counts) == len(ref_grams):
        return len(hyp_counts.keys() & ref_counts.keys())
    if len(ref_counts) < len(hyp_counts):
        hyp_counts, ref_counts = ref_counts, hyp_counts
    total = 0
    for gram, count in hyp_counts.items():
        other = ref_counts.get(gram)
        if other:
            total += count if count < other else other
    return total


def _rouge_n(hyp: list[str], ref: list[str], n: int) -> Score:
    hyp_grams, ref_grams = _ngrams(hyp, n), _ngrams(ref, n)
    overlap = _overlap(hyp_grams, ref_grams)
    precision = overlap / max(len(hyp_grams), 1)
    recall = overlap / max(len(ref_grams), 1)
    return Score(precision, recall, _fmeasure(precision, recall))


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence, bit-parallel.

    Bit i of `row` is 1 while the LCS of a[:i+1] and the tokens of b seen so far does not grow at i; each
    token of b updates all positions at once with one addition (the carries do the dynamic programming).
    The LCS length is the number of zero bits.

        >>> lcs_length("the cat is playing in the garden".split(), "the cat plays in the garden".split())
        5
    """
    if not a or not b:
        return 0
    positions: dict = {}
    for i, token in enumerate(a):
        positions[token] = positions.get(token, 0) | (1 << i)
    all_ones = (1 << len(a)) - 1
    row = all_ones
    for token in b:
        matches = positions.get(token)
        if matches:
            hits = row & matches
            row = ((row + hits) | (row - hits)) & all_ones
    return len(a) - row.bit_count()


def _rouge_l(hyp: list[str], ref: list[str]) -> Score:
    if not hyp or not ref:
        return _ZERO
    lcs = lcs_length(ref, hyp)
    precision = lcs / len(hyp)
    recall = lcs / len(ref)
    return Score(precision, recall, _fmeasure(precision, recall))


def _lcs_table(ref: list[str], hyp: list[str]) -> list[list[int]]:
    table = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        above, row, token = table[i - 1], table[i], ref[i - 1]
        for j in range(1, len(hyp) + 1):
            row[j] = above[j - 1] + 1 if token == hyp[j - 1] else max(above[j], row[j - 1])
    return table


def lcs_positions(ref: list[str], hyp: list[str]) -> list[tuple[int, int]]:
    """One longest common subsequence as (position in ref, position in hyp) pairs — the one rouge-score
    reads back from its table (on a tie it moves up in the reference before left in the hypothesis)."""
    table = _lcs_table(ref, hyp)
    i, j = len(ref), len(hyp)
    pairs = []
    while i > 0 and j > 0:
        if ref[i - 1] == hyp[j - 1]:
            pairs.append((i - 1, j - 1))
            i -= 1
            j -= 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return pairs[::-1]


def _rouge_lsum(hyp_text: str, ref_text: str, use_stemmer: bool, tokenizer: str) -> Score:
    """Summary-level LCS: sentences are the lines; each reference sentence is matched against the union
    of its LCSs with every hypothesis sentence, and no token is counted more often than it occurs."""
    ref_sents = [tokenize(s, use_stemmer, tokenizer) for s in ref_text.split("\n") if s]
    hyp_sents = [tokenize(s, use_stemmer, tokenizer) for s in hyp_text.split("\n") if s]
    ref_total, hyp_total = sum(map(len, ref_sents)), sum(map(len, hyp_sents))
    if not ref_sents or not hyp_sents or not ref_total or not hyp_total:
        return _ZERO
    ref_left = Counter(t for s in ref_sents for t in s)
    hyp_left = Counter(t for s in hyp_sents for t in s)
    hits = 0
    for ref in ref_sents:
        union = sorted({i for hyp in hyp_sents for i, _ in lcs_positions(ref, hyp)})
        for token in (ref[i] for i in union):
            if hyp_left[token] > 0 and ref_left[token] > 0:
                hits += 1
                hyp_left[token] -= 1
                ref_left[token] -= 1
    precision, recall = hits / hyp_total, hits / ref_total
    return Score(precision, recall, _fmeasure(precision, recall))


def check_types(rouge_types: Sequence[str]) -> None:
    """Raise ValueError unless every type is rouge1..rouge9, rougeL or rougeLsum (and there is one)."""
    if not rouge_types:
        raise ValueError("no ROUGE type given; use rouge1..rouge9, rougeL or rougeLsum")
    for rouge_type in rouge_types:
        if rouge_type in ("rougeL", "rougeLsum"):
            continue
        if not re.fullmatch(r"rouge[1-9]", rouge_type):
            raise ValueError(f"unknown ROUGE type {rouge_type!r}; use rouge1..rouge9, rougeL or rougeLsum")


def _score_one(
    hyp_text: str, ref_text: str, rouge_types: Sequence[str], use_stemmer: bool, tokenizer: str
) -> dict[str, Score]:
    hyp = tokenize(hyp_text, use_stemmer, tokenizer)
    ref = tokenize(ref_text, use_stemmer, tokenizer)
    result = {}
    for rouge_type in rouge_types:
        if rouge_type == "rougeL":
            result[rouge_type] = _rouge_l(hyp, ref)
        elif rouge_type == "rougeLsum":
            if "\n" in hyp_text or "\n" in ref_text:
                result[rouge_type] = _rouge_lsum(hyp_text, ref_text, use_stemmer, tokenizer)
            else:  # one sentence each: the union LCS is the LCS, and rougeLsum equals rougeL
                result[rouge_type] = result["rougeL"] if "rougeL" in result else _rouge_l(hyp, ref)
        else:
            result[rouge_type] = _rouge_n(hyp, ref, int(rouge_type[5:]))
    return result


def rouge(
    hypothesis: str,
    reference: str | Sequence[str],
    use_stemmer: bool = False,
    *,
    rouge_types: Sequence[str] = ROUGE_TYPES,
    tokenizer: str = "default",
) -> dict[str, Score]:
    """ROUGE of one hypothesis against one reference (a string) or several (a list of strings: per type,
    the reference with the highest F, the first on ties, as rouge-score's `score_multi`).

    Returns {"rouge1": Score(precision, recall, fmeasure), "rouge2": ..., "rougeL": ..., "rougeLsum": ...}.
    rougeLsum treats each line as a sentence (put summaries one sentence per line).
    """
    if not isinstance(hypothesis, str):
        raise TypeError("hypothesis must be a string (use rouge_scores for many pairs)")
    check_types(rouge_types)
    if isinstance(reference, str):
        return _score_one(hypothesis, reference, rouge_types, use_stemmer, tokenizer)
    if not reference:
        raise ValueError("no reference given")
    per_ref = [_score_one(hypothesis, ref, rouge_types, use_stemmer, tokenizer) for ref in reference]
    best = {}
    for rouge_type in rouge_types:
        best[rouge_type] = per_ref[0][rouge_type]
        for scores in per_ref[1:]:
            if scores[rouge_type].fmeasure > best[rouge_type].fmeasure:
                best[rouge_type] = scores[rouge_type]
    return best


def rouge_scores(
    hypotheses: Sequence[str],
    references: Sequence[str | Sequence[str]],
    use_stemmer: bool = False,
    *,
    rouge_types: Sequence[str] = ROUGE_TYPES,
    tokenizer: str = "default",
) -> list[dict[str, Score]]:
    """`rouge` for each (hypothesis, reference) pair; a reference may be a list of references."""
    if isinstance(hypotheses, str):
        raise TypeError("hypotheses must be a list of strings (use rouge for one pair)")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    return [
        rouge(hyp, ref, use_stemmer, rouge_types=rouge_types, tokenizer=tokenizer)
        for hyp, ref in zip(hypotheses, references, strict=True)
    ]


def rouge_corpus(
    hypotheses: Sequence[str],
    references: Sequence[str | Sequence[str]],
    use_stemmer: bool = False,
    *,
    rouge_types: Sequence[str] = ROUGE_TYPES,
    tokenizer: str = "default",
) -> dict[str, Score]:
    """The mean precision, recall and F1 over all pairs, per type (what papers report as ROUGE)."""
    per_pair = rouge_scores(hypotheses, references, use_stemmer, rouge_types=rouge_types, tokenizer=tokenizer)
    if not per_pair:
        raise ValueError("no pairs to score")
    count = len(per_pair)
    return {t: Score(*(sum(s[t][k] for s in per_pair) / count for k in range(3))) for t in rouge_types}


# --- explain ---------------------------------------------------------------------------------------------


@dataclass
class ROUGEExplanation:
    hyp_tokens: list[str]
    ref_tokens: list[str]
    overlaps: dict[int, list[tuple[tuple[str, ...], int]]]  # n -> [(n-gram, clipped count)]
    lcs: list[tuple[int, int]]  # (position in reference, position in hypothesis)
    scores: dict[str, Score]


def rouge_explain(
    hypothesis: str, reference: str, use_stemmer: bool = False, *, tokenizer: str = "default"
) -> ROUGEExplanation:
    """The tokens, the overlapping unigrams and bigrams (with clipped counts), one longest common
    subsequence, and the scores they give."""
    hyp = tokenize(hypothesis, use_stemmer, tokenizer)
    ref = tokenize(reference, use_stemmer, tokenizer)
    overlaps = {}
    for n in (1, 2):
        hyp_counts = Counter(zip(*(hyp[i:] for i in range(n)), strict=False))
        ref_counts = Counter(zip(*(ref[i:] for i in range(n)), strict=False))
        overlaps[n] = [(g, min(c, ref_counts[g])) for g, c in hyp_counts.items() if g in ref_counts]
    scores = rouge(hypothesis, reference, use_stemmer, tokenizer=tokenizer)
    return ROUGEExplanation(hyp, ref, overlaps, lcs_positions(ref, hyp), scores)
