"""ELMo: a bidirectional LSTM language model whose layers are contextual word vectors (Peters et al. 2018,
"Deep contextualized word representations"), at a size that trains on two CPU cores.

What this file implements:
  - `ELMoConfig` (defined in `config`, re-exported here): the architecture as plain data, with why-comments;
  - `char_ids(words)`: words -> (N, max_characters) byte ids with begin/end-of-word marks — the only input
    the model reads, so any word, seen in training or not, gets a vector;
  - `CharacterEncoder`: character embeddings -> convolutions of several widths, each max-pooled over the
    word -> highway layers -> a projection: layer 0, context-free;
  - `ELMoModel`: a forward and a backward LSTM language model over the layer-0 vectors (LSTMs with a
    projection, LSTMP; a residual connection from the second layer on), one softmax shared by both
    directions (full, or adaptive: Grave et al. 2017); `forward` gives every layer and, with targets, each
    direction's per-token negative log-likelihood;
  - `ScalarMix`: ELMo's task-specific combination gamma * sum_j softmax(w)_j * h_j of the layers.

Layers as ELMo numbers them: 0 = the character encoder's vector (duplicated to [x; x] so every layer has
the same width 2 x projection_dim), 1..L = the LSTM layers, forward and backward states concatenated.
The forward LM at position t has read tokens 1..t; the backward LM tokens t..T; neither sees the word it
predicts (t + 1, resp. t - 1).

    >>> model = ELMoModel(ELMoConfig(vocab_size=50, cutoffs=[], hidden_size=32, projection_dim=16,
    ...                              filters=[[1, 8], [2, 8]]))
    >>> out = model(torch.from_numpy(char_ids([["the", "cat", "sat"]], 10)))
    >>> out.forward.shape, len(out.hidden_states), out.hidden_states[1].shape
    (torch.Size([1, 3, 16]), 3, torch.Size([1, 3, 32]))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lmforge.errors import ConfigError
from lmforge.model.checkpoint import TransformerModel
from lmforge.model.config import ELMoConfig

PAD_CHAR, BEGIN_WORD, END_WORD = 0, 1, 2  # byte b is id b + 3
CHAR_VOCAB = 256 + 3


def char_ids(sentences: Sequence[Sequence[str]], max_characters: int) -> np.ndarray:
    """(B, T, max_characters) int32 character ids of B sentences of words, padded with empty words.

    A word is [begin, its UTF-8 bytes + 3 (cut to max_characters - 2), end, 0 ...]:

    >>> char_ids([["hé"]], 6)[0, 0].tolist()
    [1, 107, 198, 172, 2, 0]
    """
    table, index = word_table(sentences, max_characters)
    return table[index]


def word_table(sentences: Sequence[Sequence[str]], max_characters: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct words of B sentences: (U, max_characters) int32 character ids, row 0 the padding (all
    zeros), and (B, T) int64: the row of each position. A word is spelled out once however often it occurs.

    >>> table, index = word_table([["a", "b", "a"], ["b"]], 4)
    >>> table.tolist(), index.tolist()
    ([[0, 0, 0, 0], [1, 100, 2, 0], [1, 101, 2, 0]], [[1, 2, 1], [2, 0, 0]])
    """
    table, rows = word_rows(sentences, max_characters)
    index = np.zeros((len(sentences), max(map(len, rows), default=0)), dtype=np.int64)
    for b, sentence_rows in enumerate(rows):
        index[b, : len(sentence_rows)] = sentence_rows
    return table, index


def word_rows(sentences: Sequence[Sequence[str]], max_characters: int) -> tuple[np.ndarray, list[list[int]]]:
    """`word_table` with each sentence's rows as a list (no (B, T) array padded to the longest sentence)."""
    distinct: dict[str, int] = {}
    rows = [[distinct.setdefault(word, len(distinct) + 1) for word in words] for words in sentences]
    table = np.zeros((len(distinct) + 1, max_characters), dtype=np.int32)
    if distinct:
        table[1:] = char_table(list(distinct), max_characters)
    return table, rows


def word_char_ids(word: str, max_characters: int) -> np.ndarray:
    row = np.zeros(max_characters, dtype=np.int32)
    data = word.encode("utf-8")[: max_characters - 2]
    row[0] = BEGIN_WORD
    row[1 : 1 + len(data)] = np.frombuffer(data, dtype=np.uint8).astype(np.int32) + 3
    row[1 + len(data)] = END_WORD
    return row


def char_table(vocabulary: Sequence[str], max_characters: int) -> np.ndarray:
    """(V, max_characters) int32: the character ids of every vocabulary entry, row = token id (the data
    path turns a block of word ids into character ids with one lookup)."""
    table = np.zeros((len(vocabulary), max_characters), dtype=np.int32)
    for i, word in enumerate(vocabulary):
        table[i] = word_char_ids(word, max_characters)
    return table


class Highway(nn.Module):
    """y = g * x + (1 - g) * relu(W x), g = sigmoid(W_g x) (Srivastava et al. 2015), per layer."""

    def __init__(self, dim: int, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, 2 * dim) for _ in range(layers))
        for layer in self.layers:  # start by carrying the input through (gate bias +1, as allennlp)
            nn.init.zeros_(layer.bias)
            layer.bias.data[dim:].fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            transform, gate = layer(x).chunk(2, dim=-1)
            gate = torch.sigmoid(gate)
            x = gate * x + (1 - gate) * F.relu(transform)
        return x


class CharacterEncoder(nn.Module):
    """(N, W) character ids -> (N, projection_dim): one vector per word, from its spelling alone."""

    def __init__(self, config: ELMoConfig):
        super().__init__()
        self.embedding = nn.Embedding(CHAR_VOCAB, config.char_embed_dim, padding_idx=PAD_CHAR)
        self.convolutions = nn.ModuleList(
            nn.Conv1d(config.char_embed_dim, count, width) for width, count in config.filters
        )
        width = sum(count for _, count in config.filters)
        self.highway = Highway(width, config.highway_layers)
        self.projection = nn.Linear(width, config.projection_dim)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        x = self.embedding(chars).transpose(1, 2)  # (N, E, W)
        # each filter's strongest match anywhere in the word
        features = [F.relu(conv(x).amax(dim=-1)) for conv in self.convolutions]  # (N, count) each
        return self.projection(self.highway(torch.cat(features, dim=-1)))  # (N, P)


@dataclass
class ELMoOutput:
    forward: torch.Tensor  # (B, T, P) the forward LM's top states: position t has read tokens <= t
    backward: torch.Tensor  # (B, T, P) the backward LM's top states: position t has read tokens >= t
    hidden_states: tuple[torch.Tensor, ...]  # num_layers + 1 tensors (B, T, 2P): [x; x], then [fwd; bwd]
    forward_nll: torch.Tensor | None = None  # (B, T) -log p(target_t | tokens <= t) when targets are given
    backward_nll: torch.Tensor | None = None  # (B, T) -log p(target_t | tokens >= t)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each row's first `lengths[b]` positions along dim 1, padding left where it is.

    >>> reverse_padded(torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([3, 2])).tolist()
    [[3, 2, 1], [5, 4, 0]]
    """
    if lengths is None:
        return x.flip(1)
    T = x.shape[1]
    positions = torch.arange(T, device=x.device).unsqueeze(0)  # (1, T)
    lengths = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, T)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class ELMoModel(TransformerModel):
    """The character encoder, a forward and a backward LSTM LM, one softmax shared by the two."""

    def __init__(self, config: ELMoConfig):
        super().__init__()
        self.config = config
        P, H = config.projection_dim, config.hidden_size
        self.characters = CharacterEncoder(config)

        def lstm() -> nn.LSTM:
            return nn.LSTM(P, H, batch_first=True)

        def projection() -> nn.Linear:
            return nn.Linear(H, P)

        # ELMo's LSTMs project the cell output inside the recurrence (LSTMP). Here the projection follows
        # the layer: PyTorch's fast (oneDNN) CPU LSTM has no projection, and nn.LSTM(proj_size=...) falls
        # back to a path measured 7x slower per step. The recurrence then runs at width H, not P.
        self.forward_layers = nn.ModuleList(lstm() for _ in range(config.num_layers))
        self.backward_layers = nn.ModuleList(lstm() for _ in range(config.num_layers))
        self.forward_projections = nn.ModuleList(projection() for _ in range(config.num_layers))
        self.backward_projections = nn.ModuleList(projection() for _ in range(config.num_layers))
        self.dropout = nn.Dropout(config.dropout)
        if config.cutoffs:
            self.softmax = nn.AdaptiveLogSoftmaxWithLoss(
                P, config.vocab_size, cutoffs=list(config.cutoffs), div_value=config.div_value
            )
        else:
            self.softmax = nn.Linear(P, config.vocab_size)

    # -- the pieces ---------------------------------------------------------------------------------------

    def token_vectors(self, chars: torch.Tensor) -> torch.Tensor:
        """(B, T, W) character ids -> (B, T, P) layer-0 vectors. The encoder runs once per distinct word
        of the batch (a block of text repeats its words: this about halves the encoder's cost)."""
        B, T, W = chars.shape
        unique, inverse = torch.unique(chars.reshape(B * T, W), dim=0, return_inverse=True)
        return self.characters(unique)[inverse].view(B, T, -1)

    def _run(self, layers: nn.ModuleList, projections: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, (layer, projection) in enumerate(zip(layers, projections, strict=True)):
            y, _ = layer(self.dropout(x) if i else x)  # (B, T, H)
            y = projection(y)  # (B, T, P)
            x = y + x if i else y  # residual from the second layer on (ELMo's)
            outputs.append(x)
        return outputs

    def log_probs(self, states: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(..., P) states and (...) target ids -> (...) log-probabilities of the targets (float32)."""
        flat, flat_targets = states.reshape(-1, states.shape[-1]), targets.reshape(-1)
        if isinstance(self.softmax, nn.AdaptiveLogSoftmaxWithLoss):
            chosen = self.softmax(flat, flat_targets).output.float()
        else:
            logits = self.softmax(flat).float()
            chosen = -F.cross_entropy(logits, flat_targets, reduction="none")
        return chosen.view(targets.shape)

    def distribution(self, states: torch.Tensor) -> torch.Tensor:
        """(..., P) states -> (..., V) log-probabilities of every word."""
        flat = states.reshape(-1, states.shape[-1])
        if isinstance(self.softmax, nn.AdaptiveLogSoftmaxWithLoss):
            out = self.softmax.log_prob(flat).float()
        else:
            out = F.log_softmax(self.softmax(flat).float(), dim=-1)
        return out.view(*states.shape[:-1], -1)

    # -- the whole model ----------------------------------------------------------------------------------

    def forward(
        self,
        chars: torch.Tensor,
        lengths: torch.Tensor | None = None,
        forward_targets: torch.Tensor | None = None,
        backward_targets: torch.Tensor | None = None,
    ) -> ELMoOutput:
        """chars (B, T, W); lengths (B,) real words per row when the batch is padded at the right (None:
        every row is full); targets (B, T): the next word (forward) and the previous word (backward)."""
        out = self.contextual(self.token_vectors(chars), lengths)
        if forward_targets is not None:
            out.forward_nll = -self.log_probs(self.dropout(out.forward), forward_targets)
        if backward_targets is not None:
            out.backward_nll = -self.log_probs(self.dropout(out.backward), backward_targets)
        return out

    def contextual(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> ELMoOutput:
        """(B, T, P) layer-0 vectors -> every layer: the two LSTM LMs read them (lengths as in `forward`)."""
        forward_states = self._run(self.forward_layers, self.forward_projections, x)
        reversed_states = self._run(
            self.backward_layers, self.backward_projections, reverse_padded(x, lengths)
        )
        backward_states = [reverse_padded(s, lengths) for s in reversed_states]
        layers = [torch.cat([x, x], dim=-1)]
        layers += [torch.cat([f, b], dim=-1) for f, b in zip(forward_states, backward_states, strict=True)]
        return ELMoOutput(forward_states[-1], backward_states[-1], tuple(layers))

    def words(self, sentences: Sequence[Sequence[str]]) -> ELMoOutput:
        """The output for sentences given as lists of words (no gradient, eval mode expected). The character
        encoder reads each distinct word once (`word_table`)."""
        device = next(self.parameters()).device
        table, index = word_table(sentences, self.config.max_characters)
        lengths = torch.tensor([len(s) for s in sentences], device=device)
        with torch.no_grad():
            vectors = self.characters(torch.from_numpy(table).to(device))  # (U, P)
            return self.contextual(vectors[torch.from_numpy(index).to(device)], lengths)

    def save(self, directory: str | os.PathLike, tokenizer=None, card: str = ""):
        from lmforge.model.checkpoint import save_model

        return save_model(self, directory, tokenizer=tokenizer, card=card, task="embedding")

    def describe(self) -> list[str]:
        """The model card's lines about the architecture."""
        c = self.config
        softmax = f"adaptive, cutoffs {c.cutoffs}" if c.cutoffs else "full"
        return [
            "- architecture: ELMo (character CNN + forward and backward LSTM language models)",
            f"- parameters: {self.num_parameters():,}",
            f"- characters: {c.max_characters} bytes per word, filters {c.filters}, "
            f"{c.highway_layers} highway layers, projection {c.projection_dim}",
            f"- LSTMs: {c.num_layers} layers per direction, cell {c.hidden_size} projected to {c.projection_dim}",
            f"- softmax over {c.vocab_size:,} words ({softmax}), shared by both directions",
            f"- layers for embeddings: 0..{c.num_layers}, {c.d_model} dims each",
        ]

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (3 x forward, 2 FLOPs a MAC): the character encoder (as if every token
        were a distinct word), both directions' LSTMs, and the softmax's head for both directions."""
        c = self.config
        width = sum(n for _, n in c.filters)
        macs = sum(n * w * c.char_embed_dim * c.max_characters for w, n in c.filters)
        macs += c.highway_layers * 2 * width * width + width * c.projection_dim
        P, H = c.projection_dim, c.hidden_size
        macs += 2 * c.num_layers * (4 * H * (P + H) + H * P)
        head = (c.cutoffs[0] + len(c.cutoffs)) if c.cutoffs else c.vocab_size
        macs += 2 * P * head
        return 6.0 * macs


class ScalarMix(nn.Module):
    """ELMo's layer combination: gamma * sum_j softmax(w)_j * h_j, with w and gamma learned by the task
    that uses the vectors (w = 0, gamma = 1: the plain average of the layers).

    >>> mix = ScalarMix(2)
    >>> mix([torch.ones(1, 2), 3 * torch.ones(1, 2)]).tolist()
    [[2.0, 2.0]]
    """

    def __init__(self, num_layers: int, weights: Sequence[float] | None = None, gamma: float = 1.0):
        super().__init__()
        initial = (
            torch.zeros(num_layers) if weights is None else torch.tensor(list(weights), dtype=torch.float)
        )
        if initial.shape != (num_layers,):
            raise ConfigError(f"scalar mix: {len(initial)} weights for {num_layers} layers")
        self.weights = nn.Parameter(initial)
        self.gamma = nn.Parameter(torch.tensor(float(gamma)))

    def forward(self, layers: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(layers) != len(self.weights):
            raise ConfigError(f"scalar mix: {len(layers)} layers given, {len(self.weights)} expected")
        normed = torch.softmax(self.weights, dim=0)
        return self.gamma * sum(w * h for w, h in zip(normed, layers, strict=True))
