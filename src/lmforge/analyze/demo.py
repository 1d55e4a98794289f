"""`lmforge analyze --demo`: the report on the 872 SST-2 dev sentences, classifier included, in under 10 minutes.

    from lmforge.analyze.demo import run_demo
    analysis = run_demo("runs/analyze-demo")

The texts are GLUE's SST-2 dev split (`../shared/data/sst2/dev.tsv`, beside the checkout): sentences the
classifier never saw in training. The classifier is, first found first: the one given; the `sst2-minilm`
preset's `runs/sst2-minilm/model`; one an earlier demo run fine-tuned (`OUT/classifier/model`); otherwise
all-MiniLM-L6-v2 fine-tuned on SST-2 train for 5 minutes now (`lmforge.finetune`, the preset's settings with
a 5-minute budget), which the output says. The topics come from all-MiniLM-L6-v2's sentence embeddings.
Since SST-2 has its gold labels, the report adds the classifier's accuracy against them.

SST-2 is phrases of movie reviews, not dated customer feedback: it has no date and no group, so the report
has no over-time view (the tests show that view on a planted dated corpus).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lmforge.analyze.report import Analysis
from lmforge.analyze.summarize import DEFAULT_EMBEDDER
from lmforge.errors import MissingFileError

DATA = Path("../shared/data/sst2")  # relative to the working directory, as the presets' paths are
PRESET_MODEL = Path(
    "runs/sst2-minilm/model"
)  # what `lmforge finetune --config configs/sst2-minilm.yaml` writes
MINUTES = 5.0  # fine-tuning budget when no classifier is there
LABEL_NAMES = {"0": "negative", "1": "positive"}
NOTE = (
    "Demo data: the 872 sentences of SST-2's dev split (GLUE), which the classifier was not trained on. SST-2 "
    "is phrases of movie reviews from the Stanford Sentiment Treebank, lower-cased and tokenized, not dated "
    "customer feedback: it has no date or group, so this report has no over-time or by-group view."
)


def find_classifier(out: Path, given: str | None) -> tuple[str | None, str]:
    """(the classifier to use, or None when one must be fine-tuned; where it comes from, in words)."""
    if given:
        return given, f"the given classifier {given}"
    if (PRESET_MODEL / "config.json").is_file():
        return str(PRESET_MODEL), f"{PRESET_MODEL} (the sst2-minilm preset's model)"
    earlier = out / "classifier" / "model"
    if (earlier / "config.json").is_file():
        return str(earlier), f"{earlier} (fine-tuned by an earlier demo run)"
    return None, ""


def finetune_classifier(
    out: Path, data: Path, minutes: float = MINUTES, log: Callable[[str], None] = print
) -> str:
    """all-MiniLM-L6-v2 fine-tuned on SST-2 train for `minutes` (the preset's settings): OUT/classifier/model."""
    from lmforge.finetune import ClassifyData, FinetuneConfig, finetune
    from lmforge.train.config import TrainConfig

    config = FinetuneConfig(
        task="classify",
        model=DEFAULT_EMBEDDER,
        out=str(out / "classifier"),
        max_length=64,  # SST-2 sentences: 99% fit in 64 WordPiece tokens
        fit_steps_to_minutes=True,
        data=ClassifyData(train=str(data / "train.tsv"), dev=str(data / "dev.tsv"), text_column="sentence",
                          label_column="label", labels=list(LABEL_NAMES), label_names=list(LABEL_NAMES.values())),
        train=TrainConfig(max_minutes=minutes, batch_size=32, lr=1e-4, warmup_steps=30, weight_decay=0.01,
                          beta2=0.999, eval_every=0, eval_batches=0, eval_batch_size=128, keep_last=0,
                          tensorboard=False),
    )  # fmt: skip
    result = finetune(config, log=log)
    return str(result.model_dir)


def run_demo(out: str | Path = "runs/analyze-demo", *, classifier: str | None = None,
             embedder: str = DEFAULT_EMBEDDER, data: str | Path = DATA, topics: int | str = "auto", unsure: float = 0.6,
             progress: bool = True, log: Callable[[str], None] = print) -> Analysis:  # fmt: skip
    """The demo's analysis (see the module's docstring); the caller writes it with `write_report`."""
    from lmforge.analyze.run import analyze_files
    from lmforge.text import iter_records

    started = time.perf_counter()
    out, data = Path(out), Path(data)
    dev = data / "dev.tsv"
    if not dev.is_file():
        raise MissingFileError(
            f"{dev}: no SST-2 dev split; the demo reads ../shared/data/sst2 beside the checkout (run it from there)"
        )
    chosen, origin = find_classifier(out, classifier)
    trained_seconds = 0.0
    if chosen is None:
        log(f"No SST-2 classifier found ({PRESET_MODEL} is absent): fine-tuning all-MiniLM-L6-v2 on SST-2 "
            f"train for {MINUTES:g} minutes first, into {out / 'classifier'}.")  # fmt: skip
        chosen = finetune_classifier(out, data, log=log)
        origin = f"{chosen} (all-MiniLM-L6-v2 fine-tuned on SST-2 train for {MINUTES:g} minutes by this demo)"
        trained_seconds = time.perf_counter() - started
    log(f"classifier: {origin}")
    log(NOTE)
    analysis = analyze_files([str(dev)], classifier=chosen, embedder=embedder, text_column="sentence",
                             topics=topics, unsure=unsure, progress=progress, log=log)  # fmt: skip
    gold = [LABEL_NAMES.get(record["label"].strip(), record["label"]) for _, record in iter_records(dev)]
    predicted = [row["sentiment"] for row in analysis.rows]
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    analysis.report["note"] = NOTE
    analysis.report["demo"] = {
        "data": str(dev),
        "classifier": origin,
        "accuracy_against_gold_labels": round(correct / len(gold), 4),
        "fine_tuning_seconds": round(trained_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return analysis
