"""Pre-training as a function: gather → preprocess → architecture → objective → validate.

    from lmforge.pretrain import DataConfig, PretrainConfig, pretrain
    result = pretrain(PretrainConfig(data=DataConfig(files=["corpus.txt"])))  # or a preset's YAML
    result.model_dir, result.metrics                                            # OUT/model, validation

1. gather: the corpus files of `data.files` (txt / JSONL / CSV / TSV / directories);
2. preprocess: a tokenizer (`tokenizer.path`, or one trained here on the corpus) and token shards
   (`lmforge prepare`, reused when the inputs are unchanged);
3. architecture: a model preset (`lmforge.model` presets, `lstm` for the recurrent baseline, `elmo` for the
   bidirectional LSTM LM of `lmforge.model.elmo`), or
   `model.init_from`: a model whose weights, architecture and tokenizer the run continues from
   (continued / domain-adaptive pre-training on new text): an lmforge model directory, `py:PACKAGE/DIR`,
   or a Hugging Face GPT-2 / Llama / BERT-with-MLM-head checkpoint (converted into OUT/base);
4. objective: causal LM (GPT: next token), masked LM (BERT: 15% of tokens masked) or bidirectional LM
   (ELMo: next word left to right and previous word right to left, with a word tokenizer);
5. validate: validation loss, perplexity and bits per byte (masked-token accuracy for MLM) during and
   after training. The run directory holds checkpoints, metrics.jsonl, loss.png and `model/`: the model
   directory with its tokenizer and a README card.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lmforge.config import Count, dump_yaml
from lmforge.errors import ConfigError
from lmforge.train.config import TrainConfig


@dataclass
class DataConfig:
    files: list[str] = field(default_factory=list)  # training corpus: files or directories
    val_files: list[str] = field(default_factory=list)  # validation corpus; empty = tail of `files`
    val_fraction: float = 0.1  # share of `files` held out for validation when val_files is empty
    field: str = "text"  # JSONL key with the text
    column: str | None = None  # CSV/TSV column with the text (default: "text" or "sentence")
    unit: Literal["file", "line"] = "file"  # plain text: one document per file (keeps newlines) or line
    stdlib: bool = False  # use the embedded corpus, the Python standard library's .py files


@dataclass
class TokenizerConfig:
    path: str | None = None  # an existing tokenizer.json; None = train one on the training corpus
    # what to train when `path` is None: also charbpe (original BPE, `</w>`) or unigram (SentencePiece)
    kind: Literal["char", "word", "bpe", "wordpiece", "charbpe", "unigram"] = "bpe"
    vocab_size: Count = 8192  # a multiple of 64 keeps the output layer's matmul fast
    sample_bytes: Count = 20_000_000  # train the tokenizer on at most this much text (tokenizers saturate)
    # more tokens kept whole and never split, beside the kind's own (e.g. WikiText's "<unk>", which the
    # word tokenizer would otherwise cut into "<", "unk", ">")
    special_tokens: list[str] = field(default_factory=list)


@dataclass
class ModelSpec:
    preset: str = "gpt-tiny"  # an `lmforge.model` preset, "lstm" for the recurrent baseline, or "elmo"
    changes: dict[str, Any] = field(default_factory=dict)  # preset fields to change, e.g. {n_layers: 4}
    # an lmforge model directory to continue from: its weights, architecture and tokenizer start the run
    # (continued pre-training, e.g. on in-domain text); `preset` is then unused and `changes` may only
    # set dropout / attention_dropout
    init_from: str | None = None


@dataclass
class PretrainConfig:
    objective: Literal["clm", "mlm", "bilm"] = "clm"  # GPT-style next token, BERT-style masked tokens, or
    # ELMo's next word forward + previous word backward (model.preset elmo, a word tokenizer)
    out: str = "runs/pretrain"  # run directory (checkpoints, metrics, model/)
    block_size: Count = 256  # tokens per training sequence (the context length)
    mlm_probability: float = 0.15  # BERT's masking rate
    whole_word_masking: bool = False  # mask every piece of a chosen word together
    fit_steps_to_minutes: bool = False  # set train.max_steps from a measured step time so that the cosine
    # schedule ends when train.max_minutes does (a run that is cut off mid-schedule never decays its rate);
    # the loop then keeps the end on the budget as the pace changes (train.schedule_follows_time)
    draft_for: str | None = None  # a model directory this run trains a speculative-decoding draft for: the
    # run uses its tokenizer (a draft must), and its generation.json then names this run's model/ as draft
    distill_from: str | None = None  # a decoder model directory to distil from (objective clm): the loss is
    # the KL divergence from its next-token distribution to the model's (token-level knowledge distillation),
    # on its tokenizer; e.g. the draft_for model, so that a draft learns what its target would say
    distill_alpha: float = 1.0  # the KL's share of the loss; the rest is the usual cross-entropy
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class PretrainResult:
    out: Path
    model_dir: Path
    metrics: dict[str, float]
    steps: int
    seconds: float
    tokens: int
    num_parameters: int
    tokens_per_second: float
    is_main: bool = True  # False on the other ranks under torchrun: only rank 0 reports


# --- the pipeline ---------------------------------------------------------------------------------------


def corpus_files(data: DataConfig) -> list[Path]:
    from lmforge.text import resolve_files, stdlib_files

    if data.stdlib:
        return stdlib_files()
    if not data.files:
        raise ConfigError("data.files is empty: name the corpus files, or set data.stdlib=true")
    return resolve_files(data.files)


def special_tokens_for(kind: str, objective: str) -> list[str]:
    """The special tokens a trained tokenizer starts with: BERT's for masked LM, else the kind's own with a
    document separator (`<|endoftext|>`; unigram's `</s>`).

    >>> special_tokens_for("unigram", "clm"), special_tokens_for("charbpe", "clm")
    (['<unk>', '<s>', '</s>', '<pad>'], ['<unk>', '<|endoftext|>'])
    """
    from lmforge.tokenizers.bpe import END_OF_TEXT
    from lmforge.tokenizers.char import CHAR_SPECIAL_TOKENS
    from lmforge.tokenizers.charbpe import CHARBPE_SPECIAL_TOKENS
    from lmforge.tokenizers.unigram import UNIGRAM_SPECIAL_TOKENS
    from lmforge.tokenizers.wordpiece import BERT_SPECIAL_TOKENS

    if objective == "mlm" or kind == "wordpiece":
        return list(BERT_SPECIAL_TOKENS) + (["<unk>"] if kind == "charbpe" else [])
    if kind == "bpe":
        return [END_OF_TEXT]
    if kind == "charbpe":
        return [*CHARBPE_SPECIAL_TOKENS, END_OF_TEXT]
    if kind == "unigram":
        return list(UNIGRAM_SPECIAL_TOKENS)
    return list(CHAR_SPECIAL_TOKENS)


def build_tokenizer(
    config: PretrainConfig, files: list[Path], out: Path, log=print, init_dir: Path | None = None
):
    """Copy the given tokenizer (or the one of `init_dir`, the model continued), or train one on (a sample
    of) the corpus; saved as out/tokenizer.json."""
    from lmforge.text import Corpus
    from lmforge.tokenizers import KINDS, load_tokenizer

    target = out / "tokenizer.json"
    if init_dir is not None:  # continued pre-training keeps the vocabulary the weights were trained with
        if config.tokenizer.path:
            raise ConfigError(
                "model.init_from brings its own tokenizer; leave tokenizer.path unset "
                f"(got {config.tokenizer.path})"
            )
        from lmforge.model_source import base_tokenizer

        source, tokenizer = base_tokenizer(init_dir)
        tokenizer.save(target)
        log(f"tokenizer: {source} ({tokenizer.vocab_size:,} tokens)")
        return tokenizer
    if config.tokenizer.path:
        tokenizer = load_tokenizer(config.tokenizer.path)
        tokenizer.save(target)
        return tokenizer
    budget = config.tokenizer.sample_bytes
    # the text as the shards will hold it: with unit "file", every character, newlines included
    unit = "chunk" if config.data.unit == "file" else "line"

    def sample():
        seen = 0
        for text in Corpus(files, field=config.data.field, column=config.data.column, unit=unit):
            yield text
            seen += len(text) + 1
            if seen >= budget:
                return

    log(
        f"tokenizer: training {_a(config.tokenizer.kind)} tokenizer on up to {budget / 1e6:g} MB of the corpus ..."
    )
    started = time.perf_counter()
    tokenizer = KINDS[config.tokenizer.kind].train(
        sample(),
        vocab_size=config.tokenizer.vocab_size,
        special_tokens=special_tokens_for(config.tokenizer.kind, config.objective)
        + [t for t in config.tokenizer.special_tokens if t],
    )
    tokenizer.save(target)
    log(
        f"tokenizer: {config.tokenizer.kind}, {tokenizer.vocab_size:,} tokens, trained in {time.perf_counter() - started:.1f}s"
    )
    return tokenizer


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


CONTINUE_CHANGES = {"dropout", "attention_dropout"}  # what model.changes may set on an init_from model


def load_initial_model(config: PretrainConfig, tokenizer, source: Path):
    """The model of `model.init_from` (the lmforge directory `source` it resolved to), checked against the
    objective, the tokenizer and the block size."""
    from lmforge.model import build_model, load
    from lmforge.model.checkpoint import read_config

    found = read_config(source)
    wanted = {"mlm": ("encoder", "mlm"), "clm": ("decoder", "lm")}[config.objective]
    if (found.architecture, found.head) != wanted:
        raise ConfigError(
            f"model.init_from: objective {config.objective} needs {_a(wanted[0])} with the '{wanted[1]}' head; "
            f"{source} is {_a(found.architecture)} with head '{found.head}'"
        )
    if found.vocab_size != tokenizer.vocab_size:
        raise ConfigError(
            f"model.init_from: {source} has {found.vocab_size} embeddings but its tokenizer "
            f"{tokenizer.vocab_size} tokens"
        )
    if config.block_size > found.max_positions:
        raise ConfigError(
            f"block_size {config.block_size} exceeds the {found.max_positions} positions of {source}"
        )
    changes = dict(config.model.changes)
    loaded = found.to_dict()
    extra = sorted(k for k in set(changes) - CONTINUE_CHANGES if loaded.get(k, object()) != changes[k])
    if extra:  # a change that restates the loaded value is harmless (a preset reused for continuing)
        raise ConfigError(
            f"model.changes: {', '.join(f'{k}={changes[k]!r}' for k in extra)} differs from {source} "
            f"({', '.join(f'{k}={loaded.get(k)!r}' for k in extra)}); on a model loaded by model.init_from "
            f"only {', '.join(sorted(CONTINUE_CHANGES))} can change"
        )
    changes = {k: v for k, v in changes.items() if k in CONTINUE_CHANGES}
    model = load(source)
    if changes:  # dropout rates are read at construction: rebuild, then take the weights
        rebuilt = build_model(model.config.replace(**changes))
        rebuilt.load_state_dict(model.state_dict())
        model = rebuilt
    model.train()
    return model


def build_model_for(config: PretrainConfig, tokenizer, eot_id: int, init_dir: Path | None = None):
    """A fresh model whose vocabulary and context fit the tokenizer and block size (or the model of
    `model.init_from`, resolved to the lmforge directory `init_dir`, to continue pre-training)."""
    if init_dir is not None:
        return load_initial_model(config, tokenizer, init_dir)
    vocab = tokenizer.vocab_size
    changes = dict(config.model.changes)
    if (config.model.preset == "elmo") != (config.objective == "bilm"):
        raise ConfigError(
            "the bidirectional LM objective (bilm) and the elmo preset go together: "
            f"got objective {config.objective} with preset {config.model.preset}"
        )
    if config.model.preset == "elmo":
        from lmforge.model.elmo import ELMoConfig, ELMoModel

        if config.model.init_from:
            raise ConfigError("model.init_from does not take an ELMo model; start it from the elmo preset")
        valid = {f.name for f in dataclasses.fields(ELMoConfig)} - {"extra", "pad_token_id", "preset"}
        unknown = sorted(set(changes) - valid)
        if unknown:
            raise ConfigError(
                f"model.changes: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}"
            )
        return ELMoModel(ELMoConfig(vocab_size=vocab, **changes))
    if config.model.preset == "lstm":
        from lmforge.model.rnn import LSTMConfig, LSTMLanguageModel

        if config.objective != "clm":
            raise ConfigError("the lstm baseline is a causal LM: use objective: clm")
        try:
            return LSTMLanguageModel(LSTMConfig(vocab_size=vocab, **changes))
        except TypeError as exc:
            names = [f.name for f in dataclasses.fields(LSTMConfig)]
            raise ConfigError(f"model.changes: {exc}; valid keys: {', '.join(names)}") from None
    from lmforge.model import ModelConfig, build_model, preset

    pad = tokenizer.token_to_id("[PAD]")
    ids = {"vocab_size": vocab, "eos_token_id": eot_id, "pad_token_id": pad if pad is not None else eot_id}
    base = preset(config.model.preset)
    ids["max_positions"] = max(base.max_positions, config.block_size)
    valid = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(changes) - valid)
    if unknown:
        raise ConfigError(
            f"model.changes: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}"
        )
    model_config = base.replace(**{**ids, **changes})
    if config.objective == "mlm" and model_config.architecture != "encoder":
        raise ConfigError(
            f"objective mlm needs an encoder preset (e.g. bert-tiny), got {config.model.preset}"
        )
    if config.objective == "clm" and model_config.architecture != "decoder":
        raise ConfigError(f"objective clm needs a decoder preset (e.g. gpt-tiny), got {config.model.preset}")
    return build_model(model_config)


def build_objective(config: PretrainConfig, shards_dir: Path, tokenizer):
    from lmforge.data.shards import TokenShards

    train_tokens = TokenShards(shards_dir, "train")
    val_tokens = TokenShards(shards_dir, "val")
    if config.objective == "bilm":
        from lmforge.data.bilm import BiLMObjective
        from lmforge.model.elmo import ELMoConfig, char_table

        vocabulary = [tokenizer.id_to_token(i) or "" for i in range(tokenizer.vocab_size)]
        chars = config.model.changes.get("max_characters", ELMoConfig.max_characters)
        return BiLMObjective(
            train_tokens,
            val_tokens,
            block_size=config.block_size,
            char_table=char_table(vocabulary, chars),
            seed=config.train.seed,
        )
    if config.objective == "clm":
        from lmforge.data.clm import CLMObjective

        return CLMObjective(train_tokens, val_tokens, block_size=config.block_size, seed=config.train.seed)
    from lmforge.data.mlm import MLMObjective, word_start_table

    mask_id = tokenizer.token_to_id("[MASK]")
    if mask_id is None:
        raise ConfigError("objective mlm needs a [MASK] token in the tokenizer (train a wordpiece tokenizer)")
    specials = [i for i in (tokenizer.token_to_id(t) for t in tokenizer.special_tokens) if i is not None]
    word_starts = None
    if config.whole_word_masking:
        vocab = [tokenizer.id_to_token(i) or "" for i in range(tokenizer.vocab_size)]
        scheme = {"wordpiece": "wordpiece", "bpe": "bytelevel", "unigram": "metaspace"}.get(tokenizer.kind)
        if scheme is None:
            raise ConfigError(
                f"whole_word_masking needs a wordpiece, bpe or unigram tokenizer, where a token shows that it "
                f"starts a word (this one is {tokenizer.kind}); set whole_word_masking=false"
            )
        word_starts = word_start_table(vocab, scheme)
    return MLMObjective(
        train_tokens,
        val_tokens,
        block_size=config.block_size,
        mask_id=mask_id,
        vocab_size=tokenizer.vocab_size,
        special_ids=specials,
        probability=config.mlm_probability,
        word_starts=word_starts,
        prefix_id=tokenizer.token_to_id("[CLS]"),
        seed=config.train.seed,
    )


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_token(model, block_size: int) -> float | None:
    method = getattr(model, "flops_per_token", None)
    return float(method(block_size)) if callable(method) else None


def save_final_model(model, config: PretrainConfig, out: Path, tokenizer_file: Path, card: str) -> Path:
    """The model directory every other verb takes (`--model DIR`)."""
    target = out / "model"
    if hasattr(model, "save"):
        model.save(target, tokenizer=tokenizer_file, card=card)
    else:  # the LSTM baseline: weights + config, no `lmforge.model.load` support
        from safetensors.torch import save_file

        target.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()}, str(target / "model.safetensors")
        )
        (target / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
        (target / "tokenizer.json").write_bytes(tokenizer_file.read_bytes())
        (target / "README.md").write_text(card)
    return target


def model_card(config: PretrainConfig, files: list[Path], result, num_parameters: int) -> str:
    lines = [
        f"# {config.model.preset} pre-trained with lmforge ({config.objective.upper()})",
        "",
        f"- data: {len(files)} file(s), first: `{files[0]}`",
        f"- tokenizer: {config.tokenizer.path or config.tokenizer.kind}",
        f"- parameters: {num_parameters:,}; context {config.block_size} tokens",
        f"- steps: {result.steps:,} (batch {config.train.batch_size} × accumulation {config.train.grad_accum}); "
        f"{result.tokens:,} tokens in {result.seconds / 60:.1f} min",
        "- final validation: " + ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items()),
        "",
        f"Reproduce: `lmforge pretrain --config <this config>` (saved beside as `{config.out}/config.yaml`).",
    ]
    return "\n".join(lines) + "\n"


def draft_settings(config: PretrainConfig) -> PretrainConfig:
    """A draft trains as a causal LM on the tokenizer of the model it drafts for (`draft_for`)."""
    from lmforge.model.checkpoint import read_config

    target = Path(config.draft_for)
    tokenizer = target / "tokenizer.json"
    if not tokenizer.is_file():
        raise ConfigError(f"draft_for: {target} is not a model directory with a tokenizer.json")
    if config.objective != "clm" or read_config(target).architecture != "decoder":
        raise ConfigError(f"draft_for: a draft is a causal LM for a decoder; {target} is not a decoder")
    if config.tokenizer.path and Path(config.tokenizer.path).resolve() != tokenizer.resolve():
        raise ConfigError("draft_for: a draft uses its model's tokenizer; leave tokenizer.path unset")
    if config.model.init_from:  # a draft continued: its own tokenizer, checked once it is read
        return config
    return dataclasses.replace(config, tokenizer=dataclasses.replace(config.tokenizer, path=str(tokenizer)))


def distill_settings(config: PretrainConfig) -> PretrainConfig:
    """Distillation trains a causal LM on the teacher's tokenizer (`distill_from`); a tokenizer named
    otherwise (`tokenizer.path`, or `draft_for`'s) must be the same vocabulary."""
    from lmforge.model.checkpoint import read_config
    from lmforge.tokenizers import load_tokenizer

    teacher = Path(config.distill_from)
    tokenizer = teacher / "tokenizer.json"
    if not tokenizer.is_file():
        raise ConfigError(f"distill_from: {teacher} is not a model directory with a tokenizer.json")
    found = read_config(teacher)
    if config.objective != "clm" or (found.architecture, found.head) != ("decoder", "lm"):
        raise ConfigError(
            f"distill_from: distillation trains a causal LM (objective clm) from a decoder; "
            f"{teacher} is {_a(found.architecture)} with head '{found.head}'"
        )
    if config.model.preset in ("lstm", "elmo"):
        raise ConfigError(
            f"distill_from: the student must be a transformer decoder, not {config.model.preset}"
        )
    if config.tokenizer.path and not same_vocabulary(
        load_tokenizer(config.tokenizer.path), load_tokenizer(tokenizer)
    ):
        raise ConfigError(
            f"distill_from: the teacher {teacher} and the student's tokenizer {config.tokenizer.path} differ; "
            "distillation needs one vocabulary (leave tokenizer.path unset to use the teacher's)"
        )
    if config.model.init_from:  # the continued model brings its tokenizer: checked once it is read
        return config
    return dataclasses.replace(config, tokenizer=dataclasses.replace(config.tokenizer, path=str(tokenizer)))


def same_vocabulary(a, b) -> bool:
    """Whether two tokenizers map every id to the same token."""
    return a.vocab_size == b.vocab_size and all(
        a.id_to_token(i) == b.id_to_token(i) for i in range(a.vocab_size)
    )


def _quiet(*args, **kwargs) -> None:
    """The log of ranks other than 0: one copy of each line is enough."""


def pretrain(config: PretrainConfig, log=print) -> PretrainResult:
    """The whole pipeline; a notebook can call this with a `PretrainConfig`."""
    from lmforge.data.shards import TokenizerEncoder, prepare_shards, unknown_tokens
    from lmforge.train import distributed as distributed_
    from lmforge.train.budget import plan_training
    from lmforge.train.loop import train

    files = corpus_files(config.data)  # fails before any work if a path is wrong
    if config.draft_for:
        config = draft_settings(config)
    if config.distill_from:
        config = distill_settings(config)
    if config.model.init_from:
        from lmforge.model_source import require_source_kind

        kinds = {"mlm": {"encoder": ("mlm",)}, "clm": {"decoder": ("lm",)}}[config.objective]
        require_source_kind(
            config.model.init_from, kinds, purpose=f"continue {config.objective} pre-training"
        )
    out = Path(config.out)
    # under torchrun every rank runs this function: rank 0 prepares the tokenizer and the shards first, and
    # the other ranks then read what it wrote
    ctx = distributed_.init_distributed(config.train.device)
    if not ctx.is_main:
        log = _quiet
    with distributed_.main_process_first(ctx):
        out.mkdir(parents=True, exist_ok=True)
        init_dir = None
        if ctx.is_main:
            (out / "config.yaml").write_text(dump_yaml(config))
        if config.model.init_from:  # a directory or py:PACKAGE/DIR; a Hugging Face checkpoint: OUT/base
            from lmforge.model_source import prepare_base

            init_dir = prepare_base(config.model.init_from, out, log)
        from lmforge.tokenizers import load_tokenizer

        if ctx.is_main:
            tokenizer = build_tokenizer(config, files, out, log, init_dir)
        else:
            tokenizer = load_tokenizer(out / "tokenizer.json")
        for key, other, need in (
            ("distill_from", config.distill_from, "distillation needs one vocabulary"),
            ("draft_for", config.draft_for, "a draft needs its model's vocabulary"),
        ):
            # without init_from the run's tokenizer is the one draft_settings / distill_settings chose and
            # checked; a continued model brings its own, compared here once it is read
            if (
                config.model.init_from
                and other
                and not same_vocabulary(tokenizer, load_tokenizer(Path(other) / "tokenizer.json"))
            ):
                raise ConfigError(
                    f"{key}: {other} and this run's tokenizer (from "
                    f"{config.model.init_from or config.tokenizer.path}) differ; {need}"
                )
        encoder = TokenizerEncoder(out / "tokenizer.json")
        started = time.perf_counter()
        meta = prepare_shards(
            files,
            out / "shards",
            encoder,
            val_files=config.data.val_files,
            val_fraction=config.data.val_fraction,
            field=config.data.field,
            column=config.data.column,
            unit=config.data.unit,
            progress=config.train.progress and ctx.is_main,
        )
    how = "reused" if meta.reused else f"written in {time.perf_counter() - started:.1f}s"
    log(f"shards: {meta.tokens('train'):,} train / {meta.tokens('val'):,} validation tokens ({how})")
    if ctx.is_main and (unknown := unknown_tokens(out / "shards", tokenizer.token_to_id("[UNK]"))):
        log(f"warning: {unknown}; a larger tokenizer.vocab_size, or a tokenizer trained on this text?")

    model = build_model_for(config, tokenizer, encoder.eot_id, init_dir)
    objective = build_objective(config, out / "shards", tokenizer)
    if config.distill_from:
        from lmforge.data.distill import DistillObjective
        from lmforge.model import load

        teacher = load(config.distill_from)
        if teacher.config.vocab_size != model.config.vocab_size:
            raise ConfigError(
                f"distill_from: {config.distill_from} has {teacher.config.vocab_size} embeddings, the student "
                f"{model.config.vocab_size}: distillation needs one vocabulary"
            )
        objective = DistillObjective(objective, teacher, config.distill_alpha)
        log(f"distill: from {config.distill_from} (KL share {config.distill_alpha:g})")
    num_parameters = count_parameters(model)
    name = f"{config.model.init_from} (continued)" if config.model.init_from else config.model.preset
    log(f"model: {name}, {num_parameters / 1e6:.2f}M parameters; objective {config.objective}")
    # every rank trains in rank 0's precision and runs rank 0's number of steps
    fitted = plan_training(
        model, objective, config.train, fit_to_minutes=config.fit_steps_to_minutes, log=log, ctx=ctx
    )
    config = dataclasses.replace(config, train=fitted)
    result = train(
        model, objective, config.train, out, flops_per_token=flops_per_token(model, config.block_size)
    )
    card = model_card(config, files, result, num_parameters)
    model_dir = out / "model"
    if result.is_main:  # under torchrun, rank 0 writes the model directory
        final = result.model
        if result.full_state_dict is not None:  # FSDP2 left the module sharded: a plain copy of its weights
            final = build_model_for(config, tokenizer, encoder.eot_id, init_dir)
            final.load_state_dict(result.full_state_dict)
        save_final_model(final, config, out, out / "tokenizer.json", card)
        (out / "README.md").write_text(card)
        if config.draft_for:
            from lmforge.generate import name_draft

            relative = name_draft(config.draft_for, model_dir)
            log(f"draft: {config.draft_for}/generation.json now names {relative} as its draft")
    return PretrainResult(
        out=out,
        model_dir=model_dir,
        metrics=result.metrics,
        steps=result.steps,
        seconds=result.seconds,
        tokens=result.tokens,
        num_parameters=num_parameters,
        tokens_per_second=result.tokens / max(result.seconds, 1e-9),
        is_main=result.is_main,
    )
