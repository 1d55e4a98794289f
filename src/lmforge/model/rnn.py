"""The recurrent baseline: a character-level LSTM language model (Karpathy's char-rnn, in PyTorch).

What this file implements:
  - `LSTMConfig`: the architecture, with why-comments, as plain data (`to_dict` / `from_dict`);
  - `LSTMLanguageModel`: embedding -> L stacked LSTM layers (dropout between) -> a linear head over the
    vocabulary, optionally tied to the embedding. It returns an `LMOutput` with `.logits` and
    `.hidden_states` (the embeddings, then each layer's outputs), like the transformer models, and the
    final (h, c) `state` so generation can carry it forward one token at a time;
  - `flops_per_token`: the training FLOPs of one token (forward + backward), for MFU.

The course's step "from recurrent networks to the Transformer": the same loop, data and budget train this
model and a GPT, so their loss and tokens/s compare directly. An LSTM reads the sequence one step at a
time (no parallelism over T) and squeezes all history into a fixed-size state; attention does neither.

    >>> model = LSTMLanguageModel(LSTMConfig(vocab_size=257))
    >>> out = model(torch.randint(0, 257, (2, 16)))
    >>> out.logits.shape, len(out.hidden_states)
    (torch.Size([2, 16, 257]), 3)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from torch.export import register_dataclass


@dataclass
class LSTMConfig:
    vocab_size: int = 257  # bytes 0..255 + end-of-text, the tokenizer-free default
    embed_dim: int = 256  # input width; equal to hidden_size when the head is tied
    hidden_size: int = 256  # char-rnn's small model; 512 for its large one
    num_layers: int = 2  # char-rnn found 2-3 layers best; more barely helps an LSTM
    dropout: float = 0.1  # between layers and before the head; char-rnn used 0.5 on big models
    tie_weights: bool = False  # share embedding and head (needs embed_dim == hidden_size)

    def __post_init__(self):
        if self.tie_weights and self.embed_dim != self.hidden_size:
            raise ValueError("tie_weights needs embed_dim == hidden_size")

    def to_dict(self) -> dict:
        return {"architecture": "lstm", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> LSTMConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class LMOutput:
    logits: torch.Tensor  # (B, T, V)
    hidden_states: tuple[torch.Tensor, ...]  # num_layers + 1 tensors (B, T, C): embeddings, then layers
    state: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # per layer (h, c), each (1, B, H)


# A pytree node, so FSDP2 finds the tensors inside the output and hooks its backward (an unregistered
# class hides them: FSDP2 then never reduce-scatters the gradients and the weights never change).
register_dataclass(LMOutput, serialized_type_name="lmforge.model.rnn.LMOutput")


class LSTMLanguageModel(nn.Module):
    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim)
        # separate single-layer LSTMs (not one nn.LSTM(num_layers=L)) so every layer's outputs are visible
        self.layers = nn.ModuleList(
            nn.LSTM(config.embed_dim if i == 0 else config.hidden_size, config.hidden_size, batch_first=True)
            for i in range(config.num_layers)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)
        if config.tie_weights:
            self.head.weight = self.embedding.weight
        nn.init.normal_(self.embedding.weight, std=0.02)

    def forward(
        self, input_ids: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    ) -> LMOutput:
        x = self.embedding(input_ids)  # (B, T, E)
        hidden_states = [x]
        new_state = []
        for i, layer in enumerate(self.layers):
            x, layer_state = layer(self.dropout(x) if i else x, state[i] if state else None)  # (B, T, H)
            hidden_states.append(x)
            new_state.append(layer_state)
        logits = self.head(self.dropout(x))  # (B, T, V)
        return LMOutput(logits=logits, hidden_states=tuple(hidden_states), state=new_state)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, context: int | None = None) -> float:
        """Training FLOPs per token: 3 x forward (backward costs about twice the forward), 2 FLOPs a MAC.

        Forward MACs per token: each LSTM layer 4 gates x H x (input + H); the head H x V. Unlike
        attention's, the cost does not grow with the context (`context` is accepted for the common call).
        """
        c = self.config
        macs = c.hidden_size * c.vocab_size
        for i in range(c.num_layers):
            width = c.embed_dim if i == 0 else c.hidden_size
            macs += 4 * c.hidden_size * (width + c.hidden_size)
        return 6.0 * macs
