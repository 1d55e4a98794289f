"""`lmforge attention`: draw what each head of one layer attends to, over the tokens of a text.

    lmforge attention --model runs/model --text "The cat sat on the mat" --layer 0 --out attn.png

One heatmap per head: row i is the query token i, column j the key token j, colour the weight
softmax(q_i·k_j/√d) — the query/key/value picture of the course, on a real model. Encoder-decoders show
their encoder's self-attention. Library functions (`lmforge.model.attention`): `attention_maps(model,
input_ids, layer)` and `plot_attention(weights, tokens, path)`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lmforge.recipes import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="an lmforge model directory")
    parser.add_argument("--text", required=True, help="the text to look at")
    parser.add_argument(
        "--layer", type=int, default=-1, help="layer index (negative counts from the end; default -1)"
    )
    parser.add_argument("--out", default="attn.png", help="the PNG to write (default: attn.png)")


def run(args: argparse.Namespace) -> int:
    from lmforge.errors import ConfigError, LmforgeError, MissingFileError

    if not args.text.strip():
        raise ConfigError("--text is empty: give the text whose attention to draw")
    if not str(args.out).lower().endswith(".png"):
        raise ConfigError(f"--out {args.out}: the picture is written as PNG; name it *.png")
    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        raise MissingFileError(f"--model {model_dir}: not a model directory (no config.json)")
    if not (model_dir / "tokenizer.json").is_file():
        raise MissingFileError(f"--model {model_dir}: no tokenizer.json to turn the text into tokens")
    try:
        from lmforge.tokenizers import load_tokenizer
    except ImportError:
        raise LmforgeError(
            "lmforge attention needs lmforge.tokenizers, which this installation lacks"
        ) from None

    from lmforge.model import load
    from lmforge.model.attention import attention_maps, plot_attention

    encoding = load_tokenizer(str(model_dir / "tokenizer.json")).encode(args.text)
    model = load(model_dir)
    if len(encoding.ids) > model.config.max_positions:
        raise ConfigError(
            f"--text has {len(encoding.ids)} tokens; the model reads at most {model.config.max_positions}"
        )
    layer = args.layer
    weights = attention_maps(model, encoding.ids, layer)
    index = layer % model.config.n_layers
    title = f"{model_dir.name}: layer {index}, {weights.shape[0]} heads, {len(encoding.ids)} tokens"
    out = plot_attention(weights, list(encoding.tokens), args.out, title)
    print(f"wrote {out}: layer {index}, {weights.shape[0]} heads × {len(encoding.ids)} tokens")
    return 0


COMMANDS = [
    Command(
        "attention",
        "draw the attention weights of each head of a layer over the tokens of a text",
        configure,
        run,
        description=__doc__,
    )
]
