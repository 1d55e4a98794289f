"""The encoder-decoder: the original Transformer (Vaswani et al. 2017) and Marian NMT, in one file.

- one token table shared by the source and target sides (or two separate ones), scaled by sqrt(d_model),
  plus sinusoidal positions;
- the encoder: N post-norm layers of bidirectional self-attention + feed-forward over the source;
- the decoder: N post-norm layers of causal self-attention, cross-attention over the encoder output
  (queries from the target, keys and values from the source) and feed-forward;
- the final linear layer tied to the embeddings (+ Marian's fixed logits bias); softmax is left to the loss.

`encode` runs once per source; `decode` runs per step with a KV cache whose cross-attention keys/values are
computed on the first step and reused after.

    >>> from lmforge.model import build_model, preset
    >>> model = build_model(preset("transformer-tiny", vocab_size=100))
    >>> out = model(torch.tensor([[5, 6, 7]]), decoder_input_ids=torch.tensor([[0, 9]]))
    >>> out.logits.shape
    torch.Size([1, 2, 100])
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
    default_position_ids,
    init_weights,
    layer_from_config,
    padding_bias,
)


class EncoderDecoderModel(TransformerModel):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder_embeddings = Embeddings(config)
        shared = self.encoder_embeddings.tokens if config.share_encoder_decoder_embeddings else None
        self.decoder_embeddings = Embeddings(config, tokens=shared)
        self.encoder_layers = nn.ModuleList(layer_from_config(config) for _ in range(config.n_layers))
        self.decoder_layers = nn.ModuleList(
            layer_from_config(config, cross_attention=True) for _ in range(config.decoder_layers)
        )

        def final_norm() -> nn.Module:
            if not config.final_norm:
                return nn.Identity()
            return build_norm(config.norm, config.d_model, config.norm_eps, config.bias)

        self.encoder_final_norm = final_norm()
        self.decoder_final_norm = final_norm()
        self.head = build_head(config, self.decoder_embeddings.tokens)
        init_weights(self, config.n_layers + config.decoder_layers)

    def cache_layers(self) -> nn.ModuleList:
        return self.decoder_layers

    def encode(
        self,
        input_ids: Tensor,  # (B, S) source ids
        attention_mask: Tensor | None = None,  # (B, S)
        *,
        return_attentions: bool = False,
    ) -> tuple[Tensor, list[Tensor] | None]:
        """The encoder alone: (B, S) ids → (B, S, d) hidden states (and per-layer attention weights)."""
        position_ids = default_position_ids(attention_mask, input_ids)
        x, rotary = self.encoder_embeddings(input_ids, position_ids)
        bias = padding_bias(attention_mask)
        attentions = [] if return_attentions else None
        for layer in self.encoder_layers:
            x, weights = layer(x, bias=bias, rotary=rotary, need_weights=return_attentions)
            if attentions is not None:
                attentions.append(weights)
        return self.encoder_final_norm(x), attentions

    def decode(
        self,
        decoder_input_ids: Tensor,  # (B, T) target ids so far (or just the new ones, with a cache)
        encoder_hidden_states: Tensor | None,  # (B, S, d) from `encode`; None once a cache holds its keys
        attention_mask: Tensor | None = None,  # (B, S) the source's padding mask
        decoder_attention_mask: Tensor | None = None,  # (B, past + T)
        cache: KVCache | SlotBatch | None = None,
        *,
        position_ids: Tensor | None = None,
        logits_where: Tensor | None = None,
        return_attentions: bool = False,
    ) -> ModelOutput:
        position_ids, bias, is_causal = causal_attention_inputs(
            decoder_input_ids, decoder_attention_mask, position_ids, cache
        )
        x, rotary = self.decoder_embeddings(decoder_input_ids, position_ids)
        memory_bias = padding_bias(attention_mask)  # (B, 1, 1, S): padding of the source

        attentions = [] if return_attentions else None
        for index, layer in enumerate(self.decoder_layers):
            x, weights = layer(
                x,
                bias=bias,
                is_causal=is_causal,
                rotary=rotary,
                memory=encoder_hidden_states,
                memory_bias=memory_bias,
                cache=cache.layers[index] if cache is not None else None,
                need_weights=return_attentions,
            )
            if attentions is not None:
                attentions.append(weights)
        hidden = self.decoder_final_norm(x)
        logits = None
        if self.head is not None:
            logits = self.head(hidden if logits_where is None else hidden[logits_where])
        return ModelOutput(
            hidden_states=hidden,
            logits=logits,
            attentions=attentions,
            cache=cache,
            encoder_hidden_states=encoder_hidden_states,
        )

    def forward(
        self,
        input_ids: Tensor | None = None,  # (B, S) source; may be None when encoder_hidden_states is given
        attention_mask: Tensor | None = None,  # (B, S)
        decoder_input_ids: Tensor
        | None = None,  # (B, T): the target shifted right (starts with the start id)
        decoder_attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        *,
        encoder_hidden_states: Tensor | None = None,  # reuse an earlier `encode` (decoding steps)
        logits_where: Tensor | None = None,
        return_attentions: bool = False,
    ) -> ModelOutput:
        if decoder_input_ids is None:
            raise ValueError("an encoder-decoder needs decoder_input_ids (the target shifted right)")
        encoder_attentions = None
        if encoder_hidden_states is None:
            if input_ids is None:
                raise ValueError("pass input_ids (the source) or encoder_hidden_states")
            encoder_hidden_states, encoder_attentions = self.encode(
                input_ids, attention_mask, return_attentions=return_attentions
            )
        out = self.decode(
            decoder_input_ids,
            encoder_hidden_states,
            attention_mask,
            decoder_attention_mask,
            cache,
            logits_where=logits_where,
            return_attentions=return_attentions,
        )
        if return_attentions and encoder_attentions is not None:
            out.attentions = encoder_attentions + out.attentions  # encoder layers first, then decoder
        return out


def shift_right(labels: Tensor, start_id: int, pad_id: int) -> Tensor:
    """Teacher forcing: the decoder reads the target shifted one step right, starting with `start_id`.

    >>> shift_right(torch.tensor([[5, 6, -100]]), start_id=0, pad_id=0)
    tensor([[0, 5, 6]])
    """
    shifted = torch.full_like(labels, pad_id)
    shifted[:, 0] = start_id
    shifted[:, 1:] = labels[:, :-1]
    return shifted.masked_fill(shifted == -100, pad_id)
