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


def run(args: argparse.Namespace) -> int:
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


COMMANDS = [
    Command(
        name="experiment",
        help="measured experiments: data-efficiency (pre-trained vs scratch fine-tuning across data sizes)",
        configure=configure,
        run=run,
        description=with_library_doc(__doc__, data_efficiency_library.__doc__),
        takes_overrides=True,
    )
]
