"""`lmforge tokenizer train|encode|compare`: train a tokenizer, look at how it cuts text, compare the kinds.

    lmforge tokenizer train --kind bpe --vocab-size 8192 --out tok.json ../shared/data/wikitext-2/train.txt
    lmforge tokenizer train --kind unigram --vocab-size 8192 --out uni.json ../shared/data/wikitext-2/train.txt
    lmforge tokenizer encode --tokenizer tok.json "Frog on a log."
    lmforge tokenizer encode --tokenizer tok.json --json "Frog on a log."     # {"ids": [...], "tokens": ..., "offsets": ...}
    lmforge tokenizer compare --vocab-size 4096 ../shared/data/tinyshakespeare/input.txt

Arguments are checked before any file is read; training writes nothing until it has succeeded, and then
writes atomically (tok.json and tok.vocab.txt).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lmforge.errors import LmforgeError
from lmforge.recipes import Command, count, count_or_zero

KIND_NAMES = ("char", "word", "bpe", "wordpiece")  # the course's four, set side by side by `compare`
TRAIN_KINDS = (*KIND_NAMES, "charbpe", "unigram")
KIND_HELP = (
    "which tokenizer to train: char, word, bpe (byte-level, GPT-2), wordpiece (BERT), charbpe (original BPE "
    "with a </w> suffix, HF's CharBPETokenizer), unigram (SentencePiece, T5/ALBERT/XLM-R)"
)


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(
        dest="action", metavar="ACTION", title="actions", parser_class=type(parser)
    )
    actions.required = True

    train = actions.add_parser("train", help="train a tokenizer on text files", description=train_run.__doc__)
    train.add_argument("--kind", required=True, choices=TRAIN_KINDS, help=KIND_HELP)
    train.add_argument(
        "--vocab-size", type=count, required=True, help="number of ids, special tokens included"
    )
    train.add_argument(
        "--out", required=True, help="where to write tokenizer.json (a .vocab.txt goes beside it)"
    )
    train.add_argument(
        "--min-frequency",
        type=count_or_zero,
        default=None,
        help="drop words/pairs seen fewer times (not unigram, which prunes by likelihood)",
    )
    train.add_argument(
        "--special-tokens",
        default=None,
        help="comma-separated special tokens (default: the kind's own; unigram: <unk>,<s>,</s>,<pad>)",
    )
    train.add_argument(
        "--lowercase", action="store_true", help="lower-case text first (word, wordpiece, charbpe)"
    )
    _corpus_options(train)
    _debug_option(train)
    train.set_defaults(_action=train_run)

    encode = actions.add_parser("encode", help="show the tokens, ids and offsets of a text")
    encode.add_argument(
        "--tokenizer", required=True, metavar="FILE", help="a tokenizer.json (or a model directory)"
    )
    encode.add_argument("--json", action="store_true", help="print one JSON object with ids, tokens, offsets")
    encode.add_argument("--pair", default=None, help="a second text, encoded as a pair (BERT: [SEP] between)")
    encode.add_argument("--no-special-tokens", action="store_true", help="do not add [CLS]/[SEP] etc.")
    encode.add_argument("text", help="the text to encode")
    _debug_option(encode)
    encode.set_defaults(_action=encode_run)

    compare = actions.add_parser(
        "compare",
        help="train the four kinds on the same text and compare them",
        description=compare_run.__doc__,
    )
    compare.add_argument("--vocab-size", type=count, required=True, help="vocabulary size for every kind")
    compare.add_argument(
        "--held-out",
        type=float,
        default=0.1,
        help="share of the documents held out for measuring (default 0.1)",
    )
    compare.add_argument(
        "--min-frequency", type=count_or_zero, default=2, help="drop words/pairs seen fewer times"
    )
    _corpus_options(compare)
    _debug_option(compare)
    compare.set_defaults(_action=compare_run)


def _debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )


def _corpus_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--field", default="text", help="JSONL field holding the text (default: text)")
    parser.add_argument(
        "--column", default=None, help="CSV/TSV column holding the text (default: text/sentence)"
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="text, JSONL, CSV/TSV files or directories")


def run(args: argparse.Namespace) -> int:
    return args._action(args) or 0


def _check_vocab_size(kind: str, vocab_size: int, special_tokens: list[str] | None) -> None:
    from lmforge.tokenizers import BERT_SPECIAL_TOKENS, END_OF_TEXT
    from lmforge.tokenizers.bpe import check_vocab_size
    from lmforge.tokenizers.charbpe import CHARBPE_SPECIAL_TOKENS
    from lmforge.tokenizers.unigram import UNIGRAM_SPECIAL_TOKENS

    defaults = {
        "bpe": [END_OF_TEXT],
        "wordpiece": list(BERT_SPECIAL_TOKENS),
        "charbpe": list(CHARBPE_SPECIAL_TOKENS),
        "unigram": list(UNIGRAM_SPECIAL_TOKENS),
    }
    specials = (
        special_tokens if special_tokens is not None else defaults.get(kind, ["[PAD]", "[UNK]", END_OF_TEXT])
    )
    base = {
        "bpe": (256, "bytes"),
        "char": (1, "character"),
        "word": (1, "word"),
        "wordpiece": (1, "character"),
        "charbpe": (1, "character"),
        "unigram": (1, "character"),
    }
    check_vocab_size(vocab_size, specials, *base[kind])


def train_run(args: argparse.Namespace) -> int:
    """Train a tokenizer of one kind on FILE... and write tokenizer.json (HF format) plus a readable
    vocabulary beside it. Nothing is written if training fails (bad input, empty corpus)."""
    from lmforge.text import Corpus
    from lmforge.tokenizers import KINDS

    special_tokens = (
        [t.strip() for t in args.special_tokens.split(",") if t.strip()] if args.special_tokens else None
    )
    _check_vocab_size(args.kind, args.vocab_size, special_tokens)
    out = Path(args.out)
    if out.is_dir():
        raise LmforgeError(f"--out {out} is a directory; name the file, e.g. {out / 'tokenizer.json'}")
    if not out.parent.is_dir() and str(out.parent):
        raise LmforgeError(f"--out {out}: directory {out.parent} does not exist; create it first")
    options: dict = {"vocab_size": args.vocab_size}
    if special_tokens is not None:
        options["special_tokens"] = special_tokens
    if args.min_frequency is not None:
        if args.kind == "unigram":
            raise LmforgeError(
                "--min-frequency does not apply to unigram: it keeps the pieces whose loss would cost the "
                "corpus most likelihood, not those seen most often; leave the option out"
            )
        options["min_frequency"] = args.min_frequency
    if args.lowercase:
        if args.kind not in ("word", "wordpiece", "charbpe"):
            raise LmforgeError(f"--lowercase applies to word, wordpiece and charbpe, not {args.kind}")
        options["lowercase"] = True
    if args.kind == "unigram":  # seeding and EM rounds take a while: say where it is
        options["progress"] = lambda line: print(f"  {line}", file=sys.stderr, flush=True)
    # every character of plain text, newlines included: what `unit: file` shards will hold
    corpus = Corpus(
        args.files, field=args.field, column=args.column, unit="chunk"
    ).check()  # UTF-8, some text
    print(f"training a {args.kind} tokenizer ({args.vocab_size:,} ids) on {corpus} ...", file=sys.stderr)
    started = time.perf_counter()
    tok = KINDS[args.kind].train(iter(corpus), **options)
    seconds = time.perf_counter() - started
    tok.save(out)
    from lmforge.tokenizers.base import readable_vocab_path

    print(f"{args.kind} tokenizer: {tok.vocab_size:,} ids, trained in {seconds:.1f}s")
    print(f"wrote {out} and {readable_vocab_path(out)}")
    return 0


def encode_run(args: argparse.Namespace) -> int:
    """Encode TEXT and print its tokens, ids and offsets (or one JSON object with --json)."""
    from lmforge.tokenizers import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    encoding = tok.encode(args.text, args.pair, add_special_tokens=not args.no_special_tokens)
    if args.json:
        record = {
            "ids": encoding.ids,
            "tokens": encoding.tokens,
            "offsets": [list(o) for o in encoding.offsets],
            "type_ids": encoding.type_ids,
            "attention_mask": encoding.attention_mask,
        }
        print(json.dumps(record, ensure_ascii=False))
        return 0
    padding = len(encoding) - sum(encoding.attention_mask)
    print(
        f"{tok.kind} tokenizer, {tok.vocab_size:,} ids: {len(encoding)} tokens"
        + (f" ({padding} of them padding)" if padding else "")
    )
    shown = [i for i, mask in enumerate(encoding.attention_mask) if mask]
    width = max((len(repr(encoding.tokens[i])) for i in shown), default=5)
    texts = {0: args.text, 1: args.pair or ""}
    print(f"  {'token':<{width}}  {'id':>7}  {'type':>4}  span")
    for i in shown:
        token, token_id, (start, end) = encoding.tokens[i], encoding.ids[i], encoding.offsets[i]
        sequence = encoding.sequence_ids[i]
        span = f"{start}:{end} {texts[sequence][start:end]!r}" if sequence is not None else "(special)"
        print(f"  {token!r:<{width}}  {token_id:>7}  {encoding.type_ids[i]:>4}  {span}")
    if padding:
        print(
            f"  ... and {padding} x {tok.padding.pad_token!r} (attention mask 0; the file pads to {len(encoding)})"
        )
    return 0


def compare_run(args: argparse.Namespace) -> int:
    """Train char, word, BPE and WordPiece tokenizers with the same vocabulary size on FILE... and compare
    them on a held-out part (every n-th document): vocabulary, tokens per word, bytes per token, length of
    the held-out text in tokens, [UNK] rate, training time and encoding speed."""
    from lmforge.text import Corpus
    from lmforge.tokenizers.compare import compare_kinds, format_table

    for kind in KIND_NAMES:
        _check_vocab_size(kind, args.vocab_size, None)
    if not 0 < args.held_out < 1:
        raise LmforgeError(f"--held-out must be between 0 and 1, got {args.held_out}")
    corpus = Corpus(args.files, field=args.field, column=args.column).check()
    every = max(2, round(1 / args.held_out))
    held_out = [doc for i, doc in enumerate(corpus) if i % every == 0]

    def train_documents():
        return (doc for i, doc in enumerate(corpus) if i % every != 0)

    print(f"corpus: {corpus}; held out: every {every}th document ({len(held_out):,} documents)")
    rows = compare_kinds(
        train_documents,
        held_out,
        args.vocab_size,
        min_frequency=args.min_frequency,
        progress=lambda line: print("  " + line, file=sys.stderr),
    )
    print(format_table(rows))
    return 0


COMMANDS = [
    Command(
        name="tokenizer",
        help="train tokenizers (char, word, BPE, WordPiece, CharBPE, Unigram), encode text, compare the kinds",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
