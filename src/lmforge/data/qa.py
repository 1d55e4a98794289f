"""Extractive question answering (SQuAD): the data, the sliding windows, the objective, the answer spans.

What this file implements:
  - `QAExample` and `read_squad`: the questions of a SQuAD-format JSON file, grouped by article, each
    malformed entry reported by file and position (``data[3].paragraphs[12].qas[0]``);
  - `split_by_article`: train / test by a fixed rule on the article index, disjoint by article;
  - `encode_windows` / `build_features`: question first, context second, and only the context cut into
    windows of `max_length` tokens that overlap by `doc_stride` tokens (Hugging Face's run_qa: truncation
    only_second, stride, overflowing tokens), each context token with its character span in the context;
    the training label of a window is the start and end token of the gold answer when the whole answer is
    inside it, else the [CLS] position 0 ("not in this window");
  - `best_spans`: the best valid spans (start ≤ end, at most `max_answer_length` tokens, context tokens
    only) over all windows of a question, ranked by start + end logit, mapped back to the exact text;
  - `QAObjective`: the training loop's objective — loss = mean of the start and end cross-entropies;
    evaluation batches hold whole questions, so exact match and F1 of the generated answers add up over
    batches and ranks.

    articles = read_squad("../shared/data/squad-v1.1/dev-v1.1.json")
    train, test = split_by_article(articles, every=8, offset=7)     # articles 7, 15, 23, ... held out
    objective = QAObjective(tokenizer, train, test, max_length=256, doc_stride=128)
    objective.train_batch(0, batch_size=16)["start_positions"]       # (16,) token index, 0 = [CLS]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError, CorpusError, MissingFileError

CLS_POSITION = 0  # the label of a window that does not hold the whole answer (BERT's [CLS] comes first)


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]  # the reference answers (SQuAD dev: usually 3, some identical); () = none
    answer_starts: tuple[int, ...]  # character offsets of `answers` in `context`
    article: int  # index of the article in the file: the unit of the train / test split
    title: str = ""


@dataclass
class Article:
    index: int
    title: str
    examples: list[QAExample]


# --- reading SQuAD JSON ------------------------------------------------------------------------------


def read_squad(path: str | Path) -> list[Article]:
    """The articles of a SQuAD v1.1-format file, in file order, with every question checked.

    Every answer must be the text at its `answer_start` in the context: a shifted offset would train the
    model on the wrong words, so it is an error with the question's position in the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"SQuAD file not found: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise CorpusError(f'{path}: expected SQuAD JSON, an object with a "data" list of articles')
    articles = []
    for a, article in enumerate(data):
        where = f"{path}: data[{a}]"
        paragraphs = _field(article, "paragraphs", list, where)
        title = str(article.get("title", ""))
        examples = []
        for p, paragraph in enumerate(paragraphs):
            here = f"{where}.paragraphs[{p}]"
            context = _field(paragraph, "context", str, here)
            if not context.strip():
                raise CorpusError(f"{here}: empty context")
            for q, qa in enumerate(_field(paragraph, "qas", list, here)):
                examples.append(_read_question(qa, context, a, title, f"{here}.qas[{q}]"))
        articles.append(Article(a, title, examples))
    if not any(article.examples for article in articles):
        raise CorpusError(f"{path}: no questions")
    return articles


def _field(record, name: str, kind: type, where: str):
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if name not in record:
        raise CorpusError(f"{where}: no {name!r} field (fields: {', '.join(record) or 'none'})")
    value = record[name]
    if not isinstance(value, kind):
        raise CorpusError(f"{where}.{name}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _read_question(qa, context: str, article: int, title: str, where: str) -> QAExample:
    question = _field(qa, "question", str, where)
    if not question.strip():
        raise CorpusError(f"{where}: empty question")
    if qa.get("is_impossible"):
        raise CorpusError(
            f"{where}: an unanswerable question (SQuAD 2.0); only SQuAD v1.1 (every question answered) "
            "is supported"
        )
    answers, starts = [], []
    for n, answer in enumerate(_field(qa, "answers", list, where)):
        text = _field(answer, "text", str, f"{where}.answers[{n}]")
        start = _field(answer, "answer_start", int, f"{where}.answers[{n}]")
        if not text.strip():
            raise CorpusError(f"{where}.answers[{n}]: empty answer text")
        if context[start : start + len(text)] != text:
            found = context[max(start, 0) : max(start, 0) + len(text)]
            raise CorpusError(
                f"{where}.answers[{n}]: answer {text!r} is not the context's text at answer_start {start} "
                f"(there: {found!r})"
            )
        answers.append(text)
        starts.append(start)
    if not answers:
        raise CorpusError(f"{where}: no answers")
    return QAExample(
        str(qa.get("id", where)), question, context, tuple(answers), tuple(starts), article, title
    )


def split_by_article(
    articles: Sequence[Article], *, every: int, offset: int
) -> tuple[list[QAExample], list[QAExample]]:
    """(train, test) questions: article i is held out when i % every == offset — no article in both.

    train, test = split_by_article(read_squad("dev-v1.1.json"), every=8, offset=7)  # 42 / 6 articles
    """
    if every < 2 or not 0 <= offset < every:
        raise ConfigError(
            f"split: every must be >= 2 and 0 <= offset < every, got every={every} offset={offset}"
        )
    train = [e for article in articles if article.index % every != offset for e in article.examples]
    test = [e for article in articles if article.index % every == offset for e in article.examples]
    if not train or not test:
        raise ConfigError(
            f"split every={every} offset={offset} of {len(articles)} articles leaves "
            f"{len(train)} train / {len(test)} test questions; choose a rule that keeps both"
        )
    return train, test


def spread(examples: Sequence[QAExample], limit: int | None) -> list[QAExample]:
    """`limit` examples spread evenly over the list (every article represented), in order; all if None.

    [e.id for e in spread(examples, 3)]    # of 9 examples: the 1st, 4th and 7th
    """
    if limit is None or limit >= len(examples):
        return list(examples)
    if limit < 1:
        raise ConfigError(f"an example limit must be at least 1, got {limit}")
    return [examples[i * len(examples) // limit] for i in range(limit)]


# --- windows and their labels ------------------------------------------------------------------------


@dataclass
class Window:
    ids: list[int]  # [CLS] question [SEP] context window [SEP]
    type_ids: list[int]
    offsets: np.ndarray  # (T, 2) character span in the context of each token; -1 for non-context tokens
    start: int  # token index of the gold answer's first token, CLS_POSITION when not all inside
    end: int


def answer_tokens(offsets: np.ndarray, start_char: int, end_char: int) -> tuple[int, int]:
    """(first, last) token of the character span [start_char, end_char) in a window, or (0, 0) when the
    window's context does not hold all of it.

    first = the first token that ends after start_char, last = the last token that starts before
    end_char; with a window on "... Paris is ..." and the answer "Paris", both are the "paris" token.
    """
    context = np.flatnonzero(offsets[:, 0] >= 0)  # (C,) token positions of the context in the window
    if len(context) == 0:
        return CLS_POSITION, CLS_POSITION
    first, last = context[0], context[-1]
    if start_char < offsets[first, 0] or end_char > offsets[last, 1]:
        return CLS_POSITION, CLS_POSITION  # the window cuts the answer: "not here"
    starts = context[offsets[context, 1] > start_char]
    ends = context[offsets[context, 0] < end_char]
    if len(starts) == 0 or len(ends) == 0 or starts[0] > ends[-1]:
        return CLS_POSITION, CLS_POSITION
    return int(starts[0]), int(ends[-1])


def encode_windows(
    tokenizer,
    question: str,
    context: str,
    *,
    answer: tuple[int, int] | None = None,
    max_length: int = 256,
    doc_stride: int = 128,
    max_question_length: int = 64,
) -> list[Window]:
    """The windows of one question over its context (the tokenizer must truncate only_second; see
    `prepare_tokenizer`). `answer` = (start_char, end_char) of the gold answer gives the labels.

    Questions longer than `max_question_length` tokens are cut there (as BERT's SQuAD script did), so
    every window has room for context.
    """
    question = question.lstrip()  # a few SQuAD questions start with spaces, which would waste tokens
    truncation, tokenizer.truncation = tokenizer.truncation, None
    try:
        alone = tokenizer.encode(question, add_special_tokens=False)
    finally:
        tokenizer.truncation = truncation
    if len(alone.ids) > max_question_length:
        question = question[: alone.offsets[max_question_length - 1][1]]
    encoding = tokenizer.encode(question, context)
    windows = []
    for window in [encoding, *encoding.overflowing]:
        offsets = np.array(window.offsets, dtype=np.int64).reshape(-1, 2)
        in_context = np.array([s == 1 for s in window.sequence_ids], dtype=bool)
        offsets[~in_context] = -1
        start, end = answer_tokens(offsets, *answer) if answer is not None else (CLS_POSITION, CLS_POSITION)
        windows.append(Window(list(window.ids), list(window.type_ids), offsets, start, end))
    return windows


def prepare_tokenizer(tokenizer, max_length: int, doc_stride: int, max_question_length: int) -> None:
    """Set the tokenizer to cut only the context into overlapping windows, without padding."""
    room = max_length - max_question_length - tokenizer.num_special_tokens_to_add(True)
    if doc_stride >= room:
        raise ConfigError(
            f"doc_stride {doc_stride} must be smaller than the context room of a window, max_length "
            f"{max_length} - max_question_length {max_question_length} - special tokens = {room}"
        )
    tokenizer.enable_truncation(max_length, strategy="only_second", stride=doc_stride)
    tokenizer.no_padding()  # padding is per batch (`pad_windows`)


@dataclass
class QAFeatures:
    """Every window of a list of examples, flat; `example[i]` says whose window i is."""

    examples: list[QAExample]
    ids: list[list[int]]
    type_ids: list[list[int]]
    offsets: list[np.ndarray]  # per window (T, 2); -1 outside the context
    example: np.ndarray  # (N,) index into `examples`
    starts: np.ndarray  # (N,) int64 label token, CLS_POSITION = not in this window
    ends: np.ndarray
    lengths: np.ndarray  # (N,) tokens per window
    windows_of: list[list[int]]  # per example, its windows' indices
    unlocated: int  # labelled examples whose answer lies whole in no window (too long for one)

    def __len__(self) -> int:
        return len(self.ids)


def build_features(
    tokenizer,
    examples: Sequence[QAExample],
    *,
    max_length: int = 256,
    doc_stride: int = 128,
    max_question_length: int = 64,
    labelled: bool = True,
) -> QAFeatures:
    """The windows of every example; labels from each example's first answer when `labelled`."""
    prepare_tokenizer(tokenizer, max_length, doc_stride, max_question_length)
    ids, type_ids, offsets, owner, starts, ends, windows_of = [], [], [], [], [], [], []
    unlocated = 0
    for index, example in enumerate(examples):
        answer = None
        if labelled and example.answers:
            answer = (example.answer_starts[0], example.answer_starts[0] + len(example.answers[0]))
        windows = encode_windows(
            tokenizer,
            example.question,
            example.context,
            answer=answer,
            max_length=max_length,
            doc_stride=doc_stride,
            max_question_length=max_question_length,
        )
        if answer is not None and all(w.start == CLS_POSITION for w in windows):
            unlocated += 1
        windows_of.append(list(range(len(ids), len(ids) + len(windows))))
        for window in windows:
            ids.append(window.ids)
            type_ids.append(window.type_ids)
            offsets.append(window.offsets)
            owner.append(index)
            starts.append(window.start)
            ends.append(window.end)
    return QAFeatures(
        examples=list(examples),
        ids=ids,
        type_ids=type_ids,
        offsets=offsets,
        example=np.array(owner, dtype=np.int64),
        starts=np.array(starts, dtype=np.int64),
        ends=np.array(ends, dtype=np.int64),
        lengths=np.array([len(i) for i in ids], dtype=np.int64),
        windows_of=windows_of,
        unlocated=unlocated,
    )


def pad_windows(features: QAFeatures, rows: Sequence[int], pad_id: int) -> dict:
    """Windows `rows` as a batch padded to its longest: input_ids, attention_mask, token_type_ids (B, T),
    start_positions, end_positions and window (B,) — the window's index, for the answer's offsets."""
    import torch

    longest = int(max(features.lengths[r] for r in rows))
    ids = np.full((len(rows), longest), pad_id, dtype=np.int64)
    types = np.zeros((len(rows), longest), dtype=np.int64)
    mask = np.zeros((len(rows), longest), dtype=np.int64)
    for i, row in enumerate(rows):
        n = features.lengths[row]
        ids[i, :n] = features.ids[row]
        types[i, :n] = features.type_ids[row]
        mask[i, :n] = 1
    rows = np.asarray(rows, dtype=np.int64)
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "token_type_ids": torch.from_numpy(types),
        "start_positions": torch.from_numpy(features.starts[rows]),
        "end_positions": torch.from_numpy(features.ends[rows]),
        "window": torch.from_numpy(rows),
    }


# --- from logits to answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    text: str  # exactly context[start:end]
    start: int  # character offsets in the context, end exclusive
    end: int
    score: float  # p(start) · p(end), each a softmax over the context tokens of its window
    logit: float  # start logit + end logit: what ranks the spans (as Hugging Face's run_qa)
    window: int  # which of the question's windows it came from
    start_token: int
    end_token: int


def best_spans(
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    offsets: Sequence[np.ndarray],
    context: str,
    *,
    max_answer_length: int = 30,
    top_k: int = 1,
) -> list[Span]:
    """The `top_k` best distinct answer spans of one question over all its windows, best first.

    start_logits / end_logits / offsets: one (T,) / (T,) / (T, 2) array per window. A span is valid when
    both ends are context tokens, start ≤ end, and it is at most `max_answer_length` tokens long; every
    valid span is scored (not only the n best starts and ends). The same characters found in two
    overlapping windows count once, with their better score.

    best_spans([s], [e], [offsets], "Paris is the capital.")[0].text
    # 'Paris'
    """
    candidates: list[tuple[float, int, int, int, float]] = []  # (logit, window, start, end, score)
    for window, (start, end, spans) in enumerate(zip(start_logits, end_logits, offsets, strict=True)):
        start = np.asarray(start, dtype=np.float64)
        end = np.asarray(end, dtype=np.float64)
        valid = spans[:, 0] >= 0  # (T,) context tokens
        if not valid.any():
            continue
        positions = np.arange(len(valid))
        length = positions[None, :] - positions[:, None]  # (T, T): end - start
        allowed = valid[:, None] & valid[None, :] & (length >= 0) & (length < max_answer_length)
        scores = np.where(allowed, start[:, None] + end[None, :], -np.inf)  # (T, T)
        log_p_start = start - _logsumexp(start[valid])
        log_p_end = end - _logsumexp(end[valid])
        flat_scores = scores.ravel()
        keep = min(max(top_k, 1) * 4, flat_scores.size)  # extra, for spans found in two windows
        best = np.argpartition(-flat_scores, keep - 1)[:keep]
        for flat in best[np.argsort(-flat_scores[best])]:
            i, j = divmod(int(flat), len(valid))
            if not np.isfinite(scores[i, j]):
                break
            probability = float(np.exp(log_p_start[i] + log_p_end[j]))
            candidates.append((float(scores[i, j]), window, i, j, probability))
    candidates.sort(key=lambda c: -c[0])
    spans_out: list[Span] = []
    seen: set[tuple[int, int]] = set()
    for logit, window, i, j, probability in candidates:
        first, last = int(offsets[window][i, 0]), int(offsets[window][j, 1])
        if (first, last) in seen:
            continue
        seen.add((first, last))
        spans_out.append(Span(context[first:last], first, last, probability, logit, window, i, j))
        if len(spans_out) == top_k:
            break
    return spans_out


def window_scores(
    start_logits: Sequence[np.ndarray], end_logits: Sequence[np.ndarray], offsets: Sequence[np.ndarray]
) -> tuple[float, float]:
    """(null logit, log normalizer) of one question's windows: what makes span logits comparable across
    contexts (the assistant compares the passages it read with them).

    null logit: start + end logit of [CLS] — the span a window points to when it does not hold the answer
    (windows without the answer are trained to it) — the smallest over the windows, as Hugging Face's
    SQuAD v2 post-processing takes it. log normalizer: log Σ over windows of Σ_start Σ_end
    exp(start + end) over the context tokens, so that exp(span logit - log normalizer) is the span's
    probability when all of a question's windows share one softmax.
    """
    null, normalizers = math.inf, []
    for start, end, spans in zip(start_logits, end_logits, offsets, strict=True):
        start = np.asarray(start, dtype=np.float64)
        end = np.asarray(end, dtype=np.float64)
        null = min(null, float(start[CLS_POSITION] + end[CLS_POSITION]))
        valid = spans[:, 0] >= 0
        if valid.any():
            normalizers.append(_logsumexp(start[valid]) + _logsumexp(end[valid]))
    return null, (_logsumexp(np.array(normalizers)) if normalizers else -math.inf)


def _logsumexp(values: np.ndarray) -> float:
    top = float(values.max())
    return top + math.log(float(np.exp(values - top).sum()))


def span_logits(model, batch: dict):
    """(B, T) start and end logits of a span-extraction model for a padded batch; padding at -1e4."""
    kwargs = {"attention_mask": batch["attention_mask"]}
    if getattr(getattr(model, "config", None), "type_vocab_size", 0):
        kwargs["token_type_ids"] = batch["token_type_ids"]
    output = model(batch["input_ids"], **kwargs)
    logits = (output if hasattr(output, "shape") else output.logits).float()  # (B, T, 2)
    logits = logits.masked_fill(batch["attention_mask"][..., None] == 0, -1e4)
    start, end = logits.unbind(-1)
    return start, end


def answers_from_logits(
    features: QAFeatures, windows: Sequence[int], start, end, *, max_answer_length: int
) -> dict[int, Span | None]:
    """{example index: its best span} for the examples whose windows are all among `windows` (rows of
    the logits (B, T) `start` and `end`)."""
    by_example: dict[int, list[int]] = {}
    for row, window in enumerate(windows):
        by_example.setdefault(int(features.example[window]), []).append(row)
    start, end = start.detach().cpu().numpy(), end.detach().cpu().numpy()
    answers = {}
    for index, rows in by_example.items():
        lengths = [int(features.lengths[windows[r]]) for r in rows]
        spans = best_spans(
            [start[r, :n] for r, n in zip(rows, lengths, strict=True)],
            [end[r, :n] for r, n in zip(rows, lengths, strict=True)],
            [features.offsets[windows[r]] for r in rows],
            features.examples[index].context,
            max_answer_length=max_answer_length,
        )
        answers[index] = spans[0] if spans else None
    return answers


# --- the objective ---------------------------------------------------------------------------------------


class QAObjective:
    """Span extraction (start and end token) on SQuAD windows; plugs into `lmforge.train.loop.train`.

    Training windows walk through shuffled epochs (sample j = permutation(seed, j // N)[j % N]), and
    every `length_buckets` batches are cut from their samples sorted by length, then visited in a shuffled
    order: batches of similar lengths waste less on padding, and a batch still depends only on its index
    (exact resume, DDP-safe). Evaluation batches hold whole questions (all their windows), so the answer
    of each question is found inside one batch. Metrics: val_loss, val_exact_match, val_f1 (percent).
    """

    name = "qa"

    def __init__(
        self,
        tokenizer,
        train_examples: Sequence[QAExample],
        val_examples: Sequence[QAExample] | None,
        *,
        max_length: int = 256,
        doc_stride: int = 128,
        max_question_length: int = 64,
        max_answer_length: int = 30,
        pad_id: int = 0,
        seed: int = 0,
        length_buckets: int = 32,
    ):
        if max_answer_length < 1:
            raise ConfigError(f"max_answer_length must be at least 1, got {max_answer_length}")
        options = dict(max_length=max_length, doc_stride=doc_stride, max_question_length=max_question_length)
        self.max_answer_length = max_answer_length
        self.pad_id = pad_id
        self.seed = seed
        self.length_buckets = max(1, length_buckets)
        self.train = build_features(tokenizer, train_examples, **options)
        self.val = build_features(tokenizer, val_examples, **options) if val_examples else None
        self._permutations: dict[int, np.ndarray] = {}
        self._chunks: dict[tuple[int, int], list[list[int]]] = {}
        self._eval_plans: dict[int, list[list[int]]] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            if len(self._permutations) > 4:
                self._permutations.clear()
            self._permutations[epoch] = np.random.default_rng([self.seed, epoch]).permutation(len(self.train))
        return self._permutations[epoch]

    def _chunk(self, chunk: int, batch_size: int) -> list[list[int]]:
        """The `length_buckets` batches of chunk `chunk`: its samples sorted by length, cut, shuffled."""
        key = (chunk, batch_size)
        if key not in self._chunks:
            if len(self._chunks) > 4:
                self._chunks.clear()
            size, per_chunk = len(self.train), self.length_buckets * batch_size
            first = chunk * per_chunk
            rows = [int(self._permutation(j // size)[j % size]) for j in range(first, first + per_chunk)]
            rows.sort(key=lambda r: self.train.lengths[r])  # stable: ties keep the shuffled order
            batches = [rows[i : i + batch_size] for i in range(0, per_chunk, batch_size)]
            order = np.random.default_rng([self.seed, chunk, 1]).permutation(len(batches))
            self._chunks[key] = [batches[i] for i in order]
        return self._chunks[key]

    def train_batch(self, index: int, batch_size: int, rank: int = 0, world_size: int = 1) -> dict:
        chunk, position = divmod(index * world_size + rank, self.length_buckets)
        return pad_windows(self.train, self._chunk(chunk, batch_size)[position], self.pad_id)

    def eval_plan(self, batch_size: int) -> list[list[int]]:
        """The validation batches as lists of windows: whole questions, in a fixed random order (so the
        first batches are a fair sample), sorted by length within runs of 16 batches, packed up to
        `batch_size` windows (a question with more windows than that gets a batch of its own)."""
        if batch_size not in self._eval_plans:
            val = self.val
            order = np.random.default_rng(0).permutation(len(val.examples)).tolist()
            run = 16 * batch_size
            for i in range(0, len(order), run):
                order[i : i + run] = sorted(
                    order[i : i + run], key=lambda e: max(val.lengths[val.windows_of[e]])
                )
            plan: list[list[int]] = []
            current: list[int] = []
            for example in order:
                windows = val.windows_of[example]
                if current and len(current) + len(windows) > batch_size:
                    plan.append(current)
                    current = []
                current = current + windows
            if current:
                plan.append(current)
            self._eval_plans[batch_size] = plan
        return self._eval_plans[batch_size]

    def eval_batches(
        self, num_batches: int | None, batch_size: int, rank: int = 0, world_size: int = 1
    ) -> Iterator[dict]:
        if self.val is None:
            return
        plan = self.eval_plan(batch_size)
        total = len(plan) if not num_batches else min(num_batches, len(plan))
        for batch in range(rank, total, world_size):
            yield pad_windows(self.val, plan[batch], self.pad_id)

    def loss(self, model, batch: dict):
        import torch.nn.functional as F

        start, end = span_logits(model, batch)
        return (
            F.cross_entropy(start, batch["start_positions"]) + F.cross_entropy(end, batch["end_positions"])
        ) / 2

    def evaluate(self, model, batch: dict) -> dict[str, float]:
        import torch.nn.functional as F

        from lmforge.metrics.squad import exact_match, f1

        start, end = span_logits(model, batch)
        nll = F.cross_entropy(start, batch["start_positions"], reduction="sum") + F.cross_entropy(
            end, batch["end_positions"], reduction="sum"
        )
        windows = batch["window"].tolist()
        answers = answers_from_logits(self.val, windows, start, end, max_answer_length=self.max_answer_length)
        sums = {"nll": float(nll) / 2, "windows": float(len(windows)), "questions": float(len(answers))}
        sums["exact_match"] = sums["f1"] = 0.0
        for index, span in answers.items():
            prediction = span.text if span is not None else ""
            references = self.val.examples[index].answers
            sums["exact_match"] += max(exact_match(prediction, r) for r in references)
            sums["f1"] += max(f1(prediction, r) for r in references)
        return sums

    def evaluate_all(self, model, batch_size: int = 64) -> dict[str, float]:
        """The metrics over every validation question (the loop's evaluations may take a sample)."""
        import torch

        device = next(model.parameters()).device
        sums: dict[str, float] = {}
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for batch in self.eval_batches(None, batch_size):
                part = self.evaluate(model, {k: v.to(device) for k, v in batch.items()})
                for key, value in part.items():
                    sums[key] = sums.get(key, 0.0) + value
        model.train(was_training)
        return self.metrics(sums)

    def metrics(self, sums: dict[str, float]) -> dict[str, float]:
        questions = max(sums.get("questions", 0.0), 1.0)
        return {
            "val_loss": sums["nll"] / max(sums["windows"], 1.0),
            "val_exact_match": 100.0 * sums["exact_match"] / questions,
            "val_f1": 100.0 * sums["f1"] / questions,
        }
