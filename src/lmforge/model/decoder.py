"""The decoder-only transformer: GPT-2 (Radford et al. 2019) and Llama (Touvron et al. 2023) in one file.

- token embeddings + learned positions (GPT-2) or rotary positions applied inside attention (Llama);
- N pre-norm layers of causal (masked) self-attention + feed-forward (GELU-tanh for GPT-2; SwiGLU with
  grouped-query attention and RMSNorm for Llama), then a final norm;
- the LM head: a linear layer to the vocabulary, tied to the token embeddings (GPT-2) or not (Llama);
- a KV cache for incremental decoding and positions that follow the padding mask, so a batch of
  left-padded prompts decodes exactly like each prompt alone.

    >>> from lmforge.model import build_model, preset
    >>> model = build_model(preset("gpt-tiny", vocab_size=100))
    >>> model(torch.tensor([[1, 2, 3]])).logits.shape
    torch.Size([1, 3, 100])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmforge.model.checkpoint import TransformerModel
from lmforge.model.config import ModelConfig
from lmforge.model.heads import build_head
from lmforge.model.layers import (
    Embeddings,
    KVCache,
    ModelOutput,
    SlotBatch,
    build_norm,
    causal_attention_inputs,
    init_weights,
    layer_from_config,
)


class DecoderModel(TransformerModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(layer_from_config(config) for _ in range(config.n_layers))
        # pre-norm stacks end with a norm; post-norm layers already end normalized
        self.final_norm = (
            build_norm(config.norm, config.d_model, config.norm_eps, config.bias)
            if config.final_norm
            else nn.Identity()
        )
        self.head = build_head(config, self.embeddings.tokens)
        init_weights(self, config.n_layers)

    def cache_layers(self) -> nn.ModuleList:
        return self.layers

    def forward(
        self,
        input_ids: Tensor,  # (B, T) token ids
        attention_mask: Tensor | None = None,  # (B, past + T): 1 = token, 0 = padding
        position_ids: Tensor | None = None,  # (B, T); default: counted from each row's first real token
        cache: KVCache | SlotBatch | None = None,  # keys/values of earlier tokens; updated in place
        *,
        logits_where: Tensor | None = None,  # (B, T) bool: compute logits only there → (N, V)
        return_attentions: bool = False,  # use the explicit attention path and return its weights
    ) -> ModelOutput:
        position_ids, bias, is_causal = causal_attention_inputs(
            input_ids, attention_mask, position_ids, cache
        )
        x, rotary = self.embeddings(input_ids, position_ids)  # (B, T, d)

        attentions = [] if return_attentions else None
        for index, layer in enumerate(self.layers):
            x, weights = layer(
                x,
                bias=bias,
                is_causal=is_causal,
                rotary=rotary,
                cache=cache.layers[index] if cache is not None else None,
                need_weights=return_attentions,
            )
            if attentions is not None:
                attentions.append(weights)
        hidden = self.final_norm(x)  # (B, T, d)

        logits = None
        if self.head is not None:
            logits = self.head(hidden if logits_where is None else hidden[logits_where])  # (B, T, V) | (N, V)
        return ModelOutput(hidden_states=hidden, logits=logits, attentions=attentions, cache=cache)


@torch.no_grad()
def greedy_continue(model: DecoderModel, input_ids: Tensor, steps: int) -> Tensor:
    """The simplest use of the cache: append `steps` greedy tokens to an unpadded batch (B, T) → (B, T + steps).

    `lmforge.generate` is the full decoder (sampling, beams, padding, stop strings); this is here as the
    worked example of the cache protocol and for the tests that compare cached and uncached decoding.
    """
    cache = model.new_cache()
    logits = model(input_ids, cache=cache).logits[:, -1]
    tokens = [input_ids]
    for _ in range(steps):
        next_ids = logits.argmax(-1, keepdim=True)  # (B, 1)
        tokens.append(next_ids)
        logits = model(next_ids, cache=cache).logits[:, -1]
    return torch.cat(tokens, dim=1)
