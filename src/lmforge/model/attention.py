"""Attention maps: what each head of one layer attends to, over the tokens of a text.

    weights, tokens = text_attention(model, tokenizer, "The cat sat", layer=0)   # (H, T, T), T tokens
    plot_attention(weights, tokens, "attn.png")                                 # one heatmap per head

Row i of a head's map is the query token i, column j the key token j, the value softmax(q_i·k_j/√d): the
query/key/value picture of the course, on a real model. Encoder-decoders give their encoder's
self-attention. Only the text's own tokens are drawn: a tokenizer that pads (MiniLM's pads to 128) has its
padding turned off, and the model runs with the attention mask, so the weights drawn are the ones the model
uses. `lmforge attention` draws them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from lmforge.io import save_figure


def attention_maps(model, input_ids, layer: int = -1, attention_mask=None):
    """Attention weights (H, T, T) of one layer for one sequence `input_ids` (list or (T,) / (1, T) tensor).

    With an `attention_mask` (1 = token, 0 = padding) the model runs with it and only the T real tokens'
    rows and columns are returned: the weights among the tokens, as the model computes them.
    """
    import torch

    from lmforge.errors import ConfigError

    ids = torch.as_tensor(input_ids).reshape(1, -1)
    mask = None if attention_mask is None else torch.as_tensor(attention_mask).reshape(1, -1)
    n_layers = model.config.n_layers
    if not -n_layers <= layer < n_layers:
        raise ConfigError(
            f"--layer {layer} is out of range: the model has {n_layers} layers (0..{n_layers - 1})"
        )
    with torch.no_grad():
        if model.config.architecture == "encoder-decoder":
            _, attentions = model.encode(ids, attention_mask=mask, return_attentions=True)
        else:
            attentions = model(ids, attention_mask=mask, return_attentions=True).attentions
    weights = attentions[layer][0]  # (H, T, T)
    if mask is None:
        return weights
    real = mask[0].bool()
    return weights[:, real][:, :, real]


def text_attention(model, tokenizer, text: str, layer: int = -1):
    """(weights (H, T, T), tokens) of one layer over the T tokens of `text`, padding left out."""
    from lmforge.errors import ConfigError

    tokenizer.no_padding()  # a copy's setting: the tokens of the text, not a fixed length
    tokenizer.no_truncation()
    encoding = tokenizer.encode(text)
    limit = model.config.max_positions
    if len(encoding.ids) > limit:
        raise ConfigError(f"--text has {len(encoding.ids)} tokens; the model reads at most {limit}")
    weights = attention_maps(model, encoding.ids, layer, encoding.attention_mask)
    tokens = [t for t, m in zip(encoding.tokens, encoding.attention_mask, strict=True) if m]
    return weights, tokens


def plot_attention(weights, tokens: list[str], path: str | os.PathLike, title: str = "") -> Path:
    """A grid of heatmaps, one per head, of `weights` (H, T, T); written atomically to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = weights.detach().float().cpu().numpy()
    heads, T, _ = weights.shape
    if len(tokens) != T:
        raise ValueError(f"{len(tokens)} token labels for {T} positions")
    columns = min(4, heads)
    rows = math.ceil(heads / columns)
    size = max(2.5, min(0.28 * T + 1.2, 6.0))
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    labels = [t.replace("Ġ", "·").replace("▁", "·") for t in tokens]
    for head in range(rows * columns):
        axis = axes[head // columns][head % columns]
        if head >= heads:
            axis.axis("off")
            continue
        axis.imshow(weights[head], vmin=0.0, vmax=1.0, cmap="viridis")
        axis.set_title(f"head {head}", fontsize=9)
        if T <= 40:
            axis.set_xticks(range(T), labels, rotation=90, fontsize=7)
            axis.set_yticks(range(T), labels, fontsize=7)
        else:
            axis.set_xticks([])
            axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(figure, path, dpi=110)
