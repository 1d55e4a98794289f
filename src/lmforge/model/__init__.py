"""The transformer: encoder (BERT), decoder (GPT-2, Llama) and encoder-decoder (Transformer, Marian).

    from lmforge.model import build_model, preset, load
    model = build_model(preset("gpt-tiny"))       # a fresh model from a preset (see `config.PRESETS`)
    out = model(input_ids, attention_mask=mask)   # out.logits (B, T, V), out.hidden_states (B, T, d)
    model.save("runs/my-model")                   # config.json + model.safetensors + README.md
    model = load("runs/my-model")

Files: config (presets, size, FLOPs) · layers (positions, norms, attention, feed-forward, KV cache) ·
encoder · decoder · encoder_decoder · heads · checkpoint (model directory) · convert (Hugging Face ↔ lmforge).
"""

from __future__ import annotations

import os

from lmforge.model.checkpoint import CheckpointError, TransformerModel, load_model, save_model
from lmforge.model.config import PRESETS, ModelConfig, preset
from lmforge.model.decoder import DecoderModel
from lmforge.model.encoder import EncoderModel, mean_pool
from lmforge.model.encoder_decoder import EncoderDecoderModel
from lmforge.model.layers import KVCache, ModelOutput


def build_model(config: ModelConfig) -> TransformerModel:
    """A freshly initialised model of the architecture `config` names."""
    classes = {"encoder": EncoderModel, "decoder": DecoderModel, "encoder-decoder": EncoderDecoderModel}
    return classes[config.architecture](config)


def load(directory: str | os.PathLike, *, device: str = "cpu") -> TransformerModel:
    """Load a model directory written by `model.save(dir)` or `lmforge convert --from-hf` (eval mode)."""
    return load_model(directory, device=device)


__all__ = [
    "PRESETS",
    "CheckpointError",
    "DecoderModel",
    "EncoderDecoderModel",
    "EncoderModel",
    "KVCache",
    "ModelConfig",
    "ModelOutput",
    "TransformerModel",
    "build_model",
    "load",
    "mean_pool",
    "preset",
    "save_model",
]
