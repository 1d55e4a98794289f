"""A model loaded for use: one class per use, called on one input or a batch of them.

    import lmforge.pipelines as P
    pipe = P.load("runs/quickstart/model")          # picks the class from config.json's "task"
    pipe("def fib(n):", max_new_tokens=40)           # a str → one result; a list → a list of results

| class | model | result fields |
|---|---|---|
| `TextGeneration` | decoder | text, token_ids, finish_reason, prompt_tokens, completion_tokens, logprobs, top_logprobs, prompt_logprobs |
| `Translation` | encoder-decoder | text, token_ids, finish_reason, prompt_tokens, completion_tokens |
| `Classification` | encoder + classifier head | label, probabilities, prompt_tokens |
| `QuestionAnswering` | encoder + span head | answer, score, start, end, prompt_tokens |
| `SentenceEmbedding` | encoder | vector, prompt_tokens |

`Cls.load(source)` takes a model directory (or a LoRA adapter directory), `py:PACKAGE/DIR`, or a Hugging
Face checkpoint directory (converted once into the cache, never beside it). Every pipeline batches its
inputs and may be called from several threads at once. The commands `generate`, `translate`, `classify`,
`answer` and `embed contextual` are these classes behind a command line; docs/using.md shows each in use.
"""

from __future__ import annotations

import os

from lmforge.pipelines.base import Pipeline
from lmforge.pipelines.classification import Classification, ClassificationResult
from lmforge.pipelines.embedding import SentenceEmbedding, SentenceEmbeddingResult
from lmforge.pipelines.generation import (
    DEFAULT_CHAT_TEMPLATE,
    TextGeneration,
    TextGenerationResult,
    TokenLogprob,
)
from lmforge.pipelines.question_answering import QuestionAnswering, QuestionAnsweringResult
from lmforge.pipelines.translation import Translation, TranslationResult

PIPELINES: dict[str, type[Pipeline]] = {
    "generation": TextGeneration,
    "translation": Translation,
    "classification": Classification,
    "question-answering": QuestionAnswering,
    "embedding": SentenceEmbedding,
}


def load(source: str | os.PathLike, *, device: str = "cpu", name: str = "model", **options) -> Pipeline:
    """The pipeline for a model: its config.json's "task" (inferred from the architecture and head for
    directories saved without one) picks the class. `name`: how errors call the source."""
    from lmforge.model.checkpoint import read_task
    from lmforge.model_source import model_directory

    directory = model_directory(source, name=name)
    return PIPELINES[read_task(directory)].from_directory(
        directory, device=device, source=str(source), name=name, **options
    )


__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "PIPELINES",
    "Classification",
    "ClassificationResult",
    "Pipeline",
    "QuestionAnswering",
    "QuestionAnsweringResult",
    "SentenceEmbedding",
    "SentenceEmbeddingResult",
    "TextGeneration",
    "TextGenerationResult",
    "TokenLogprob",
    "Translation",
    "TranslationResult",
    "load",
]
