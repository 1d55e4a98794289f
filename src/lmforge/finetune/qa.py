"""Task `qa` of `lmforge finetune`: extractive question answering on SQuAD-format JSON.

    lmforge finetune --config configs/squad-minilm.yaml
    lmforge finetune --config configs/squad-minilm.yaml --qa.max_train_examples=2000 --train.max_minutes=5

1. data: one SQuAD v1.1-format file split into train and test *by article* with the fixed rule of
   `QAData` (article i is held out when i % test_every == test_offset), so no test paragraph was seen in
   training — SQuAD's own train set is not available here, only its dev set;
2. model: any lmforge encoder directory, a Hugging Face directory (converted into OUT/base) or
   `--from-scratch`, with a fresh span head (start and end logit per token) and no pooler;
3. windows: question first, then the context cut into `max_length`-token windows overlapping by
   `doc_stride` (`lmforge.data.qa`); the training label is the gold span's tokens, or [CLS] in windows
   that do not hold it whole;
4. train through `lmforge.train.loop.train` on `QAObjective` (optionally LoRA);
5. final exact match and F1 of the generated answers on every held-out question. `OUT/model` is a model
   directory (tokenizer, window settings in its config, README card) that `lmforge answer` reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lmforge.config import Count, CountOrZero
from lmforge.finetune.common import FinetuneResult, card_start, copy_base_weights, save_finetuned, train_task


@dataclass
class QAData:
    file: str = "../shared/data/squad-v1.1/dev-v1.1.json"  # SQuAD v1.1-format JSON (only the dev set is
    # available here, so it is split into train and test articles)
    test_every: Count = 8  # split rule: article i (0-based, file order) is a test article when
    test_offset: CountOrZero = 7  # i % test_every == test_offset; dev-v1.1: 6 of 48 articles, 1,331 questions
    max_length: Count = 256  # tokens per window: 256 holds 89% of SQuAD paragraphs whole and costs half of
    # BERT's 384 per window on a CPU
    doc_stride: CountOrZero = 128  # overlap (tokens) between consecutive windows of a long context (run_qa's)
    max_question_length: Count = 64  # longer questions are cut (SQuAD's: 99% under 25 WordPiece tokens)
    max_answer_length: Count = 30  # tokens; longer spans are never predicted (BERT's SQuAD script)
    max_train_examples: Count | None = None  # quick runs: N training questions spread over the articles
    max_test_examples: Count | None = None  # the same for the held-out questions (the reported scores)


def check_settings(data: QAData) -> None:
    """Window settings that cannot work, reported before any work (the exact room for the context,
    which depends on the tokenizer's special tokens, is checked again when the tokenizer is known)."""
    from lmforge.errors import ConfigError

    for name in ("max_length", "max_question_length", "max_answer_length"):
        if getattr(data, name) < 1:
            raise ConfigError(f"qa.{name} must be at least 1, got {getattr(data, name)}")
    if not 0 <= data.doc_stride < data.max_length - data.max_question_length:
        raise ConfigError(
            f"qa.doc_stride {data.doc_stride} must be smaller than the context room of a window "
            f"(qa.max_length {data.max_length} - qa.max_question_length {data.max_question_length} - special "
            "tokens): lower it or raise qa.max_length"
        )


def read_qa_splits(data: QAData, log=print):
    """(train, test) questions of `data.file`, split by article and limited as the config says, the test
    articles' titles and how many test questions they hold in all."""
    from lmforge.data.qa import read_squad, split_by_article, spread

    articles = read_squad(data.file)
    train, test = split_by_article(articles, every=data.test_every, offset=data.test_offset)
    held_out = [a.title or str(a.index) for a in articles if a.index % data.test_every == data.test_offset]
    log(
        f"data: {len(articles) - len(held_out)} train articles ({len(train):,} questions), "
        f"{len(held_out)} test articles ({len(test):,} questions): {', '.join(held_out)}"
    )
    return spread(train, data.max_train_examples), spread(test, data.max_test_examples), held_out, len(test)


def build_span_model(
    base_dir: Path,
    *,
    from_scratch: bool = False,
    dropout: float | None = None,
    seed: int = 0,
    settings: dict | None = None,
):
    """The base encoder with a fresh span head (and no pooler); weights copied unless from_scratch.

    `settings` (window sizes) go into the config's `extra`, so `lmforge answer` cuts contexts as training
    did. Both starts build the same module under the same seed: they differ only in the copied weights.
    """
    import torch

    from lmforge.errors import ConfigError
    from lmforge.model import build_model
    from lmforge.model.checkpoint import read_config

    base = read_config(base_dir)
    if base.architecture != "encoder":
        raise ConfigError(f"task qa needs an encoder model (BERT-like); {base_dir} is a {base.architecture}")
    extra = {k: v for k, v in base.extra.items() if k not in ("labels", "task", "qa")}
    config = base.replace(
        head="question-answering",
        pooler=False,  # the span head reads every token; an unused pooler would only get no gradient
        dropout=base.dropout if dropout is None else dropout,
        extra={**extra, "task": "qa", "qa": dict(settings or {})},
    )
    torch.manual_seed(seed)
    model = build_model(config)
    if not from_scratch:
        copy_base_weights(model, base_dir, "span model", skip=("head.", "pooler."))
    return model


def qa_card(config, base_dir: Path, result, metrics: dict, split: dict, trainable: int) -> str:
    data = config.qa
    start, saved = card_start(config, base_dir)
    questions = f"{split['test_questions']:,} questions"
    if split["test_questions"] < split["test_available"]:
        questions += f", a spread sample of {split['test_available']:,}"
    lines = [
        "## Fine-tuned for extractive question answering with lmforge",
        "",
        f"- start: {start}; span head (start and end logit per token)",
        f"- data: `{data.file}`, split by article: article i is held out when i % {data.test_every} == "
        f"{data.test_offset} — train {split['train_articles']} articles ({split['train_questions']:,} "
        f"questions, {split['train_windows']:,} windows), test {len(split['test_titles'])} articles "
        f"({questions}): {', '.join(split['test_titles'])}",
        f"- windows: {data.max_length} tokens, overlap {data.doc_stride}; answers of at most "
        f"{data.max_answer_length} tokens",
        f"- steps: {result.steps:,} (batch {config.train.batch_size} × {config.train.grad_accum}), "
        f"lr {config.train.lr:g}, {result.seconds / 60:.1f} min; trainable parameters {trainable:,}"
        + (f" (LoRA rank {config.lora.rank}, alpha {config.lora.alpha:g})" if config.lora.rank else ""),
        f"- held-out articles: exact match {metrics['val_exact_match']:.2f}, F1 {metrics['val_f1']:.2f} "
        f"(SQuAD v1.1 normalisation; loss {metrics['val_loss']:.4f})",
        "",
        f'Answer: `lmforge answer --model {config.out}/{saved} --context FILE "a question"`.',
    ]
    return "\n".join(lines) + "\n"


def finetune_qa(config, log=print):
    """The whole `qa` pipeline for a `FinetuneConfig` whose task is "qa"; returns a `FinetuneResult`."""
    from lmforge.config import dump_yaml
    from lmforge.data.qa import QAObjective, prepare_tokenizer
    from lmforge.model_source import base_tokenizer, prepare_base, require_source_kind

    data = config.qa
    check_settings(data)
    require_source_kind(config.model, {"encoder": None}, purpose="answer questions")  # before any work
    train_examples, test_examples, held_out, test_available = read_qa_splits(data, log)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(dump_yaml(config))
    base_dir = prepare_base(config.model, out, log)
    tokenizer_file, tokenizer = base_tokenizer(base_dir)

    settings = {
        "max_length": data.max_length,
        "doc_stride": data.doc_stride,
        "max_question_length": data.max_question_length,
        "max_answer_length": data.max_answer_length,
    }
    model = build_span_model(
        base_dir,
        from_scratch=config.from_scratch,
        dropout=config.dropout,
        seed=config.train.seed,
        settings=settings,
    )
    if data.max_length > model.config.max_positions:
        from lmforge.errors import ConfigError

        raise ConfigError(
            f"qa.max_length {data.max_length} exceeds the model's {model.config.max_positions} positions"
        )
    prepare_tokenizer(tokenizer, data.max_length, data.doc_stride, data.max_question_length)
    started = time.perf_counter()
    objective = QAObjective(
        tokenizer,
        train_examples,
        test_examples,
        **settings,
        pad_id=model.config.pad_id(tokenizer),
        seed=config.train.seed,
    )
    log(
        f"windows: {len(objective.train):,} train / {len(objective.val):,} test from {len(train_examples):,} / "
        f"{len(test_examples):,} questions, tokenized in {time.perf_counter() - started:.1f}s"
        + (f"; {objective.train.unlocated} answers fit no window" if objective.train.unlocated else "")
    )
    start = "random initialisation" if config.from_scratch else str(base_dir)
    training = train_task(config, model, objective, out, start, log)
    result, trainable, train_config = training.result, training.trainable, training.train_config
    model = result.model
    metrics = result.metrics
    if train_config.eval_batches or not metrics:  # the loop scored a sample: now every test question
        evaluated = time.perf_counter()
        metrics = objective.evaluate_all(model, train_config.eval_batch_size or train_config.batch_size)
        log(f"test: {len(test_examples):,} questions scored in {time.perf_counter() - evaluated:.1f}s")
    split = {
        "train_articles": len({e.article for e in train_examples}),
        "train_questions": len(train_examples),
        "train_windows": len(objective.train),
        "test_titles": held_out,
        "test_questions": len(test_examples),
        "test_available": test_available,
    }
    card = qa_card(config, base_dir, result, metrics, split, trainable)
    model_dir = save_finetuned(model, config, out, base_dir, tokenizer_file, card, train_modules=["head"])
    return FinetuneResult.of(training, out, model_dir, metrics)
