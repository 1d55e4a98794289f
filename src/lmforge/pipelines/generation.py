"""`TextGeneration`: a decoder-only model continuing prompts, streaming text and answering chats.

    from lmforge.pipelines import TextGeneration
    pipe = TextGeneration.load("runs/quickstart/model")
    pipe("def fib(n):", max_new_tokens=20, temperature=0).text
    for piece in pipe.stream("import ", max_new_tokens=20): print(piece, end="")
    pipe.chat([{"role": "user", "content": "Hello"}], max_new_tokens=20).text

Every `GenerationConfig` field can be given per call (temperature, top_k, top_p, min_p, repetition_penalty,
no_repeat_ngram_size, num_beams, max_new_tokens, stop / stop_strings, seed, ...); the model directory's
generation.json gives the defaults. Speculative decoding: `draft=DIR` (a small model on the same tokenizer;
generation.json may name one, relative to the model directory) with `num_speculative_tokens=γ`, or
`prompt_lookup_num_tokens=N` (drafts copied from the text itself); the text is the same as without them,
and each result counts its drafted and accepted tokens. `logprobs=k` adds each generated token's log-probability and the k most
likely tokens at each step; `echo=True` adds the prompt's own token log-probabilities. Log-probabilities are
the model's raw distribution (before temperature and filtering), from one scoring pass after decoding.

Chat: messages ({"role", "content"}) become a prompt through the model's chat template (`chat_template` in
generation.json, a Jinja2 string; `lmforge convert --from-hf` carries a checkpoint's over), else through
`DEFAULT_CHAT_TEMPLATE`, which gives "User: Hello\\nAssistant:".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import ConfigError, LmforgeError
from lmforge.pipelines.base import Pipeline, one_or_many, with_draft_path

DEFAULT_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m.role | capitalize }}: {{ m.content }}\n{% endfor %}Assistant:"
)
OPTION_ALIASES = {"stop": "stop_strings"}  # the OpenAI name for stop strings


@dataclass
class TokenLogprob:
    token: str  # the token's text (its decoding alone)
    token_id: int
    logprob: float


@dataclass
class TextGenerationResult:
    text: str  # the continuation (without the prompt)
    token_ids: list[int]  # the new tokens, the EOS that ended them included
    finish_reason: str  # "stop" (EOS or a stop string) or "length" (max_new_tokens reached)
    prompt_tokens: int
    completion_tokens: int
    logprobs: list[float] | None = None  # with logprobs=k: one per token of token_ids
    top_logprobs: list[list[TokenLogprob]] | None = None  # with logprobs=k: the k most likely, per step
    prompt_logprobs: list[float | None] | None = None  # with echo=True: per prompt token (None for the first)
    drafted_tokens: int | None = None  # speculative decoding (draft or prompt lookup): tokens drafted
    accepted_tokens: int | None = None  # of them, those the model kept (None: no speculation)
    acceptance_rate: float | None = None  # accepted / drafted (None without speculation)


class TextGeneration(Pipeline):
    task = "generation"
    kinds = {"decoder": None}
    purpose = "generate text"
    hint = (
        "an encoder-decoder translates (lmforge.pipelines.Translation, `lmforge translate`); an encoder "
        "(BERT) fills in masked tokens: `lmforge perplexity` scores text with it"
    )

    def __init__(self, model, tokenizer, defaults=None, *, source: str = "", log=None):
        from lmforge.generate import GenerationConfig

        super().__init__(model, tokenizer, source=source)
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.defaults = defaults or GenerationConfig()
        self.log = log  # called with a note when max_new_tokens is cut to the model's context

    @classmethod
    def directory_options(cls, directory: Path) -> dict:
        from lmforge.generate import GenerationConfig

        return {"defaults": with_draft_path(GenerationConfig.load(directory), directory)}

    # --- settings ------------------------------------------------------------------------------------------

    def settings(self, **options):
        """The model's defaults with `options` (GenerationConfig fields; `stop` = stop_strings) applied."""
        from lmforge.generate import GenerationConfig

        names = {f.name for f in dataclasses.fields(GenerationConfig)}
        changes = {}
        for key, value in options.items():
            name = OPTION_ALIASES.get(key, key)
            if name not in names:
                raise ConfigError(f"unknown generation option {key!r}; options: {', '.join(sorted(names))}")
            changes[name] = value
        try:
            return self.defaults.replace(**changes)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad generation option: {exc}") from None

    def encode(self, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt, checked against the model's context."""
        with self.tokenizer_lock:
            rows = [self.tokenizer.encode(p).ids for p in prompts]
        limit = self.model.config.max_positions
        for prompt, ids in zip(prompts, rows, strict=True):
            if not ids:
                raise LmforgeError(f"prompt {prompt!r} encodes to no tokens; give some text to continue")
            if len(ids) >= limit:
                raise LmforgeError(
                    f"prompt {prompt[:40]!r}... is {len(ids)} tokens; the model's context is {limit}"
                )
        return rows

    def fit_to_context(self, config, prompt_length: int):
        """Learned position tables end at max_positions: never ask for more new tokens than fit."""
        room = self.model.config.max_positions - prompt_length
        if config.max_new_tokens > room:
            if self.log is not None:
                self.log(f"note: generating {room} new tokens, all the model's context leaves")
            return config.replace(max_new_tokens=room)
        return config

    # --- calls ---------------------------------------------------------------------------------------------

    def __call__(
        self, prompts, *, batch_size: int = 16, logprobs: int | None = None, echo: bool = False, **options
    ):
        """Continue a prompt (→ one `TextGenerationResult`) or a list of prompts (→ a list), `batch_size`
        at a time, in the order given (each batch left-padded to its longest prompt)."""
        from lmforge.generate import complete

        items, single = one_or_many(prompts, "prompt")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if logprobs is not None and logprobs < 0:
            raise ConfigError(f"logprobs must be >= 0 (the number of top tokens per step), got {logprobs}")
        config = self.settings(**options)
        rows = self.encode(items)
        results = []
        for first in range(0, len(rows), batch_size):
            batch = rows[first : first + batch_size]
            fitted = self.fit_to_context(config, max(len(r) for r in batch))
            completions = complete(
                self.model,
                batch,
                fitted,
                tokenizer=self.tokenizer,
                batch_size=len(batch),
                draft_model=self.draft_model(fitted.draft),
            )
            for prompt_ids, done in zip(batch, completions, strict=True):
                results.append(
                    TextGenerationResult(
                        text=self.tokenizer.decode(done.token_ids),
                        token_ids=done.token_ids,
                        finish_reason=done.finish_reason,
                        prompt_tokens=len(prompt_ids),
                        completion_tokens=len(done.token_ids),
                        drafted_tokens=done.drafted_tokens,
                        accepted_tokens=done.accepted_tokens,
                        acceptance_rate=done.acceptance_rate,
                    )
                )
        if logprobs is not None or echo:
            self._add_logprobs(rows, results, logprobs, echo, batch_size)
        return results[0] if single else results

    def _add_logprobs(self, rows, results, top_k: int | None, echo: bool, batch_size: int) -> None:
        from lmforge.generate import token_logprobs

        for first in range(0, len(rows), batch_size):
            chunk = range(first, min(first + batch_size, len(rows)))
            full = [rows[i] + results[i].token_ids for i in chunk]
            for i, (chosen, top_ids, top_values) in zip(
                chunk, token_logprobs(self.model, full, top_k or 0), strict=True
            ):
                n = len(rows[i])
                result = results[i]
                if top_k is not None:
                    result.logprobs = chosen[n:].tolist()
                    result.top_logprobs = [
                        [
                            TokenLogprob(self.tokenizer.decode([t], skip_special_tokens=False), t, v)
                            for t, v in zip(ids, values, strict=True)
                        ]
                        for ids, values in zip(top_ids[n:].tolist(), top_values[n:].tolist(), strict=True)
                    ]
                if echo:
                    result.prompt_logprobs = [None if math.isnan(v) else v for v in chosen[:n].tolist()]

    def stream(self, prompt: str, **options) -> Iterator[str]:
        """Yield the continuation of one prompt piece by piece, as it is decoded; the pieces joined equal
        the `text` of the same call without streaming."""
        import torch

        from lmforge.generate import stream

        if not isinstance(prompt, str):
            raise ConfigError(f"stream takes one prompt (a str), got a {type(prompt).__name__}")
        config = self.settings(**options)
        ids = self.encode([prompt])[0]
        config = self.fit_to_context(config, len(ids))  # checked now, before the first piece is asked for
        draft = self.draft_model(config.draft)
        return stream(self.model, self.tokenizer, torch.tensor([ids], device=self.device), config, draft)

    # --- chat ----------------------------------------------------------------------------------------------

    def render_chat(self, messages: Sequence[dict], *, add_generation_prompt: bool = True) -> str:
        """The prompt the model's chat template makes of `messages` (a list of {"role", "content"})."""
        check_messages(messages)
        template = self.defaults.chat_template or DEFAULT_CHAT_TEMPLATE
        special = {
            "bos_token": self._token(self.model.config.bos_token_id),
            "eos_token": self._token(self.model.config.eos_token_id),
        }
        return render_template(template, messages, add_generation_prompt=add_generation_prompt, **special)

    def chat(self, messages, **options):
        """Answer a conversation (a list of messages → one result) or several (a list of lists → a list)."""
        single = bool(messages) and isinstance(messages[0], dict)
        conversations = [messages] if single else list(messages)
        prompts = [self.render_chat(c) for c in conversations]
        results = self(prompts, **options)
        return results[0] if single else results

    def _token(self, token_id: int | None) -> str:
        if token_id is None:
            return ""
        return self.tokenizer.id_to_token(token_id) or ""


def check_messages(messages) -> None:
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ConfigError("a chat is a non-empty list of messages, each {'role': ..., 'content': ...}")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not {"role", "content"} <= set(message):
            raise ConfigError(
                f"chat message {i + 1} is not a {{'role': ..., 'content': ...}} mapping: {message!r}"
            )


def render_template(template: str, messages: Sequence[dict], **variables) -> str:
    """Render a chat template as Hugging Face does: a sandboxed Jinja2 environment, trim_blocks and
    lstrip_blocks on, `raise_exception` available to the template.

    >>> render_template(DEFAULT_CHAT_TEMPLATE, [{"role": "user", "content": "Hi"}])
    'User: Hi\\nAssistant:'
    """
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise LmforgeError(f"chat template: {message}")

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    try:
        return environment.from_string(template).render(messages=list(messages), **variables)
    except TemplateError as exc:
        raise ConfigError(f"chat template: {exc}") from None
