"""From a config to a model: `build_model` picks the architecture's class; `load_model` fills it from a
model directory (config.json + model.safetensors, see `checkpoint`).

Its own module so that `checkpoint` (the base class every architecture inherits) never has to import the
architectures back.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from lmforge.errors import MissingFileError
from lmforge.model.checkpoint import (
    CheckpointError,
    TransformerModel,
    check_state_dict,
    read_config,
    unique_state_dict,
)
from lmforge.model.config import ModelConfig
from lmforge.model.decoder import DecoderModel
from lmforge.model.encoder import EncoderModel
from lmforge.model.encoder_decoder import EncoderDecoderModel


def build_model(config: ModelConfig) -> TransformerModel:
    """A freshly initialised model of the architecture `config` names."""
    if config.architecture == "elmo":
        from lmforge.model.elmo import ELMoModel

        return ELMoModel(config)
    classes = {"encoder": EncoderModel, "decoder": DecoderModel, "encoder-decoder": EncoderDecoderModel}
    return classes[config.architecture](config)


def load(directory: str | os.PathLike, *, device: str = "cpu") -> TransformerModel:
    """Load a model directory written by `model.save(dir)` or `lmforge convert --from-hf` (eval mode)."""
    return load_model(directory, device=device)


def load_model(directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> TransformerModel:
    """Build the model a directory's config.json describes and fill it from model.safetensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config = read_config(directory)
    weights = Path(directory) / "model.safetensors"
    if not weights.is_file():
        raise MissingFileError(f"{weights} not found")
    try:
        state = load_file(str(weights), device=str(device))
    except SafetensorError as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from None
    model = build_model(config).to(device)
    expected = unique_state_dict(model)
    check_state_dict(expected, state, str(weights))
    model.load_state_dict(state, strict=False)  # tied aliases are filled through their first name
    model.eval()
    return model
