"""`lmforge experiment data-efficiency` and the TF-IDF + logistic-regression baseline.

- the baseline against scikit-learn on real SST-2 text: the same vocabulary, idf and features (1e-6), the
  same logistic-regression weights (the same objective, minimised), the same predictions;
- fraction subsets: deterministic, nested, and the same for both starts (their run configs differ only in
  the start);
- a tiny experiment end to end: an encoder pre-trained by MLM in the test, both starts on 2 fractions × 2
  seeds of an SST-2 slice, results.json / table.md / png written, --resume skipping the finished runs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lmforge.baselines import LogisticRegression, TfidfVectorizer, tfidf_logreg
from lmforge.config import load_config, to_dict
from lmforge.data.classification import read_examples
from lmforge.errors import ConfigError
from lmforge.experiments.data_efficiency import (
    DataEfficiencyConfig,
    check_settings,
    first_reaching,
    fraction_subset,
    load_starts,
    run_config,
    summarize,
    verdict_lines,
)

REPO = Path(__file__).resolve().parents[1]
PRESETS = {
    "pretrained": str(REPO / "configs" / "sst2-bert-tiny-pretrained.yaml"),
    "scratch": str(REPO / "configs" / "sst2-bert-tiny-scratch.yaml"),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny matmuls on a busy shared machine: two OpenMP threads spin-wait on each other (100x slower)
    # (and scikit-learn's BLAS threads likewise: its multinomial fit went from 0.3 s to 25 s when they spun)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn is not installed: its tests skip anyway
        limits = None
    else:
        limits = threadpool_limits(1)
    yield
    if limits is not None:
        limits.restore_original_limits()
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sst2_texts(shared_data):
    """2,000 training phrases and the 872 dev sentences of SST-2, with integer labels."""
    train = read_examples(shared_data / "sst2" / "train.tsv", text_column="sentence", limit=2000)
    dev = read_examples(shared_data / "sst2" / "dev.tsv", text_column="sentence")
    return train, dev


# --- the baseline against scikit-learn ---------------------------------------------------------------

ODD_TEXTS = ["", "a b c", "Ünïcode wörds ÀND CAPS", "it's 2 good -- isn't it?", "x" * 3, "über_alles 42"]


@pytest.mark.parametrize("ngram_range, min_df", [((1, 1), 1), ((1, 2), 1), ((1, 2), 2), ((2, 3), 1)])
def test_tfidf_features_equal_scikit_learn(sst2_texts, ngram_range, min_df):
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    train, dev = sst2_texts
    texts = [e.text for e in train[:1000]] + ODD_TEXTS
    unseen = [e.text for e in dev[:300]] + ODD_TEXTS
    ours = TfidfVectorizer(ngram_range=ngram_range, min_df=min_df).fit(texts)
    reference = sklearn_text.TfidfVectorizer(ngram_range=ngram_range, min_df=min_df).fit(texts)
    assert ours.vocabulary == {k: int(v) for k, v in reference.vocabulary_.items()}
    np.testing.assert_allclose(ours.idf, reference.idf_, rtol=0, atol=1e-12)
    for batch in (texts, unseen):
        difference = ours.transform(batch).to_dense() - reference.transform(batch).toarray()
        assert np.abs(difference).max() < 1e-6


def _scipy(rows):
    """Our SparseRows as the scipy CSR matrix scikit-learn takes."""
    sparse = pytest.importorskip("scipy.sparse")
    return sparse.csr_matrix((rows.data, rows.indices, rows.indptr), shape=rows.shape)


def _sklearn_objective(X, labels, coef, intercept, C):
    """scikit-learn's logistic-regression objective / n, for weights in our layout."""
    logits = X @ coef + intercept
    if coef.shape[1] == 1:
        logits = np.concatenate([np.zeros_like(logits), logits], axis=1)
    logits -= logits.max(1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean() + (coef**2).sum() / (2 * C * len(labels))


@pytest.mark.parametrize("num_classes, C", [(2, 1.0), (2, 10.0), (3, 1.0)])
def test_logistic_regression_matches_scikit_learn(sst2_texts, num_classes, C):
    linear_model = pytest.importorskip("sklearn.linear_model")
    train, dev = sst2_texts
    texts = [e.text for e in train]
    labels = np.array([int(e.label) for e in train])
    if num_classes == 3:  # a third class: positive phrases of more than 8 words
        labels = np.where((labels == 1) & (np.array([len(t.split()) for t in texts]) > 8), 2, labels)
    vectorizer = TfidfVectorizer()
    X = vectorizer.fit_transform(texts)
    ours = LogisticRegression(C=C, tol=1e-8, max_iter=2000).fit(X, labels)
    reference = linear_model.LogisticRegression(C=C, tol=1e-10, max_iter=5000).fit(_scipy(X), labels)
    reference_coef = reference.coef_.T  # (columns, K): our layout
    dense = X.to_dense()
    # the same objective at its minimum: values equal, weights close
    ours_value = _sklearn_objective(dense, labels, ours.coef, ours.intercept, C)
    reference_value = _sklearn_objective(dense, labels, reference_coef, reference.intercept_, C)
    assert ours_value <= reference_value + 1e-9
    assert np.abs(ours.coef - reference_coef).max() < 1e-4 * np.abs(reference_coef).max()
    dev_X = vectorizer.transform([e.text for e in dev])
    agree = (ours.predict(dev_X) == reference.predict(_scipy(dev_X))).mean()
    assert agree >= 0.995
    np.testing.assert_allclose(
        ours.predict_proba(dev_X), reference.predict_proba(_scipy(dev_X)), rtol=0, atol=1e-3
    )


def test_tfidf_logreg_baseline_scores_like_the_scikit_learn_pipeline(sst2_texts):
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    linear_model = pytest.importorskip("sklearn.linear_model")
    train, dev = sst2_texts
    result = tfidf_logreg(train, dev, ["0", "1"])
    vectorizer = sklearn_text.TfidfVectorizer()
    model = linear_model.LogisticRegression().fit(
        vectorizer.fit_transform([e.text for e in train]), [e.label for e in train]
    )
    reference = (model.predict(vectorizer.transform([e.text for e in dev])) == [e.label for e in dev]).mean()
    assert abs(result.accuracy - reference) <= 2 / len(dev)  # a prediction or two at the boundary
    assert 0.6 < result.accuracy < 0.9 and result.train_examples == 2000
    assert result.features == len(vectorizer.vocabulary_)
    again = tfidf_logreg(train, dev, ["0", "1"])
    assert (again.accuracy, again.macro_f1) == (result.accuracy, result.macro_f1)  # deterministic


# --- subsets and the two starts ----------------------------------------------------------------------


def test_fraction_subsets_are_deterministic_and_nested():
    small, large, full = (fraction_subset(67_349, f) for f in (0.01, 0.1, 1.0))
    assert (len(small), len(large), len(full)) == (673, 6_735, 67_349)
    assert small == fraction_subset(67_349, 0.01)  # the same every time
    assert set(small) <= set(large) <= set(full) and full == list(range(67_349))
    assert small == sorted(set(small))  # file order, no repeats
    assert fraction_subset(67_349, 0.01, seed=1) != small
    assert fraction_subset(50, 0.001) == fraction_subset(50, 0.001) and len(fraction_subset(50, 0.001)) == 1


def test_both_starts_get_the_same_run_settings_except_the_start(tmp_path):
    config = DataEfficiencyConfig(
        pretrained=PRESETS["pretrained"],
        scratch=PRESETS["scratch"],
        model="some/model",
        overrides=["train.lr=2e-4"],
    )
    starts = load_starts(config, log=lambda *_: None)
    runs = {
        start: to_dict(
            run_config(
                preset,
                out=tmp_path / start,
                train_file=tmp_path / "train-frac-0.1.jsonl",
                steps=400,
                eval_every=50,
                seed=2,
            )
        )
        for start, preset in starts.items()
    }
    assert runs["pretrained"]["from_scratch"] is False and runs["scratch"]["from_scratch"] is True
    for start in runs.values():
        assert start["data"]["train"] == str(tmp_path / "train-frac-0.1.jsonl")
        assert (start["train"]["seed"], start["train"]["max_steps"], start["train"]["eval_every"]) == (
            2,
            400,
            50,
        )
        assert start["train"]["lr"] == 2e-4 and start["model"] == "some/model"
        assert start["fit_steps_to_minutes"] is False and start["train"]["max_minutes"] is None
        start.pop("out"), start.pop("from_scratch")
    assert runs["pretrained"] == runs["scratch"]


def test_presets_with_different_data_are_refused(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(Path(PRESETS["scratch"]).read_text().replace("sst2/dev.tsv", "sst2/other.tsv"))
    config = DataEfficiencyConfig(pretrained=PRESETS["pretrained"], scratch=str(other))
    with pytest.raises(ConfigError, match="read different data"):
        load_starts(config, log=lambda *_: None)


def test_summary_compares_the_margin_with_the_spread_across_seeds():
    def run(start, seed, accuracy):
        evaluations = [{"step": 10, "elapsed_s": 1.0, "val_accuracy": accuracy - 0.1}]
        evaluations.append({"step": 20, "elapsed_s": 2.0, "val_accuracy": accuracy})
        return {"start": start, "fraction": 0.1, "seed": seed, "dev_accuracy": accuracy, "seconds": 3.0,
                "evaluations": evaluations}  # fmt: skip

    plans = {0.1: {"train_examples": 100, "steps": 20, "batch_size": 10}}
    config = DataEfficiencyConfig(fractions=[0.1], seeds=[0, 1], target=0.75)
    runs = [
        run("pretrained", 0, 0.80),
        run("pretrained", 1, 0.86),
        run("scratch", 0, 0.70),
        run("scratch", 1, 0.72),
    ]
    (row,) = summarize(runs, {}, plans, config)
    assert row["pretrained"]["mean"] == pytest.approx(0.83) and row["spread"] == pytest.approx(0.06)
    assert row["margin"] == pytest.approx(0.12) and row["pretrained_wins_beyond_spread"] is True
    assert row["pretrained_to_target"]["reached"] == 2 and row["pretrained_to_target"]["steps_mean"] == 15
    assert row["scratch_to_target"]["reached"] == 0 and row["scratch_to_target"]["steps_mean"] is None
    assert "beats scratch by more than the spread" in verdict_lines([row])[0]
    runs[1]["dev_accuracy"] = 0.60  # one bad pre-trained seed widens the spread beyond the margin
    (row,) = summarize(runs, {}, plans, config)
    assert row["pretrained_wins_beyond_spread"] is False and "does NOT beat" in verdict_lines([row])[0]
    (row,) = summarize(runs[::2], {}, plans, dataclasses.replace(config, seeds=[0]))
    assert row["pretrained_wins_beyond_spread"] is None and "one seed" in verdict_lines([row])[0]


def test_first_reaching_the_target():
    evaluations = [
        {"step": s, "elapsed_s": s / 10, "val_accuracy": a} for s, a in ((50, 0.6), (100, 0.8), (150, 0.9))
    ]
    assert first_reaching(evaluations, 0.75)["step"] == 100
    assert first_reaching(evaluations, 0.95) is None


def test_steps_default_per_fraction():
    """Without --steps, any set of fractions gets a budget each (200 at 1%, doubling per tenfold)."""
    checked = check_settings(DataEfficiencyConfig(fractions=[0.1, 0.01]))
    assert checked.steps == [400, 200]
    assert check_settings(DataEfficiencyConfig()).steps == [200, 400, 800]
    assert check_settings(DataEfficiencyConfig(fractions=[0.1, 1.0], steps=[7])).steps == [7, 7]


def test_bad_arguments_fail_before_any_work(cli, tmp_path):
    out = tmp_path / "never"
    for args, message in (
        (["--fractions", "0.01,2"], "each must be in (0, 1]"),
        (["--steps", "10,20,30,40"], "one positive step budget per fraction"),
        (["--seeds", "1,1"], "distinct seeds"),
        (["--model", str(tmp_path / "missing")], "lmforge pretrain --config configs/bert-mlm-wikitext2.yaml"),
    ):
        code, _, err = cli("experiment", "data-efficiency", "--out", out, *args)
        assert code == 2 and message in err
    assert not out.exists()


# --- a tiny experiment end to end --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_mlm_model(shared_data, tmp_path_factory) -> Path:
    """bert-tiny shrunk to 2 layers of width 32, pre-trained by MLM on 60k characters of wikitext-2 for
    40 steps (a few seconds): a real `lmforge pretrain` model directory."""
    from lmforge.pretrain import PretrainConfig, pretrain

    folder = tmp_path_factory.mktemp("mlm")
    for name in ("train", "valid"):
        text = (shared_data / "wikitext-2" / f"{name}.txt").read_text()[:60_000]
        (folder / f"{name}.txt").write_text(text)
    config = load_config(
        PretrainConfig,
        REPO / "configs" / "bert-mlm-wikitext2.yaml",
        [
            f"data.files=[{folder / 'train.txt'}]",
            f"data.val_files=[{folder / 'valid.txt'}]",
            f"out={folder / 'run'}",
            "tokenizer.vocab_size=600",
            "model.changes={d_model: 32, n_layers: 2, n_heads: 2, d_ff: 64, max_positions: 64}",
            "block_size=64",
            "fit_steps_to_minutes=false",
            "train.max_minutes=null",
            "train.max_steps=40",
            "train.batch_size=8",
            "train.warmup_steps=4",
            "train.eval_every=0",
            "train.eval_batches=2",
            "train.progress=false",
            "train.tensorboard=false",
        ],
    )
    return pretrain(config, log=lambda *_: None).model_dir


@pytest.fixture(scope="module")
def sst2_slice(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sst2")
    for name, count in (("train", 300), ("dev", 80)):
        lines = (shared_data / "sst2" / f"{name}.tsv").read_text().splitlines()[: count + 1]
        (folder / f"{name}.tsv").write_text("\n".join(lines) + "\n")
    return folder / "train.tsv", folder / "dev.tsv"


def test_tiny_experiment_end_to_end_then_resume(tiny_mlm_model, sst2_slice, tmp_path, cli):
    out = tmp_path / "experiment"
    args = [
        "experiment", "data-efficiency",
        "--pretrained", PRESETS["pretrained"], "--scratch", PRESETS["scratch"],
        "--model", tiny_mlm_model,
        "--fractions", "10%,100%", "--seeds", "0,1", "--steps", "6,10", "--evaluations", "2",
        "--target", "0.5", "--out", out,
        f"--data.train={sst2_slice[0]}", f"--data.dev={sst2_slice[1]}",
        "--train.batch_size=8", "--train.lr=1e-3",
    ]  # fmt: skip
    code, stdout, _ = cli(*args)
    assert code == 0
    document = json.loads((out / "results.json").read_text())
    runs = document["runs"]
    assert len(runs) == 8 and {(r["start"], r["fraction"], r["seed"]) for r in runs} == {
        (start, f, s) for start in ("pretrained", "scratch") for f in (0.1, 1.0) for s in (0, 1)
    }
    for run in runs:
        expected_steps = 6 if run["fraction"] == 0.1 else 10
        assert run["steps"] == expected_steps and run["train_examples"] == (
            30 if run["fraction"] == 0.1 else 300
        )
        assert [e["step"] for e in run["evaluations"]] == [expected_steps // 2, expected_steps]
        assert 0 <= run["dev_accuracy"] <= 1
    # the same subset file and seed for both starts: their saved configs differ only in the start
    configs = {
        start: (out / "runs" / start / "frac-0.1-seed-1" / "config.yaml").read_text()
        for start in ("pretrained", "scratch")
    }
    assert "frac-0.1.jsonl" in configs["pretrained"]
    differing = {
        line
        for line in set(configs["pretrained"].splitlines()) ^ set(configs["scratch"].splitlines())
        if not line.startswith(("out:", "from_scratch:"))
    }
    assert differing == set()
    subset = (out / "data" / "train-frac-0.1.jsonl").read_text().splitlines()
    assert len(subset) == 30
    assert not (out / "runs" / "pretrained" / "frac-0.1-seed-0" / "checkpoints").exists()

    summary = {row["fraction"]: row for row in document["summary"]}
    assert summary[0.1]["pretrained"]["seeds"] == 2 and summary[0.1]["tfidf_logreg"]["train_examples"] == 30
    table = (out / "table.md").read_text()
    assert "| 10% | 30 |" in table and "| 100% | 300 |" in table and "Steps and wall time" in table
    assert "At 10% of the data, pre-trained" in table and table in stdout
    assert (out / "data-efficiency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # --resume keeps the finished runs; a run whose result.json is missing is redone
    (out / "runs" / "scratch" / "frac-1-seed-1" / "result.json").unlink()
    before = (out / "runs" / "pretrained" / "frac-1-seed-0" / "result.json").stat().st_mtime_ns
    code, stdout, _ = cli(*args, "--resume")
    assert code == 0
    assert stdout.count("finished before (--resume)") == 7
    assert "from scratch, 100%, seed 1: 10 steps" in stdout
    assert (out / "runs" / "pretrained" / "frac-1-seed-0" / "result.json").stat().st_mtime_ns == before
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 8


def test_resume_redoes_a_run_made_from_another_model(tmp_path):
    from lmforge.experiments.data_efficiency import finished_record

    plan = {"steps": 10, "eval_every": 5, "train_examples": 30}
    record = {"planned_steps": 10, "eval_every": 5, "train_examples": 30, "model": "runs/a/model"}
    (tmp_path / "result.json").write_text(json.dumps(record))
    assert finished_record(tmp_path, plan, "runs/a/model") == record
    assert finished_record(tmp_path, plan, "runs/b/model") is None  # another start: redo it
    assert finished_record(tmp_path, {**plan, "steps": 20}, "runs/a/model") is None
    del record["model"]  # records written before the model was recorded: the plan decides
    (tmp_path / "result.json").write_text(json.dumps(record))
    assert finished_record(tmp_path, plan, "runs/b/model") == record


def test_scratch_runs_are_kept_across_models_with_the_same_architecture_and_tokenizer(
    tiny_mlm_model, tmp_path
):
    """A from-scratch run reads only the architecture and the tokenizer of its model directory: --resume with
    a continued pre-training of the same model keeps the scratch runs and redoes the pre-trained ones."""
    import torch

    from lmforge.experiments.data_efficiency import finished_record, start_fingerprint
    from lmforge.model import load

    model = load(tiny_mlm_model)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    other = model.save(tmp_path / "continued", tokenizer=Path(tiny_mlm_model) / "tokenizer.json")
    first, second = str(tiny_mlm_model), str(other)
    assert start_fingerprint(first, "scratch") == start_fingerprint(second, "scratch")
    assert start_fingerprint(first, "pretrained") != start_fingerprint(second, "pretrained")
    assert start_fingerprint(str(tmp_path / "missing"), "scratch") is None

    plan = {"steps": 10, "eval_every": 5, "train_examples": 30}
    for start in ("scratch", "pretrained"):
        run_dir = tmp_path / start
        run_dir.mkdir()
        record = {"planned_steps": 10, "eval_every": 5, "train_examples": 30, "model": first, "start": start}
        for with_fingerprint in (True, False):  # records from before fingerprints: the named model is read
            if with_fingerprint:
                record["fingerprint"] = start_fingerprint(first, start)
            else:
                record.pop("fingerprint")
            (run_dir / "result.json").write_text(json.dumps(record))
            kept = finished_record(run_dir, plan, second, start_fingerprint(second, start))
            assert (kept == record) == (start == "scratch")
