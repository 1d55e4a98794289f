"""Text generation: from the last position's logits to the next token, again and again.

What is here, in the order the course meets it:
- `GenerationConfig` — the one place for decoding settings; saved as ``generation.json`` in a model
  directory as the model's defaults, overridden per call.
- Logits processors, each the same transformation Hugging Face applies (so results can be compared):
  repetition penalty (CTRL's multiplicative penalty), no-repeat n-gram, temperature, top-k, top-p (nucleus)
  and min-p. `process_logits` applies them in HF's order.
- `generate` — greedy, sampling and beam search for decoder-only and encoder-decoder models, with the
  model's KV cache, batched prompts of different lengths (left padding), EOS and stop strings.
- `stream` / `IncrementalDecoder` — text as it is produced, holding back a byte-level BPE token that
  ends inside a multi-byte UTF-8 character until the character is complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lmforge.errors import ConfigError, LmforgeError

GENERATION_FILE = "generation.json"


@dataclass
class GenerationConfig:
    max_new_tokens: int = 100  # upper bound on new tokens per sequence
    temperature: float = 1.0  # 0 means greedy (argmax); otherwise logits are divided by it before sampling
    top_k: int = 0  # keep the k most likely tokens (0 = off)
    top_p: float = 1.0  # keep the smallest set whose probability reaches p (1.0 = off)
    min_p: float = 0.0  # drop tokens less likely than min_p x the top token's probability (0 = off)
    repetition_penalty: float = 1.0  # > 1 discourages tokens already in the sequence (CTRL; 1.0 = off)
    no_repeat_ngram_size: int = 0  # never produce an n-gram twice (0 = off)
    num_beams: int = 1  # > 1 switches to beam search (deterministic)
    length_penalty: float = 1.0  # beam score = sum log p / length ** length_penalty
    early_stopping: bool = False  # beam search stops once num_beams hypotheses are finished
    eos_token_id: list[int] = field(
        default_factory=list
    )  # ids that end a sequence (out-of-vocab ids never occur)
    pad_token_id: int | None = None  # fills finished sequences; defaults to the first EOS id, else 0
    stop_strings: list[str] = field(default_factory=list)  # text that ends a sequence (kept in the output)
    seed: int | None = None  # makes sampling reproducible

    def __post_init__(self):
        if isinstance(self.eos_token_id, int):
            self.eos_token_id = [self.eos_token_id]
        if isinstance(self.stop_strings, str):
            self.stop_strings = [self.stop_strings]
        checks = [
            (self.max_new_tokens >= 0, "max_new_tokens must be >= 0"),
            (self.temperature >= 0, "temperature must be >= 0 (0 means greedy)"),
            (self.top_k >= 0, "top_k must be >= 0 (0 turns it off)"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (0 <= self.min_p <= 1, "min_p must be in [0, 1]"),
            (self.repetition_penalty > 0, "repetition_penalty must be > 0 (1.0 turns it off)"),
            (self.no_repeat_ngram_size >= 0, "no_repeat_ngram_size must be >= 0"),
            (self.num_beams >= 1, "num_beams must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def do_sample(self) -> bool:
        return self.temperature > 0 and self.num_beams == 1

    def replace(self, **changes) -> GenerationConfig:
        """A copy with `changes` applied; `None` values are ignored (handy for CLI options left unset)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def save(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / GENERATION_FILE
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(dataclasses.asdict(self), handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> GenerationConfig:
        """The defaults saved in a model directory, or the class defaults when it has none."""
        from lmforge.config import from_dict

        path = Path(directory) / GENERATION_FILE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        return from_dict(cls, data, source=str(path))


# --- logits processors --------------------------------------------------------------------------------
# Each takes scores (B, V) and the sequences so far (B, T) and returns new scores. Removed tokens get -inf.


def repetition_penalty(scores: torch.Tensor, input_ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty on every token already in the sequence: positive logits / penalty, negative x penalty.

    >>> repetition_penalty(torch.tensor([[2.0, -2.0, 1.0]]), torch.tensor([[0, 1, 1]]), 2.0)
    tensor([[ 1., -4.,  1.]])
    """
    seen = torch.gather(scores, 1, input_ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, input_ids, seen)


def no_repeat_ngram(scores: torch.Tensor, input_ids: torch.Tensor, size: int) -> torch.Tensor:
    """Ban every token that would complete an n-gram already present in the sequence."""
    length = input_ids.shape[1]
    if length < size:
        return scores
    banned = torch.zeros(scores.shape[0], scores.shape[1] + 1, dtype=torch.bool, device=scores.device)
    windows = input_ids.unfold(1, size, 1)  # (B, T - size + 1, size)
    prefix = input_ids[:, length - size + 1 :]  # the last size - 1 tokens
    matches = (windows[..., :-1] == prefix.unsqueeze(1)).all(-1)
    # A matching window bans its last token; non-matches go to a spare column past the vocabulary.
    spare = scores.shape[1]
    banned.scatter_(1, torch.where(matches, windows[..., -1].clamp(max=spare), spare), True)
    return scores.masked_fill(banned[:, :spare], float("-inf"))


def top_k_filter(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest scores (ties with the k-th are kept too)."""
    k = min(max(k, 1), scores.shape[-1])
    kth = torch.topk(scores, k).values[..., -1:]
    return scores.masked_fill(scores < kth, float("-inf"))


def top_p_filter(scores: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus: keep the most likely tokens whose probabilities sum to at least p (always the top one)."""
    ascending, order = torch.sort(scores, descending=False)
    cumulative = ascending.softmax(-1).cumsum(-1)
    remove = cumulative <= 1 - p
    remove[..., -1:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), float("-inf"))


def min_p_filter(scores: torch.Tensor, min_p: float) -> torch.Tensor:
    """Drop tokens whose probability is below min_p x the most likely token's probability."""
    probs = scores.softmax(-1)
    remove = probs < min_p * probs.amax(-1, keepdim=True)
    remove.scatter_(-1, probs.argmax(-1, keepdim=True), False)
    return scores.masked_fill(remove, float("-inf"))


def process_logits(scores: torch.Tensor, input_ids: torch.Tensor, config: GenerationConfig) -> torch.Tensor:
    """Apply the configured processors in Hugging Face's order: penalties first, then the sampling warpers."""
    if config.repetition_penalty != 1.0:
        scores = repetition_penalty(scores, input_ids, config.repetition_penalty)
    if config.no_repeat_ngram_size > 0:
        scores = no_repeat_ngram(scores, input_ids, config.no_repeat_ngram_size)
    if config.do_sample:
        if config.temperature != 1.0:
            scores = scores / config.temperature
        if config.top_k > 0:
            scores = top_k_filter(scores, config.top_k)
        if config.top_p < 1.0:
            scores = top_p_filter(scores, config.top_p)
        if config.min_p > 0.0:
            scores = min_p_filter(scores, config.min_p)
    return scores


# --- streaming text ------------------------------------------------------------------------------------


class IncrementalDecoder:
    """Turns a growing list of token ids into text pieces, safely.

    A byte-level BPE token can end in the middle of a multi-byte UTF-8 character ("é" is two bytes that may
    be two tokens); decoding it alone gives U+FFFD. The piece is held back until the character completes,
    so the concatenated pieces always equal ``tokenizer.decode(all_ids)``.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self.emitted = ""

    def push(self, ids: Sequence[int]) -> str:
        self.ids.extend(int(i) for i in ids)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=self.skip_special_tokens)
        if text.endswith("\ufffd"):  # an unfinished character: wait for its remaining bytes
            return ""
        return self._emit(text)

    def flush(self) -> str:
        return self._emit(self.tokenizer.decode(self.ids, skip_special_tokens=self.skip_special_tokens))

    def _emit(self, text: str) -> str:
        if not text.startswith(self.emitted):  # decoders that rewrite earlier text (rare): emit the tail
            common = os.path.commonprefix([text, self.emitted])
            piece = text[len(common) :]
        else:
            piece = text[len(self.emitted) :]
        self.emitted = text
        return piece


class GenerationError(LmforgeError):
    """Inputs that generation cannot work with (shapes, ids outside the vocabulary)."""
