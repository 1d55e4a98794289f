"""`Translation`: an encoder-decoder model (fine-tuned by `lmforge finetune`, or a converted Marian model)
translating sentences, in batches of similar length.

    from lmforge.pipelines import Translation
    translate = Translation.load("runs/translate-en-es-tatoeba/model")
    translate("How are you?").text
    # '¿Cómo estás?'
    [t.text for t in translate(["I am hungry.", "Where is Tom?"], num_beams=1)]

Decoding defaults come from the model directory's generation.json (the beam width the model was scored
with; greedy when it has none); any `GenerationConfig` field can be given per call, `draft=DIR` too (a
smaller encoder-decoder on the same tokenizer: speculative decoding, the same translations).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import ConfigError
from lmforge.pipelines.base import Pipeline, one_or_many, with_draft_path


@dataclass
class TranslationResult:
    text: str
    token_ids: list[int]  # the generated ids, EOS left out
    finish_reason: str  # "stop" (EOS) or "length" (max_new_tokens reached)
    prompt_tokens: int  # the source's tokens, its EOS included
    completion_tokens: int  # len(token_ids)
    drafted_tokens: int | None = None  # speculative decoding (draft or prompt lookup): tokens drafted
    accepted_tokens: int | None = None  # of them, those the model kept (None: no speculation)
    acceptance_rate: float | None = None  # accepted / drafted (None without speculation)


class Translation(Pipeline):
    task = "translation"
    kinds = {"encoder-decoder": None}
    purpose = "translate"
    hint = "`lmforge finetune` task translate, or `lmforge convert --from-hf` of a Marian model"

    def __init__(self, model, tokenizer, defaults=None, *, source: str = ""):
        from lmforge.generate import GenerationConfig

        super().__init__(model, tokenizer, source=source)
        self.defaults = defaults or GenerationConfig(max_new_tokens=64, temperature=0.0)

    @classmethod
    def directory_options(cls, directory: Path) -> dict:
        from lmforge.generate import GENERATION_FILE, GenerationConfig

        defaults = with_draft_path(GenerationConfig.load(directory), directory)
        if not (directory / GENERATION_FILE).is_file():
            defaults = defaults.replace(temperature=0.0)  # translation decodes deterministically by default
        return {"defaults": defaults}

    def __call__(self, texts, *, batch_size: int = 64, max_length: int | None = None, **options):
        """Translate a sentence (→ one `TranslationResult`) or a list (→ a list, in the order given),
        `batch_size` at a time, longest first; sources are cut to `max_length` tokens (default: the model's
        max_positions). `options`: GenerationConfig fields (num_beams, max_new_tokens, ...)."""
        from lmforge.data.seq2seq import encode_texts
        from lmforge.generate import complete, resolve_special_ids

        items, single = one_or_many(texts, "text")
        try:
            config = self.defaults.replace(**options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad translation option: {exc}") from None
        model_config = self.model.config
        limit = min(max_length or model_config.max_positions, model_config.max_positions)
        with self.tokenizer_lock:  # encode_texts sets the tokenizer's truncation
            sources = encode_texts(self.tokenizer, items, limit, model_config.eos_token_id)
        eos = set(resolve_special_ids(self.model, config)[0])
        completions = complete(
            self.model,
            sources,
            config,
            tokenizer=self.tokenizer,
            batch_size=batch_size,
            longest_first=True,
            draft_model=self.draft_model(config.draft),
        )
        results = []
        for source, done in zip(sources, completions, strict=True):
            ids = done.token_ids[:-1] if done.token_ids and done.token_ids[-1] in eos else done.token_ids
            results.append(
                TranslationResult(
                    self.tokenizer.decode(ids),
                    ids,
                    done.finish_reason,
                    len(source),
                    len(ids),
                    done.drafted_tokens,
                    done.accepted_tokens,
                    done.acceptance_rate,
                )
            )
        return results[0] if single else results
