"""`lmforge perplexity`: how surprised a model is by a text — perplexity and bits per byte.

    lmforge perplexity --model runs/quickstart/model ../shared/data/wikitext-2/test.txt
    lmforge perplexity --model DIR --context 256 --stride 128 FILE...     # the HF perplexity guide's method

Causal models (GPT): the text is scored with a sliding window (windows of `--context` tokens moving by
`--stride`; every token is predicted once, with at least context − stride tokens of history). Masked
models (BERT): pseudo-perplexity — each token is masked in turn and predicted from both sides
(Salazar et al. 2020), over at most `--max-tokens` tokens since it costs one pass per token.
Bits per byte divides the total surprise by the UTF-8 bytes of the text, so models with different
tokenizers compare. The output names the tokenizer, window and stride used.
"""

from __future__ import annotations

import argparse
import json
import math

from lmforge.errors import LmforgeError
from lmforge.recipes import Command, count


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="text to score (txt / JSONL / CSV / TSV)")
    parser.add_argument(
        "--model", required=True, metavar="DIR", help="model directory with its tokenizer.json"
    )
    parser.add_argument(
        "--context", type=count, help="window length in tokens (default: the model's context)"
    )
    parser.add_argument("--stride", type=count, help="window step in tokens (default: context / 2)")
    parser.add_argument("--field", default="text", help="JSONL field with the text (default: text)")
    parser.add_argument("--column", help="CSV/TSV column with the text")
    parser.add_argument(
        "--max-tokens", type=count, default=4096, help="masked models: tokens scored (default 4096)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from lmforge.metrics.perplexity import bits_per_byte, pseudo_log_likelihood, sliding_window_nll
    from lmforge.model_source import load_model_and_tokenizer
    from lmforge.text import Corpus

    corpus = Corpus(args.files, field=args.field, column=args.column, unit="file")  # checks paths first
    kinds = {"decoder": None, "encoder": ("mlm",)}  # perplexity (GPT), pseudo-perplexity (BERT)
    model, tokenizer, _ = load_model_and_tokenizer(args.model, kinds, purpose="score text", name="--model")
    config = model.config
    tokenizer.no_padding()
    tokenizer.no_truncation()  # the whole text, cut into windows here
    text = "\n\n".join(corpus)
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    if len(ids) < 2:
        raise LmforgeError("the text is shorter than two tokens: nothing to score")
    context = args.context or config.max_positions
    if not 2 <= context <= config.max_positions:
        raise LmforgeError(f"--context must be between 2 and the model's context {config.max_positions}")
    stride = args.stride or max(1, context // 2)
    if not 1 <= stride <= context:
        raise LmforgeError(f"--stride must be between 1 and --context ({context})")
    kind = f"{type(tokenizer).__name__} ({tokenizer.vocab_size:,} tokens)"

    if config.architecture == "encoder":
        mask_id = tokenizer.token_to_id("[MASK]")
        if mask_id is None:
            raise LmforgeError(
                f"--model {args.model}: pseudo-perplexity needs a [MASK] token in the tokenizer"
            )
        ids = ids[: args.max_tokens]
        nll, scored = pseudo_log_likelihood(
            model,
            ids,
            mask_id=mask_id,
            cls_id=tokenizer.token_to_id("[CLS]"),
            sep_id=tokenizer.token_to_id("[SEP]"),
            context=context,
        )
        num_bytes = len(tokenizer.decode(ids).encode("utf-8"))
        result = {
            "metric": "pseudo-perplexity",
            "pseudo_perplexity": math.exp(nll / scored),
            "bits_per_byte": bits_per_byte(nll, num_bytes),
            "tokens": scored,
            "context": context,
        }
    else:
        scored = sliding_window_nll(model, ids, context=context, stride=stride)
        result = {
            "metric": "perplexity",
            "perplexity": scored.perplexity,
            "bits_per_byte": scored.bits_per_byte(len(text.encode("utf-8"))),
            "tokens": scored.tokens,
            "context": context,
            "stride": stride,
            "windows": scored.windows,
        }
    result["tokenizer"] = kind
    result["files"] = [str(p) for p in corpus.files]
    if args.json:
        print(json.dumps(result))
        return 0
    name = result["metric"]
    window = f"window {context}" + (f", stride {stride}" if "stride" in result else "")
    print(
        f"{name} {result[name.replace('-', '_')]:.3f}, bits per byte {result['bits_per_byte']:.4f} "
        f"({result['tokens']:,} tokens scored; tokenizer {kind}; {window}; {len(corpus.files)} file(s))"
    )
    return 0


COMMANDS = [
    Command(
        name="perplexity",
        help="score text: sliding-window perplexity (GPT), pseudo-perplexity (BERT), bits per byte",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
