"""The transformer: encoder (BERT), decoder (GPT-2, Llama) and encoder-decoder (Transformer, Marian).

    from lmforge.model import build_model, preset, load
    model = build_model(preset("gpt-tiny"))       # a fresh model from a preset (see `config.PRESETS`)
    out = model(input_ids, attention_mask=mask)   # out.logits (B, T, V), out.hidden_states (B, T, d)
    model.save("runs/my-model")                   # config.json + model.safetensors + README.md
    model = load("runs/my-model")

Files: config (presets, size, FLOPs) · layers (positions, norms, attention, feed-forward, KV cache) ·
encoder · decoder · encoder_decoder · heads · checkpoint (model directory) · build (config → model, load) · convert (Hugging Face ↔ lmforge).
Beside the transformers: rnn (the LSTM baseline), elmo (ELMo's bidirectional LSTM LM), ngram (Kneser-Ney).
"""

from __future__ import annotations

from lmforge.model.build import build_model, load, load_model
from lmforge.model.checkpoint import CheckpointError, TransformerModel, save_model
from lmforge.model.config import PRESETS, ModelConfig, preset
from lmforge.model.decoder import DecoderModel
from lmforge.model.elmo import ELMoConfig, ELMoModel, ScalarMix
from lmforge.model.encoder import EncoderModel, mean_pool
from lmforge.model.encoder_decoder import EncoderDecoderModel
from lmforge.model.layers import KVCache, ModelOutput, SlotKVCache

__all__ = [
    "PRESETS",
    "CheckpointError",
    "DecoderModel",
    "ELMoConfig",
    "ELMoModel",
    "EncoderDecoderModel",
    "EncoderModel",
    "KVCache",
    "ModelConfig",
    "ModelOutput",
    "ScalarMix",
    "SlotKVCache",
    "TransformerModel",
    "build_model",
    "load",
    "load_model",
    "mean_pool",
    "preset",
    "save_model",
]
