"""Word-level perplexity: language models with the same vocabulary scored on the same words.

    exp(total negative log-likelihood / words)

"Words" are WikiText's: the whitespace-separated words of each non-empty line plus one end of line — the
count the WikiText-2 literature divides by, whatever a model's tokens are. Every model here reads the
same stream of word-tokenizer ids: the lines of the file, each followed by the end-of-text token (which
plays WikiText's `<eos>`), with one end-of-text before the first line as context. Where the tokenizer
cuts a word into several tokens ("@-@" -> "@", "-", "@"), the word costs the sum of its tokens, so the
division by words keeps models with different cuts comparable.

A causal LM with its own subword tokenizer (the GPT presets' byte-level BPE) reads the same lines as text:
each non-empty line followed by "\n" — the newline is its end of line, the token it saw at every line end
in training (`unit: file` keeps the file's newlines) — and one end-of-text before the first line, so the
first token is predicted too. Its total NLL over that text divided by the same word count is comparable
with the rows above it: every character of every word, and each end of line, is paid for once. A
tokenizer that cannot give the text back exactly (characters outside a character vocabulary, words that
become `[UNK]`, whitespace it drops) is refused: its NLL would leave parts of words unpaid.

What this file implements:
  - `text_lines(path)`, `wikitext_words(lines)`: the non-empty lines of a file and their word count;
  - `token_stream(path, tokenizer)`: (ids, words) of a text file, as described;
  - `kneser_ney_nll(train_ids, ids, vocab_size, order)`: a Kneser-Ney model counted on the training stream,
    the summed NLL of ids[1:] each given the tokens before it;
  - `bilm_nll(model, ids, char_table)`: an ELMo model's summed NLL of the same tokens for its forward LM
    (each token given up to `context` + `stride` tokens before it) and for its backward LM (each token of
    ids[:-1] given the tokens after it), over overlapping windows;
  - `causal_stream(lines, tokenizer)`: a causal LM's ids of the lines as text, refused when lossy;
  - `causal_lm_nll(model, ids, context, stride)`: its summed NLL of ids[1:] in sliding windows;
  - `score_causal_lm(directory, path)`: both for a model directory (a GPT), with the word count;
  - `word_perplexity(nll, words)`.

    ids, words = token_stream("valid.txt", tokenizer)
    word_perplexity(kneser_ney_nll(train_ids, ids, tokenizer.vocab_size), words)
    score = score_causal_lm("runs/gpt-bpe-wikitext2/model", "valid.txt")
    word_perplexity(score.nll, score.words)
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from lmforge.errors import ConfigError, MissingFileError

END_OF_TEXT = "<|endoftext|>"
LINE_END = "\n"  # a causal LM's end of line: what its training text had there


def text_lines(path: str | os.PathLike) -> list[str]:
    """The non-empty lines of a UTF-8 file, as they are (leading and trailing spaces kept)."""
    try:
        text = open(path, encoding="utf-8").read()
    except FileNotFoundError:
        raise MissingFileError(f"{path} not found") from None
    return [line for line in text.splitlines() if line.strip()]


def wikitext_words(lines: list[str]) -> int:
    """WikiText's word count: the whitespace words of each line plus one end of line."""
    return sum(len(line.split()) + 1 for line in lines)


def token_stream(path: str | os.PathLike, tokenizer, eot: str = END_OF_TEXT) -> tuple[np.ndarray, int]:
    """(ids, words): [eot] + the ids of each non-empty line followed by eot; words = whitespace words of
    those lines + one per line."""
    eot_id = tokenizer.token_to_id(eot)
    if eot_id is None:
        raise ConfigError(f"the tokenizer has no {eot} token to end each line with")
    lines = text_lines(path)
    ids: list[int] = [eot_id]
    for encoding in tokenizer.encode_batch(lines, add_special_tokens=False):
        ids.extend(encoding.ids)
        ids.append(eot_id)
    return np.asarray(ids, dtype=np.int64), wikitext_words(lines)


def word_perplexity(nll: float, words: int) -> float:
    return math.exp(nll / words)


def kneser_ney_nll(train_ids: np.ndarray, ids: np.ndarray, vocab_size: int, order: int = 3) -> float:
    """Summed NLL of ids[1:] (each given the tokens before it) under Kneser-Ney counted on train_ids."""
    from lmforge.model.ngram import KneserNeyLM

    model = KneserNeyLM.fit(train_ids, vocab_size, order=order)
    return float(-model.log_probs(ids)[1:].sum())


@dataclass
class BiLMScore:
    forward_nll: float  # summed over ids[1:], each given the tokens before it
    backward_nll: float  # summed over ids[:-1], each given the tokens after it
    tokens: int  # how many tokens each direction scored: len(ids) - 1


def bilm_nll(
    model,
    ids: np.ndarray,
    char_table: np.ndarray,
    *,
    context: int = 64,
    stride: int = 128,
    batch_size: int = 16,
) -> BiLMScore:
    """Both directions of an `ELMoModel` on one token stream. Targets are scored in chunks of `stride`;
    each chunk's window adds `context` tokens on either side, so every target sees at least `context`
    tokens of its own side (fewer only at the stream's ends)."""
    import torch

    if context < 1 or stride < 1:
        raise ConfigError(f"context and stride must be at least 1, got {context} and {stride}")
    N = len(ids)
    windows = []  # (first, end of window, first target, end of targets)
    for start in range(1, N, stride):
        stop = min(start + stride, N)
        windows.append((max(0, start - context), min(N, stop + context), start, stop))
    device = next(model.parameters()).device
    totals = np.zeros(2, dtype=np.float64)
    model.eval()
    for b in range(0, len(windows), batch_size):
        batch = windows[b : b + batch_size]
        longest = max(f - a for a, f, _, _ in batch)
        tokens = np.zeros((len(batch), longest), dtype=np.int64)
        forward_targets = np.zeros_like(tokens)
        backward_targets = np.zeros_like(tokens)
        forward_mask = np.zeros(tokens.shape, dtype=bool)
        backward_mask = np.zeros(tokens.shape, dtype=bool)
        for row, (a, f, s, e) in enumerate(batch):
            tokens[row, : f - a] = ids[a:f]
            forward_targets[row, : f - a - 1] = ids[a + 1 : f]  # position t predicts t + 1
            backward_targets[row, 1 : f - a] = ids[a : f - 1]  # position t predicts t - 1
            forward_mask[row, s - 1 - a : e - 1 - a] = True  # targets s .. e-1
            backward_mask[row, s - a : e - a] = True  # targets s-1 .. e-2
        chars = torch.from_numpy(char_table[tokens]).to(device)
        lengths = torch.tensor([f - a for a, f, _, _ in batch], device=device)
        with torch.no_grad():
            out = model(
                chars,
                lengths,
                forward_targets=torch.from_numpy(forward_targets).to(device),
                backward_targets=torch.from_numpy(backward_targets).to(device),
            )
        totals[0] += out.forward_nll.double().cpu().numpy()[forward_mask].sum()
        totals[1] += out.backward_nll.double().cpu().numpy()[backward_mask].sum()
    return BiLMScore(float(totals[0]), float(totals[1]), N - 1)


def causal_stream(lines: list[str], tokenizer, *, name: str = "the model") -> np.ndarray:
    """[end-of-text] + the ids of the lines as one text, each line followed by "\\n". Refused, in one line,
    when the tokenizer cannot give that text back exactly: its NLL would not cover every character."""
    eot_id = tokenizer.token_to_id(END_OF_TEXT)
    kind = f"{type(tokenizer).__name__}, {tokenizer.vocab_size:,} tokens"
    if eot_id is None:
        raise ConfigError(
            f"{name}: its tokenizer ({kind}) has no {END_OF_TEXT} token to predict the text's first token after"
        )
    text = "".join(line + LINE_END for line in lines)
    encoding = tokenizer.encode(text, add_special_tokens=False)
    ids = encoding.ids
    special = {tokenizer.token_to_id(token) for token in tokenizer.special_tokens}
    lost = Counter(
        text[a:b] for i, (a, b) in zip(ids, encoding.offsets, strict=True) if i in special
    )  # [UNK]s: the pieces of text they stand for
    if lost:
        count = sum(lost.values())
        examples = ", ".join(repr(piece) for piece, _ in lost.most_common(8))
        unknown = tokenizer.id_to_token(next(i for i in ids if i in special))
        raise ConfigError(
            f"{name}: its tokenizer ({kind}) cannot represent the text losslessly: {count:,} of its "
            f"{len(ids):,} tokens are {unknown} (for {examples}{', ...' if len(lost) > 8 else ''}), so their "
            "words would not be scored"
        )
    decoded = tokenizer.decode(ids, skip_special_tokens=False)
    if decoded != text:
        at = next(
            (i for i, (a, b) in enumerate(zip(text, decoded, strict=False)) if a != b),
            min(len(text), len(decoded)),
        )
        raise ConfigError(
            f"{name}: its tokenizer ({kind}) does not give the text back (decoding differs from character "
            f"{at:,}: {text[at : at + 24]!r} came back as {decoded[at : at + 24]!r}), so the text cannot be "
            "scored losslessly"
        )
    return np.asarray([eot_id, *ids], dtype=np.int64)


def causal_lm_nll(model, ids: np.ndarray, *, context: int | None = None, stride: int | None = None):
    """Summed NLL of ids[1:] under a causal LM (`SlidingWindowResult`): windows of `context` tokens (default:
    the model's) moving by `stride` (default: half of them), each token scored once with at least
    context - stride tokens before it (all of them in the first window); stride < context, so that no token
    goes unscored."""
    from lmforge.metrics.perplexity import sliding_window_nll

    limit = model.config.max_positions
    context = context or limit
    if not 2 <= context <= limit:
        raise ConfigError(f"context must be between 2 and the model's {limit} tokens, got {context}")
    stride = stride or max(1, context // 2)
    if not 1 <= stride < context:  # stride == context leaves each window's first token unscored
        raise ConfigError(
            f"stride must be at least 1 and below the context ({context}) so that every token is scored, "
            f"got {stride}"
        )
    return sliding_window_nll(model, ids, context=context, stride=stride)


@dataclass
class CausalScore:
    nll: float  # summed over every token of the text, the first one given end-of-text
    tokens: int  # the model's tokens scored (line ends included)
    words: int  # WikiText's words of the same lines
    bytes: int  # UTF-8 bytes of the text (line ends included)
    windows: int
    context: int
    stride: int
    model: object  # the model scored, for its description

    @property
    def word_perplexity(self) -> float:
        return word_perplexity(self.nll, self.words)

    @property
    def token_perplexity(self) -> float:
        return math.exp(self.nll / self.tokens)

    @property
    def bits_per_byte(self) -> float:
        return self.nll / (math.log(2) * self.bytes)


def score_causal_lm(
    directory: str | os.PathLike,
    path: str | os.PathLike,
    *,
    context: int | None = None,
    stride: int | None = None,
    name: str | None = None,
) -> CausalScore:
    """A causal LM model directory (a GPT, or a Hugging Face checkpoint `lmforge convert` reads) on the
    non-empty lines of `path`, with its own tokenizer; the tokenizer is checked before the weights load."""
    from lmforge.model_source import (
        base_tokenizer,
        load_model_source,
        require_source_kind,
        resolve_model_source,
    )

    name = name or str(directory)
    source = resolve_model_source(str(directory), name=name)
    _, tokenizer = base_tokenizer(source, name=name)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    lines = text_lines(path)
    ids = causal_stream(lines, tokenizer, name=name)
    require_source_kind(str(directory), {"decoder": None}, purpose="score text left to right", name=name)
    model, _ = load_model_source(str(directory), name=name)
    result = causal_lm_nll(model, ids, context=context, stride=stride)
    text_bytes = sum(len((line + LINE_END).encode("utf-8")) for line in lines)
    return CausalScore(
        result.nll_sum,
        result.tokens,
        wikitext_words(lines),
        text_bytes,
        result.windows,
        result.context,
        result.stride,
        model,
    )
