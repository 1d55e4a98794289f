"""Word-level perplexity on WikiText-2 validation: the Kneser-Ney n-gram baselines beside ELMo's two LMs and
causal LMs (the GPT presets) re-scored at the word level.

The n-grams and ELMo read the same stream of word-tokenizer ids (the tokenizer of the first ELMo model
directory, or `--tokenizer`: WikiText-2 train's words, `<unk>` kept whole); a GPT reads the same lines as
text with its own tokenizer (each line ended by "\n", one end-of-text before the first). Every model's
total NLL is divided by the same count of WikiText words (see `lmforge.experiments.word_perplexity`). The
n-gram models are counted on the word tokenizer's ids of the training split. Also reports the per-token
perplexities and what each part cost.

    python benchmarks/word_perplexity.py --elmo runs/elmo-wikitext2/model [--elmo DIR ...] \
        [--gpt runs/gpt-bpe-wikitext2/model ...] [--data ../shared/data/wikitext-2]
    python benchmarks/word_perplexity.py --tokenizer runs/elmo-wikitext2/tokenizer.json --gpt DIR  # no ELMo

Writes the "Word-level perplexity" section of benchmarks/RESULTS.md (and prints it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from common import write_section  # noqa: E402

from lmforge.experiments.word_perplexity import (  # noqa: E402
    bilm_nll,
    kneser_ney_nll,
    score_causal_lm,
    token_stream,
    word_perplexity,
)

HEADING = "## Word-level perplexity on WikiText-2 (`benchmarks/word_perplexity.py`)"


def describe(directory: str, model, what: str = "") -> str:
    """One line on a model directory and the run that trained it (its run directory's metrics)."""
    config = model.config
    if not what:  # ELMo
        what = (
            f"projection {config.projection_dim}, LSTM {config.hidden_size}, softmax cutoffs {config.cutoffs}"
        )
    line = f"- `{directory}`: {model.num_parameters():,} parameters, {what}"
    metrics = Path(directory).parent / "metrics.jsonl"
    if metrics.is_file():
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        steps = max((r.get("step", 0) for r in records), default=0)
        minutes = max((r.get("elapsed_s", 0) for r in records), default=0) / 60
        line += f"; trained {steps:,} steps in {minutes:.1f} min"
    return line + "."


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--elmo",
        action="append",
        default=[],
        help="an ELMo model directory (lmforge pretrain, preset elmo); repeat for several, which must "
        "share the first one's tokenizer",
    )
    parser.add_argument(
        "--gpt",
        action="append",
        default=[],
        help="a causal LM model directory (e.g. the gpt-bpe-wikitext2 preset's), scored with its own "
        "tokenizer; repeat for several",
    )
    parser.add_argument(
        "--tokenizer",
        help="the word tokenizer.json of the n-grams and ELMo (default: the first --elmo directory's)",
    )
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "wikitext-2"))
    parser.add_argument("--context", type=int, default=64, help="ELMo: tokens of context beyond each chunk")
    parser.add_argument("--stride", type=int, default=128, help="ELMo: targets scored per window")
    parser.add_argument("--gpt-context", type=int, help="GPT: window in tokens (default: the model's)")
    parser.add_argument("--gpt-stride", type=int, help="GPT: window step (default: half the window)")
    parser.add_argument("--note", default="", help="conditions to record (machine load, run)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if not (args.tokenizer or args.elmo):
        parser.error("give --elmo, or --tokenizer for the n-grams' word tokenizer")

    import torch

    from lmforge.errors import LmforgeError
    from lmforge.model import load
    from lmforge.model.elmo import char_table
    from lmforge.tokenizers import load_tokenizer

    data = Path(args.data)
    first_tokenizer = Path(args.tokenizer) if args.tokenizer else Path(args.elmo[0]) / "tokenizer.json"
    tokenizer = load_tokenizer(first_tokenizer)
    started = time.perf_counter()
    train_ids, train_words = token_stream(data / "train.txt", tokenizer)
    valid_ids, valid_words = token_stream(data / "valid.txt", tokenizer)
    tokenize_seconds = time.perf_counter() - started
    unk = tokenizer.token_to_id("[UNK]")
    rows = []  # (model, nll, seconds)
    for order in (2, 3):
        started = time.perf_counter()
        nll = kneser_ney_nll(train_ids, valid_ids, tokenizer.vocab_size, order=order)
        name = f"Kneser-Ney {order}-gram (interpolated, Ney's discounts)"
        rows.append((name, nll, time.perf_counter() - started))

    vocabulary = [tokenizer.id_to_token(i) or "" for i in range(tokenizer.vocab_size)]
    described = []
    for directory in args.elmo:
        if (Path(directory) / "tokenizer.json").read_bytes() != first_tokenizer.read_bytes():
            sys.exit(f"{directory}: another tokenizer than {first_tokenizer}; the models must share one")
        model = load(directory)
        table = char_table(vocabulary, model.config.max_characters)
        started = time.perf_counter()
        score = bilm_nll(model, valid_ids, table, context=args.context, stride=args.stride)
        seconds = time.perf_counter() - started
        rows.append((f"ELMo forward LM (left to right), `{directory}`", score.forward_nll, seconds))
        rows.append((f"ELMo backward LM (right to left), `{directory}`", score.backward_nll, seconds))
        described.append(describe(directory, model))

    tokens = len(valid_ids) - 1
    rows = [(name, nll, tokens, seconds) for name, nll, seconds in rows]
    gpt_lines = []
    for directory in args.gpt:
        started = time.perf_counter()
        try:
            score = score_causal_lm(
                directory,
                data / "valid.txt",
                context=args.gpt_context,
                stride=args.gpt_stride,
                name=directory,
            )
        except LmforgeError as exc:
            sys.exit(f"--gpt {exc}")
        seconds = time.perf_counter() - started
        if score.words != valid_words:
            sys.exit(
                f"{directory}: {score.words:,} words, where the word tokenizer's stream has {valid_words:,}"
            )
        rows.append((f"GPT (causal LM, its own tokenizer), `{directory}`", score.nll, score.tokens, seconds))
        config = score.model.config
        own = load_tokenizer(Path(directory) / "tokenizer.json")
        described.append(
            describe(
                directory,
                score.model,
                f"{config.n_layers} layers, d_model {config.d_model}, context {config.max_positions}; "
                f"{type(own).__name__} ({own.vocab_size:,} tokens): {score.tokens:,} tokens for the text's "
                f"{score.bytes:,} bytes ({score.bits_per_byte:.4f} bits per byte), in {score.windows:,} windows of "
                f"{score.context} tokens moving by {score.stride}",
            )
        )
        gpt_lines = [
            'A GPT reads the same non-empty lines as text with its own tokenizer, each line ended by "\\n" '
            "(its end of line, the character its training text had there) and one end-of-text before the first "
            "line; its per-token perplexity is over its own tokens, line ends included.",
            "",
        ]
    results = [
        {
            "model": name,
            "word_perplexity": word_perplexity(nll, valid_words),
            "token_perplexity": math.exp(nll / scored),
            "nll": nll,
            "tokens": scored,
            "seconds": seconds,
        }
        for name, nll, scored, seconds in rows
    ]
    lines = [
        HEADING,
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"
        + (f"; {args.note}" if args.note else "")
        + ".",
        "",
        f"WikiText-2 validation: {valid_words:,} words (whitespace words of the non-empty lines + one end of "
        f"line each), {tokens:,} word-tokenizer tokens ({tokenizer.vocab_size:,}-token vocabulary: every "
        f"word of train, `<unk>` kept whole; {int((valid_ids == unk).sum()):,} `[UNK]`). Train: "
        f"{train_words:,} words, {len(train_ids):,} tokens; tokenizing both {tokenize_seconds:.1f} s."
        + (
            f" ELMo is scored in windows of {args.stride} targets with {args.context} tokens of context beyond "
            "them on each side."
            if args.elmo
            else ""
        ),
        "",
        *gpt_lines,
        *described,
        "",
        "| model | word-level perplexity | per-token perplexity | time |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | **{r['word_perplexity']:.1f}** | {r['token_perplexity']:.1f} | {r['seconds']:.1f} s |"
        )
    lines.append("")
    if args.elmo:
        lines.append("Each model's two ELMo rows share one pass (both directions score the same windows).")
    text = "\n".join(lines) + "\n"
    if not args.no_write:  # first: a closed stdout (| head) must not lose the measurement
        write_section(HEADING, text)
    print(text)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
