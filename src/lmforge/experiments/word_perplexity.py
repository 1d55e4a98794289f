"""Word-level perplexity: language models with the same vocabulary scored on the same words.

    exp(total negative log-likelihood / words)

"Words" are WikiText's: the whitespace-separated words of each non-empty line plus one end of line — the
count the WikiText-2 literature divides by, whatever a model's tokens are. Every model here reads the
same stream of word-tokenizer ids: the lines of the file, each followed by the end-of-text token (which
plays WikiText's `<eos>`), with one end-of-text before the first line as context. Where the tokenizer
cuts a word into several tokens ("@-@" -> "@", "-", "@"), the word costs the sum of its tokens, so the
division by words keeps models with different cuts comparable.

What this file implements:
  - `token_stream(path, tokenizer)`: (ids, words) of a text file, as described;
  - `kneser_ney_nll(train_ids, ids, vocab_size, order)`: a Kneser-Ney model counted on the training stream,
    the summed NLL of ids[1:] each given the tokens before it;
  - `bilm_nll(model, ids, char_table)`: an ELMo model's summed NLL of the same tokens for its forward LM
    (each token given up to `context` + `stride` tokens before it) and for its backward LM (each token of
    ids[:-1] given the tokens after it), over overlapping windows;
  - `word_perplexity(nll, words)`.

    ids, words = token_stream("valid.txt", tokenizer)
    word_perplexity(kneser_ney_nll(train_ids, ids, tokenizer.vocab_size), words)
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from lmforge.errors import ConfigError, MissingFileError


def token_stream(path: str | os.PathLike, tokenizer, eot: str = "<|endoftext|>") -> tuple[np.ndarray, int]:
    """(ids, words): [eot] + the ids of each non-empty line followed by eot; words = whitespace words of
    those lines + one per line."""
    eot_id = tokenizer.token_to_id(eot)
    if eot_id is None:
        raise ConfigError(f"the tokenizer has no {eot} token to end each line with")
    try:
        lines = [line for line in open(path, encoding="utf-8").read().splitlines() if line.strip()]
    except FileNotFoundError:
        raise MissingFileError(f"{path} not found") from None
    ids: list[int] = [eot_id]
    words = 0
    for encoding, line in zip(tokenizer.encode_batch(lines, add_special_tokens=False), lines, strict=True):
        ids.extend(encoding.ids)
        ids.append(eot_id)
        words += len(line.split()) + 1
    return np.asarray(ids, dtype=np.int64), words


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
