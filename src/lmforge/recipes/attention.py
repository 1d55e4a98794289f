"""`lmforge attention`: draw what each head of one layer attends to, over the tokens of a text.

    lmforge attention --model runs/model --text "The cat sat on the mat" --layer 0 --out attn.png

One heatmap per head: row i is the query token i, column j the key token j, colour the weight
softmax(q_i·k_j/√d) — the query/key/value picture of the course, on a real model. Encoder-decoders show
their encoder's self-attention. Only the text's own tokens are drawn: a tokenizer that pads (MiniLM's pads
to 128) has its padding turned off, and the model runs with the attention mask, so the weights drawn are
the ones the model uses. `--model` is an lmforge model directory, `py:PACKAGE/DIR` or a Hugging Face
checkpoint. Library functions (`lmforge.model.attention`): `text_attention(model, tokenizer, text, layer)`,
`attention_maps(model, input_ids, layer, attention_mask)` and `plot_attention(weights, tokens, path)`.
"""

from __future__ import annotations

import argparse

from lmforge.recipes import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a model directory (lmforge or Hugging Face) or py:PACKAGE/DIR",
    )
    parser.add_argument("--text", required=True, help="the text to look at")
    parser.add_argument(
        "--layer", type=int, default=-1, help="layer index (negative counts from the end; default -1)"
    )
    parser.add_argument("--out", default="attn.png", help="the PNG to write (default: attn.png)")


def run(args: argparse.Namespace) -> int:
    from lmforge.errors import ConfigError
    from lmforge.model.attention import plot_attention, text_attention
    from lmforge.model_source import load_model_and_tokenizer

    if not args.text.strip():
        raise ConfigError("--text is empty: give the text whose attention to draw")
    if not str(args.out).lower().endswith(".png"):
        raise ConfigError(f"--out {args.out}: the picture is written as PNG; name it *.png")
    model, tokenizer, _ = load_model_and_tokenizer(args.model, name="--model")
    weights, tokens = text_attention(model, tokenizer, args.text, args.layer)
    index = args.layer % model.config.n_layers
    title = f"{args.model}: layer {index}, {weights.shape[0]} heads, {len(tokens)} tokens"
    out = plot_attention(weights, tokens, args.out, title)
    print(f"wrote {out}: layer {index}, {weights.shape[0]} heads × {len(tokens)} tokens")
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
