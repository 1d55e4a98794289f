"""`lmforge finetune` task translate, the seq2seq objective and `lmforge translate`: the held-out split by
English sentence on the real Tatoeba file, batch shapes and masks (teacher forcing), tiny end-to-end runs
on a slice of Tatoeba (from a preset, from a model directory, with LoRA merged or as adapters), BLEU equal
to sacrebleu's on the run's own translations, and the errors a user can cause."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from lmforge.config import load_config
from lmforge.data.seq2seq import (
    IGNORE,
    Pair,
    Seq2SeqObjective,
    encode_texts,
    length_batches,
    pad_pairs,
    read_pairs,
)
from lmforge.errors import ConfigError, CorpusError, MissingFileError
from lmforge.finetune import FinetuneConfig, finetune
from lmforge.finetune.translate import (
    normalise_sentence,
    score,
    split_by_source,
    translate,
)
from lmforge.model import build_model, load, preset
from lmforge.pipelines import Translation

REPO = Path(__file__).resolve().parents[1]
PRESET = REPO / "configs" / "translate-en-es-tatoeba.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py


@pytest.fixture(scope="module")
def tatoeba(shared_data) -> Path:
    return shared_data / "tatoeba-spa-eng" / "spa.txt"


# --- the held-out split ---------------------------------------------------------------------------------


def test_split_holds_out_2000_english_sentences_with_all_their_translations(tatoeba):
    pairs = read_pairs(tatoeba)
    split = split_by_source(
        pairs, test_sentences=2000, validation_sentences=500, salt="lmforge-tatoeba-spa-eng-v1"
    )
    assert len(split.test.sources) == 2000 and len(split.validation.sources) == 500

    test_keys = {normalise_sentence(s) for s in split.test.sources}
    validation_keys = {normalise_sentence(s) for s in split.validation.sources}
    train_keys = {normalise_sentence(p.source) for p in split.train}
    assert len(test_keys) == 2000 and not test_keys & validation_keys
    assert not train_keys & (test_keys | validation_keys)  # disjoint by English sentence
    assert len(split.train) + len(split.validation.pairs) + len(split.test.pairs) == len(pairs)

    # every Spanish translation of a test sentence, anywhere in the file, is among its references
    translations: dict[str, set[str]] = {}
    for pair in pairs:
        translations.setdefault(normalise_sentence(pair.source), set()).add(pair.target)
    for source, references in zip(split.test.sources, split.test.references, strict=True):
        assert set(references) == translations[normalise_sentence(source)]
        assert len(references) == len(set(references))
    assert max(len(r) for r in split.test.references) > 1  # several references do occur

    # the rule reads only the sentence: the same split from a shuffled file, another split from another salt
    shuffled = list(pairs)
    random.Random(0).shuffle(shuffled)
    again = split_by_source(
        shuffled, test_sentences=2000, validation_sentences=500, salt="lmforge-tatoeba-spa-eng-v1"
    )
    assert {normalise_sentence(s) for s in again.test.sources} == test_keys
    other = split_by_source(pairs, test_sentences=2000, validation_sentences=500, salt="another rule")
    assert {normalise_sentence(s) for s in other.test.sources} != test_keys


def test_split_groups_spellings_of_one_sentence_and_checks_its_sizes():
    pairs = [
        Pair("Go.", "Ve.", 1),
        Pair("Go.", "Vete.", 2),
        Pair("go. ", "Vaya.", 3),
        Pair("Hi.", "Hola.", 4),
        Pair("Run!", "¡Corre!", 5),
    ]
    split = split_by_source(pairs, test_sentences=1, validation_sentences=1, salt="x")
    groups = [
        *zip(split.test.sources, split.test.references, strict=True),
        *zip(split.validation.sources, split.validation.references, strict=True),
    ]
    go = [refs for source, refs in groups if source == "Go."]
    if go:  # "Go." / "go." are one sentence: held out together, all three translations as references
        assert go == [["Ve.", "Vete.", "Vaya."]]
    else:
        assert sorted(p.line for p in split.train if p.source.lower().startswith("go")) == [1, 2, 3]
    with pytest.raises(ConfigError, match="distinct source sentences"):
        split_by_source(pairs, test_sentences=2, validation_sentences=1, salt="x")
    with pytest.raises(ConfigError, match="test_sentences must be >= 1"):
        split_by_source(pairs, test_sentences=0, validation_sentences=1, salt="x")


def test_read_pairs_names_the_bad_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Go.\tVe.\nno tab here\n")
    with pytest.raises(CorpusError, match=r"pairs.tsv:2: 1 tab-separated column"):
        read_pairs(path)
    path.write_text("Go.\t \n")
    with pytest.raises(CorpusError, match=r"pairs.tsv:1: empty target"):
        read_pairs(path)
    with pytest.raises(MissingFileError):
        read_pairs(tmp_path / "absent.tsv")


# --- the objective --------------------------------------------------------------------------------------


def test_pad_pairs_teacher_forcing_and_masks():
    sources = [[5, 6, 7, 2], [8, 2]]
    targets = [[9, 2], [10, 11, 12, 2]]
    batch = pad_pairs(sources, targets, [0, 1], pad_id=0, start_id=1)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 2], [8, 2, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[9, 2, IGNORE, IGNORE], [10, 11, 12, 2]]
    # the decoder reads the target shifted right behind the start token; what follows EOS is padding
    assert batch["decoder_input_ids"].tolist() == [[1, 9, 0, 0], [1, 10, 11, 12]]


def test_encode_texts_ends_in_eos_and_truncates_keeping_it():
    from lmforge.tokenizers import BPETokenizer

    tokenizer = BPETokenizer.train(
        ["hola que tal", "how are you"], vocab_size=270, special_tokens=["<pad>", "<s>", "</s>"]
    )
    ids = encode_texts(tokenizer, ["how are you", ""], max_length=5, eos_id=2)
    assert ids[0][-1] == 2 and len(ids[0]) == 5 and ids[1] == [2]
    full = encode_texts(tokenizer, ["how are you"], max_length=100, eos_id=2)[0]
    assert ids[0][:4] == full[:4]


def test_length_batches_cover_every_example_once_within_the_token_budget():
    lengths = np.random.default_rng(0).integers(1, 40, size=5000)
    batches = length_batches(lengths, seed=3, epoch=0, batch_size=32, batch_tokens=600)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(5000))  # an epoch: every example exactly once
    assert all(len(b) * lengths[b].max() <= 600 for b in batches)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.1 * lengths.sum()  # sorted pools: under 10% padding
    again = length_batches(lengths, seed=3, epoch=0, batch_size=32, batch_tokens=600)
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))
    other = length_batches(lengths, seed=3, epoch=1, batch_size=32, batch_tokens=600)
    assert not all(len(a) == len(b) and (a == b).all() for a, b in zip(batches, other, strict=False))
    by_count = length_batches(lengths, seed=3, epoch=0, batch_size=32)
    assert [len(b) for b in by_count[:-1]].count(32) >= len(by_count) - 10


def test_objective_batches_are_pure_functions_of_their_index_and_the_loss_skips_padding():
    rng = np.random.default_rng(1)
    sources = [rng.integers(3, 50, size=rng.integers(1, 12)).tolist() + [2] for _ in range(300)]
    targets = [rng.integers(3, 50, size=rng.integers(1, 12)).tolist() + [2] for _ in range(300)]
    objective = Seq2SeqObjective(
        sources,
        targets,
        sources[:40],
        targets[:40],
        pad_id=0,
        start_id=0,
        batch_tokens=120,
        label_smoothing=0.1,
        seed=5,
    )
    stream = [objective.train_batch(i, 16) for i in range(60)]  # crosses epoch boundaries
    fresh = Seq2SeqObjective(
        sources, targets, pad_id=0, start_id=0, batch_tokens=120, label_smoothing=0.1, seed=5
    )
    for index in (59, 3, 41):  # out of order, as a resumed run asks for them
        assert torch.equal(fresh.train_batch(index, 16)["labels"], stream[index]["labels"])
    # rank r of a world of 2 gets stream batch 2·index + r
    assert torch.equal(
        objective.train_batch(7, 16, rank=1, world_size=2)["input_ids"], stream[15]["input_ids"]
    )

    torch.manual_seed(0)
    model = build_model(preset("transformer-tiny", vocab_size=50, d_model=32, n_heads=2, d_ff=64, n_layers=1))
    batch = stream[0]
    full = model(  # (B, T, V) at every position, padding included
        batch["input_ids"],
        attention_mask=batch["attention_mask"],
        decoder_input_ids=batch["decoder_input_ids"],
    ).logits
    expected = torch.nn.functional.cross_entropy(
        full.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE, label_smoothing=0.1
    )
    assert torch.allclose(objective.loss(model, batch), expected, atol=1e-5)
    with torch.no_grad():
        sums = objective.evaluate(model, batch)
    assert sums["tokens"] == int((batch["labels"] != IGNORE).sum())
    plain = torch.nn.functional.cross_entropy(
        full.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE, reduction="sum"
    )
    assert sums["nll"] == pytest.approx(plain.item(), rel=1e-5)
    assert sum(1 for _ in objective.eval_batches(None, 16)) == 3  # 40 validation pairs, 16 a batch


# --- end to end on a slice of Tatoeba -------------------------------------------------------------------


def tiny_config(pairs: Path, out: Path, **changes) -> FinetuneConfig:
    overrides = [
        f"out={out}",
        f"translate.pairs={pairs}",
        "translate.test_sentences=24",
        "translate.validation_sentences=8",
        "translate.vocab_size=400",
        "translate.architecture={d_model: 48, n_heads: 2, d_ff: 96, n_layers: 1}",
        "translate.batch_tokens=800",
        "translate.num_beams=2",
        "translate.max_new_tokens=10",
        'translate.samples=["How are you?"]',
        "fit_steps_to_minutes=false",  # the preset fits its schedule to 26 minutes
        "train.max_minutes=null",
        "train.max_steps=15",
        "train.lr=3e-3",
        "train.warmup_steps=2",
        "train.eval_every=0",
        "train.progress=false",
        "train.tensorboard=false",
        "train.log_every=5",
    ] + [f"{k}={v}" for k, v in changes.items()]
    if "model" in changes:  # a model directory keeps its own architecture
        overrides.append("translate.architecture={}")
    return load_config(FinetuneConfig, PRESET, overrides)


@pytest.fixture(scope="module")
def tatoeba_slice(tatoeba, tmp_path_factory) -> Path:
    """Every 60th pair of Tatoeba (~2,000 pairs of every length)."""
    lines = tatoeba.read_text(encoding="utf-8").splitlines()[::60]
    path = tmp_path_factory.mktemp("tatoeba") / "slice.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scratch_run(tatoeba_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("translate-scratch")
    return finetune(tiny_config(tatoeba_slice, out), log=lambda *_: None)


def test_from_preset_writes_a_model_directory_scored_like_sacrebleu(scratch_run):
    import sacrebleu

    result = scratch_run
    model_dir = result.model_dir
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation.json", "README.md"):
        assert (model_dir / name).is_file(), name
    generation = json.loads((model_dir / "generation.json").read_text())
    assert (
        generation["num_beams"] == 2
        and generation["temperature"] == 0.0
        and generation["eos_token_id"] == [2]
    )
    card = (model_dir / "README.md").read_text()
    assert "How are you? →" in card and "BLEU" in card and "chrF" in card and "held-out rule" in card
    assert load(model_dir).config.architecture == "encoder-decoder"
    assert result.steps == 15 and {"test_bleu", "test_chrf", "val_loss"} <= set(result.metrics)

    # the reported scores are sacrebleu's on the run's own translations and references
    records = [json.loads(line) for line in (result.out / "test-translations.jsonl").read_text().splitlines()]
    assert len(records) == 24
    hypotheses = [r["translation"] for r in records]
    references = [r["references"] for r in records]
    width = max(len(r) for r in references)
    streams = [[r[k] if k < len(r) else None for r in references] for k in range(width)]
    assert result.metrics["test_bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, streams).score, abs=1e-9
    )
    assert result.metrics["test_chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(hypotheses, streams).score, abs=1e-9
    )
    # and with hypotheses that do match (half of them a reference), where BLEU is far from 0
    mixed = [
        refs[-1] if i % 2 else hypothesis
        for i, (hypothesis, refs) in enumerate(zip(hypotheses, references, strict=True))
    ]
    ours = score(mixed, references)
    assert ours["test_bleu"] > 20
    assert ours["test_bleu"] == pytest.approx(sacrebleu.corpus_bleu(mixed, streams).score, abs=1e-9)
    assert ours["test_chrf"] == pytest.approx(sacrebleu.corpus_chrf(mixed, streams).score, abs=1e-9)


def test_translate_command_runs_the_model_directory(scratch_run, cli, tmp_path):
    model_dir = scratch_run.model_dir
    pipe = Translation.load(model_dir)
    model, tokenizer, defaults = pipe.model, pipe.tokenizer, pipe.defaults
    assert defaults.num_beams == 2
    texts = ["How are you?", "I like cats very much, and I have three of them at home."]
    expected = [t.text for t in translate(model, tokenizer, texts, defaults)]
    assert [t.text for t in pipe(texts)] == expected  # the training-time function and the pipeline agree
    code, out, _ = cli("translate", "--model", model_dir, *texts)
    assert code == 0 and out.splitlines() == expected

    # a file in batches of one gives the same lines; greedy is another decoding; --json carries the ids
    file = tmp_path / "sentences.txt"
    file.write_text("\n".join(texts) + "\n")
    code, out, _ = cli("translate", "--model", model_dir, "--file", file, "--batch-size", "1")
    assert code == 0 and out.splitlines() == expected
    greedy = [t.text for t in translate(model, tokenizer, texts, defaults.replace(num_beams=1))]
    code, out, _ = cli(
        "translate", "--model", model_dir, "--num-beams", "1", "--max-new-tokens", "10", "--json", *texts
    )
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["translation"] for r in records] == greedy
    assert records[0]["source"] == "How are you?" and tokenizer.decode(records[0]["token_ids"]) == greedy[0]
    code, out, _ = cli("translate", "--model", model_dir, "--max-new-tokens", "3", "--json", texts[1])
    assert len(json.loads(out)["token_ids"]) <= 3


def test_lora_on_the_task_merged_equals_adapters_and_leaves_the_base_alone(
    scratch_run, tatoeba_slice, tmp_path
):
    base = scratch_run.model_dir
    lora = {"model": base, "lora.rank": 4, "lora.alpha": 8, "train.max_steps": 6, "translate.samples": "[]"}
    merged = finetune(tiny_config(tatoeba_slice, tmp_path / "merged", **lora), log=lambda *_: None)
    adapters = finetune(
        tiny_config(tatoeba_slice, tmp_path / "adapters", **lora, **{"lora.save": "adapters"}),
        log=lambda *_: None,
    )
    assert adapters.model_dir.name == "adapters" and (adapters.model_dir / "adapters.safetensors").is_file()
    assert (
        0 < merged.trainable_parameters < merged.num_parameters / 5
    )  # the projections' low-rank updates only

    from safetensors.torch import load_file

    trained = load_file(str(adapters.model_dir / "adapters.safetensors"))
    assert trained and all("lora_" in name for name in trained)
    base_model, merged_model = load(base), load(merged.model_dir)
    assert torch.equal(
        base_model.encoder_embeddings.tokens.weight, merged_model.encoder_embeddings.tokens.weight
    )
    changed = [
        n
        for n, p in merged_model.named_parameters()
        if not torch.equal(p, dict(base_model.named_parameters())[n])
    ]
    assert changed and all(
        ("attention" in n or "feed_forward" in n) and n.endswith("weight") for n in changed
    )

    # the same training twice: merged weights translate exactly as base + adapters
    assert merged.metrics["test_bleu"] == adapters.metrics["test_bleu"]
    texts = ["How are you?", "Where is the station?"]
    outputs = []
    for directory in (merged.model_dir, adapters.model_dir):
        outputs.append([t.token_ids for t in Translation.load(directory)(texts)])
    assert outputs[0] == outputs[1]


def test_from_a_model_directory_and_from_scratch_differ_only_in_initialisation(
    scratch_run, tatoeba_slice, tmp_path
):
    from lmforge.finetune.translate import _start_from_directory

    base = scratch_run.model_dir
    pretrained, *_ = _start_from_directory(
        tiny_config(tatoeba_slice, tmp_path / "p", model=base), tmp_path, print
    )
    scratch, *_ = _start_from_directory(
        tiny_config(tatoeba_slice, tmp_path / "s", model=base, from_scratch="true"), tmp_path, print
    )
    assert pretrained.config == scratch.config
    base_state = load(base).state_dict()
    assert all(torch.equal(v, base_state[k]) for k, v in pretrained.state_dict().items())
    assert not torch.equal(
        scratch.encoder_embeddings.tokens.weight, base_state["encoder_embeddings.tokens.weight"]
    )


# --- errors a user can cause ----------------------------------------------------------------------------


def test_finetune_translate_errors(tatoeba_slice, tmp_path):
    with pytest.raises(ConfigError, match="unknown model preset"):
        finetune(tiny_config(tatoeba_slice, tmp_path / "a", model="preset:transformer-huge"))
    encoder = build_model(preset("bert-tiny", vocab_size=64, d_model=32, n_heads=2, d_ff=64, n_layers=1))
    encoder_dir = encoder.save(tmp_path / "bert")
    with pytest.raises(ConfigError, match="needs an encoder-decoder"):
        finetune(tiny_config(tatoeba_slice, tmp_path / "b", model=encoder_dir))
    with pytest.raises(ConfigError, match="distinct source sentences"):
        finetune(tiny_config(tatoeba_slice, tmp_path / "c", **{"translate.test_sentences": 10**6}))
    with pytest.raises(ConfigError, match="adapters"):
        finetune(tiny_config(tatoeba_slice, tmp_path / "d", **{"lora.rank": 2, "lora.save": "adapters"}))
    with pytest.raises(MissingFileError, match="pairs file not found"):
        finetune(tiny_config(tatoeba_slice, tmp_path / "e", **{"translate.pairs": tmp_path / "absent.tsv"}))
    assert not (tmp_path / "a").exists() and not (tmp_path / "e").exists()  # checked before any output


def test_translate_command_errors(cli, scratch_run, tmp_path):
    decoder = build_model(preset("gpt-tiny", vocab_size=64, d_model=32, n_heads=2, d_ff=64, n_layers=1))
    decoder_dir = decoder.save(tmp_path / "gpt")
    code, _, err = cli("translate", "--model", decoder_dir, "Hi.")
    assert code == 2 and "a decoder model (head 'lm') cannot translate" in err

    bare = tmp_path / "bare"
    load(scratch_run.model_dir).save(bare)  # the weights without tokenizer.json
    code, _, err = cli("translate", "--model", bare, "Hi.")
    assert code == 2 and "tokenizer.json not found" in err

    code, _, err = cli("translate", "--model", scratch_run.out, "Hi.")  # the run directory, not its model/
    assert (
        code == 2 and f"a run directory, not a model directory; its model is {scratch_run.model_dir}" in err
    )
    code, _, err = cli("translate", "--model", tmp_path / "nowhere", "Hi.")
    assert code == 2 and "nowhere: no such directory" in err
    code, _, err = cli("translate", "--model", scratch_run.model_dir)
    assert code == 2 and "nothing to translate" in err
    code, _, err = cli("translate", "--model", scratch_run.model_dir, "--num-beams", "0", "Hi.")
    assert code == 2 and "argument --num-beams: must be at least 1, got 0" in err
    code, _, err = cli("translate", "--model", scratch_run.model_dir, "--file", tmp_path / "absent.txt")
    assert code == 2 and "--file " in err and "absent.txt: no such file" in err


def test_translate_command_decodes_speculatively(scratch_run, cli):
    """--draft (the model itself here: every draft token is kept) and --prompt-lookup give the greedy
    translations, with the acceptance rate in --json."""
    model_dir = scratch_run.model_dir
    texts = ["How are you?", "I like cats very much, and I have three of them at home."]
    base = ["translate", "--model", model_dir, "--num-beams", "1", "--max-new-tokens", "12", "--json", *texts]
    code, out, _ = cli(*base)
    plain = [json.loads(line) for line in out.splitlines()]
    code, out, err = cli(*base, "--draft", model_dir, "--num-speculative-tokens", "3")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["translation"] for r in records] == [p["translation"] for p in plain]
    assert all(r["acceptance_rate"] == 1.0 for r in records)
    code, out, err = cli(*base, "--prompt-lookup", "3")
    assert code == 0, err
    assert [json.loads(line)["token_ids"] for line in out.splitlines()] == [p["token_ids"] for p in plain]
    code, out, err = cli("translate", "--model", model_dir, "--draft", model_dir, "Hi.")  # beams 2 by default
    assert code == 0 and out == cli("translate", "--model", model_dir, "Hi.")[1]  # beams ignore drafts


def test_draft_for_trains_a_translation_draft_on_the_model_tokenizer(
    scratch_run, tatoeba_slice, tmp_path, cli
):
    """translate.draft_for: a preset run on the model's tokenizer, named in the model's generation.json;
    greedy translation with it gives the greedy translations."""
    import shutil

    target = tmp_path / "target"
    shutil.copytree(scratch_run.model_dir, target)
    settings = {"translate.draft_for": target, "train.max_steps": 3}
    draft = finetune(tiny_config(tatoeba_slice, tmp_path / "draft", **settings), log=lambda *_: None)
    assert (draft.model_dir / "tokenizer.json").read_text() == (target / "tokenizer.json").read_text()
    assert json.loads((target / "generation.json").read_text())["draft"] == "../draft/model"
    texts = ["How are you?", "Where is the station?"]
    greedy = ["translate", "--model", target, "--num-beams", "1", "--json", *texts]
    code, out, err = cli(*greedy)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert all("acceptance_rate" in r for r in records)  # the named draft ran
    code, plain, _ = cli(*greedy, "--draft", "none")
    assert [r["translation"] for r in records] == [
        json.loads(line)["translation"] for line in plain.splitlines()
    ]
    with pytest.raises(ConfigError, match="draft starts from a preset"):
        finetune(tiny_config(tatoeba_slice, tmp_path / "bad", **{"translate.draft_for": tmp_path}))


def load_generate_benchmark():
    """benchmarks/generate.py as a module (it appends benchmarks/ to sys.path: undone here)."""
    import importlib.util
    import sys

    path = list(sys.path)
    spec = importlib.util.spec_from_file_location("generate_benchmark", REPO / "benchmarks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
    return module


def test_speculative_benchmark_translates_held_out_sentences_identically(
    scratch_run, tatoeba_slice, tmp_path
):
    """`benchmarks/generate.py --speculative --corpus tatoeba` on a tiny run and its draft: the sentences
    are the run's test sentences, and every greedy variant — HF's (the models converted to Marian) and
    lmforge's, with the draft and by prompt lookup — gives plain greedy's tokens."""
    import argparse
    import shutil

    from lmforge.tokenizers import load_tokenizer

    bench = load_generate_benchmark()
    run = tmp_path / "run"
    shutil.copytree(scratch_run.out, run)  # the run's config.yaml holds its held-out rule
    architecture = "{d_model: 16, n_heads: 2, d_ff: 32, n_layers: 1}"
    settings = {
        "translate.draft_for": run / "model",
        "train.max_steps": 3,
        "translate.architecture": architecture,
    }
    draft = finetune(tiny_config(tatoeba_slice, tmp_path / "draft", **settings), log=lambda *_: None)

    tokenizer = load_tokenizer(run / "model" / "tokenizer.json")
    prompts, split = bench.held_out_sentences(run / "model", draft.model_dir, tokenizer, 2, 30, 64)
    assert split["test_sentences"] == 24 and len(prompts) == 24  # all of them, shuffled
    test = split_by_source(
        read_pairs(tatoeba_slice), test_sentences=24, validation_sentences=8, salt=split["split_salt"]
    )
    sources = {tokenizer.decode(p[:-1]) for p in prompts}
    assert sources == set(test.test.sources) and all(p[-1] == 2 for p in prompts)
    assert not sources & {pair.source for pair in test.train}

    args = argparse.Namespace(target=str(run / "model"), draft=str(draft.model_dir), corpus="tatoeba", prompts=6,
                              new_tokens=10, gamma=3, lookup=4, compile=False, reduced_precision=False)  # fmt: skip
    text, totals = bench.run_speculative(args)
    assert len(totals) == 7 and all(row["tokens"] > 0 for row in totals.values())
    assert all(row["same"] == row["reference_tokens"] for row in totals.values())  # identical tokens
    assert all(row["same_hf"] == row["reference_tokens"] for row in totals.values())
    speculative = next(row for name, row in totals.items() if name.startswith("lmforge speculative"))
    assert speculative["drafted"] > 0
    assert text.startswith(bench.SPECULATIVE_SECTIONS["tatoeba"]) and "6 held-out English sentences" in text

    other = tmp_path / "other"
    shutil.copytree(draft.out, other)
    (other / "config.yaml").write_text(
        (other / "config.yaml").read_text().replace("test_sentences: 24", "test_sentences: 20")
    )
    with pytest.raises(SystemExit, match="held-out rule"):
        bench.held_out_sentences(run / "model", other / "model", tokenizer, 2, 30, 64)
