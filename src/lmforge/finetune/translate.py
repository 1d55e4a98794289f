"""Task `translate` of `lmforge finetune`: an encoder-decoder trained on TSV sentence pairs, scored by BLEU.

    lmforge finetune --config configs/translate-en-es-tatoeba.yaml
    lmforge translate --model runs/translate-en-es-tatoeba/model "How are you?"

What this file implements:
  - `TranslateData`: the task's section of the fine-tuning config (data, held-out rule, tokenizer and
    architecture of from-scratch starts, batching, decoding);
  - `split_by_source`: the held-out split, BY SOURCE SENTENCE. Sentences are grouped by their normalised
    form (`normalise_sentence`: NFKC, case-folded, whitespace collapsed); each group gets the stable hash
    blake2b(split_salt + "\\n" + normalised sentence), the groups are ordered by it, the first
    `test_sentences` groups are the test set and the next `validation_sentences` the validation set. Every
    translation of a held-out sentence goes with it, so none is ever trained on, and together they are the
    references of multi-reference BLEU. The rule reads nothing but the sentence, so the split does not
    depend on the file's order and is the same on every machine;
  - `finetune_translate`: start from an lmforge encoder-decoder directory (pre-trained, or converted from
    Hugging Face, e.g. Marian) or, with `model: preset:NAME`, from a preset architecture with random
    weights and a byte-level BPE tokenizer trained on the training pairs of both languages; train with
    `Seq2SeqObjective` through the one loop; translate the test sentences (batched, KV cache, greedy or
    beam); report multi-reference BLEU and chrF (`lmforge.metrics`, identical to sacrebleu); write
    OUT/model with tokenizer.json, generation.json and a card with sample translations;
  - `translate`: a model in memory and its tokenizer, texts in, translations out, in batches of similar
    length (the test set's scoring; `lmforge.pipelines.Translation` is the same for a saved model).
"""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.config import Count, CountOrZero
from lmforge.errors import ConfigError
from lmforge.finetune.common import FinetuneResult, save_finetuned, train_task

PRESET_PREFIX = (
    "preset:"  # `model: preset:transformer-tiny` = that architecture, random weights, new tokenizer
)
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2: the pad / bos / eos ids of the transformer presets


@dataclass
class TranslateData:
    pairs: str = "../shared/data/tatoeba-spa-eng/spa.txt"  # TSV, one sentence pair per line
    source_column: CountOrZero = 0  # tab-separated columns counted from 0: tatoeba is English<TAB>Spanish
    target_column: CountOrZero = 1
    source_language: str = "en"  # for the model card
    target_language: str = "es"
    test_sentences: Count = 2000  # distinct source sentences held out, with all their translations
    validation_sentences: CountOrZero = 500  # held out the same way, for the validation loss during training
    split_salt: str = "lmforge-tatoeba-spa-eng-v1"  # the fixed rule: ordered by blake2b(salt, sentence)
    max_train_pairs: Count | None = None  # the first N training pairs in file order (Tatoeba's: the shortest)
    vocab_size: Count = 8000  # BPE vocabulary shared by both languages (from-scratch `preset:` starts only)
    draft_for: str | None = None  # a translation model directory this `preset:` run trains a speculative-
    # decoding draft for: it uses that model's tokenizer, and that model's generation.json then names it
    architecture: dict = field(default_factory=dict)  # changes to the preset (e.g. {d_model: 256})
    batch_tokens: CountOrZero = 4096  # padded tokens per batch (examples × longest): batches by work, not by
    # sentence count; 0 = train.batch_size sentences per batch
    label_smoothing: float = 0.1  # Vaswani et al. 2017: worse perplexity, better BLEU
    num_beams: Count = 4  # test decoding: 1 = greedy; 4 is the usual beam width (+1 to 2 BLEU)
    length_penalty: float = 1.0  # beam score = sum log p / length ** length_penalty
    max_new_tokens: Count = 64  # per translation (tatoeba's longest target is 66 BPE tokens)
    decode_batch_size: Count = 64  # test sentences translated per batch
    samples: list[str] = field(
        default_factory=lambda: [
            "How are you?",
            "I would like a cup of coffee, please.",
            "Where is the train station?",
            "The children are playing in the garden.",
            "Tom didn't want to go to school today.",
        ]
    )  # translated into the model card (sentences of the test set or not)


# --- the held-out split ----------------------------------------------------------------------------------


def normalise_sentence(text: str) -> str:
    """The form sentences are grouped by: NFKC, case-folded, whitespace collapsed.

    >>> normalise_sentence("  How  are\\tyou? ")
    'how are you?'
    """
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def split_key(sentence: str, salt: str) -> int:
    """The stable hash that orders groups: 64 bits of blake2b(salt + newline + normalised sentence)."""
    digest = hashlib.blake2b(f"{salt}\n{normalise_sentence(sentence)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class HeldOut:
    sources: list[str]  # one per distinct held-out sentence: its first spelling in the file
    references: list[list[str]]  # every distinct translation of that sentence, in file order
    pairs: list  # the held-out `Pair`s themselves (for the validation loss)


@dataclass
class TranslationSplit:
    train: list  # `Pair`s
    validation: HeldOut
    test: HeldOut
    rule: str  # the rule, in words (for the card and the log)


def split_by_source(pairs: Sequence, *, test_sentences: int, validation_sentences: int, salt: str):
    """Hold out `test_sentences` + `validation_sentences` distinct source sentences with all their pairs.

    split = split_by_source(pairs, test_sentences=2000, validation_sentences=500, salt="v1")
    len(split.test.sources), split.test.references[0]      # 2000 sentences, each with all translations
    # (2000, ['¿Cómo estás?', '¿Cómo está usted?', ...])
    """
    if test_sentences < 1 or validation_sentences < 0:
        raise ConfigError(
            "translate.test_sentences must be >= 1 (the task reports test BLEU) and "
            "translate.validation_sentences >= 0"
        )
    groups: dict[str, list] = {}
    for pair in pairs:
        groups.setdefault(normalise_sentence(pair.source), []).append(pair)
    held = test_sentences + validation_sentences
    if held >= len(groups):
        raise ConfigError(
            f"translate.test_sentences + validation_sentences = {held:,}, but the data has only "
            f"{len(groups):,} distinct source sentences: hold out fewer"
        )
    ordered = sorted(groups, key=lambda key: (split_key(key, salt), key))

    def held_out(keys: list[str]) -> HeldOut:
        members = [groups[k] for k in keys]
        return HeldOut(
            sources=[group[0].source for group in members],
            references=[list(dict.fromkeys(p.target for p in group)) for group in members],
            pairs=[p for group in members for p in group],
        )

    test = held_out(ordered[:test_sentences])
    validation = held_out(ordered[test_sentences:held])
    kept = set(ordered[held:])
    train = [p for p in pairs if normalise_sentence(p.source) in kept]
    rule = (
        f"source sentences grouped by their normalised form (NFKC, case-folded, whitespace collapsed) and "
        f"ordered by blake2b-64('{salt}' + newline + sentence): the first {test_sentences:,} are the test "
        f"set, the next {validation_sentences:,} the validation set, each with all its translations"
    )
    return TranslationSplit(train=train, validation=validation, test=test, rule=rule)


# --- inference: the test set's translations ----------------------------------------------------------------


@dataclass
class Translation:
    source: str
    text: str
    token_ids: list[int]  # the generated ids, EOS and padding removed


def translate(
    model,
    tokenizer,
    texts: Sequence[str],
    config=None,
    *,
    batch_size: int = 64,
    max_length: int | None = None,
) -> list[Translation]:
    """Translate `texts` in batches of similar length (right-padded sources, KV-cached decoding).

    `config` is a `GenerationConfig` (default: greedy, 64 new tokens); sources are cut to `max_length`
    tokens (default: the model's max_positions).

    translate(model, tokenizer, ["How are you?"], GenerationConfig(max_new_tokens=16, temperature=0))[0].text
    # '¿Cómo estás?'
    """
    from lmforge.data.seq2seq import encode_texts
    from lmforge.generate import GenerationConfig, complete, resolve_special_ids

    config = config or GenerationConfig(max_new_tokens=64, temperature=0.0)
    limit = min(max_length or model.config.max_positions, model.config.max_positions)
    sources = encode_texts(tokenizer, list(texts), limit, model.config.eos_token_id)
    model.eval()
    stops = set(resolve_special_ids(model, config)[0])
    done = complete(model, sources, config, batch_size=batch_size, longest_first=True)  # memory peaks early
    return [
        Translation(text, tokenizer.decode(kept), kept)
        for text, kept in (
            (t, [i for i in d.token_ids if i not in stops]) for t, d in zip(texts, done, strict=True)
        )
    ]


# --- fine-tuning -----------------------------------------------------------------------------------------


def _special_ids(tokenizer) -> dict[str, int]:
    ids = {name: tokenizer.token_to_id(name) for name in SPECIAL_TOKENS}
    missing = [name for name, i in ids.items() if i is None]
    if missing:
        raise ConfigError(f"the tokenizer lacks the special tokens {missing} a from-scratch model needs")
    return {"pad_token_id": ids["<pad>"], "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"]}


def _start_from_preset(config, split: TranslationSplit, out: Path, log):
    """A BPE tokenizer trained on the training pairs (both languages) and the preset with random weights."""
    import torch

    from lmforge.model import build_model, preset
    from lmforge.tokenizers import BPETokenizer

    data = config.translate
    name = config.model[len(PRESET_PREFIX) :]
    preset(name)  # an unknown name fails here, before any work
    started = time.perf_counter()
    if data.draft_for:  # a draft decodes with its model's tokenizer
        from lmforge.tokenizers import load_tokenizer

        tokenizer = load_tokenizer(Path(data.draft_for) / "tokenizer.json")
        tokenizer_file = tokenizer.save(out / "tokenizer.json")
        log(f"tokenizer: {data.draft_for}'s ({tokenizer.vocab_size:,} ids): this run trains its draft")
    else:
        texts = [p.source for p in split.train] + [p.target for p in split.train]
        tokenizer = BPETokenizer.train(texts, vocab_size=data.vocab_size, special_tokens=list(SPECIAL_TOKENS))
        tokenizer_file = tokenizer.save(out / "tokenizer.json")
        log(
            f"tokenizer: byte-level BPE, {tokenizer.vocab_size:,} ids, trained on the {len(split.train):,} "
            f"training pairs (both languages) in {time.perf_counter() - started:.1f}s"
        )
    ids = _special_ids(tokenizer)
    changes = {
        **ids,
        "decoder_start_token_id": ids["pad_token_id"],  # Marian starts decoding from the pad id
        "vocab_size": tokenizer.vocab_size,
        **dict(data.architecture),
    }
    if config.dropout is not None:
        changes.setdefault("dropout", config.dropout)
    model_config = preset(name, **changes)
    model_config.extra = {**model_config.extra, "task": "translate"}
    torch.manual_seed(config.train.seed)
    return build_model(model_config), tokenizer, tokenizer_file, f"random initialisation of preset {name}"


def _start_from_directory(config, out: Path, log):
    """An lmforge encoder-decoder directory (Hugging Face ones converted into OUT/base), or its architecture
    with random weights under --from-scratch."""
    import torch
    from safetensors.torch import load_file

    from lmforge.model import build_model
    from lmforge.model.checkpoint import check_state_dict, read_config, unique_state_dict
    from lmforge.model_source import base_tokenizer, prepare_base

    base_dir = prepare_base(config.model, out, log)
    base = read_config(base_dir)
    if base.architecture != "encoder-decoder":
        raise ConfigError(
            f"task translate needs an encoder-decoder model; {base_dir} is a {base.architecture} "
            f"(or start from a preset: model: {PRESET_PREFIX}transformer-tiny)"
        )
    tokenizer_file, tokenizer = base_tokenizer(base_dir)
    if config.translate.architecture:
        raise ConfigError("translate.architecture changes a preset; a model directory keeps its architecture")
    model_config = base.replace(
        dropout=base.dropout if config.dropout is None else config.dropout,
        extra={**base.extra, "task": "translate"},
    )
    torch.manual_seed(config.train.seed)
    model = build_model(model_config)
    if config.from_scratch:
        return (
            model,
            tokenizer,
            tokenizer_file,
            f"random initialisation of `{config.model}`'s architecture",
            base_dir,
        )
    weights = base_dir / "model.safetensors"
    state = load_file(str(weights))
    check_state_dict(unique_state_dict(model), state, str(weights))
    model.load_state_dict(state, strict=False)  # a tied weight is stored once, under its first name
    return model, tokenizer, tokenizer_file, f"`{config.model}`", base_dir


def score(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Multi-reference corpus BLEU (13a) and chrF, as sacrebleu computes them, from per-sentence lists.

    >>> scores = score(["Los niños juegan en el jardín."],
    ...                [["Los niños están jugando en el jardín.", "Los niños juegan en el jardín."]])
    >>> {name: round(value, 2) for name, value in scores.items()}     # one reference matches exactly
    {'test_bleu': 100.0, 'test_chrf': 100.0}
    """
    from lmforge.metrics import bleu, chrf

    width = max((len(r) for r in references), default=1)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]
    return {"test_bleu": bleu(hypotheses, streams).score, "test_chrf": chrf(hypotheses, streams).score}


def translate_card(config, start: str, split: TranslationSplit, result, metrics, samples, seconds) -> str:
    data = config.translate
    beams = "greedy" if data.num_beams == 1 else f"beam search, {data.num_beams} beams"
    saved = "adapters" if config.lora.rank and config.lora.save == "adapters" else "model"
    references = sum(len(r) for r in split.test.references)
    lines = [
        f"## Trained for translation ({data.source_language} → {data.target_language}) with lmforge",
        "",
        f"- start: {start}",
        f"- data: `{data.pairs}`: {len(split.train):,} training pairs"
        + (f" (first {data.max_train_pairs:,})" if data.max_train_pairs else "")
        + f"; held out: {len(split.test.sources):,} test sentences ({references:,} references) and "
        f"{len(split.validation.sources):,} validation sentences",
        f"- held-out rule: {split.rule}",
        f"- steps: {result.steps:,}, {data.batch_tokens or config.train.batch_size:,} "
        + ("padded tokens" if data.batch_tokens else "sentences")
        + f" per batch, lr {config.train.lr:g}, label smoothing {data.label_smoothing:g}; "
        f"training {result.seconds / 60:.1f} min, whole run {seconds / 60:.1f} min",
        f"- test ({beams}): BLEU {metrics['test_bleu']:.2f} (multi-reference, 13a, as sacrebleu), "
        f"chrF {metrics['test_chrf']:.2f}"
        + (f"; validation loss {metrics['val_loss']:.3f}" if "val_loss" in metrics else ""),
        "",
        "Sample translations:",
        "",
        *[f"- {s.source} → {s.text}" for s in samples],
        "",
        f'Translate: `lmforge translate --model {config.out}/{saved} "How are you?"`.',
    ]
    return "\n".join(lines) + "\n"


def finetune_translate(config, log=print):
    """The translate task's pipeline; returns a `lmforge.finetune.FinetuneResult`."""
    from lmforge.config import dump_yaml
    from lmforge.data.seq2seq import Seq2SeqObjective, encode_texts, read_pairs
    from lmforge.generate import GenerationConfig
    from lmforge.model import lora as lora_
    from lmforge.model_source import require_source_kind

    data = config.translate
    started = time.perf_counter()
    from_preset = config.model.startswith(PRESET_PREFIX)
    if from_preset:
        from lmforge.model import preset

        preset(config.model[len(PRESET_PREFIX) :])  # fails before any work on an unknown name
    else:  # before any work
        hint = f"or start from a preset: model: {PRESET_PREFIX}transformer-tiny"
        require_source_kind(config.model, {"encoder-decoder": None}, purpose="translate", hint=hint)
    if data.draft_for and not (from_preset and (Path(data.draft_for) / "tokenizer.json").is_file()):
        raise ConfigError(
            f"translate.draft_for={data.draft_for}: a draft starts from a preset (model: "
            f"{PRESET_PREFIX}transformer-tiny) and needs a model directory with a tokenizer.json"
        )
    saves_adapters = bool(config.lora.rank) and config.lora.save == "adapters"
    if saves_adapters and from_preset:
        raise ConfigError("lora.save=adapters stores adapters beside a base model directory, not a preset")
    for name in ("num_beams", "max_new_tokens", "decode_batch_size"):
        if getattr(data, name) < 1:
            raise ConfigError(f"translate.{name} must be at least 1, got {getattr(data, name)}")
    pairs = read_pairs(data.pairs, data.source_column, data.target_column)
    split = split_by_source(
        pairs,
        test_sentences=data.test_sentences,
        validation_sentences=data.validation_sentences,
        salt=data.split_salt,
    )
    if data.max_train_pairs is not None:
        split.train = split.train[: data.max_train_pairs]
    log(
        f"data: {len(pairs):,} pairs → {len(split.train):,} train, {len(split.validation.pairs):,} validation "
        f"({len(split.validation.sources):,} sentences), {len(split.test.pairs):,} test "
        f"({len(split.test.sources):,} sentences)"
    )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_yaml(config))

    if from_preset:
        model, tokenizer, tokenizer_file, start = _start_from_preset(config, split, out, log)
        base_dir = None
    else:
        model, tokenizer, tokenizer_file, start, base_dir = _start_from_directory(config, out, log)
    model_config = model.config
    max_length = min(config.max_length, model_config.max_positions)
    eos = model_config.eos_token_id
    tokenize_started = time.perf_counter()
    objective = Seq2SeqObjective(
        encode_texts(tokenizer, [p.source for p in split.train], max_length, eos),
        encode_texts(tokenizer, [p.target for p in split.train], max_length, eos),
        encode_texts(tokenizer, [p.source for p in split.validation.pairs], max_length, eos),
        encode_texts(tokenizer, [p.target for p in split.validation.pairs], max_length, eos),
        pad_id=model_config.pad_id(),
        start_id=model_config.decoder_start_token_id
        if model_config.decoder_start_token_id is not None
        else model_config.pad_id(),
        batch_tokens=data.batch_tokens,
        label_smoothing=data.label_smoothing,
        seed=config.train.seed,
    )
    log(f"tokenized in {time.perf_counter() - tokenize_started:.1f}s")
    # the output layer is tied to the token table: with LoRA both stay frozen
    training = train_task(config, model, objective, out, start, log, frozen_with_lora=("head",))
    result = training.result
    model = result.model
    if config.lora.rank and not saves_adapters:
        lora_.merge_lora(model)

    generation = GenerationConfig(
        max_new_tokens=data.max_new_tokens,
        temperature=0.0,
        num_beams=data.num_beams,
        length_penalty=data.length_penalty,
        eos_token_id=[eos] if eos is not None else [],
        pad_token_id=model_config.pad_token_id,
    )
    decode_started = time.perf_counter()
    options = dict(batch_size=data.decode_batch_size, max_length=max_length)
    hypotheses = translate(model, tokenizer, split.test.sources, generation, **options)
    metrics = {**score([h.text for h in hypotheses], split.test.references), **result.metrics}
    samples = translate(model, tokenizer, data.samples, generation, **options) if data.samples else []
    log(f"test: {len(hypotheses):,} sentences translated in {time.perf_counter() - decode_started:.1f}s")
    for sample in samples:
        log(f"  {sample.source} → {sample.text}")
    _write_translations(out / "test-translations.jsonl", hypotheses, split.test.references)

    card = translate_card(config, start, split, result, metrics, samples, time.perf_counter() - started)
    model_dir = save_finetuned(model, config, out, base_dir, tokenizer_file, card, train_modules=[])
    generation.save(model_dir)
    if data.draft_for:
        from lmforge.generate import name_draft

        log(f"draft: {data.draft_for}/generation.json now names {name_draft(data.draft_for, model_dir)}")
    return FinetuneResult.of(training, out, model_dir, metrics)


def _write_translations(path: Path, hypotheses: Sequence[Translation], references) -> None:
    """The test set's sources, translations and references, one JSON object per line (atomically)."""
    from lmforge.io import write_text

    text = "".join(
        json.dumps({"source": h.source, "translation": h.text, "references": list(r)}, ensure_ascii=False)
        + "\n"
        for h, r in zip(hypotheses, references, strict=True)
    )
    write_text(path, text)
