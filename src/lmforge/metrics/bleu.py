"""BLEU and chrF, identical to sacrebleu (score and every statistic), faster, and able to explain a score.

What is here:
- the tokenizations `13a` (mteval-v13a, WMT's default), `intl` (mteval-v14 international), `char` and
  `none`, applied to a whole corpus at once (one pass of each regular expression over the joined text);
- `bleu(hypotheses, [references_1, ...])`: corpus BLEU (Papineni et al., 2002) with the smoothing methods
  `exp`, `floor`, `add-k` and `none` (Chen & Cherry, 2014), several references, lower-casing;
- `sentence_bleu(hypothesis, [references])`: sacrebleu's sentence defaults (effective order, exp smoothing);
- `bleu_explain(hypothesis, references)`: which 1- to 4-grams matched, the clipping, BP and score;
- `chrf(hypotheses, [references_1, ...])`: chrF (Popović, 2015) and chrF++ (word n-grams, 2017).

The argument order follows sacrebleu's `corpus_bleu`: hypotheses first, then a list of reference
*streams*, each as long as the hypotheses (stream k holds the k-th reference of every sentence; `None`
leaves a sentence with fewer references). BLEU is a corpus metric: it sums the n-gram statistics of all
sentences, then computes one score, so it is not the mean of the sentence scores.

    >>> result = bleu(["The cat plays in the garden"], [["The cat is playing in the garden"]])
    >>> result.counts, result.totals, round(result.bp, 4), round(result.score, 2)
    ([5, 3, 1, 0], [6, 5, 4, 3], 0.8465, 32.16)
"""

from __future__ import annotations

import gc
import math
import re
from collections import Counter
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

TOKENIZERS = ("13a", "intl", "char", "none")
# The default constant of the smoothing methods that take one (Chen & Cherry, 2014); None: takes none.
SMOOTH_DEFAULTS: dict[str, float | None] = {"none": None, "floor": 0.1, "add-k": 1, "exp": None}
MAX_NGRAM_ORDER = 4
_LOG_OF_ZERO = -9999999999  # sacrebleu floors log(0) to this, so a zero precision gives a score of 0


# --- tokenization ----------------------------------------------------------------------------------------

# 13a, step 1: every ASCII symbol except ' - . , (and space, mapped to itself plus padding) stands alone.
_13A_SYMBOLS = '{|}~[\\]^_` !"#$%&()*+:;<=>?@/'
_13A_SPLIT_SYMBOLS = str.maketrans({c: f" {c} " for c in _13A_SYMBOLS})
# 13a, steps 2–4: a period or comma splits off unless it sits between digits; a dash after a digit splits.
# (The replacements are functions rather than r"\1 \2 " templates: Python 3.11 expands templates in
# Python, match by match, which is slower.)
_13A_RULES = (
    (re.compile(r"([^0-9])([\.,])"), lambda match: f"{match[1]} {match[2]} "),  # r"\1 \2 "
    (re.compile(r"([\.,])([^0-9])"), lambda match: f" {match[1]} {match[2]}"),  # r" \1 \2"
    (re.compile(r"([0-9])(-)"), lambda match: f"{match[1]} {match[2]} "),  # r"\1 \2 "
)


def _intl_rules():
    import regex  # \p{P} (punctuation) and \p{S} (symbols) need the `regex` module's Unicode classes

    return (
        (regex.compile(r"(\P{N})(\p{P})"), r"\1 \2 "),
        (regex.compile(r"(\p{P})(\P{N})"), r" \1 \2"),
        (regex.compile(r"(\p{S})"), r" \1 "),
    )


_INTL_RULES: tuple | None = None
_INTL_SEPARATOR = "\u2189"  # VULGAR FRACTION ZERO THIRDS: category No, so \p{N}


def tokenize_corpus(lines: Sequence[str], tokenize: str = "13a", lowercase: bool = False) -> list[list[str]]:
    """Tokens of each line, exactly as sacrebleu's BLEU sees them (lower-cased first if asked, then
    trailing whitespace stripped, then tokenized).

    The lines are joined and each rule runs once over the whole text. This gives the same tokens as line
    by line, because every rule only looks at a character and its neighbours and none can reach across
    the join: 13a pads each line with spaces and never splits a newline; intl lines are joined with a
    character its rules treat exactly like the start or end of a line (tests check both against
    sacrebleu on lines whose first and last characters matter).

        >>> tokenize_corpus(["Hello, world!", "It costs $3.50."])
        [['Hello', ',', 'world', '!'], ['It', 'costs', '$', '3.50', '.']]
    """
    if tokenize not in TOKENIZERS:
        raise ValueError(f"unknown tokenize {tokenize!r}; choose one of {', '.join(TOKENIZERS)}")
    if not lines:
        return []
    prepared = [(line.lower() if lowercase else line).rstrip() for line in lines]
    text = "\n".join(prepared)
    own_newlines = text.count("\n") != len(prepared) - 1  # some line holds a newline of its own
    if own_newlines:  # mteval's line-level clean-up, in its order, before the lines are joined
        if tokenize == "13a":
            prepared = [
                line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ") for line in prepared
            ]
        else:  # the other tokenizers treat a newline as any space
            prepared = [line.replace("\n", " ") for line in prepared]
        text = "\n".join(prepared)
    if tokenize == "none":
        return [line.split() for line in prepared]
    if tokenize == "char":  # every character but whitespace is a token
        return [list("".join(line.split())) for line in prepared]
    if tokenize == "13a":
        if not own_newlines:
            text = text.replace("<skipped>", "")
        if "&" in text:
            text = text.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
        text = " " + text.replace("\n", " \n ") + " "  # mteval pads every line with a space on each side
        text = _apply_rules(text.translate(_13A_SPLIT_SYMBOLS), _13A_RULES)
        return [line.split() for line in text.split("\n")]
    # intl has no padding, and its rules treat a newline like any non-digit, so lines are joined with a
    # character that is a number (\p{N}) but not punctuation or symbol: to every rule it looks exactly like
    # the start or end of the text.
    global _INTL_RULES
    if _INTL_RULES is None:
        _INTL_RULES = _intl_rules()
    if _INTL_SEPARATOR in text:  # the separator itself occurs in the input: go line by line
        return [_apply_rules(line, _INTL_RULES).split() for line in prepared]
    text = _apply_rules(text.replace("\n", _INTL_SEPARATOR), _INTL_RULES)
    return [line.split() for line in text.split(_INTL_SEPARATOR)]


def _apply_rules(text: str, rules) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


# --- n-gram statistics -----------------------------------------------------------------------------------


def ngram_counts(tokens: Sequence[str], order: int) -> Counter:
    """Counts of the n-grams of one order, as tuples.

    >>> ngram_counts(["the", "cat", "the", "cat"], 2)
    Counter({('the', 'cat'): 2, ('cat', 'the'): 1})
    """
    return Counter(zip(*(tokens[i:] for i in range(order)), strict=False))


def closest_ref_len(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """The reference length closest to the hypothesis length; on a tie, the shorter one (as mteval)."""
    best_len, best_diff = -1, -1
    for ref_len in ref_lens:
        diff = abs(hyp_len - ref_len)
        if best_diff == -1 or diff < best_diff or (diff == best_diff and ref_len < best_len):
            best_len, best_diff = ref_len, diff
    return best_len


def _max_ref_counts(refs: list[list[str]], order: int) -> Counter:
    """Per n-gram, the largest count in any one reference: the clipping limit of the hypothesis count."""
    merged = ngram_counts(refs[0], order) if refs else Counter()
    for ref in refs[1:]:
        for gram, count in ngram_counts(ref, order).items():
            if count > merged[gram]:
                merged[gram] = count
    return merged


def _grams(tokens: list[str], order: int) -> list:
    """The n-grams of one order in sentence order: the tokens themselves for order 1, else tuples."""
    return tokens if order == 1 else list(zip(*(tokens[i:] for i in range(order)), strict=False))


def segment_statistics(
    hyp: list[str], refs: list[list[str]], max_order: int = MAX_NGRAM_ORDER
) -> tuple[int, int, list[int], list[int]]:
    """(hypothesis length, closest reference length, clipped matches per order, n-grams per order).

    The clipped match count of an order is the sum over hypothesis n-grams of min(count in hypothesis,
    largest count in one reference). When no n-gram of that order repeats in the hypothesis (most
    sentences, most orders), every min is 0 or 1: the count is the size of a set intersection, which
    Python computes in C. Otherwise the n-grams are counted. Once an order has no match, no longer
    n-gram can match either.

        >>> segment_statistics("the cat the cat".split(), ["the cat sat".split()])
        (4, 3, [2, 1, 0, 0], [4, 3, 2, 1])
    """
    hyp_len = len(hyp)
    totals = [max(hyp_len - n, 0) for n in range(max_order)]
    ref_len = closest_ref_len(hyp_len, [len(r) for r in refs])
    matches = [0] * max_order
    for n in range(1, min(max_order, hyp_len) + 1):
        hyp_grams = _grams(hyp, n)
        present = set(hyp_grams)
        if len(present) == len(hyp_grams):
            if len(refs) == 1:
                matched = len(present.intersection(_grams(refs[0], n)))
            else:
                matched = len(present.intersection(set().union(*(_grams(ref, n) for ref in refs))))
        else:
            limits = Counter(_grams(refs[0], n))
            for ref in refs[1:]:
                for gram, count in Counter(_grams(ref, n)).items():
                    if count > limits[gram]:
                        limits[gram] = count
            matched = 0
            for gram, count in Counter(hyp_grams).items():
                limit = limits.get(gram)
                if limit:
                    matched += count if count < limit else limit
        if not matched:
            break
        matches[n - 1] = matched
    return hyp_len, ref_len, matches, totals


# --- the score -------------------------------------------------------------------------------------------


@dataclass
class BLEUScore:
    """A BLEU score and the statistics it was computed from (the fields of sacrebleu's `BLEUScore`).

    counts[n-1]: clipped n-gram matches; totals[n-1]: hypothesis n-grams; precisions in percent;
    bp: brevity penalty; sys_len / ref_len: hypothesis / closest-reference token counts. As in sacrebleu,
    `add-k` smoothing adds k to counts and totals of orders ≥ 2 when any n-gram matched.
    """

    score: float
    counts: list
    totals: list
    precisions: list[float]
    bp: float
    sys_len: int
    ref_len: int
    name: str = field(default="BLEU", repr=False)

    @property
    def ratio(self) -> float:
        return self.sys_len / self.ref_len if self.ref_len else 0

    def __str__(self) -> str:
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (
            f"BLEU = {self.score:.2f} {precisions} (BP = {self.bp:.3f} ratio = {self.ratio:.3f} "
            f"hyp_len = {self.sys_len:d} ref_len = {self.ref_len:d})"
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "score": self.score,
            "counts": list(self.counts),
            "totals": list(self.totals),
            "precisions": list(self.precisions),
            "bp": self.bp,
            "sys_len": self.sys_len,
            "ref_len": self.ref_len,
        }


def compute_bleu(
    matches: Sequence[int],
    totals: Sequence[int],
    sys_len: int,
    ref_len: int,
    smooth_method: str = "none",
    smooth_value: float | None = None,
    effective_order: bool = False,
    max_order: int = MAX_NGRAM_ORDER,
) -> BLEUScore:
    """BLEU from its sufficient statistics: BP · exp(mean of the log n-gram precisions).

    Smoothing (Chen & Cherry, 2014): `floor` replaces a zero match count by `smooth_value` (0.1);
    `add-k` adds k (1) to matches and totals of orders ≥ 2; `exp` (mteval's) gives the i-th zero-match
    order the precision 1 / (2^i · total); `none` leaves zeros, so any zero precision makes BLEU 0.
    `effective_order` averages only over the orders the hypothesis is long enough to have.
    Every operation is done in sacrebleu's order, so the floats are identical to the last bit.
    """
    if smooth_method not in SMOOTH_DEFAULTS:
        raise ValueError(
            f"unknown smooth_method {smooth_method!r}; choose one of {', '.join(SMOOTH_DEFAULTS)}"
        )
    if smooth_value is None:
        smooth_value = SMOOTH_DEFAULTS[smooth_method]
    matches, totals = list(matches), list(totals)
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0] * max_order
    if not any(matches):
        return BLEUScore(0.0, matches, totals, precisions, bp, sys_len, ref_len)

    smooth_mteval = 1.0
    eff_order = max_order
    for n in range(1, max_order + 1):
        if smooth_method == "add-k" and n > 1:
            matches[n - 1] += smooth_value
            totals[n - 1] += smooth_value
        if totals[n - 1] == 0:
            break
        if effective_order:
            eff_order = n
        if matches[n - 1] == 0:
            if smooth_method == "exp":
                smooth_mteval *= 2
                precisions[n - 1] = 100.0 / (smooth_mteval * totals[n - 1])
            elif smooth_method == "floor":
                precisions[n - 1] = 100.0 * smooth_value / totals[n - 1]
        else:
            precisions[n - 1] = 100.0 * matches[n - 1] / totals[n - 1]
    log_sum = sum([math.log(p) if p != 0.0 else _LOG_OF_ZERO for p in precisions[:eff_order]])
    score = bp * math.exp(log_sum / eff_order)
    return BLEUScore(score, matches, totals, precisions, bp, sys_len, ref_len)


def _reference_sets(n_hyps: int, references: Sequence[Sequence[str | None]]) -> list[list[str]]:
    """Turn reference streams into, per sentence, the list of its references (None dropped)."""
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError("references must be a list of reference streams: [[ref of sentence 1, ...], ...]")
    if not references:
        raise ValueError("no references given: pass at least one reference stream")
    for k, stream in enumerate(references):
        if isinstance(stream, str):
            raise TypeError(
                f"reference stream {k + 1} is a string; pass a list of streams, e.g. [references] not references"
            )
        if len(stream) != n_hyps:
            raise ValueError(
                f"reference stream {k + 1} has {len(stream)} lines but there are {n_hyps} hypotheses"
            )
    ref_sets = [[ref for ref in refs if ref is not None] for refs in zip(*references, strict=True)]
    for i, refs in enumerate(ref_sets):
        if not refs:
            raise ValueError(f"sentence {i + 1} has no reference (every stream holds None for it)")
    return ref_sets


def corpus_statistics(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str | None]],
    tokenize: str = "13a",
    lowercase: bool = False,
    max_order: int = MAX_NGRAM_ORDER,
) -> tuple[int, int, list[int], list[int]]:
    """Summed (sys_len, ref_len, matches per order, totals per order) of a corpus."""
    if isinstance(hypotheses, str):
        raise TypeError("hypotheses must be a list of strings, not one string (use sentence_bleu)")
    ref_sets = _reference_sets(len(hypotheses), references)
    with _collector_paused():
        return _corpus_statistics(hypotheses, ref_sets, tokenize, lowercase, max_order)


@contextmanager
def _collector_paused():
    """Pause Python's cycle collector: counting builds hundreds of thousands of small tuples and lists
    (no reference cycles), and the collector would rescan them again and again (~20% of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _corpus_statistics(
    hypotheses: Sequence[str], ref_sets: list[list[str]], tokenize: str, lowercase: bool, max_order: int
) -> tuple[int, int, list[int], list[int]]:
    hyp_tokens = tokenize_corpus(hypotheses, tokenize, lowercase)
    # Tokenize all references of all sentences in one pass, then cut the flat list back per sentence.
    flat_refs = [ref for refs in ref_sets for ref in refs]
    flat_tokens = tokenize_corpus(flat_refs, tokenize, lowercase)
    if max_order == MAX_NGRAM_ORDER and len(flat_tokens) == len(hyp_tokens):
        return _single_reference_statistics(hyp_tokens, flat_tokens)
    sys_len = ref_len = 0
    matches = [0] * max_order
    totals = [0] * max_order
    start = 0
    for hyp, refs in zip(hyp_tokens, ref_sets, strict=True):
        ref_tokens = flat_tokens[start : start + len(refs)]
        start += len(refs)
        hyp_len, closest, seg_matches, seg_totals = segment_statistics(hyp, ref_tokens, max_order)
        sys_len += hyp_len
        ref_len += closest
        for n in range(max_order):
            matches[n] += seg_matches[n]
            totals[n] += seg_totals[n]
    return sys_len, ref_len, matches, totals


def _single_reference_statistics(
    hyp_tokens: list[list[str]], ref_tokens: list[list[str]]
) -> tuple[int, int, list[int], list[int]]:
    """`corpus_statistics` for one reference per sentence and orders 1-4: the loop of
    `segment_statistics` inlined, and an order skipped once a lower order has no match."""
    m1 = m2 = m3 = m4 = 0
    for hyp, ref in zip(hyp_tokens, ref_tokens, strict=True):
        unique = set(hyp)
        if len(unique) != len(hyp):  # a repeated word: count n-grams
            _, _, seg_matches, _ = segment_statistics(hyp, [ref])
            m1 += seg_matches[0]
            m2 += seg_matches[1]
            m3 += seg_matches[2]
            m4 += seg_matches[3]
            continue
        matched = len(unique.intersection(ref))
        if not matched:
            continue
        m1 += matched
        hyp1, ref1 = hyp[1:], ref[1:]
        matched = len(set(zip(hyp, hyp1, strict=False)).intersection(zip(ref, ref1, strict=False)))
        if not matched:
            continue
        m2 += matched
        hyp2, ref2 = hyp[2:], ref[2:]
        matched = len(
            set(zip(hyp, hyp1, hyp2, strict=False)).intersection(zip(ref, ref1, ref2, strict=False))
        )
        if not matched:
            continue
        m3 += matched
        m4 += len(
            set(zip(hyp, hyp1, hyp2, hyp[3:], strict=False)).intersection(
                zip(ref, ref1, ref2, ref[3:], strict=False)
            )
        )
    hyp_lens = [len(hyp) for hyp in hyp_tokens]
    totals = [sum(length - n for length in hyp_lens if length > n) for n in range(MAX_NGRAM_ORDER)]
    return sum(hyp_lens), sum(map(len, ref_tokens)), [m1, m2, m3, m4], totals


def bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str | None]],
    *,
    tokenize: str = "13a",
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    use_effective_order: bool = False,
    max_ngram_order: int = MAX_NGRAM_ORDER,
) -> BLEUScore:
    """Corpus BLEU, identical to `sacrebleu.corpus_bleu` with the same arguments.

    hypotheses: one string per sentence. references: a list of reference streams, each with one string
    (or None) per sentence — `[refs]` for a single reference per sentence.

        >>> round(bleu(["the cat sat on the mat"], [["the cat sat on the mat"]]).score, 6)
        100.0
    """
    if not hypotheses:
        raise ValueError("no hypotheses: BLEU needs at least one sentence")
    sys_len, ref_len, matches, totals = corpus_statistics(
        hypotheses, references, tokenize, lowercase, max_ngram_order
    )
    return compute_bleu(
        matches, totals, sys_len, ref_len, smooth_method, smooth_value, use_effective_order, max_ngram_order
    )


def sentence_bleu(
    hypothesis: str,
    references: Sequence[str],
    *,
    tokenize: str = "13a",
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    use_effective_order: bool = True,
) -> BLEUScore:
    """BLEU of one sentence against its references (a list of strings), as `sacrebleu.sentence_bleu`:
    effective order on and exp smoothing, so a short sentence is not scored 0 for lacking 4-grams.

        >>> round(sentence_bleu("The cat plays in the garden", ["The cat is playing in the garden"]).score, 2)
        32.16
    """
    if not isinstance(hypothesis, str):
        raise TypeError("hypothesis must be a string (use bleu() for a list of sentences)")
    if isinstance(references, str):
        raise TypeError("references must be a list of strings, e.g. [reference]")
    return bleu(
        [hypothesis],
        [[ref] for ref in references],
        tokenize=tokenize,
        smooth_method=smooth_method,
        smooth_value=smooth_value,
        lowercase=lowercase,
        use_effective_order=use_effective_order,
    )


# --- explain ---------------------------------------------------------------------------------------------


@dataclass
class NgramExplanation:
    order: int
    matched: list[tuple[tuple[str, ...], int, int]]  # (n-gram, count in hypothesis, clipped match count)
    unmatched: list[tuple[tuple[str, ...], int]]  # (n-gram, count in hypothesis) with no match
    match_count: int
    total: int


@dataclass
class BLEUExplanation:
    hyp_tokens: list[str]
    ref_tokens: list[list[str]]
    orders: list[NgramExplanation]
    result: BLEUScore  # the sentence-level BLEU (sacrebleu's sentence defaults unless told otherwise)


def bleu_explain(
    hypothesis: str,
    references: Sequence[str],
    *,
    tokenize: str = "13a",
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    use_effective_order: bool = True,
) -> BLEUExplanation:
    """Why a sentence scores what it does: per order, the matched n-grams (with clipping) and the
    unmatched ones, and the sentence BLEU computed from exactly these counts."""
    hyp = tokenize_corpus([hypothesis], tokenize, lowercase)[0]
    refs = tokenize_corpus(list(references), tokenize, lowercase)
    orders = []
    for n in range(1, MAX_NGRAM_ORDER + 1):
        limits = _max_ref_counts(refs, n)
        matched, unmatched = [], []
        for gram, count in ngram_counts(hyp, n).items():
            clipped = min(count, limits.get(gram, 0))
            if clipped:
                matched.append((gram, count, clipped))
            else:
                unmatched.append((gram, count))
        orders.append(
            NgramExplanation(n, matched, unmatched, sum(c for _, _, c in matched), max(len(hyp) - n + 1, 0))
        )
    result = sentence_bleu(
        hypothesis,
        list(references),
        tokenize=tokenize,
        smooth_method=smooth_method,
        smooth_value=smooth_value,
        lowercase=lowercase,
        use_effective_order=use_effective_order,
    )
    return BLEUExplanation(hyp, refs, orders, result)


# --- chrF ------------------------------------------------------------------------------------------------

_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


@dataclass
class CHRFScore:
    """A chrF score (percent) with its settings; name is chrF2 (chrF2++ with word n-grams)."""

    score: float
    char_order: int
    word_order: int
    beta: int

    @property
    def name(self) -> str:
        return f"chrF{self.beta}" + "+" * self.word_order

    def __str__(self) -> str:
        return f"{self.name} = {self.score:.2f}"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "score": self.score,
            "char_order": self.char_order,
            "word_order": self.word_order,
            "beta": self.beta,
        }


def _split_punctuation(sentence: str) -> list[str]:
    """chrF++'s words: whitespace split, one leading or trailing ASCII punctuation mark split off."""
    words = []
    for word in sentence.split():
        if len(word) == 1:
            words.append(word)
        elif word[-1] in _PUNCTUATION:
            words += [word[:-1], word[-1]]
        elif word[0] in _PUNCTUATION:
            words += [word[0], word[1:]]
        else:
            words.append(word)
    return words


def _chrf_ngrams(sentence: str, char_order: int, word_order: int, whitespace: bool) -> list[Counter]:
    text = sentence if whitespace else "".join(sentence.split())
    grams = [Counter([text[i : i + n] for i in range(len(text) - n + 1)]) for n in range(1, char_order + 1)]
    if word_order:
        words = _split_punctuation(sentence)
        for n in range(1, word_order + 1):
            grams.append(Counter([" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]))
    return grams


def _chrf_f_score(stats: Sequence[int], order: int, beta: int, eps_smoothing: bool) -> float:
    """F-beta (percent) of the character (and word) n-gram precision and recall averaged over orders."""
    eps = 1e-16
    score = 0.0
    effective_order = 0
    factor = beta**2
    avg_prec, avg_rec = 0.0, 0.0
    for i in range(order):
        n_hyp, n_ref, n_match = stats[3 * i : 3 * i + 3]
        prec = n_match / n_hyp if n_hyp > 0 else eps
        rec = n_match / n_ref if n_ref > 0 else eps
        denom = factor * prec + rec
        score += ((1 + factor) * prec * rec / denom) if denom > 0 else eps
        if n_hyp > 0 and n_ref > 0:
            avg_prec += prec
            avg_rec += rec
            effective_order += 1
    if eps_smoothing:
        return 100 * score / order
    if effective_order == 0:
        avg_prec = avg_rec = 0.0
    else:
        avg_prec /= effective_order
        avg_rec /= effective_order
    if avg_prec + avg_rec:
        score = (1 + factor) * avg_prec * avg_rec
        score /= (factor * avg_prec) + avg_rec
        return 100 * score
    return 0.0


def chrf(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str | None]],
    *,
    char_order: int = 6,
    word_order: int = 0,
    beta: int = 2,
    lowercase: bool = False,
    whitespace: bool = False,
    eps_smoothing: bool = False,
) -> CHRFScore:
    """Corpus chrF, identical to `sacrebleu.corpus_chrf` (defaults: character 6-grams, no word n-grams,
    beta 2, spaces removed). Per sentence the reference with the best chrF is used; the statistics are
    summed over the corpus. `word_order=2` gives chrF++.

        >>> round(chrf(["The cat plays in the garden"], [["The cat is playing in the garden"]]).score, 2)
        59.58
    """
    if isinstance(hypotheses, str):
        raise TypeError("hypotheses must be a list of strings, not one string")
    if not hypotheses:
        raise ValueError("no hypotheses: chrF needs at least one sentence")
    ref_sets = _reference_sets(len(hypotheses), references)
    order = char_order + word_order
    totals = [0] * (3 * order)
    for hyp, refs in zip(hypotheses, ref_sets, strict=True):
        if lowercase:
            hyp, refs = hyp.lower(), [r.lower() for r in refs]
        hyp_grams = _chrf_ngrams(hyp, char_order, word_order, whitespace)
        best_stats: list[int] = []
        best_f = -1.0
        for ref in refs:
            stats = []
            for hyp_counts, ref_counts in zip(
                hyp_grams, _chrf_ngrams(ref, char_order, word_order, whitespace), strict=True
            ):
                n_hyp = n_match = 0
                for gram, count in hyp_counts.items():
                    n_hyp += count
                    if gram in ref_counts:
                        n_match += min(count, ref_counts[gram])
                stats += [n_hyp if ref_counts else 0, sum(ref_counts.values()), n_match]
            f_score = _chrf_f_score(stats, order, beta, eps_smoothing)
            if f_score > best_f:
                best_f, best_stats = f_score, stats
        for i, value in enumerate(best_stats):
            totals[i] += value
    return CHRFScore(_chrf_f_score(totals, order, beta, eps_smoothing), char_order, word_order, beta)
