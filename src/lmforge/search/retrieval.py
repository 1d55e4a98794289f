"""Search an index: dense (cosine, exact, or faiss HNSW with `ann`), BM25, or both fused.

Every mode gives a score per chunk (-inf: not retrieved); the results are the k best chunks, and for
evaluation each document is ranked at its best chunk.

- dense: the query's embedding (the index's embedder, L2-normalised) · every chunk's, one matrix product
  over the memory-mapped embeddings; with `ann`, the HNSW index's `depth` nearest instead;
- bm25: bm25s's Lucene BM25 over the same terms as the index (chunks sharing no term are not retrieved);
- hybrid: each mode's `depth` best chunks (depth = max(100, k)), fused by reciprocal rank fusion (Cormack
  et al. 2009), score = Σ 1 / (60 + rank) over the lists a chunk is in, or by a weighted sum of min-max
  normalised scores, alpha · dense + (1 - alpha) · bm25 (a list a chunk is not in gives it 0).

    >>> reciprocal_rank_fusion([[7, 3], [3, 9]]) == {7: 1 / 61, 3: 1 / 62 + 1 / 61, 9: 1 / 62}
    True
    >>> weighted_sum([[(7, 2.0), (3, 1.0)], [(3, 10.0), (9, 4.0)]], [0.5, 0.5])
    {7: 0.5, 3: 0.5, 9: 0.0}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmforge.errors import ConfigError
from lmforge.search.index import Index, bm25_tokens

MODES = ("dense", "bm25", "hybrid")
FUSIONS = ("rrf", "sum")
RRF_K = 60  # the constant of reciprocal rank fusion: ranks 1 and 2 weigh nearly the same
DEPTH = 100  # how many chunks of each list hybrid fusion reads


@dataclass(frozen=True)
class Hit:
    rank: int  # 1 = best
    score: float
    chunk_id: int
    doc_id: str
    title: str
    start: int  # the chunk's character offsets in its document
    end: int
    text: str

    def to_dict(self) -> dict:
        return {
            "rank": self.rank,
            "score": self.score,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
        }


def check_query(query: str, mode: str, fusion: str = "rrf", alpha: float = 0.5) -> None:
    if not isinstance(query, str) or not query.strip():
        raise ConfigError("the query is empty; give some words to search for")
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if fusion not in FUSIONS:
        raise ConfigError(f"fusion {fusion!r} is not one of {', '.join(FUSIONS)}")
    if not 0 <= alpha <= 1:
        raise ConfigError(f"--alpha must be between 0 and 1, got {alpha}")


def search(
    index: Index,
    query: str,
    *,
    mode: str = "dense",
    k: int = 10,
    fusion: str = "rrf",
    alpha: float = 0.5,
    ann: bool = False,
) -> list[Hit]:
    """The k best chunks for `query` (fewer when BM25 finds fewer), best first."""
    check_query(query, mode, fusion, alpha)
    if not 1 <= k <= len(index):
        raise ConfigError(f"k must be between 1 and the size of the index ({len(index)} chunks), got {k}")
    scores = chunk_scores(index, query, mode, fusion=fusion, alpha=alpha, ann=ann, depth=max(DEPTH, k))
    best = top_indices(scores, k)
    return [
        Hit(
            rank,
            float(scores[chunk.chunk_id]),
            chunk.chunk_id,
            chunk.doc_id,
            chunk.title,
            chunk.start,
            chunk.end,
            chunk.text,
        )
        for rank, chunk in enumerate(index.chunks(best), 1)
    ]


def chunk_scores(
    index: Index,
    query: str,
    mode: str,
    *,
    fusion: str = "rrf",
    alpha: float = 0.5,
    ann: bool = False,
    depth: int = DEPTH,
) -> np.ndarray:
    """(chunks,) float64: the score of every chunk for `query` in `mode`, -inf where not retrieved."""
    if mode == "dense":
        return dense_scores(index, query, ann=ann, depth=depth)
    if mode == "bm25":
        return bm25_scores(index, query)
    lists = []
    for scores in (dense_scores(index, query, ann=ann, depth=depth), bm25_scores(index, query)):
        best = top_indices(scores, depth)
        lists.append([(int(i), float(scores[i])) for i in best])
    if fusion == "rrf":
        fused = reciprocal_rank_fusion([[i for i, _ in ranked] for ranked in lists])
    else:
        fused = weighted_sum(lists, [alpha, 1 - alpha])
    scores = np.full(len(index), -np.inf)
    scores[list(fused)] = list(fused.values())
    return scores


def dense_scores(index: Index, query: str, *, ann: bool = False, depth: int = DEPTH) -> np.ndarray:
    vector = index.embed([query])[0]
    if not ann:
        if index.embeddings.dtype == np.float32:
            return (index.embeddings @ vector).astype(np.float64)
        block = 16384  # float16 rows: numpy has no fast float16 product, so float32 a block at a time
        return np.concatenate(
            [
                index.embeddings[first : first + block].astype(np.float32) @ vector
                for first in range(0, len(index), block)
            ]
        ).astype(np.float64)
    similarities, found = index.ann.search(vector[None, :], min(depth, len(index)))
    scores = np.full(len(index), -np.inf)
    keep = found[0] >= 0
    scores[found[0][keep]] = similarities[0][keep]
    return scores


def bm25_scores(index: Index, query: str) -> np.ndarray:
    retriever = index.bm25
    terms = [t for t in bm25_tokens([query])[0] if t in retriever.vocab_dict]
    if not terms:
        return np.full(len(index), -np.inf)
    scores = retriever.get_scores(terms).astype(np.float64)
    scores[scores <= 0] = -np.inf
    return scores


def top_indices(scores: np.ndarray, k: int) -> list[int]:
    """The indices of the k highest finite scores, highest first (ties: the lower index first)."""
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > k:
        threshold = np.partition(scores[finite], len(finite) - k)[len(finite) - k]
        finite = finite[scores[finite] >= threshold]  # ties at the threshold all stay, cut after sorting
    order = np.lexsort((finite, -scores[finite]))
    return [int(i) for i in finite[order][:k]]


def reciprocal_rank_fusion(lists: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """id → Σ over the ranked lists that hold it of 1 / (k + its rank), ranks from 1."""
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, item in enumerate(ranked, 1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def weighted_sum(lists: list[list[tuple[int, float]]], weights: list[float]) -> dict[int, float]:
    """id → Σ weight · its min-max normalised score in each list (0 where it is absent; a list whose scores
    are all equal normalises to 1)."""
    fused: dict[int, float] = {}
    for ranked, weight in zip(lists, weights, strict=True):
        if not ranked:
            continue
        values = [score for _, score in ranked]
        low, high = min(values), max(values)
        for item, score in ranked:
            normalised = (score - low) / (high - low) if high > low else 1.0
            fused[item] = fused.get(item, 0.0) + weight * normalised
    return fused


def rank_documents(index: Index, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
    """(doc_id, score) of the k best documents, each scored by its best chunk; ties by document id."""
    per_document = np.maximum.reduceat(scores, index.doc_starts)
    finite = np.flatnonzero(np.isfinite(per_document))
    if len(finite) > k:
        threshold = np.partition(per_document[finite], len(finite) - k)[len(finite) - k]
        finite = finite[per_document[finite] >= threshold]
    ranked = sorted(
        ((index.doc_order[i], float(per_document[i])) for i in finite), key=lambda p: (-p[1], p[0])
    )
    return ranked[:k]
