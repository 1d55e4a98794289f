"""`lmforge humaneval`: blind A/B preferences and Likert ratings from people, and what they say.

    lmforge humaneval create --name mt --system greedy=greedy.jsonl --system beam4=beam4.jsonl \\
        --source sources.txt --reference references.txt --raters 4 --per-item 2 --out runs/study.db
    lmforge humaneval serve --study runs/study.db                     # one private link per rater
    lmforge humaneval report --study runs/study.db --out runs/report  # also while `serve` runs
    lmforge humaneval export --study runs/study.db --format csv --out runs/judgments.csv
    lmforge humaneval demo --simulate 6 --out runs/humaneval-demo     # shipped outputs, simulated raters

A system's outputs are a JSONL file (the --text-field of each line; aligned by `id` when every line has one)
or a text file (one output per line, aligned by line). Sources and references are text files, one per line;
references may be JSONL with a `references` list per line (several references per item).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmforge.errors import LmforgeError
from lmforge.recipes import Command, count, count_or_zero, positive_number

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))

    create = sub.add_parser("create", help="a study file from two or more systems' outputs")
    create.add_argument("--name", required=True, help="the study's name (shown in the report)")
    create.add_argument(
        "--system",
        action="extend",
        nargs="+",
        required=True,
        metavar="NAME=FILE",
        help="a system's outputs (JSONL or one per line); repeat for each system (at least two)",
    )
    create.add_argument("--source", metavar="FILE", help="the inputs, one per line (shown to raters)")
    create.add_argument(
        "--reference", metavar="FILE", help="references, one per line (or JSONL with a `references` list)"
    )
    create.add_argument("--text-field", default="text", help="the JSONL field holding the output (text)")
    create.add_argument("--raters", type=count, default=3, help="rater links to make (default 3)")
    create.add_argument("--per-item", type=count, default=2, help="raters per item and pair (default 2)")
    create.add_argument(
        "--task", choices=("pairwise", "rating", "both"), default="both", help="default: both"
    )
    create.add_argument("--criteria", default="fluency,adequacy", help="Likert criteria (fluency,adequacy)")
    create.add_argument(
        "--checks",
        type=count_or_zero,
        default=None,
        help="attention checks per rater (default: 1 per 15 items, >= 2)",
    )
    create.add_argument("--seed", type=count_or_zero, default=0, help="the design's random seed (0)")
    create.add_argument("--out", required=True, help="the study file to write (never overwritten)")

    serve = sub.add_parser(
        "serve", help="collect judgments in the browser: prints one private link per rater"
    )
    serve.add_argument("--study", required=True, metavar="FILE", help="a study file")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=count_or_zero, default=8000, help="port (default 8000; 0: a free one)")

    report = sub.add_parser("report", help="ranking, agreement, attention and metric agreement: JSON + HTML")
    report.add_argument("--study", required=True, metavar="FILE", help="a study file")
    report.add_argument("--out", required=True, help="directory for report.json, index.html and the plots")
    report.add_argument("--resamples", type=count, default=1000, help="bootstrap resamples (1000)")
    report.add_argument("--alpha", type=positive_number, default=0.01, help="Bradley–Terry L2 penalty (0.01)")
    report.add_argument(
        "--attention-threshold",
        type=positive_number,
        default=0.75,
        help="flag raters whose attention-check pass rate is below this (0.75)",
    )
    report.add_argument("--seed", type=count_or_zero, default=0, help="the bootstrap's seed (0)")

    export = sub.add_parser("export", help="the judgments as CSV or as FastChat battle JSONL")
    export.add_argument("--study", required=True, metavar="FILE", help="a study file")
    export.add_argument("--format", choices=("csv", "battles"), default="csv", help="default: csv")
    export.add_argument("--out", required=True, help="the file to write")

    demo = sub.add_parser("demo", help="a study of the shipped translation outputs; --simulate N fills it")
    demo.add_argument(
        "--simulate", type=count, default=None, metavar="N", help="N simulated raters + a report"
    )
    demo.add_argument("--raters", type=count, default=5, help="rater links without --simulate (5)")
    demo.add_argument(
        "--resamples", type=count, default=1000, help="bootstrap resamples of the report (1000)"
    )
    demo.add_argument("--seed", type=count_or_zero, default=0, help="design and simulation seed (0)")
    demo.add_argument("--out", required=True, help="directory for study.db (and report/)")


def _read_references(path: str) -> list[list[str]]:
    """[[reference, ...] per item]: a text file (one reference per line) or JSONL (`references` or `text`)."""
    import json

    from lmforge.humaneval.study import read_outputs

    if not path.endswith(".jsonl"):
        return [[line] for line in read_outputs(path, option="--reference")]
    references = []
    for number, line in enumerate(_utf8_lines(path), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LmforgeError(f"--reference {path}:{number}: not JSON ({exc.msg})") from None
        refs = record.get("references", record.get("text")) if isinstance(record, dict) else None
        refs = [refs] if isinstance(refs, str) else refs
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise LmforgeError(
                f"--reference {path}:{number}: give `references` (a list of strings) or `text`"
            )
        references.append(refs)
    if not references:
        raise LmforgeError(f"--reference {path}: the file is empty")
    return references


def _utf8_lines(path: str) -> list[str]:
    if not Path(path).is_file():
        raise LmforgeError(f"--reference {path}: no such file")
    try:
        return [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise LmforgeError(f"--reference {path}: not UTF-8 text (byte {exc.start})") from None


def create(args: argparse.Namespace) -> int:
    from lmforge.humaneval.study import align, create_study, read_outputs

    outputs = {}
    for spec in args.system:
        name, equals, path = spec.partition("=")
        if not equals or not name or not path:
            raise LmforgeError(f"--system {spec!r}: write NAME=FILE, e.g. --system beam4=beam4.jsonl")
        if name in outputs:
            raise LmforgeError(f"--system {name}: named twice")
        outputs[name] = read_outputs(path, option=f"--system {name}", text_field=args.text_field)
    item_ids, aligned = align(outputs)
    sources = read_outputs(args.source, option="--source") if args.source else None
    if isinstance(sources, dict):
        sources = [sources.get(i, "") for i in item_ids]
    references = _read_references(args.reference) if args.reference else None
    criteria = [c.strip() for c in args.criteria.split(",") if c.strip()]
    study = create_study(
        args.out,
        name=args.name,
        outputs=aligned,
        item_ids=item_ids,
        sources=sources,
        references=references,
        raters=args.raters,
        per_item=args.per_item,
        task=args.task,
        criteria=criteria,
        checks_per_rater=args.checks,
        seed=args.seed,
    )
    with study:
        assignments = study.assignments()
        checks = sum(1 for a in assignments if a["item_id"].startswith("check-"))
        print(
            f"{args.out}: study {args.name!r}, {len(item_ids)} items × {len(aligned)} systems, "
            f"{len(assignments)} assignments ({checks} attention checks) for {args.raters} raters"
        )
        print(f"next: lmforge humaneval serve --study {args.out}")
    return 0


def serve(args: argparse.Namespace) -> int:
    from lmforge.humaneval.study import Study

    study = Study(args.study)
    try:
        from lmforge.humaneval.app import create_app
        from lmforge.serve.server import bind, run
    except ImportError as exc:
        raise LmforgeError(
            f"this command needs the serve extra ({exc.name or exc} is missing): pip install 'lmforge[serve]'"
        ) from None
    app = create_app(study)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"lmforge humaneval serve: study {study.name!r} on http://{shown}:{port}  (Ctrl-C stops)")
    print("one private link per rater (send each to one person only):")
    for rater, token in study.raters().items():
        answered, total = study.progress(rater)
        print(f"  {rater}  http://{shown}:{port}/r/{token}  ({answered}/{total} answered)")
    if args.host not in LOOPBACK:
        print(
            f"warning: listening on {args.host}: anyone who holds a link can answer as that rater",
            file=sys.stderr,
        )
    sys.stdout.flush()
    try:
        run(app, sock)
    finally:
        study.close()
    return 0


def report(args: argparse.Namespace) -> int:
    from lmforge.humaneval.report import write_report
    from lmforge.humaneval.study import Study

    if args.attention_threshold > 1:
        raise LmforgeError(f"--attention-threshold {args.attention_threshold}: a pass rate, from 0 to 1")
    with Study(args.study) as study:
        result = write_report(
            study,
            args.out,
            resamples=args.resamples,
            alpha=args.alpha,
            threshold=args.attention_threshold,
            seed=args.seed,
        )
    _print_summary(result)
    print(f"wrote {Path(args.out) / 'report.json'} and {Path(args.out) / 'index.html'}")
    return 0


def _print_summary(result: dict) -> None:
    print(f"{result['judgments']} judgments, {result['attention_judgments']} attention checks")
    bt = result["bradley_terry"]
    for system in sorted(bt, key=lambda s: -bt[s]["strength"]):
        v = bt[system]
        print(
            f"  {system:<16} win rate {result['win_rate'][system]:.3f}  log-strength {v['strength']:+.3f} "
            f"[{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]"
        )
    if result["flagged_raters"]:
        print(
            f"  flagged (attention below {result['attention_threshold']}): {', '.join(result['flagged_raters'])}"
        )
    for metric, tau in result["metric_agreement"].items():
        print(
            f"  Kendall τ of sentence {metric} with the preferences: {'—' if tau is None else f'{tau:.3f}'}"
        )


def export(args: argparse.Namespace) -> int:
    from lmforge.humaneval.report import export_battles, export_csv
    from lmforge.humaneval.study import Study

    with Study(args.study) as study:
        path = (export_csv if args.format == "csv" else export_battles)(study, args.out)
    print(f"wrote {path}")
    return 0


def demo(args: argparse.Namespace) -> int:
    from lmforge.humaneval.simulate import demo as build_demo

    out = Path(args.out)
    if (out / "study.db").exists():
        raise LmforgeError(f"--out {out}: holds a study.db already; a study file is never overwritten")
    study, result = build_demo(
        out, simulate_raters=args.simulate or 0, raters=args.raters, seed=args.seed, resamples=args.resamples
    )
    with study:
        print(
            f"wrote {out / 'study.db'}: {len(study.assignments())} assignments for {len(study.raters())} raters"
        )
    if result is not None:
        _print_summary(result)
        print(f"wrote {out / 'report' / 'report.json'} and {out / 'report' / 'index.html'}")
    else:
        print(f"next: lmforge humaneval serve --study {out / 'study.db'}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"create": create, "serve": serve, "report": report, "export": export, "demo": demo}[args.action](
        args
    )


COMMANDS = [
    Command(
        name="humaneval",
        help="human evaluation: blind A/B and ratings in the browser, agreement, a ranking with confidence",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
