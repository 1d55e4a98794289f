"""Retrieval evaluation as BEIR reports it: Recall@1/5/10/100, MRR@10, nDCG@10, per mode, with latency.

Files: queries as TSV ``id<TAB>text`` or JSONL ``{"id", "text"}``; relevance judgments as TREC qrels
(``qid 0 docid relevance``, relevance > 0 counts as relevant); runs written as TREC runs
(``qid Q0 docid rank score tag``). A run ranks documents; a document is retrieved at the rank of its best
chunk. The metrics are those of `ranx` (and trec_eval) on the same run, averaged over the queries that
have at least one relevant document:

- Recall@k: relevant documents in the first k / relevant documents;
- MRR@10: 1 / the rank of the first relevant document in the first 10 (0 if none);
- nDCG@10: Σ rel / log2(rank + 1) over the first 10, over the same sum for the ideal order (Järvelin).

Documents of equal score are ordered by id (ranx leaves their order open; real scores rarely tie).

    >>> qrels = {"q": {"a": 1, "b": 2}}
    >>> metrics_of(qrels, {"q": [("c", 3.0), ("b", 2.0), ("a", 1.0)]})["mrr@10"]
    0.5
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError, CorpusError, MissingFileError
from lmforge.io import atomic_write
from lmforge.search.index import Index
from lmforge.search.retrieval import DEPTH, check_query, chunk_scores, rank_documents
from lmforge.text import check_utf8, iter_lines

CUTOFFS = (1, 5, 10, 100)
RUN_DEPTH = 100  # documents kept per query in a run


def read_queries(path: str | Path) -> dict[str, str]:
    """id → text, in file order, from TSV (``id<TAB>text``) or JSONL (``{"id", "text"}``)."""
    path = _readable(path, "--queries")
    queries: dict[str, str] = {}
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        where = f"--queries {path}:{number}"
        if jsonl:
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("text"), str):
                raise CorpusError(f'{where}: expected {{"id": ..., "text": "..."}}')
            qid, text = str(record["id"]), record["text"]
        else:
            qid, tab, text = line.partition("\t")
            if not tab:
                raise CorpusError(f"{where}: expected id<TAB>text")
        if not text.strip():
            raise CorpusError(f"{where}: query {qid!r} is empty")
        if qid in queries:
            raise CorpusError(f"{where}: query id {qid!r} appears twice")
        queries[qid] = text
    if not queries:
        raise CorpusError(f"--queries {path}: no queries (empty); expected id<TAB>text lines or JSONL")
    return queries


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """qid → {docid: relevance} from a TREC qrels file (``qid 0 docid relevance``)."""
    path = _readable(path, "--qrels")
    qrels: dict[str, dict[str, int]] = {}
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise CorpusError(
                f"--qrels {path}:{number}: expected 'qid 0 docid relevance', got {len(parts)} fields"
            )
        try:
            relevance = int(parts[3])
        except ValueError:
            raise CorpusError(f"--qrels {path}:{number}: relevance {parts[3]!r} is not an integer") from None
        qrels.setdefault(parts[0], {})[parts[2]] = relevance
    if not qrels:
        raise CorpusError(f"--qrels {path}: no judgments (empty); expected 'qid 0 docid relevance' lines")
    return qrels


def _readable(path: str | Path, option: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{option} {path}: no such file")
    try:
        check_utf8(path)
    except CorpusError as exc:
        raise CorpusError(f"{option} {exc}") from None
    return path


def metrics_of(qrels: dict[str, dict[str, int]], run: dict[str, list[tuple[str, float]]]) -> dict[str, float]:
    """The mean metrics of a run (qid → ranked (docid, score)) over the queries of `qrels` that have a
    relevant document; a query the run lacks scores 0."""
    totals = {f"recall@{k}": 0.0 for k in CUTOFFS} | {"mrr@10": 0.0, "ndcg@10": 0.0}
    judged = [qid for qid, docs in qrels.items() if any(r > 0 for r in docs.values())]
    if not judged:
        raise ConfigError("no query has a relevant document in the qrels")
    for qid in judged:
        relevant = {d: r for d, r in qrels[qid].items() if r > 0}
        ranked = [doc for doc, _ in sorted(run.get(qid, []), key=lambda pair: (-pair[1], pair[0]))]
        for k in CUTOFFS:
            totals[f"recall@{k}"] += sum(doc in relevant for doc in ranked[:k]) / len(relevant)
        first = next((rank for rank, doc in enumerate(ranked[:10], 1) if doc in relevant), None)
        totals["mrr@10"] += 1 / first if first else 0.0
        dcg = sum(relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:10], 1))
        ideal = sum(
            r / math.log2(rank + 1) for rank, r in enumerate(sorted(relevant.values(), reverse=True)[:10], 1)
        )
        totals["ndcg@10"] += dcg / ideal
    return {name: total / len(judged) for name, total in totals.items()}


def evaluate(
    index: Index,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    modes: list[str],
    *,
    fusion: str = "rrf",
    alpha: float = 0.5,
    ann: bool = False,
    progress: bool = True,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[tuple[str, float]]]]]:
    """({mode: metrics + latency_ms_p50/p95}, {mode: run}) for the queries that have judgments. Each query
    is searched alone and timed, its embedding included (the latency a user waits)."""
    from tqdm.auto import tqdm

    asked = [qid for qid in queries if qid in qrels]
    if not asked:
        raise ConfigError("none of the queries has relevance judgments in the qrels (check the query ids)")
    for mode in modes:
        check_query("x", mode, fusion, alpha)
    results, runs = {}, {}
    for mode in modes:
        run, latencies = {}, []
        for qid in tqdm(asked, desc=mode, unit="query", disable=not progress, leave=False):
            started = time.perf_counter()
            scores = chunk_scores(index, queries[qid], mode, fusion=fusion, alpha=alpha, ann=ann, depth=DEPTH)
            run[qid] = rank_documents(index, scores, RUN_DEPTH)
            latencies.append(1000 * (time.perf_counter() - started))
        results[mode] = metrics_of({qid: qrels[qid] for qid in asked}, run) | {
            "latency_ms_p50": float(np.percentile(latencies, 50)),
            "latency_ms_p95": float(np.percentile(latencies, 95)),
        }
        runs[mode] = run
    return results, runs


def write_run(path: str | Path, run: dict[str, list[tuple[str, float]]], tag: str) -> Path:
    """A TREC run file: ``qid Q0 docid rank score tag``, best first (ties by document id)."""
    lines = []
    for qid, ranked in run.items():
        ordered = sorted(ranked, key=lambda pair: (-pair[1], pair[0]))
        lines += [f"{qid} Q0 {doc} {rank} {score!r} {tag}\n" for rank, (doc, score) in enumerate(ordered, 1)]
    return atomic_write(path, lambda temporary: Path(temporary).write_text("".join(lines), encoding="utf-8"))


def run_paths(path: str | Path, modes: list[str]) -> dict[str, Path]:
    """One run file per mode: PATH itself for one mode, else PATH with the mode before its suffix
    (run.trec → run.dense.trec, run.bm25.trec)."""
    path = Path(path)
    if len(modes) == 1:
        return {modes[0]: path}
    return {mode: path.with_name(f"{path.stem}.{mode}{path.suffix}") for mode in modes}
