"""The data-efficiency experiment: the course's claims about pre-training, measured.

    from lmforge.experiments.data_efficiency import DataEfficiencyConfig, data_efficiency
    document = data_efficiency(DataEfficiencyConfig(fractions=[0.01, 0.1], seeds=[0], out="runs/de"))

Experiment `data-efficiency` (more experiments can join it as sub-commands):
  1. subsets: each fraction of the training set is the first round(fraction × N) examples of one fixed
     random permutation (`--subset-seed`, default 0) — so 1% ⊂ 10% ⊂ 100%, the same subset for every seed
     and for both starts; written to OUT/data/train-frac-F.jsonl;
  2. runs: the pre-trained preset and the from-scratch preset (same architecture, random weights) are
     fine-tuned on every fraction with every seed — the seed sets the head's (scratch: the whole model's)
     initialisation, dropout and data order, identically for both starts. Each fraction has a step budget
     (`--steps`), so small fractions see several epochs; `--evaluations` dev evaluations per run;
  3. baseline: TF-IDF + logistic regression (`lmforge.baselines`) on the same subsets;
  4. report: OUT/results.json (every run, every evaluation), OUT/table.md and OUT/data-efficiency.png —
     dev accuracy against the fraction (log scale) with the mean and the min–max range over seeds, and the
     steps and wall time each start needs to first reach `--target` dev accuracy (from metrics.jsonl).

Each run lives in OUT/runs/START/frac-F-seed-S/; its result.json marks it finished. `--resume` keeps
finished runs whose settings and start match and starts every other run from its beginning (a run cut off
half-way is redone whole, so that its wall times come from one session). A start is matched by a hash of
what it reads from the model directory: a from-scratch run reads only the architecture and the tokenizer,
so its runs are kept when --model names another model with both the same (e.g. a continued
pre-training); a pre-trained run also hashes the weights. The tables are rewritten after every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.errors import ConfigError, LmforgeError, MissingFileError
from lmforge.io import save_figure, write_text

STARTS = ("pretrained", "scratch")
START_NAMES = {"pretrained": "pre-trained", "scratch": "from scratch"}


@dataclass
class DataEfficiencyConfig:
    pretrained: str = "configs/sst2-bert-tiny-pretrained.yaml"  # preset of the pre-trained start
    scratch: str = "configs/sst2-bert-tiny-scratch.yaml"  # the same architecture from random weights
    model: str | None = None  # model directory for both presets; None = the presets' own `model`
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0])  # of the training set
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    # optimizer steps per fraction (batch 32): 1% (673 examples) → 9.5 epochs, 10% → 1.9, 100% → 0.4;
    # None = `default_steps` of each fraction (200, 400, 800 for the default fractions)
    steps: list[int] | None = None
    evaluations: int = 8  # dev evaluations per run: the resolution of "steps to reach the target"
    target: float = 0.75  # the dev accuracy whose first crossing is timed
    subset_seed: int = 0  # the permutation the subsets are cut from
    baseline: bool = True  # TF-IDF + logistic regression beside the two starts
    keep_models: bool = False  # keep each run's model/ (20 MB each for bert-tiny); checkpoints are removed
    out: str = "runs/data-efficiency"
    resume: bool = False
    overrides: list[str] = field(default_factory=list)  # --section.key=value for both presets


# --- subsets ------------------------------------------------------------------------------------------


def subset_size(num_examples: int, fraction: float) -> int:
    return max(1, min(num_examples, round(fraction * num_examples)))


def fraction_subset(num_examples: int, fraction: float, seed: int = 0) -> list[int]:
    """Indices (ascending) of the examples in the subset: a prefix of one seeded permutation.

    >>> fraction_subset(10, 0.3), fraction_subset(10, 0.1)     # nested: 10% ⊂ 30%
    ([2, 4, 6], [4])
    """
    import numpy as np

    permutation = np.random.default_rng(seed).permutation(num_examples)
    return sorted(int(i) for i in permutation[: subset_size(num_examples, fraction)])


def write_subset(examples, indices: list[int], data, path: Path) -> Path:
    """The chosen examples as JSONL with the preset's column names (no quoting questions, any text)."""

    lines = []
    for i in indices:
        record = {data.text_column: examples[i].text, data.label_column: examples[i].label}
        if data.pair_column is not None:
            record[data.pair_column] = examples[i].pair
        lines.append(json.dumps(record, ensure_ascii=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(lines) + "\n")
    return path


# --- the two starts -----------------------------------------------------------------------------------


def load_starts(config: DataEfficiencyConfig, log=print) -> dict:
    """The two FinetuneConfigs (pre-trained, scratch), checked to be comparable."""
    from lmforge.config import load_config, to_dict
    from lmforge.finetune import FinetuneConfig

    starts = {}
    for start, path in (("pretrained", config.pretrained), ("scratch", config.scratch)):
        preset = load_config(FinetuneConfig, path, config.overrides)
        preset = dataclasses.replace(
            preset, model=config.model or preset.model, from_scratch=start == "scratch"
        )
        if preset.task != "classify":
            raise ConfigError(f"{path}: task {preset.task}; the data-efficiency experiment needs classify")
        starts[start] = preset
    pretrained, scratch = starts["pretrained"], starts["scratch"]
    if pretrained.data != scratch.data:
        raise ConfigError(
            f"{config.pretrained} and {config.scratch} read different data; the comparison needs the same "
            "data section in both presets"
        )
    if pretrained.model != scratch.model:
        raise ConfigError(
            f"the presets start from different models ({pretrained.model} vs {scratch.model}); scratch "
            "must be the pre-trained model's architecture — pass --model DIR for both"
        )
    flat = {start: _flatten(to_dict(preset)) for start, preset in starts.items()}
    ignored = {"out", "from_scratch"}
    differences = [
        f"{key} {flat['pretrained'].get(key)!r} vs {flat['scratch'].get(key)!r}"
        for key in sorted(set(flat["pretrained"]) | set(flat["scratch"]))
        if key not in ignored and flat["pretrained"].get(key) != flat["scratch"].get(key)
    ]
    if differences:
        log("note: the presets differ beyond the start: " + "; ".join(differences))
    return starts


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run_config(preset, *, out: Path, train_file: Path, steps: int, eval_every: int, seed: int):
    """The preset for one run: its subset, step budget, evaluation schedule, seed and directory (the
    user's --section.key=value overrides are already in the preset; these settings are the experiment's)."""
    data = dataclasses.replace(preset.data, train=str(train_file), max_train_examples=None)
    train = dataclasses.replace(
        preset.train,
        max_steps=steps,
        max_minutes=None,
        warmup_steps=min(preset.train.warmup_steps, steps // 10),
        eval_every=eval_every,
        seed=seed,
        resume=False,  # a run is always done in one session (wall times); --resume works per run
        progress=False,  # one line per run instead
        tensorboard=False,
        keep_last=1,
    )
    return dataclasses.replace(preset, out=str(out), fit_steps_to_minutes=False, data=data, train=train)


# --- one run ------------------------------------------------------------------------------------------


def first_reaching(evaluations: list[dict], target: float) -> dict | None:
    """The first evaluation whose dev accuracy is at least `target` ({step, elapsed_s, val_accuracy})."""
    return next((e for e in evaluations if e["val_accuracy"] >= target), None)


def run_one(
    preset,
    *,
    start: str,
    fingerprint: str | None,
    fraction: float,
    seed: int,
    plan: dict,
    run_dir: Path,
    config,
) -> dict:
    """Fine-tune one start on one subset with one seed; returns (and writes) its result.json record.
    `fingerprint` is the start's `start_fingerprint`, recorded for --resume."""
    from lmforge.finetune import finetune
    from lmforge.train.logging import read_metrics

    if run_dir.exists():
        shutil.rmtree(run_dir)  # a half-finished run is redone whole
    settings = run_config(
        preset,
        out=run_dir,
        train_file=plan["train_file"],
        steps=plan["steps"],
        eval_every=plan["eval_every"],
        seed=seed,
    )
    result = finetune(settings, log=lambda *_: None)
    evaluations = [
        {"step": r["step"], "elapsed_s": r["elapsed_s"], "val_accuracy": r["val_accuracy"]}
        for r in read_metrics(run_dir / "metrics.jsonl")
        if r.get("split") == "val" and "val_accuracy" in r
    ]
    record = {
        "start": start,
        "model": str(preset.model),
        "fingerprint": fingerprint,
        "fraction": fraction,
        "seed": seed,
        "train_examples": plan["train_examples"],
        "steps": result.steps,
        "planned_steps": plan["steps"],
        "eval_every": plan["eval_every"],
        "batch_size": settings.train.batch_size,
        "epochs": result.steps * settings.train.batch_size / plan["train_examples"],
        "seconds": result.seconds,
        "dev_accuracy": result.metrics.get("val_accuracy"),
        "dev_macro_f1": result.metrics.get("val_macro_f1"),
        "dev_loss": result.metrics.get("val_loss"),
        "best_dev_accuracy": max((e["val_accuracy"] for e in evaluations), default=None),
        "evaluations": evaluations,
    }
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    if not config.keep_models:
        shutil.rmtree(run_dir / "model", ignore_errors=True)
    write_text(run_dir / "result.json", json.dumps(record, indent=1) + "\n")
    return record


def start_fingerprint(model: str, start: str) -> str | None:
    """SHA-256 of what a start takes from its model directory: the architecture (config.json) and the
    tokenizer, and for the pre-trained start the weights too. A from-scratch run reads no weights, so two
    model directories with the same architecture and tokenizer (a model and its continued pre-training)
    give the same scratch runs, and --resume may keep them. None when the directory cannot be read."""
    from lmforge.model_source import resolve_model_source

    try:
        source = resolve_model_source(model)
    except LmforgeError:
        return None
    digest = hashlib.sha256()
    names = ["config.json", "tokenizer.json"] + (["model.safetensors"] if start != "scratch" else [])
    for name in names:
        path = source / name
        if not path.is_file():
            return None
        if name == "config.json":  # the architecture, without fields a fine-tune or a copy may rewrite
            document = json.loads(path.read_text())
            digest.update(json.dumps(document.get("model", document), sort_keys=True).encode())
        else:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def finished_record(
    run_dir: Path, plan: dict, model: str | None = None, fingerprint: str | None = None
) -> dict | None:
    """The result.json of a finished run made with the same plan (steps, evaluations, subset size) and the
    same start: the same fingerprint when both sides have one (see `start_fingerprint`), else, when the
    record names it, the same model directory."""
    path = run_dir / "result.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    recorded = record.get("fingerprint")
    if recorded is None and fingerprint is not None and record.get("model") and record.get("start"):
        recorded = start_fingerprint(record["model"], record["start"])  # a record written before fingerprints
    if fingerprint is not None and recorded is not None:
        same_start = recorded == fingerprint
    else:
        same_start = model is None or record.get("model", model) == model
    same = (
        record.get("planned_steps") == plan["steps"]
        and record.get("eval_every") == plan["eval_every"]
        and record.get("train_examples") == plan["train_examples"]
        and same_start
    )
    return record if same else None


# --- summary ------------------------------------------------------------------------------------------


def spread_stats(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "min": min(values),
        "max": max(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "seeds": len(values),
    }


def summarize(runs: list[dict], baselines: dict, plans: dict, config: DataEfficiencyConfig) -> list[dict]:
    """One row per fraction: accuracy per start (mean, min–max), margin vs spread, steps/time to target."""
    rows = []
    for fraction in config.fractions:
        plan = plans[fraction]
        row = {
            "fraction": fraction,
            "train_examples": plan["train_examples"],
            "steps": plan["steps"],
            "epochs": plan["steps"] * plan["batch_size"] / plan["train_examples"],
        }
        for start in STARTS:
            mine = [r for r in runs if r["start"] == start and r["fraction"] == fraction]
            row[start] = spread_stats([r["dev_accuracy"] for r in mine]) if mine else None
            reached = [hit for r in mine if (hit := first_reaching(r["evaluations"], config.target))]
            row[f"{start}_to_target"] = {
                "reached": len(reached),
                "runs": len(mine),
                "steps_mean": statistics.fmean(h["step"] for h in reached) if reached else None,
                "seconds_mean": statistics.fmean(h["elapsed_s"] for h in reached) if reached else None,
                "seconds_total_mean": statistics.fmean(r["seconds"] for r in mine) if mine else None,
            }
        if row["pretrained"] and row["scratch"]:
            margin = row["pretrained"]["mean"] - row["scratch"]["mean"]
            spread = max(s["max"] - s["min"] for s in (row["pretrained"], row["scratch"]))
            row["margin"] = margin
            row["spread"] = spread  # the wider of the two min–max ranges over seeds
            one_seed = min(row["pretrained"]["seeds"], row["scratch"]["seeds"]) < 2
            row["pretrained_wins_beyond_spread"] = None if one_seed else margin > spread  # None: no spread
        row["tfidf_logreg"] = baselines.get(fraction)
        rows.append(row)
    return rows


def render_table(document: dict) -> str:
    """table.md: accuracy per fraction, then steps and wall time to the target accuracy."""
    settings = document["settings"]
    seeds = ("seeds " if len(settings["seeds"]) > 1 else "seed ") + ", ".join(
        str(s) for s in settings["seeds"]
    )
    lines = [
        "# Data efficiency: pre-trained vs from-scratch start",
        "",
        f"Presets `{settings['pretrained']}` and `{settings['scratch']}` (model `{document['model']}`). "
        f"Dev accuracy on {document['dev_examples']:,} dev examples at the end of each run (majority class: "
        f"{document['majority_accuracy']:.3f}); mean [min–max] over {seeds}. Subsets: a fixed random "
        f"sample (subset seed {settings['subset_seed']}) of the {document['train_examples_total']:,} training "
        "examples, nested, the same for both starts and every seed.",
        "",
        "| fraction | train examples | steps (epochs) | pre-trained | from scratch | pre − scratch | spread "
        "| beyond spread | TF-IDF + LR |",
        "| ---: | ---: | ---: | --- | --- | ---: | ---: | :---: | ---: |",
    ]

    def cell(stats):
        if not stats:
            return "—"
        if stats["seeds"] == 1:
            return f"{stats['mean']:.3f}"
        return f"{stats['mean']:.3f} [{stats['min']:.3f}–{stats['max']:.3f}]"

    for row in document["summary"]:
        baseline = row["tfidf_logreg"]
        margin = f"{row['margin']:+.3f}" if "margin" in row else "—"
        spread = f"{row['spread']:.3f}" if "spread" in row else "—"
        beyond = {True: "yes", False: "no"}.get(row.get("pretrained_wins_beyond_spread"), "—")
        baseline_cell = f"{baseline['accuracy']:.3f}" if baseline else "—"
        lines.append(
            f"| {_percent(row['fraction'])} | {row['train_examples']:,} | {row['steps']:,} ({row['epochs']:.1f}) "
            f"| {cell(row['pretrained'])} | {cell(row['scratch'])} | {margin} | {spread} | {beyond} "
            f"| {baseline_cell} |"
        )
    lines += [
        "",
        'Spread: the wider of the two min–max ranges over seeds; "beyond spread": the pre-trained mean '
        "exceeds the scratch mean by more than it.",
        "",
        f"## Steps and wall time to first reach dev accuracy {settings['target']:g}",
        "",
        "Mean over the seeds that reach it, from the evaluations in each run's metrics.jsonl (every "
        f"steps/{settings['evaluations']} steps); wall time since the training loop started, evaluations "
        "included. Last column: the whole run.",
        "",
        "| fraction | start | seeds reaching | steps | wall time | run time |",
        "| ---: | --- | :---: | ---: | ---: | ---: |",
    ]
    for row in document["summary"]:
        for start in STARTS:
            hit = row[f"{start}_to_target"]
            if not hit["runs"]:
                continue
            steps = f"{hit['steps_mean']:,.0f}" if hit["steps_mean"] is not None else "not reached"
            seconds = f"{hit['seconds_mean']:,.0f} s" if hit["seconds_mean"] is not None else "—"
            lines.append(
                f"| {_percent(row['fraction'])} | {START_NAMES[start]} | {hit['reached']}/{hit['runs']} "
                f"| {steps} | {seconds} | {hit['seconds_total_mean']:,.0f} s |"
            )
    lines += ["", *verdict_lines(document["summary"])]
    return "\n".join(lines) + "\n"


def verdict_lines(summary: list[dict]) -> list[str]:
    """One sentence per fraction below 100%: does the pre-trained start win by more than the spread?"""
    lines = []
    for row in summary:
        if row["fraction"] >= 1 or "margin" not in row:
            continue
        where = f"At {_percent(row['fraction'])} of the data"
        points = f"{100 * row['margin']:+.1f} points"
        if row["pretrained_wins_beyond_spread"] is None:
            lines.append(
                f"{where}, pre-trained minus scratch is {points} with one seed: no spread to compare it with "
                "(run more seeds)."
            )
            continue
        verdict = "beats" if row["pretrained_wins_beyond_spread"] else "does NOT beat"
        lines.append(
            f"{where}, pre-trained {verdict} scratch by more than the spread across seeds: {points} vs a "
            f"spread of {100 * row['spread']:.1f} points ({row['pretrained']['seeds']} seeds)."
        )
    return lines


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


def plot(document: dict, runs: list[dict], path: Path) -> Path:
    """Left: dev accuracy vs fraction (log x), mean and min–max band per start, TF-IDF and majority lines.
    Right: mean dev accuracy over training steps per fraction (solid pre-trained, dashed scratch)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    colors = {"pretrained": "tab:blue", "scratch": "tab:orange"}
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), dpi=110)
    summary = document["summary"]
    for start in STARTS:
        rows = [r for r in summary if r[start]]
        if not rows:
            continue
        xs = [r["fraction"] for r in rows]
        left.plot(
            xs, [r[start]["mean"] for r in rows], marker="o", color=colors[start], label=START_NAMES[start]
        )
        left.fill_between(
            xs,
            [r[start]["min"] for r in rows],
            [r[start]["max"] for r in rows],
            color=colors[start],
            alpha=0.2,
        )
    baseline_rows = [r for r in summary if r["tfidf_logreg"]]
    if baseline_rows:
        left.plot(
            [r["fraction"] for r in baseline_rows],
            [r["tfidf_logreg"]["accuracy"] for r in baseline_rows],
            marker="s",
            linestyle="--",
            color="tab:green",
            label="TF-IDF + logistic regression",
        )
    left.axhline(document["majority_accuracy"], color="grey", linestyle=":", label="majority class")
    left.set_xscale("log")
    left.set_xticks([r["fraction"] for r in summary])
    left.set_xticklabels([f"{_percent(r['fraction'])}\n({r['train_examples']:,})" for r in summary])
    left.minorticks_off()
    left.set_xlabel("fraction of the training set (examples)")
    left.set_ylabel("dev accuracy")
    seeds = len(document["settings"]["seeds"])
    left.set_title(f"dev accuracy vs data ({seeds} seed{'s' if seeds > 1 else ''}; band = min–max)")
    left.grid(alpha=0.3)
    left.legend(loc="lower right", fontsize=8)

    shades = {
        f: 0.35 + 0.65 * i / max(1, len(summary) - 1) for i, f in enumerate(r["fraction"] for r in summary)
    }
    for start in STARTS:
        for fraction in shades:
            mine = [r for r in runs if r["start"] == start and r["fraction"] == fraction]
            if not mine:
                continue
            steps = sorted({e["step"] for r in mine for e in r["evaluations"]})
            means = [
                statistics.fmean(e["val_accuracy"] for r in mine for e in r["evaluations"] if e["step"] == s)
                for s in steps
            ]
            right.plot(
                steps,
                means,
                color=colors[start],
                alpha=shades[fraction],
                linestyle="-" if start == "pretrained" else "--",
                marker=".",
                label=f"{START_NAMES[start]}, {_percent(fraction)}",
            )
    right.axhline(document["settings"]["target"], color="grey", linestyle=":", label="target")
    right.set_xlabel("training step")
    right.set_ylabel("dev accuracy (mean over seeds)")
    right.set_title("convergence")
    right.grid(alpha=0.3)
    right.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return save_figure(figure, path)


# --- the experiment -----------------------------------------------------------------------------------


def default_steps(fraction: float) -> int:
    """A fraction's step budget when none is given: 200 at 1%, doubling with each tenfold more data, so a
    small subset is seen for several epochs and the full set for under one.

    >>> [default_steps(f) for f in (0.01, 0.1, 1.0, 0.05, 0.001)]
    [200, 400, 800, 325, 100]
    """
    return max(50, round(200 * 2 ** math.log10(fraction / 0.01)))


def check_settings(config: DataEfficiencyConfig) -> DataEfficiencyConfig:
    """Argument checks, before any file is read; one step budget for all fractions is spread to each."""
    if not config.fractions or any(not 0 < f <= 1 for f in config.fractions):
        raise ConfigError(f"--fractions {config.fractions}: each must be in (0, 1], e.g. 0.01,0.1,1")
    if len(set(config.fractions)) != len(config.fractions):
        raise ConfigError(f"--fractions {config.fractions}: a fraction is repeated")
    if not config.seeds or len(set(config.seeds)) != len(config.seeds):
        raise ConfigError(f"--seeds {config.seeds}: give distinct seeds, e.g. 0,1,2")
    if config.steps is None:
        config = dataclasses.replace(config, steps=[default_steps(f) for f in config.fractions])
    if len(config.steps) == 1:
        config = dataclasses.replace(config, steps=config.steps * len(config.fractions))
    if len(config.steps) != len(config.fractions) or any(s < 1 for s in config.steps):
        raise ConfigError(
            f"--steps {config.steps}: give one positive step budget per fraction ({len(config.fractions)}) "
            "or one for all"
        )
    if config.evaluations < 1:
        raise ConfigError(f"--evaluations {config.evaluations}: at least 1 (the final one)")
    if not 0 < config.target <= 1:
        raise ConfigError(f"--target {config.target}: a dev accuracy in (0, 1]")
    return config


def data_efficiency(config: DataEfficiencyConfig, log=print) -> dict:
    """Run (or resume) the experiment; returns the results document also written to OUT/results.json."""
    from lmforge.baselines import tfidf_logreg
    from lmforge.finetune.classify import read_splits
    from lmforge.model_source import require_source_kind

    config = check_settings(config)
    starts = load_starts(config, log)
    preset = starts["pretrained"]
    try:
        require_source_kind(preset.model, {"encoder": None}, purpose="be fine-tuned to classify")
    except MissingFileError as exc:
        raise MissingFileError(
            f"{exc}; pre-train it with `lmforge pretrain --config configs/bert-mlm-wikitext2.yaml` or pass "
            "--model DIR"
        ) from None
    train_examples, dev_examples, values, names = read_splits(preset.data)
    out = Path(config.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    total = len(train_examples)
    majority = max(sum(e.label == v for e in dev_examples) for v in values) / len(dev_examples)

    plans = {}
    for fraction, steps in zip(config.fractions, config.steps, strict=True):
        indices = fraction_subset(total, fraction, config.subset_seed)
        train_file = write_subset(
            train_examples, indices, preset.data, out / "data" / f"train-frac-{fraction:g}.jsonl"
        )
        plans[fraction] = {
            "train_file": train_file,
            "indices": indices,
            "train_examples": len(indices),
            "steps": steps,
            "eval_every": max(1, math.ceil(steps / config.evaluations)),
            "batch_size": preset.train.batch_size,
        }

    baselines = {}
    if config.baseline:
        for fraction, plan in plans.items():
            subset = [train_examples[i] for i in plan["indices"]]
            result = tfidf_logreg(subset, dev_examples, values)
            baselines[fraction] = dataclasses.asdict(result)
            log(
                f"TF-IDF + logistic regression, {_percent(fraction)} ({len(subset):,} examples): dev accuracy "
                f"{result.accuracy:.4f} ({result.features:,} features, {result.seconds:.1f}s)"
            )

    settings = dataclasses.asdict(config)
    document = {
        "experiment": "data-efficiency",
        "settings": settings,
        "model": preset.model,
        "train_examples_total": total,
        "dev_examples": len(dev_examples),
        "majority_accuracy": majority,
        "labels": names,
        "summary": [],
        "runs": [],
    }

    def write_report(runs: list[dict], *, final: bool) -> None:
        """results.json and table.md after every run (an interruption leaves them current); the plot last."""
        document["runs"] = runs
        document["summary"] = summarize(runs, baselines, plans, config)
        write_text(out / "results.json", json.dumps(document, indent=1) + "\n")
        write_text(out / "table.md", render_table(document))
        if final:
            plot(document, runs, out / "data-efficiency.png")

    schedule = [(seed, f, start) for seed in config.seeds for f in config.fractions for start in STARTS]
    # hashed once: the model directories do not change while the experiment runs
    fingerprints = {start: start_fingerprint(str(starts[start].model), start) for start in STARTS}
    runs: list[dict] = []
    started = time.perf_counter()
    for number, (seed, fraction, start) in enumerate(schedule, 1):
        plan = plans[fraction]
        run_dir = out / "runs" / start / f"frac-{fraction:g}-seed-{seed}"
        label = f"[{number}/{len(schedule)}] {START_NAMES[start]}, {_percent(fraction)}, seed {seed}"
        model = str(starts[start].model)
        fingerprint = fingerprints[start]
        record = finished_record(run_dir, plan, model, fingerprint) if config.resume else None
        if record is not None:
            log(f"{label}: finished before (--resume), dev accuracy {record['dev_accuracy']:.4f}")
        else:
            record = run_one(
                starts[start],
                start=start,
                fingerprint=fingerprint,
                fraction=fraction,
                seed=seed,
                plan=plan,
                run_dir=run_dir,
                config=config,
            )
            hit = first_reaching(record["evaluations"], config.target)
            reach = (
                f"reached {config.target:g} at step {hit['step']}"
                if hit
                else f"never reached {config.target:g}"
            )
            log(
                f"{label}: {record['steps']} steps ({record['epochs']:.1f} epochs) in {record['seconds']:.0f}s, "
                f"dev accuracy {record['dev_accuracy']:.4f}; {reach} "
                f"[{(time.perf_counter() - started) / 60:.1f} min so far]"
            )
        runs.append(record)
        write_report(runs, final=False)
    write_report(runs, final=True)
    return document
