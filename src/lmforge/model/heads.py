"""Heads: what turns the last hidden states into predictions.

- `LMHead` — linear to the vocabulary, its weight tied to the token embeddings (GPT-2, Marian): next-token
  logits. Softmax is left to the loss / the decoder.
- `MLMHead` — BERT's masked-LM head: dense + activation + norm (the "transform"), then the tied decoder
  and an output bias.
- `Pooler` — BERT's tanh(W · h[CLS]), the sentence vector its classifiers read.
- `SequenceClassificationHead` — one label per sequence (from the pooled vector, or the first token).
- `TokenClassificationHead` — one label per token (NER, POS).
- `QuestionAnsweringHead` — two logits per token: the answer span's start and end (SQuAD).

`build_head(config, tokens)` builds the one a `ModelConfig` names and ties it to `tokens` when asked.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmforge.model.layers import build_norm


class LMHead(nn.Module):
    """hidden (…, d) → logits (…, V). `logits_bias` is Marian's fixed `final_logits_bias` (zeros otherwise)."""

    def __init__(self, d_model: int, vocab_size: int, *, logits_bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, vocab_size, bias=False)
        if logits_bias:
            self.register_buffer("logits_bias", torch.zeros(vocab_size))
        else:
            self.logits_bias = None

    def forward(self, hidden: Tensor) -> Tensor:
        logits = self.proj(hidden)
        return logits if self.logits_bias is None else logits + self.logits_bias


class MLMHead(nn.Module):
    """BERT's masked-LM head: transform (dense, activation, norm), then the tied decoder plus a bias."""

    def __init__(self, config) -> None:
        super().__init__()
        d = config.d_model
        self.transform = nn.Linear(d, d)
        self.activation = config.activation if config.activation != "swiglu" else "gelu"
        self.norm = build_norm(config.norm, d, config.norm_eps, config.bias)
        self.proj = nn.Linear(d, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: Tensor) -> Tensor:  # (…, d) -> (…, V)
        hidden = self.transform(hidden)
        if self.activation == "gelu_tanh":
            hidden = F.gelu(hidden, approximate="tanh")
        elif self.activation == "relu":
            hidden = F.relu(hidden)
        elif self.activation == "silu":
            hidden = F.silu(hidden)
        else:
            hidden = F.gelu(hidden)
        return self.proj(self.norm(hidden)) + self.bias


class Pooler(nn.Module):
    """tanh(W · h₀ + b): BERT's summary of the sequence, read from the first ([CLS]) token."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)

    def forward(self, hidden: Tensor) -> Tensor:  # (B, T, d) -> (B, d)
        return torch.tanh(self.dense(hidden[:, 0]))


class SequenceClassificationHead(nn.Module):
    """(B, d) sentence vector → (B, num_labels) logits."""

    def __init__(self, d_model: int, num_labels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(d_model, num_labels)

    def forward(self, sentence: Tensor) -> Tensor:
        return self.classifier(self.dropout(sentence))


class TokenClassificationHead(SequenceClassificationHead):
    """(B, T, d) → (B, T, num_labels): the same linear layer applied at every token."""


class QuestionAnsweringHead(nn.Module):
    """(B, T, d) → (B, T, 2): start and end logits of the answer span; ``start, end = logits.unbind(-1)``."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.span = nn.Linear(d_model, 2)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.span(hidden)


def build_head(config, tokens: nn.Embedding) -> nn.Module | None:
    """The head `config.head` names; LM and MLM heads share their output matrix with `tokens` if tied."""
    if config.head is None:
        return None
    if config.head in ("lm", "mlm"):
        head = (
            MLMHead(config)
            if config.head == "mlm"
            else LMHead(config.d_model, config.vocab_size, logits_bias=config.final_logits_bias)
        )
        if config.tie_embeddings:
            head.proj.weight = tokens.weight
        return head
    if config.head == "sequence-classification":
        return SequenceClassificationHead(config.d_model, config.num_labels, config.dropout)
    if config.head == "token-classification":
        return TokenClassificationHead(config.d_model, config.num_labels, config.dropout)
    return QuestionAnsweringHead(config.d_model)
