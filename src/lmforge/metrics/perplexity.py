"""Perplexity and bits per byte: how surprised a language model is by a text.

What this file implements:
  - `perplexity(nll_sum, tokens)` = exp(mean negative log-likelihood per token, in nats);
  - `bits_per_byte(nll_sum, num_bytes)` = total NLL in bits / UTF-8 bytes of the text. Unlike perplexity it
    does not depend on the tokenizer, so a character model and a BPE model compare (nanochat reports it);
  - `sliding_window_nll`: the NLL of a long text under a causal model whose context is shorter than the
    text, as in the Hugging Face perplexity guide: windows of `context` tokens move by `stride`; each
    window scores only the tokens the previous window did not, so every token is predicted once, with
    at least `context - stride` tokens of history. stride == context is the fast, pessimistic estimate
    over disjoint chunks (each chunk's first token has no history and is not scored, as in the guide);
    stride 1 gives every token the most history;
  - `pseudo_log_likelihood`: the same surprise for a masked model (BERT), which cannot predict left to
    right: each token is masked in turn and predicted from both sides (Salazar et al. 2020); one forward
    pass per token, so the masked copies of a window go through in batches.

    >>> round(perplexity(nll_sum=6.931, tokens=10), 3)          # mean NLL ln 2 -> perplexity 2
    2.0
    >>> round(bits_per_byte(nll_sum=6.931, num_bytes=10), 3)     # 10 bits over 10 bytes
    1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LN2 = math.log(2.0)


def perplexity(nll_sum: float, tokens: float) -> float:
    """exp(nll_sum / tokens); NLL in nats. Capped at exp(700) rather than overflowing."""
    if tokens <= 0:
        raise ValueError("perplexity needs at least one token")
    return math.exp(min(nll_sum / tokens, 700.0))


def bits_per_byte(nll_sum: float, num_bytes: float) -> float:
    """Total NLL (nats) converted to bits, per byte of UTF-8 text."""
    if num_bytes <= 0:
        raise ValueError("bits per byte needs at least one byte")
    return nll_sum / (LN2 * num_bytes)


@dataclass
class SlidingWindowResult:
    nll_sum: float  # nats, summed over the predicted tokens
    tokens: int  # tokens predicted: len(ids) - 1 (the first has no history)
    windows: int  # forward passes
    context: int
    stride: int

    @property
    def mean_nll(self) -> float:
        return self.nll_sum / self.tokens

    @property
    def perplexity(self) -> float:
        return perplexity(self.nll_sum, self.tokens)

    def bits_per_byte(self, num_bytes: int) -> float:
        return bits_per_byte(self.nll_sum, num_bytes)


def sliding_window_nll(
    model, ids, *, context: int, stride: int | None = None, device=None
) -> SlidingWindowResult:
    """Summed NLL of token ids (1-D) under `model`, scored window by window.

    `model(input_ids)` takes a (1, T) LongTensor and returns (1, T, V) logits or an object with `.logits`
    (lmforge models and Hugging Face causal LMs both do). Window k covers ids[begin : begin + context]
    with begin = k * stride; it scores the tokens after the previous window's end.
    """
    import torch
    import torch.nn.functional as F

    stride = stride or context
    if context < 2 or not 1 <= stride <= context:
        raise ValueError(
            f"need context >= 2 and 1 <= stride <= context; got context={context}, stride={stride}"
        )
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    if len(ids) < 2:
        raise ValueError("sliding-window perplexity needs at least two tokens")
    device = device or next(model.parameters()).device
    nll_sum = 0.0
    predicted = 0
    windows = 0
    scored_until = 1  # tokens before this index are already scored (token 0 is never predicted)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for begin in range(0, len(ids) - 1, stride):
            end = min(begin + context, len(ids))
            window = ids[begin:end].to(device)[None]  # (1, T)
            output = model(window)
            logits = output if hasattr(output, "shape") else output.logits  # (1, T, V)
            # logits[t] predicts window[t + 1]; score the targets at absolute positions >= scored_until
            first_target = max(scored_until - begin, 1)
            targets = window[0, first_target:]
            scores = logits[0, first_target - 1 : -1].float()
            nll_sum += float(F.cross_entropy(scores, targets, reduction="sum"))
            predicted += len(targets)
            windows += 1
            scored_until = end
            if end == len(ids):
                break
    model.train(was_training)
    return SlidingWindowResult(nll_sum, predicted, windows, context, stride)


def pseudo_log_likelihood(
    model, ids, *, mask_id: int, cls_id, sep_id, context: int, batch_size: int = 32
) -> tuple[float, int]:
    """(summed NLL, tokens scored) of each token when it alone is masked, in windows of `context` tokens
    (with [CLS]/[SEP] around each window when the ids are given). `model(batch).logits` is (N, T, V)."""
    import torch
    import torch.nn.functional as F

    body = context - (cls_id is not None) - (sep_id is not None)
    nll, scored = 0.0, 0
    model.eval()
    with torch.no_grad():
        for begin in range(0, len(ids), body):
            window = ids[begin : begin + body]
            row = ([cls_id] if cls_id is not None else []) + window + ([sep_id] if sep_id is not None else [])
            offset = 1 if cls_id is not None else 0
            row = torch.tensor(row)
            for start in range(0, len(window), batch_size):
                positions = torch.arange(start, min(start + batch_size, len(window))) + offset
                batch = row.repeat(len(positions), 1)  # (N, T): one copy per masked position
                batch[torch.arange(len(positions)), positions] = mask_id
                logits = model(batch).logits[torch.arange(len(positions)), positions].float()  # (N, V)
                nll += float(F.cross_entropy(logits, row[positions], reduction="sum"))
                scored += len(positions)
    return nll, scored
