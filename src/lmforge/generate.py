"""Text generation: from the last position's logits to the next token, again and again.

What is here, in the order the course meets it:
- `GenerationConfig` — the one place for decoding settings; saved as ``generation.json`` in a model
  directory as the model's defaults, overridden per call.
- Logits processors, each the same transformation Hugging Face applies (so results can be compared):
  repetition penalty (CTRL's multiplicative penalty), no-repeat n-gram, temperature, top-k, top-p (nucleus)
  and min-p. `process_logits` applies them in HF's order.
- `generate` — greedy, sampling and beam search for decoder-only and encoder-decoder models, with the
  model's KV cache, batched prompts of different lengths (left padding), EOS and stop strings.
- Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): a draft proposes γ tokens, the model
  scores them all in one forward pass, keeps the longest prefix it agrees with plus one token of its own,
  and the KV caches roll back (`KVCache.crop`). The draft is a small model sharing the tokenizer
  (`draft_model=`) or, with no model at all, an n-gram of the text so far found earlier in it (prompt
  lookup, `prompt_lookup_num_tokens`). Greedy output is the plain greedy output token for token;
  sampling keeps the model's distribution by `speculative_accept`'s rejection rule.
- `stream` / `IncrementalDecoder` — text as it is produced, holding back a byte-level BPE token that
  ends inside a multi-byte UTF-8 character until the character is complete.
- `complete` — many prompts (token ids) in batches, each cut where it ended, with why ("stop": EOS or a stop
  string; "length": max_new_tokens); `token_logprobs` — every token's log-probability under the model.
  `lmforge.pipelines` (TextGeneration, Translation) call these; a continuous-batching engine would sit
  beside them here, taking the same prompts and giving the same `Completion`s.
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
from lmforge.io import write_json

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
    chat_template: str | None = None  # Jinja2 template turning chat messages into a prompt (None: the
    # default of `lmforge.pipelines.generation`); carried over from HF by `lmforge convert --from-hf`
    draft: str | None = None  # a draft model directory for speculative decoding (relative to the model
    # directory in its generation.json); it must share the model's tokenizer. None = no draft
    num_speculative_tokens: int = 4  # γ: tokens the draft proposes per round (the start, when adaptive)
    speculative_schedule: str = "adaptive"  # "adaptive": γ + 2 after a round that kept every draft token,
    # γ - 1 after one that did not (Hugging Face's "heuristic"); "constant": γ stays
    speculative_confidence: float = 0.0  # the draft stops proposing after a token it gives less than this
    # probability (HF's assistant_confidence_threshold; 0 = always γ tokens)
    compile: bool = False  # torch.compile the decoding steps of decoder-only models (rows without padding:
    # the one-token step, a draft's steps, the model's pass over the drafts): the first call of each compiles
    # for ~20-60 s, later ones skip Python overhead
    prompt_lookup_num_tokens: int = 0  # > 0: draft this many tokens by prompt lookup (HF's name; 0 = off)
    prompt_lookup_max_ngram: int = 2  # the longest n-gram prompt lookup matches (HF's default, 2)

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
            (self.num_speculative_tokens >= 1, "num_speculative_tokens must be >= 1"),
            (
                self.speculative_schedule in ("adaptive", "constant"),
                "speculative_schedule must be 'adaptive' or 'constant'",
            ),
            (0 <= self.speculative_confidence < 1, "speculative_confidence must be in [0, 1)"),
            (self.prompt_lookup_num_tokens >= 0, "prompt_lookup_num_tokens must be >= 0 (0 turns it off)"),
            (self.prompt_lookup_max_ngram >= 1, "prompt_lookup_max_ngram must be >= 1"),
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
        return write_json(Path(directory) / GENERATION_FILE, dataclasses.asdict(self), indent=2)

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


# --- decoding -------------------------------------------------------------------------------------------


@dataclass
class GenerationOutput:
    sequences: torch.Tensor  # (B, prompt + new): the prompt (as given, padding included) then the new tokens
    prompt_length: int  # columns of `sequences` that are the prompt (decoder-only) or the start token
    beam_scores: torch.Tensor | None = None  # (B,) length-penalised log-probability of the chosen beam
    drafted: torch.Tensor | None = None  # speculative decoding: (B,) draft tokens proposed to each row
    accepted: torch.Tensor | None = None  # (B,) of them the model agreed with

    @property
    def new_tokens(self) -> torch.Tensor:  # (B, new)
        return self.sequences[:, self.prompt_length :]

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted / drafted tokens over the batch (None without speculation or with nothing drafted)."""
        if self.drafted is None or int(self.drafted.sum()) == 0:
            return None
        return int(self.accepted.sum()) / int(self.drafted.sum())


_MAX_RESERVED = 8192  # positions a cache reserves at most before decoding (it grows past them if needed)


class _Stepper:
    """Runs the model one step at a time with its KV cache, for decoder-only and encoder-decoder models.

    `prefill` feeds the prompt (decoder-only) or encodes the source and feeds the start token
    (encoder-decoder); `step` feeds one new token per row; `reorder` follows beam search's choice of rows.
    Only the last position's logits are computed: the rest are never used.
    """

    def __init__(
        self,
        model,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        expand: int,
        max_new_tokens: int,
        compile: bool = False,
    ):
        self.model = model
        self.encoder_decoder = is_encoder_decoder(model)
        self.compile = compile and not self.encoder_decoder  # the steps through `compiled_step`
        # room for every position up front: the decoding steps then write the cache in place (past the
        # model's context, or for a huge max_new_tokens, the cache doubles its room when it runs out)
        start_length = 1 if self.encoder_decoder else input_ids.shape[1]
        limit = getattr(getattr(model, "config", None), "max_positions", None) or _MAX_RESERVED
        capacity = min(start_length + max_new_tokens, max(start_length, min(limit, _MAX_RESERVED)))
        self.cache = model.new_cache(capacity=capacity)
        self.expand = expand  # rows per input (beams)
        self.input_ids = input_ids.repeat_interleave(expand, 0) if expand > 1 else input_ids
        mask = attention_mask
        if mask is not None and expand > 1:
            mask = mask.repeat_interleave(expand, 0)
        self.mask = mask  # decoder-only: grows by one column per step; encoder-decoder: the source's mask

    def start_tokens(self) -> torch.Tensor:
        """What the output sequences begin with: the prompt, or the decoder start token."""
        if not self.encoder_decoder:
            return self.input_ids
        start = decoder_start_id(self.model)
        return torch.full((self.input_ids.shape[0], 1), start, dtype=torch.long, device=self.input_ids.device)

    def prefill(self, start: torch.Tensor) -> torch.Tensor:
        last = torch.zeros(start.shape, dtype=torch.bool, device=start.device)
        last[:, -1] = True
        if self.encoder_decoder:
            source = self.input_ids[:: self.expand] if self.expand > 1 else self.input_ids
            source_mask = (
                self.mask[:: self.expand] if (self.mask is not None and self.expand > 1) else self.mask
            )
            memory, _ = self.model.encode(source, source_mask)
            self.memory = memory.repeat_interleave(self.expand, 0) if self.expand > 1 else memory
            out = self.model.decode(start, self.memory, self.mask, cache=self.cache, logits_where=last)
        else:
            out = self.model(start, attention_mask=self.mask, cache=self.cache, logits_where=last)
        return out.logits.float()  # (N, V)

    def step(self, next_ids: torch.Tensor) -> torch.Tensor:
        tokens = next_ids[:, None]  # (N, 1)
        if self.encoder_decoder:
            out = self.model.decode(tokens, self.memory, self.mask, cache=self.cache)
        else:
            if self.mask is not None:
                self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
            elif self.compile:
                return compiled_step()(self.model, tokens, self.cache).float()
            out = self.model(tokens, attention_mask=self.mask, cache=self.cache)
        return out.logits[:, -1].float()

    def greedy_step(self, next_ids: torch.Tensor) -> torch.Tensor:
        """`step` then argmax: (N,) ids -> (N,) each row's most likely next id. A greedy draft needs nothing
        else; decoder-only rows without padding take a shorter path (compiled: the argmax is in the graph)."""
        if self.encoder_decoder or self.mask is not None:
            return self.step(next_ids).argmax(-1)
        tokens = next_ids[:, None]
        if self.compile:
            return compiled_step("argmax")(self.model, tokens, self.cache)
        return self.model(tokens, cache=self.cache).logits[:, -1].argmax(-1)

    def reorder(self, rows: torch.Tensor) -> None:
        self.cache.reorder(rows)

    def feed(self, tokens: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Feed (N, T) tokens after those in the cache: logits (N, T, V), or (N, V) of the last one."""
        if last_only and tokens.shape[1] == 1:  # one token: its logits are the only ones computed anyway
            return self.step(tokens[:, 0])
        where = None
        if last_only:
            where = torch.zeros(tokens.shape, dtype=torch.bool, device=tokens.device)
            where[:, -1] = True
        if self.encoder_decoder:
            out = self.model.decode(tokens, self.memory, self.mask, cache=self.cache, logits_where=where)
        else:
            if self.mask is not None:
                self.mask = torch.cat([self.mask, self.mask.new_ones(tokens.shape)], dim=1)
            elif self.compile and not last_only and tokens.shape[1] > 1:  # the target's pass over drafts
                return compiled_step("all")(self.model, tokens, self.cache).float()
            out = self.model(tokens, attention_mask=self.mask, cache=self.cache, logits_where=where)
        return out.logits.float()

    def rollback(self, length: int) -> None:
        """Keep the first `length` positions (rejected draft tokens leave the cache and the mask)."""
        self.cache.crop(length)
        if not self.encoder_decoder and self.mask is not None:
            self.mask = self.mask[:, :length]


_COMPILED_STEPS: dict = {}


def compiled_step(returns: str = "last"):
    """A decoding step, `torch.compile`d once per process (dynamic shapes: one graph for every cache length
    and capacity; each model it runs gets its own). It runs over the same `KVCache` as the eager step —
    there is one cache design — and gives the same logits up to float rounding. `returns`: "last", the
    (N, V) logits of a one-token step; "argmax", its (N,) most likely ids (a greedy draft's step);
    "all", the (N, T, V) logits of T ≥ 2 tokens (speculative decoding's pass over the drafts)."""
    if returns not in _COMPILED_STEPS:
        function = {"last": _last_logits, "argmax": _last_argmax, "all": _all_logits}[returns]
        _COMPILED_STEPS[returns] = torch.compile(function, dynamic=True)
    return _COMPILED_STEPS[returns]


def _last_logits(model, tokens: torch.Tensor, cache) -> torch.Tensor:
    return model(tokens, cache=cache).logits[:, -1]


def _last_argmax(model, tokens: torch.Tensor, cache) -> torch.Tensor:
    return model(tokens, cache=cache).logits[:, -1].argmax(-1)


def _all_logits(model, tokens: torch.Tensor, cache) -> torch.Tensor:
    return model(tokens, cache=cache).logits


def is_encoder_decoder(model) -> bool:
    """Whether `model` encodes a source once and decodes from it (`encode` + `decode`), like Marian."""
    return callable(getattr(model, "encode", None)) and callable(getattr(model, "decode", None))


def decoder_start_id(model) -> int:
    """The first decoder input of an encoder-decoder: decoder_start_token_id, else BOS, else PAD."""
    config = model.config
    start = config.decoder_start_token_id
    if start is None:
        start = config.bos_token_id if config.bos_token_id is not None else config.pad_token_id
    if start is None:
        raise GenerationError("the model's config has no decoder_start_token_id (nor bos/pad) to start from")
    return start


def check_input_ids(model, input_ids: torch.Tensor) -> None:
    """Refuse prompts generation cannot work with: not (batch, length), empty, ids outside the vocabulary."""
    if input_ids.dim() != 2:
        raise GenerationError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
    if input_ids.shape[1] == 0:
        raise GenerationError("the prompt is empty: give at least one token (e.g. the BOS token)")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab):
        raise GenerationError(f"input_ids hold ids outside the model's vocabulary [0, {vocab})")


def resolve_special_ids(model, config: GenerationConfig) -> tuple[list[int], int]:
    """EOS ids that can actually occur (inside the vocabulary) and the id that fills finished rows."""
    model_config = getattr(model, "config", None)
    eos = list(config.eos_token_id)
    if not eos and model_config is not None and getattr(model_config, "eos_token_id", None) is not None:
        eos = [model_config.eos_token_id]
    vocab = getattr(model_config, "vocab_size", None)
    in_vocab = [e for e in eos if vocab is None or 0 <= e < vocab]
    pad = config.pad_token_id
    if pad is None and model_config is not None:
        pad = getattr(model_config, "pad_token_id", None)
    if pad is None:
        pad = eos[0] if eos else 0
    return in_vocab, pad


def stop_string_hit(tokenizer, ids: list[int], stops: Sequence[str]) -> bool:
    """Whether the generated `ids` now end with text that contains a stop string (checked after every new
    token, so only the tail — enough tokens for the longest stop string — is decoded)."""
    longest = max(len(s) for s in stops)
    tail = tokenizer.decode(ids[-(longest + 4) :], skip_special_tokens=False)
    return any(s in tail for s in stops)


def choose_next(scores: torch.Tensor, config: GenerationConfig, generator=None) -> torch.Tensor:
    """(B, V) processed scores -> (B,) next ids: a draw from softmax(scores) when sampling, else the argmax."""
    if config.do_sample:
        return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(1)
    return scores.argmax(-1)


def sampling_generator(config: GenerationConfig, device) -> torch.Generator | None:
    """A generator of its own for seeded sampling (None: the global one), so other draws cannot shift it."""
    if config.do_sample and config.seed is not None:
        return torch.Generator(device=device).manual_seed(config.seed)
    return None


def still_running(unfinished, sequences, prompt_length: int, eos_ids, config: GenerationConfig, tokenizer):
    """Which rows are still unfinished after the last column of `sequences` (EOS, then stop strings)."""
    if eos_ids is not None:
        unfinished = unfinished & ~torch.isin(sequences[:, -1], eos_ids)
    if config.stop_strings and tokenizer is not None:
        rows = sequences[:, prompt_length:].tolist()
        hits = [stop_string_hit(tokenizer, row, config.stop_strings) for row in rows]
        unfinished = unfinished & ~torch.tensor(hits, device=unfinished.device)
    return unfinished


def needs_processing(config: GenerationConfig) -> bool:
    """Whether `process_logits` would change anything: sampling or a penalty (plain greedy: no)."""
    return config.do_sample or config.repetition_penalty != 1.0 or config.no_repeat_ngram_size > 0


def _sample_steps(stepper: _Stepper, config: GenerationConfig, eos: list[int], pad: int, tokenizer):
    """Greedy or sampled decoding; yields (sequences so far, the new column) after every step."""
    sequences = stepper.start_tokens()
    generator = sampling_generator(config, sequences.device)
    eos_ids = torch.tensor(eos, dtype=torch.long, device=sequences.device) if eos else None
    unfinished = torch.ones(sequences.shape[0], dtype=torch.bool, device=sequences.device)
    prompt_length = sequences.shape[1]
    logits = stepper.prefill(sequences)
    for step in range(config.max_new_tokens):
        next_ids = choose_next(process_logits(logits, sequences, config), config, generator)
        next_ids = torch.where(unfinished, next_ids, torch.full_like(next_ids, pad))
        sequences = torch.cat([sequences, next_ids[:, None]], dim=1)
        yield sequences, next_ids
        unfinished = still_running(unfinished, sequences, prompt_length, eos_ids, config, tokenizer)
        if not bool(unfinished.any()) or step == config.max_new_tokens - 1:
            return
        logits = stepper.step(next_ids)


# --- speculative decoding -------------------------------------------------------------------------------
# A round: a draft proposes tokens d_1..d_g; the model reads [last token, d_1..d_g] in one forward pass,
# which gives its distribution at g + 1 positions; the rule keeps d_1..d_n and adds one token of the
# model's own at position n (a correction, or a bonus when all g were kept); the caches drop the rest.
# The model's cache always holds every token but the last one, which the next round feeds first.


def speculative_accept(
    scores: torch.Tensor,
    drafts: torch.Tensor,
    draft_probs: torch.Tensor | None,
    lengths: torch.Tensor,
    do_sample: bool,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which draft tokens to keep, and the model's own token after them.

    scores (B, g + 1, V): the model's processed scores at each draft position and one past the last;
    drafts (B, g); draft_probs (B, g, V): the distributions the draft sampled from (None: drafts copied
    deterministically, as prompt lookup does — a one-hot distribution); lengths (B,): real drafts per row
    (prompt lookup may find fewer than g). Returns (accepted (B,), next (B,)): each row keeps
    drafts[:accepted] and then `next`.

    Greedy: the longest prefix equal to the model's argmax, then the argmax after it — the tokens plain
    greedy decoding would produce. Sampling (Leviathan et al. 2023, Chen et al. 2023): d_j is kept with
    probability min(1, p(d_j) / q(d_j)); at the first rejection the token is drawn from max(p - q, 0)
    renormalised, after all are kept from p at the next position — each token then follows p exactly.

    >>> scores = torch.tensor([[[0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0]]])  # argmax 1, 2, 0
    >>> speculative_accept(scores, torch.tensor([[1, 0]]), None, torch.tensor([2]), do_sample=False)
    (tensor([1]), tensor([2]))
    """
    B, g = drafts.shape
    valid = torch.arange(g, device=drafts.device)[None] < lengths[:, None]  # (B, g)
    if not do_sample:
        target = scores.argmax(-1)  # (B, g + 1)
        agree = (drafts == target[:, :g]) & valid
        accepted = agree.long().cumprod(1).sum(1)
        return accepted, target.gather(1, accepted[:, None]).squeeze(1)
    p = scores.softmax(-1)  # (B, g + 1, V)
    if draft_probs is None:
        draft_probs = torch.nn.functional.one_hot(drafts, p.shape[-1]).to(p.dtype)
    p_draft = p[:, :g].gather(-1, drafts[..., None]).squeeze(-1)  # (B, g)
    q_draft = draft_probs.gather(-1, drafts[..., None]).squeeze(-1)
    uniform = torch.rand(B, g, generator=generator, device=p.device)
    keep = (uniform * q_draft < p_draft) & valid  # r < p / q without dividing by a q of 0
    accepted = keep.long().cumprod(1).sum(1)
    rows = torch.arange(B, device=p.device)
    p_next = p[rows, accepted]  # (B, V)
    q_padded = torch.cat([draft_probs, draft_probs.new_zeros(B, 1, p.shape[-1])], dim=1)
    residual = (p_next - q_padded[rows, accepted]).clamp(min=0)
    rejected = (accepted < lengths)[:, None]
    residual = torch.where(rejected, residual, p_next)
    empty = residual.sum(-1, keepdim=True) <= 0  # p == q up to rounding: nothing left, draw from p
    residual = torch.where(empty, p_next, residual)
    return accepted, torch.multinomial(residual, 1, generator=generator).squeeze(1)


class DraftModel:
    """Proposes tokens with a small model that shares the target's tokenizer, over its own KV cache.

    Its cache holds the tokens it has read (`fed`); before proposing it reads what it has not seen of the
    sequence, and after the round `rollback` drops the positions past the tokens that were kept.
    """

    def __init__(self, model, input_ids, attention_mask, max_new_tokens: int, config: GenerationConfig):
        self.stepper = _Stepper(model, input_ids, attention_mask, 1, max_new_tokens, config.compile)
        self.config = config
        self.fed = 0

    def propose(self, sequences: torch.Tensor, g: int, generator) -> tuple:
        B = sequences.shape[0]
        limit = getattr(self.stepper.model.config, "max_positions", None)
        if limit is not None:  # a draft with a shorter context than the model's drafts less near its end
            g = min(g, limit + 1 - sequences.shape[1])  # it reads up to L + g - 1 positions
        if g <= 0:
            return sequences.new_zeros(B, 0), None, sequences.new_zeros(B)
        processed = needs_processing(self.config)
        greedy = not (self.config.do_sample or processed or self.config.speculative_confidence > 0)
        logits = token = None
        if self.fed == 0:
            self.fed = self.stepper.start_tokens().shape[1]
            logits = self.stepper.prefill(sequences[:, : self.fed])
        if greedy and sequences.shape[1] == self.fed + 1:  # the usual round: one token it has not read
            token = self.stepper.greedy_step(sequences[:, -1])
        elif sequences.shape[1] > self.fed:
            logits = self.stepper.feed(sequences[:, self.fed :], last_only=True)
        self.fed = sequences.shape[1]
        if greedy:  # only the argmax of each step is needed: the shortest path per draft token
            drafts = [token if token is not None else logits.argmax(-1)]
            for _ in range(g - 1):
                drafts.append(self.stepper.greedy_step(drafts[-1]))
                self.fed += 1
            return torch.stack(drafts, 1), None, torch.full((B,), g, device=sequences.device)
        context, drafts, probs = sequences, [], []
        for j in range(g):
            scores = process_logits(logits, context, self.config) if processed else logits
            if self.config.do_sample:
                q = scores.softmax(-1)
                token = torch.multinomial(q, 1, generator=generator).squeeze(1)
                probs.append(q)
            else:
                token = scores.argmax(-1)
            drafts.append(token)
            threshold = self.config.speculative_confidence
            if threshold > 0:  # unsure of this token: the next would likely be rejected, stop here
                confidence = (q if self.config.do_sample else scores.softmax(-1)).gather(1, token[:, None])
                if bool((confidence < threshold).all()):
                    break
            if processed:  # the processors read the text so far (repetition penalty, no-repeat n-grams)
                context = torch.cat([context, token[:, None]], dim=1)
            if j < g - 1:
                logits = self.stepper.step(token)
                self.fed += 1
        draft_probs = torch.stack(probs, 1) if probs else None
        return torch.stack(drafts, 1), draft_probs, torch.full((B,), len(drafts), device=sequences.device)

    def rollback(self, valid: int) -> None:
        """The first `valid` tokens of the sequence are final; forget what the draft read after them."""
        self.fed = min(self.fed, valid)
        self.stepper.rollback(self.fed)


class PromptLookup:
    """Proposes the tokens that followed an earlier occurrence of the sequence's last n-gram (Saxena 2023;
    HF's `prompt_lookup_num_tokens`): n from `max_ngram` down to 1, the earliest occurrence that has a
    continuation, up to `num_tokens` of it. Costs no model call; code and summaries copy their input often.

    >>> lookup = PromptLookup(num_tokens=3, max_ngram=2)
    >>> lookup.find([5, 6, 7, 8, 9, 5, 6], 3)  # "5 6" occurred before, followed by 7 8 9
    [7, 8, 9]
    """

    def __init__(self, num_tokens: int, max_ngram: int, start: torch.Tensor | None = None):
        self.num_tokens, self.max_ngram = num_tokens, max_ngram
        self.start = start  # (B,) first real column of each row (left padding is never matched)

    def find(self, row: list[int], limit: int) -> list[int]:
        length = len(row)
        for n in range(min(self.max_ngram, length - 1), 0, -1):
            tail = row[length - n :]
            for i in range(length - n):
                if row[i : i + n] == tail:
                    return row[i + n : i + n + limit]  # never empty: i + n < length
        return []

    def propose(self, sequences: torch.Tensor, g: int, generator) -> tuple:
        B = sequences.shape[0]
        rows = sequences.tolist()
        found = [
            self.find(row[int(self.start[i]) if self.start is not None else 0 :], g) if g else []
            for i, row in enumerate(rows)
        ]
        width = max(len(f) for f in found)
        drafts = torch.zeros(B, width, dtype=torch.long)
        for i, tokens in enumerate(found):
            drafts[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        lengths = torch.tensor([len(f) for f in found])
        return drafts.to(sequences.device), None, lengths.to(sequences.device)

    def rollback(self, valid: int) -> None:
        pass


def _speculative_steps(stepper, proposer, config, eos, pad, tokenizer, counts, rule=speculative_accept):
    """Speculative greedy or sampled decoding; yields (sequences so far, the new column) for every new
    token, finishing rows (EOS, stop strings, max_new_tokens) exactly as `_sample_steps` does.

    `counts` is a (drafted, accepted) pair of (B,) tensors, added to as rounds run. Rows of a batch keep
    the same number of tokens per round — the fewest any unfinished row accepted — so their caches stay
    one tensor: a row that agreed with more of its drafts keeps them up to that count (they are the tokens
    the model chose, or, sampling, a draw from its distribution), and proposes the rest again.
    """
    sequences = stepper.start_tokens()
    device = sequences.device
    generator = sampling_generator(config, device)
    eos_ids = torch.tensor(eos, dtype=torch.long, device=device) if eos else None
    unfinished = torch.ones(sequences.shape[0], dtype=torch.bool, device=device)
    prompt_length = sequences.shape[1]
    drafted, accepted_total = counts
    if config.max_new_tokens == 0:
        return
    logits = stepper.prefill(sequences)
    pending = choose_next(process_logits(logits, sequences, config), config, generator)[:, None]
    gamma = config.num_speculative_tokens
    if isinstance(proposer, PromptLookup):
        gamma = config.prompt_lookup_num_tokens
    produced = 0
    while True:
        for column in pending.unbind(1):
            next_ids = torch.where(unfinished, column, torch.full_like(column, pad))
            sequences = torch.cat([sequences, next_ids[:, None]], dim=1)
            produced += 1
            yield sequences, next_ids
            unfinished = still_running(unfinished, sequences, prompt_length, eos_ids, config, tokenizer)
            if not bool(unfinished.any()) or produced == config.max_new_tokens:
                return
        # never draft past max_new_tokens: those positions may not exist in the model's position table
        g = min(gamma, config.max_new_tokens - produced - 1)
        drafts, draft_probs, lengths = proposer.propose(sequences, g, generator)
        g = drafts.shape[1]
        length = sequences.shape[1]
        logits = stepper.feed(torch.cat([sequences[:, -1:], drafts], dim=1))  # (B, g + 1, V)
        if needs_processing(config):
            context = torch.cat([sequences, drafts], dim=1)
            scores = torch.stack(
                [process_logits(logits[:, j], context[:, : length + j], config) for j in range(g + 1)], 1
            )
        else:
            scores = logits  # plain greedy: the processors would change nothing
        accepted, correction = rule(scores, drafts, draft_probs, lengths, config.do_sample, generator)
        drafted += torch.where(unfinished, lengths, 0)
        accepted_total += torch.where(unfinished, accepted, 0)
        n = int(accepted[unfinished].min())
        if n < g:  # rows that kept more than n drafts keep draft n too: it is what the model chose there
            correction = torch.where(accepted > n, drafts[:, n], correction)
        pending = torch.cat([drafts[:, :n], correction[:, None]], dim=1)
        stepper.rollback(length + n)  # the kept drafts; the last new token is fed next round
        proposer.rollback(length + n)
        if config.speculative_schedule == "adaptive" and g > 0 and isinstance(proposer, DraftModel):
            gamma = gamma + 2 if n == g else max(1, gamma - 1)


def _beam_search(stepper: _Stepper, config: GenerationConfig, batch: int, eos: list[int], pad: int):
    """Beam search as Hugging Face runs it, so the same weights give the same tokens.

    Each step scores every (beam, token) continuation by its summed log-probability and keeps the best
    2·num_beams (more with several EOS ids). Candidates that end in EOS — or reach the length limit — among
    the top num_beams become finished hypotheses, scored sum log p / new_length ** length_penalty; the best
    num_beams unfinished candidates keep running. It stops when no running beam can beat the worst finished
    one (or, with early_stopping, once num_beams hypotheses are finished).
    """
    K = config.num_beams
    start = stepper.start_tokens()  # (B·K, T)
    device = start.device
    prompt_length = start.shape[1]
    max_length = prompt_length + config.max_new_tokens
    keep = max(2, 1 + len(eos)) * K
    fill = pad if pad else (eos[0] if eos else 0)
    eos_ids = torch.tensor(eos, dtype=torch.long, device=device) if eos else None

    running = torch.full((batch, K, max_length), fill, dtype=torch.long, device=device)
    running[:, :, :prompt_length] = start.view(batch, K, prompt_length)
    running_scores = torch.zeros(batch, K, device=device)
    running_scores[:, 1:] = -1e9  # all beams start identical: only the first may expand at step one
    finished = running.clone()
    finished_scores = torch.full((batch, K), -1e9, device=device)
    finished_lengths = torch.zeros(batch, K, dtype=torch.long, device=device)
    is_finished = torch.zeros(batch, K, dtype=torch.bool, device=device)
    improvable = torch.ones(batch, 1, dtype=torch.bool, device=device)
    top_k_mask = torch.arange(keep, device=device) < K  # only the best K candidates may finish
    batch_offset = torch.arange(batch, device=device)[:, None] * K

    logits = stepper.prefill(start)
    length = prompt_length
    while True:
        log_probs = process_logits(logits.log_softmax(-1), running.view(batch * K, -1)[:, :length], config)
        vocab = log_probs.shape[-1]
        totals = (log_probs.view(batch, K, vocab) + running_scores[:, :, None]).view(batch, K * vocab)
        top_scores, top_index = torch.topk(totals, keep)  # (B, keep), best first
        parent = top_index // vocab
        token = top_index % vocab
        candidates = torch.gather(running, 1, parent[:, :, None].expand(-1, -1, max_length)).clone()
        candidates[:, :, length] = token
        hits = torch.full_like(token, length + 1 >= max_length, dtype=torch.bool)
        if eos_ids is not None:
            hits |= torch.isin(token, eos_ids)

        # the best K candidates that did not stop keep running
        alive = top_scores - hits.float() * 1e9
        chosen = torch.topk(alive, K).indices
        running = torch.gather(candidates, 1, chosen[:, :, None].expand(-1, -1, max_length))
        running_scores = torch.gather(alive, 1, chosen)
        rows = (torch.gather(parent, 1, chosen) + batch_offset).view(-1)

        # candidates that stopped join the finished hypotheses if they beat the current ones
        new_length = length + 1 - prompt_length
        scores = top_scores / (new_length**config.length_penalty)
        if config.early_stopping:
            scores = scores - is_finished.all(-1, keepdim=True).float() * 1e9
        scores = scores - (~improvable).float() * 1e9
        scores = scores - (~(hits & top_k_mask)).float() * 1e9
        merged_scores = torch.cat([finished_scores, scores], dim=1)
        best = torch.topk(merged_scores, K).indices
        finished = torch.gather(
            torch.cat([finished, candidates], 1), 1, best[:, :, None].expand(-1, -1, max_length)
        )
        finished_scores = torch.gather(merged_scores, 1, best)
        lengths = torch.full_like(token, new_length)
        finished_lengths = torch.gather(torch.cat([finished_lengths, lengths], 1), 1, best)
        is_finished = torch.gather(torch.cat([is_finished, hits & top_k_mask], 1), 1, best)

        length += 1
        best_possible = running_scores[:, :1] / ((length - prompt_length) ** config.length_penalty)
        worst = torch.where(is_finished, finished_scores.min(1, keepdim=True).values, -1e9)
        improvable = improvable & (best_possible > worst).any(-1, keepdim=True)
        done = (
            not bool(improvable.any())
            or (config.early_stopping and bool(is_finished.all()))
            or bool(hits.all())
        )
        if done:
            break
        stepper.reorder(rows)
        logits = stepper.step(running[:, :, length - 1].reshape(-1))

    out_length = prompt_length + int(finished_lengths[:, 0].max())
    return finished[:, 0, :out_length], finished_scores[:, 0], prompt_length


@torch.no_grad()
def generate(
    model,
    input_ids: torch.Tensor,
    config: GenerationConfig | None = None,
    attention_mask: torch.Tensor | None = None,
    *,
    tokenizer=None,
    draft_model=None,
    acceptance_rule=speculative_accept,
) -> GenerationOutput:
    """Continue each row of `input_ids` (B, T); left-pad batches of different lengths and pass their mask.

    Decoder-only models return prompt + new tokens; encoder-decoders take the source as `input_ids` and
    return the decoder start token + new tokens, both as (B, prompt + new) in ``.sequences``, as HF does.
    Finished rows are filled with the pad id. `tokenizer` is needed only for stop strings.

    Speculative decoding: `draft_model` (a smaller model of the same kind and tokenizer) proposes
    `config.num_speculative_tokens` tokens per round; `config.prompt_lookup_num_tokens > 0` drafts from the
    text itself instead. The output is the same as without them (greedy: token for token; sampling: in
    distribution), ``.drafted`` / ``.accepted`` count the drafts. `acceptance_rule` decides which drafts
    stay (`speculative_accept`; a test passes a wrong rule to show that its distribution check can fail).
    """
    config = config or GenerationConfig()
    check_input_ids(model, input_ids)
    if config.stop_strings and tokenizer is None:
        raise GenerationError("stop_strings need a tokenizer: pass tokenizer=...")
    was_training = model.training
    model.eval()
    try:
        eos, pad = resolve_special_ids(model, config)
        batch = input_ids.shape[0]
        proposer = speculation(model, input_ids, attention_mask, config, draft_model)
        if config.num_beams > 1:
            stepper = _Stepper(model, input_ids, attention_mask, config.num_beams, config.max_new_tokens)
            sequences, scores, prompt_length = _beam_search(stepper, config, batch, eos, pad)
            return GenerationOutput(sequences, prompt_length, scores)
        stepper = _Stepper(model, input_ids, attention_mask, 1, config.max_new_tokens, config.compile)
        last = stepper.start_tokens()
        prompt_length = last.shape[1]
        if proposer is None:
            steps = _sample_steps(stepper, config, eos, pad, tokenizer)
        else:
            counts = tuple(torch.zeros(batch, dtype=torch.long, device=input_ids.device) for _ in range(2))
            steps = _speculative_steps(
                stepper, proposer, config, eos, pad, tokenizer, counts, acceptance_rule
            )
        for sequences, _ in steps:
            last = sequences
        if proposer is None:
            return GenerationOutput(last, prompt_length)
        return GenerationOutput(last, prompt_length, drafted=counts[0], accepted=counts[1])
    finally:
        model.train(was_training)


def speculation(model, input_ids, attention_mask, config: GenerationConfig, draft_model=None):
    """The drafter `config` and `draft_model` ask for (None: plain decoding), checked against the model.
    Beam search ignores drafts (a model directory may name a draft and decode with beams by default)."""
    if config.prompt_lookup_num_tokens > 0 and draft_model is not None:
        raise GenerationError("prompt lookup and a draft model are two ways to draft: choose one")
    if config.num_beams > 1:  # beams keep several candidates: there is no one text to draft for
        return None
    if config.prompt_lookup_num_tokens > 0:
        start = None
        if attention_mask is not None and not is_encoder_decoder(model):
            start = (attention_mask == 0).sum(1)  # left padding: each row's first real column
        return PromptLookup(config.prompt_lookup_num_tokens, config.prompt_lookup_max_ngram, start)
    if draft_model is None:
        return None
    check_draft(model, draft_model)
    draft_model.eval()
    return DraftModel(draft_model, input_ids, attention_mask, config.max_new_tokens, config)


def name_draft(target: str | os.PathLike, draft_dir: str | os.PathLike) -> str:
    """Write `draft_dir` into the generation.json of the model directory `target`, as a path relative to
    `target` (so the two can move together); returns that path."""
    relative = os.path.relpath(Path(draft_dir).resolve(), Path(target).resolve())
    GenerationConfig.load(target).replace(draft=relative).save(target)
    return relative


def check_draft(model, draft_model) -> None:
    """A draft must be the same kind of model as the target, over the same vocabulary."""
    if is_encoder_decoder(model) != is_encoder_decoder(draft_model):
        kind = "an encoder-decoder" if is_encoder_decoder(model) else "a decoder-only model"
        raise GenerationError(f"the draft must be {kind}, like the model it drafts for")
    vocab, draft_vocab = model.config.vocab_size, draft_model.config.vocab_size
    if vocab != draft_vocab:
        raise GenerationError(
            f"the draft's vocabulary has {draft_vocab} tokens, the model's {vocab}: "
            "a draft must use the model's tokenizer"
        )
    if is_encoder_decoder(model) and decoder_start_id(model) != decoder_start_id(draft_model):
        raise GenerationError(
            "the draft starts decoding from another token than the model: not its tokenizer"
        )


@torch.no_grad()
def stream(
    model, tokenizer, input_ids: torch.Tensor, config: GenerationConfig | None = None, draft_model=None
):
    """Yield the text of one prompt's continuation piece by piece, as it is decoded (batch of 1).

    The pieces joined equal ``tokenizer.decode(generate(...).new_tokens[0])`` for the same settings
    (speculative decoding yields the tokens of a round together).
    """
    config = config or GenerationConfig()
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise GenerationError(f"stream takes one prompt, shape (1, T); got {tuple(input_ids.shape)}")
    if config.num_beams > 1:  # beams change their past tokens: there is nothing final to show until the end
        output = generate(model, input_ids, config, tokenizer=tokenizer)
        yield tokenizer.decode(output.new_tokens[0].tolist())
        return
    was_training = model.training
    model.eval()
    try:
        eos, pad = resolve_special_ids(model, config)
        decoder = IncrementalDecoder(tokenizer)
        stepper = _Stepper(model, input_ids, None, 1, config.max_new_tokens, config.compile)
        proposer = speculation(model, input_ids, None, config, draft_model)
        if proposer is None:
            steps = _sample_steps(stepper, config, eos, pad, tokenizer)
        else:
            counts = tuple(torch.zeros(1, dtype=torch.long, device=input_ids.device) for _ in range(2))
            steps = _speculative_steps(stepper, proposer, config, eos, pad, tokenizer, counts)
        for _, next_ids in steps:  # ends at EOS
            piece = decoder.push(next_ids.tolist())
            if piece:
                yield piece
        tail = decoder.flush()
        if tail:
            yield tail
    finally:
        model.train(was_training)


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


# --- many prompts --------------------------------------------------------------------------------------


@dataclass
class Completion:
    token_ids: list[int]  # the new tokens, up to and including the one that ended the sequence
    finish_reason: str  # "stop": EOS or a stop string; "length": max_new_tokens reached
    drafted_tokens: int | None = None  # speculative decoding: draft tokens proposed (None: it did not run)
    accepted_tokens: int | None = None  # of them, those the model agreed with

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else None


def finish(row: Sequence[int], config: GenerationConfig, eos: Sequence[int], tokenizer=None) -> Completion:
    """Cut one row of `generate`'s new tokens where it ended: after its first EOS, or after the token that
    completed a stop string (what follows is the pad filling of a finished row).

    >>> finish([5, 7, 2, 2, 2], GenerationConfig(max_new_tokens=5), eos=[2])  # doctest: +ELLIPSIS
    Completion(token_ids=[5, 7, 2], finish_reason='stop', ...)
    """
    eos = set(eos)
    stops = config.stop_strings if tokenizer is not None else []
    longest = max((len(s) for s in stops), default=0)
    for i, token in enumerate(row):
        if token in eos:
            return Completion(list(row[: i + 1]), "stop")
        if stops:
            tail = tokenizer.decode(
                list(row[max(0, i + 1 - (longest + 4)) : i + 1]), skip_special_tokens=False
            )
            if any(s in tail for s in stops):
                return Completion(list(row[: i + 1]), "stop")
    return Completion(list(row), "length")


def _pad_rows(rows: Sequence[Sequence[int]], pad: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) ids and mask of rows of different lengths, padded on the left (decoder-only prompts: every
    row's last column is its last real token) or on the right (encoder inputs)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        columns = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, columns] = torch.tensor(list(row), dtype=torch.long)
        mask[i, columns] = 1
    return ids, mask


@torch.no_grad()
def complete(
    model,
    prompts: Sequence[Sequence[int]],
    config: GenerationConfig,
    *,
    tokenizer=None,
    batch_size: int = 16,
    longest_first: bool = False,
    draft_model=None,
) -> list[Completion]:
    """Continue every prompt (token ids), `batch_size` at a time, in the order given or longest first
    (less padding; the results keep the order given). Decoder-only prompts are left-padded; an
    encoder-decoder's sources right-padded. `tokenizer` is needed for stop strings.

    A batch of one decoder-only prompt runs without a mask, as `generate` does for a single prompt.
    `draft_model` (or `config.prompt_lookup_num_tokens`): speculative decoding, see `generate`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    encoder_decoder = callable(getattr(model, "encode", None))
    eos = resolve_special_ids(model, config)[0]
    order = list(range(len(prompts)))
    if longest_first:
        order.sort(key=lambda i: -len(prompts[i]))
    results: list[Completion | None] = [None] * len(prompts)
    for first in range(0, len(order), batch_size):
        rows = order[first : first + batch_size]
        ids, mask = _pad_rows([prompts[r] for r in rows], model.config.pad_id(), not encoder_decoder)
        keep_mask = encoder_decoder or len(rows) > 1
        output = generate(
            model,
            ids,
            config,
            attention_mask=mask if keep_mask else None,
            tokenizer=tokenizer,
            draft_model=draft_model,
        )
        for i, (row, new) in enumerate(zip(rows, output.new_tokens.tolist(), strict=True)):
            results[row] = finish(new, config, eos, tokenizer)
            if output.drafted is not None:
                results[row].drafted_tokens = int(output.drafted[i])
                results[row].accepted_tokens = int(output.accepted[i])
    return results  # type: ignore[return-value]


@torch.no_grad()
def token_logprobs(model, rows: Sequence[Sequence[int]], top_k: int = 0):
    """Each token's log-probability given the tokens before it, under the model's own distribution (raw
    logits: no temperature or filtering), for a decoder-only model. One forward pass over the rows,
    right-padded. Returns per row (logprobs (T,) with NaN for the first token, top ids (T, k), top
    log-probabilities (T, k)) as CPU tensors; position t's top-k is the distribution that chose token t.
    """
    ids, mask = _pad_rows(rows, model.config.pad_id(), left=False)
    device = next(model.parameters()).device
    logits = model(ids.to(device), attention_mask=mask.to(device)).logits.float()  # (B, T, V)
    logprobs = logits.log_softmax(-1).cpu()
    results = []
    for i, row in enumerate(rows):
        n = len(row)
        previous = logprobs[i, : n - 1]  # (n - 1, V): the distributions of tokens 1..n-1
        chosen = torch.full((n,), float("nan"))
        chosen[1:] = previous.gather(1, ids[i, 1:n, None]).squeeze(1)
        k = min(top_k, logprobs.shape[-1])
        values = torch.full((n, k), float("nan"))
        indices = torch.full((n, k), -1, dtype=torch.long)
        if k and n > 1:
            top = previous.topk(k, dim=-1)
            values[1:], indices[1:] = top.values, top.indices
        results.append((chosen, indices, values))
    return results


class GenerationError(LmforgeError):
    """Inputs that generation cannot work with (shapes, ids outside the vocabulary)."""
