"""The encoder: BERT (Devlin et al. 2018), bidirectional self-attention over the whole input.

- token + learned position + segment (token type) embeddings, summed and normalized;
- N post-norm layers of bidirectional self-attention (a padding mask hides the padding keys) +
  feed-forward (exact GELU);
- an optional pooler (tanh of a dense layer on the [CLS] token) and one head: masked LM (tied to the token
  embeddings), sequence classification, token classification or question answering (span start/end).

Sentence embeddings (all-MiniLM-L6-v2 and friends) are the mean of `hidden_states` over the real tokens:
`mean_pool(out.hidden_states, attention_mask)`.

    >>> import torch
    >>> from lmforge.model import build_model, preset
    >>> model = build_model(preset("bert-tiny", vocab_size=100))
    >>> out = model(torch.tensor([[2, 7, 3, 0]]), attention_mask=torch.tensor([[1, 1, 1, 0]]))
    >>> out.logits.shape, out.hidden_states.shape
    (torch.Size([1, 4, 100]), torch.Size([1, 4, 256]))
"""

from __future__ import annotations

from torch import Tensor, nn

from lmforge.model.checkpoint import TransformerModel
from lmforge.model.config import ModelConfig
from lmforge.model.heads import Pooler, build_head
from lmforge.model.layers import (
    Embeddings,
    ModelOutput,
    build_norm,
    default_position_ids,
    init_weights,
    layer_from_config,
    padding_bias,
)


class EncoderModel(TransformerModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(layer_from_config(config) for _ in range(config.n_layers))
        self.final_norm = (
            build_norm(config.norm, config.d_model, config.norm_eps, config.bias)
            if config.final_norm
            else nn.Identity()
        )
        self.pooler = Pooler(config.d_model) if config.pooler else None
        self.head = build_head(config, self.embeddings.tokens)
        init_weights(self, config.n_layers)

    def cache_layers(self) -> nn.ModuleList:
        return self.layers

    def forward(
        self,
        input_ids: Tensor,  # (B, T)
        attention_mask: Tensor | None = None,  # (B, T): 1 = token, 0 = padding
        token_type_ids: Tensor | None = None,  # (B, T): segment A = 0, B = 1
        position_ids: Tensor | None = None,
        *,
        logits_where: Tensor | None = None,  # (B, T) bool: MLM logits only there → (N, V), e.g. masked tokens
        return_attentions: bool = False,
    ) -> ModelOutput:
        if position_ids is None:
            position_ids = default_position_ids(attention_mask, input_ids)
        x, rotary = self.embeddings(input_ids, position_ids, token_type_ids)  # (B, T, d)
        bias = padding_bias(attention_mask)  # (B, 1, 1, T) or None

        attentions = [] if return_attentions else None
        for layer in self.layers:
            x, weights = layer(x, bias=bias, rotary=rotary, need_weights=return_attentions)
            if attentions is not None:
                attentions.append(weights)
        hidden = self.final_norm(x)
        pooled = self.pooler(hidden) if self.pooler is not None else None

        logits = None
        head = self.config.head
        if head in ("mlm", "token-classification", "question-answering"):
            logits = self.head(hidden if logits_where is None else hidden[logits_where])
        elif head == "sequence-classification":
            if pooled is None:
                pooled = (
                    mean_pool(hidden, attention_mask)
                    if self.config.classifier_pooling == "mean"
                    else hidden[:, 0]
                )
            logits = self.head(pooled)
        return ModelOutput(hidden_states=hidden, logits=logits, pooled=pooled, attentions=attentions)


def mean_pool(hidden_states: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """(B, T, d) → (B, d): the average of the real tokens' vectors (sentence-transformers' mean pooling)."""
    if attention_mask is None:
        return hidden_states.mean(dim=1)
    weights = attention_mask[..., None].to(hidden_states.dtype)  # (B, T, 1)
    return (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
