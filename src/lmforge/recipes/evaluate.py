"""`lmforge eval METRIC`: Score system outputs in files against references, and explain the score.

What is here: the subcommands bleu, chrf, rouge, accuracy, f1 and squad; reading their inputs (plain
text, one item per line, or JSONL with named fields); `--json` output; `--explain` for bleu (per
sentence: matched and unmatched 1- to 4-grams, clipping, precisions, brevity penalty, score) and rouge
(overlapping n-grams and the longest common subsequence). The metrics themselves are `lmforge.metrics`.

    lmforge eval bleu --hyp system.txt --ref ref.txt [--ref ref2.txt] [--tokenize intl] [--explain]
    lmforge eval rouge --hyp summaries.jsonl --hyp-field summary --ref refs.txt --stem
    lmforge eval f1 --pred predictions.txt --gold labels.txt --average macro
    lmforge eval squad --data dev-v1.1.json --pred predictions.json

A plain-text file has one item per line, blank lines included (an empty hypothesis is a hypothesis).
Files must have the same number of items; an empty file, a line count that differs or a bad JSON line
is an error that names the file and the line.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

from lmforge.errors import CorpusError, LmforgeError, MissingFileError
from lmforge.recipes import Command, count, count_or_zero

JSONL_SUFFIXES = (".jsonl", ".ndjson")


# --- reading inputs --------------------------------------------------------------------------------------


def read_items(path: str, field: str, what: str, allow_lists: bool = False) -> list:
    """The items of one file: each line of a text file, or `field` of each JSON object of a JSONL file.

    A JSONL value may be a list of strings where `allow_lists` (several references for one sentence);
    numbers and booleans are read as their text (labels). Errors name the file and line.
    """
    from lmforge.text import iter_lines

    file = Path(path)
    items: list = []
    if file.suffix.lower() in JSONL_SUFFIXES:
        for number, line in iter_lines(file):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(
                    f"{file}:{number}: not valid JSON ({exc.msg} at column {exc.colno})"
                ) from None
            if not isinstance(record, dict):
                raise CorpusError(
                    f"{file}:{number}: expected a JSON object per line, got {type(record).__name__}"
                )
            if field not in record:
                fields = ", ".join(record) or "none"
                raise CorpusError(
                    f"{file}:{number}: no field '{field}' (fields: {fields}); choose one with --{what}-field"
                )
            items.append(_json_value(record[field], file, number, field, allow_lists))
    else:
        items = [line for _, line in iter_lines(file)]
    if not items:
        raise CorpusError(f"{file}: empty file; expected one {what} per line")
    return items


def _json_value(value, file: Path, number: int, field: str, allow_lists: bool):
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    if allow_lists and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    wanted = "a string or a non-empty list of strings" if allow_lists else "a string"
    raise CorpusError(f"{file}:{number}: field '{field}' should be {wanted}, got {json.dumps(value)[:60]}")


def same_length(first: tuple[str, list], *others: tuple[str, list]) -> None:
    """Every file must have one item per item of the first; say where the shorter one ends."""
    name, items = first
    for other_name, other_items in others:
        if len(other_items) != len(items):
            longer, shorter = (name, other_name) if len(items) > len(other_items) else (other_name, name)
            line = min(len(items), len(other_items)) + 1
            raise CorpusError(
                f"{name} has {len(items)} items but {other_name} has {len(other_items)}: item {line} of "
                f"{longer} has no counterpart in {shorter}; give both files one item per line"
            )


def check_files(*paths: str | None) -> None:
    """Fail on a missing input before any file is read."""
    for path in paths:
        if path is not None and not Path(path).is_file():
            raise MissingFileError(f"{path}: no such file")


def reference_streams(ref_files: list[str], field: str, n_hyps: int, hyp_file: str) -> list[list]:
    """References as sacrebleu's streams: one list per reference file; a JSONL value that is a list of
    references spreads over several streams (shorter lists leave None)."""
    per_file = [read_items(path, field, "ref", allow_lists=True) for path in ref_files]
    for path, items in zip(ref_files, per_file, strict=True):
        same_length((hyp_file, [None] * n_hyps), (path, items))
    streams: list[list] = []
    for items in per_file:
        per_sentence = [v if isinstance(v, list) else [v] for v in items]
        for k in range(max(map(len, per_sentence))):
            streams.append([refs[k] if k < len(refs) else None for refs in per_sentence])
    return streams


def emit(payload: dict, as_json: bool, text: str) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=1) if as_json else text)


# --- bleu and chrf ---------------------------------------------------------------------------------------


def run_bleu(args: argparse.Namespace) -> int:
    from lmforge.metrics.bleu import SMOOTH_DEFAULTS, bleu, bleu_explain

    if args.smooth_value is not None and SMOOTH_DEFAULTS[args.smooth] is None:
        raise LmforgeError(f"--smooth-value applies to floor and add-k smoothing, not {args.smooth}")
    check_files(args.hyp, *args.ref)
    hyps = read_items(args.hyp, args.hyp_field, "hyp")
    streams = reference_streams(args.ref, args.ref_field, len(hyps), args.hyp)
    options = dict(tokenize=args.tokenize, smooth_method=args.smooth, smooth_value=args.smooth_value,
                   lowercase=args.lowercase)  # fmt: skip
    result = bleu(hyps, streams, **options)
    settings = {"tokenize": args.tokenize, "smooth": args.smooth, "lowercase": args.lowercase,
                "references": len(streams), "sentences": len(hyps)}  # fmt: skip
    payload = {**result.to_dict(), **settings}
    lines = []
    if args.explain:
        explanations = []
        for i, hyp in enumerate(hyps[: args.limit] if args.limit else hyps):
            refs = [s[i] for s in streams if s[i] is not None]
            explained = bleu_explain(hyp, refs, **options)
            explanations.append(_bleu_explanation_dict(explained))
            lines += _bleu_explanation_text(
                i + 1, hyp, refs, explained, args.tokenize, args.smooth, args.smooth_value
            )
        payload["sentences_explained"] = explanations
        lines.append("corpus (statistics summed over all sentences, then one score):")
    lines.append(str(result))
    lines.append(
        f"  tokenize {args.tokenize} · smoothing {args.smooth} · {'lower-cased · ' if args.lowercase else ''}"
        f"{len(hyps)} sentence(s) · {len(streams)} reference stream(s)"
    )
    emit(payload, args.json, "\n".join(lines))
    return 0


def _gram(gram: tuple[str, ...]) -> str:
    return gram[0] if len(gram) == 1 else '"' + " ".join(gram) + '"'


def _bleu_explanation_dict(explained) -> dict:
    return {
        "hyp_tokens": explained.hyp_tokens,
        "ref_tokens": explained.ref_tokens,
        "orders": [
            {
                "n": o.order,
                "matched": [{"ngram": list(g), "count": c, "clipped": k} for g, c, k in o.matched],
                "unmatched": [{"ngram": list(g), "count": c} for g, c in o.unmatched],
                "match_count": o.match_count,
                "total": o.total,
            }
            for o in explained.orders
        ],
        "sentence_bleu": explained.result.to_dict(),
    }


def _bleu_explanation_text(
    number: int, hyp: str, refs: list[str], explained, tokenize: str, smooth: str, smooth_value: float | None
) -> list[str]:
    from lmforge.metrics.bleu import SMOOTH_DEFAULTS

    result = explained.result
    smooth_value = SMOOTH_DEFAULTS[smooth] if smooth_value is None else smooth_value
    lines = [f"sentence {number}", f"  hypothesis  {hyp}"]
    lines += [f"  reference   {r}" for r in refs]
    ref_lens = ", ".join(str(len(r)) for r in explained.ref_tokens)
    lines.append(f"  tokens ({tokenize})  hypothesis {len(explained.hyp_tokens)} · reference {ref_lens}")
    used = []
    zero_orders = 0
    for order, precision in zip(explained.orders, result.precisions, strict=True):
        if order.total == 0:
            lines.append(f"  {order.order}-grams  none (the hypothesis has fewer than {order.order} tokens)")
            continue
        note = ""
        if smooth == "add-k" and order.order > 1 and result.score > 0:
            note = f" (add-k: ({order.match_count}+{smooth_value})/({order.total}+{smooth_value}))"
        elif order.match_count == 0 and precision > 0:
            zero_orders += 1
            note = {
                "exp": f" (no match: exp smoothing gives 1/(2^{zero_orders}×{order.total}))",
                "floor": f" (no match: floor smoothing gives {smooth_value}/{order.total})",
            }[smooth]
        lines.append(
            f"  {order.order}-grams  {order.match_count}/{order.total} match   precision {precision:.2f}%{note}"
        )
        matched = [
            _gram(g)
            + (f" ×{k}" if k > 1 else "")
            + (f" (×{c} in hypothesis, clipped to {k})" if c > k else "")
            for g, c, k in order.matched
        ]
        unmatched = [_gram(g) + (f" ×{c}" if c > 1 else "") for g, c in order.unmatched]
        lines.append("      matched    " + (" · ".join(matched) or "-"))
        lines.append("      unmatched  " + (" · ".join(unmatched) or "-"))
        used.append(precision)
    hyp_len, ref_len = result.sys_len, result.ref_len
    if hyp_len < ref_len:
        bp_text = f"exp(1 - {ref_len}/{hyp_len}) = {result.bp:.4f}" if hyp_len else "0 (empty hypothesis)"
        lines.append(f"  brevity penalty  {bp_text}  (hypothesis shorter than the closest reference)")
    else:
        lines.append(f"  brevity penalty  1  (hypothesis {hyp_len} tokens ≥ closest reference {ref_len})")
    if used and all(p > 0 for p in used):
        logs = " + ".join(f"log {p / 100:.4f}" for p in used)
        geometric = math.exp(sum(math.log(p / 100) for p in used) / len(used))
        lines.append(
            f"  BLEU = {result.bp:.4f} × exp(({logs}) / {len(used)}) = {result.bp:.4f} × {geometric:.4f}"
            f" = {result.score:.2f}"
        )
    else:
        lines.append(f"  BLEU = {result.score:.2f}  (a precision is 0, so the geometric mean is 0)")
    lines.append("")
    return lines


def run_chrf(args: argparse.Namespace) -> int:
    from lmforge.metrics.bleu import chrf

    check_files(args.hyp, *args.ref)
    hyps = read_items(args.hyp, args.hyp_field, "hyp")
    streams = reference_streams(args.ref, args.ref_field, len(hyps), args.hyp)
    result = chrf(hyps, streams, char_order=args.char_order, word_order=args.word_order, beta=args.beta,
                  lowercase=args.lowercase)  # fmt: skip
    payload = {**result.to_dict(), "lowercase": args.lowercase, "sentences": len(hyps)}
    text = f"{result}  (character order {args.char_order}, word order {args.word_order}, beta {args.beta}; {len(hyps)} sentence(s))"
    emit(payload, args.json, text)
    return 0


# --- rouge -----------------------------------------------------------------------------------------------


def run_rouge(args: argparse.Namespace) -> int:
    from lmforge.metrics.rouge import check_types, rouge, rouge_explain

    types = [t.strip() for t in args.types.split(",") if t.strip()]
    try:
        check_types(types)
    except ValueError as exc:
        raise LmforgeError(f"--types: {exc}") from None
    check_files(args.hyp, args.ref)
    hyps = read_items(args.hyp, args.hyp_field, "hyp")
    refs = read_items(args.ref, args.ref_field, "ref", allow_lists=True)
    same_length((args.hyp, hyps), (args.ref, refs))
    per_pair = [
        rouge(h, r, args.stem, rouge_types=types, tokenizer=args.tokenizer)
        for h, r in zip(hyps, refs, strict=True)
    ]
    means = {t: [sum(s[t][k] for s in per_pair) / len(per_pair) for k in range(3)] for t in types}
    payload: dict = {  # {"rouge1": {"precision": .., "recall": .., "fmeasure": ..}, ..., "pairs": N, ...}
        **{t: dict(zip(("precision", "recall", "fmeasure"), m, strict=True)) for t, m in means.items()},
        "pairs": len(per_pair),
        "use_stemmer": args.stem,
        "tokenizer": args.tokenizer,
    }
    lines = []
    if args.explain:
        payload["pairs_explained"] = []
        for i, (hyp, ref) in enumerate(list(zip(hyps, refs, strict=True))[: args.limit or None]):
            for ref_text in ref if isinstance(ref, list) else [ref]:
                explained = rouge_explain(hyp, ref_text, args.stem, tokenizer=args.tokenizer)
                payload["pairs_explained"].append(_rouge_explanation_dict(explained))
                lines += _rouge_explanation_text(i + 1, explained)
        lines.append(f"mean over {len(per_pair)} pair(s):")
    lines.append(f"{'':10} {'precision':>9} {'recall':>9} {'F1':>9}   (percent)")
    for t, (p, r, f) in means.items():
        lines.append(f"{t:10} {100 * p:9.2f} {100 * r:9.2f} {100 * f:9.2f}")
    lines.append(
        f"  {len(per_pair)} pair(s) · tokenizer {args.tokenizer} · {'Porter stemming' if args.stem else 'no stemming'}"
    )
    emit(payload, args.json, "\n".join(lines))
    return 0


def _rouge_explanation_dict(explained) -> dict:
    return {
        "hyp_tokens": explained.hyp_tokens,
        "ref_tokens": explained.ref_tokens,
        "overlaps": {
            f"{n}-grams": [{"ngram": list(g), "count": c} for g, c in grams]
            for n, grams in explained.overlaps.items()
        },
        "lcs": [explained.ref_tokens[i] for i, _ in explained.lcs],
        "scores": {t: s._asdict() for t, s in explained.scores.items()},
    }


def _rouge_explanation_text(number: int, explained) -> list[str]:
    hyp, ref, scores = explained.hyp_tokens, explained.ref_tokens, explained.scores
    lines = [f"pair {number}", f"  hypothesis tokens  {' '.join(hyp)}  ({len(hyp)})",
             f"  reference tokens   {' '.join(ref)}  ({len(ref)})"]  # fmt: skip
    for n, name in ((1, "rouge1"), (2, "rouge2")):
        grams = explained.overlaps[n]
        overlap = sum(c for _, c in grams)
        shown = " · ".join(_gram(g) + (f" ×{c}" if c > 1 else "") for g, c in grams) or "-"
        hyp_total, ref_total = max(len(hyp) - n + 1, 0), max(len(ref) - n + 1, 0)
        lines.append(f"  {name}  overlap {overlap}: {shown}")
        lines.append(f"          P {overlap}/{hyp_total} = {scores[name].precision:.4f}   R {overlap}/{ref_total} = "
                     f"{scores[name].recall:.4f}   F1 {scores[name].fmeasure:.4f}")  # fmt: skip
    in_lcs = {i for i, _ in explained.lcs}
    marked = " ".join(f"[{t}]" if i in in_lcs else t for i, t in enumerate(ref))
    lcs_len = len(explained.lcs)
    lines.append(
        f"  rougeL  longest common subsequence {lcs_len}: {' '.join(ref[i] for i, _ in explained.lcs) or '-'}"
    )
    lines.append(f"          in the reference: {marked}")
    lines.append(f"          P {lcs_len}/{len(hyp)} = {scores['rougeL'].precision:.4f}   R {lcs_len}/{len(ref)} = "
                 f"{scores['rougeL'].recall:.4f}   F1 {scores['rougeL'].fmeasure:.4f}")  # fmt: skip
    lines.append("")
    return lines


# --- classification --------------------------------------------------------------------------------------


def _labels(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    check_files(args.hyp, args.ref)
    predictions = [p.strip() for p in read_items(args.hyp, args.hyp_field, "hyp")]
    labels = [t.strip() for t in read_items(args.ref, args.ref_field, "ref")]
    same_length((args.hyp, predictions), (args.ref, labels))
    return predictions, labels


def run_accuracy(args: argparse.Namespace) -> int:
    from lmforge.metrics.classification import accuracy

    predictions, labels = _labels(args)
    value = accuracy(predictions, labels)
    correct = sum(p == t for p, t in zip(predictions, labels, strict=True))
    emit({"accuracy": value, "correct": correct, "count": len(labels)}, args.json,
         f"accuracy = {100 * value:.2f}%  ({correct}/{len(labels)})")  # fmt: skip
    return 0


def run_f1(args: argparse.Namespace) -> int:
    from lmforge.metrics.classification import confusion_matrix, precision_recall_f1

    predictions, labels = _labels(args)
    averaged = precision_recall_f1(predictions, labels, average=args.average)
    per_class = precision_recall_f1(predictions, labels, average=None)
    matrix = confusion_matrix(predictions, labels)
    support = Counter(labels)
    payload = {
        "average": args.average,
        **averaged._asdict(),
        "support": len(labels),
        "per_class": {str(c): {**s._asdict(), "support": support[c]} for c, s in per_class.items()},
        "confusion_matrix": {"classes": matrix.classes, "counts": matrix.counts},
    }
    width = max([len(str(c)) for c in per_class] + [len("class"), len(args.average)]) + 2
    lines = [f"{'class':{width}} {'precision':>9} {'recall':>9} {'F1':>9} {'support':>8}"]
    for c, s in per_class.items():
        lines.append(
            f"{c!s:{width}} {100 * s.precision:9.2f} {100 * s.recall:9.2f} {100 * s.f1:9.2f} {support[c]:8d}"
        )
    lines.append(f"{args.average:{width}} {100 * averaged.precision:9.2f} {100 * averaged.recall:9.2f} "
                 f"{100 * averaged.f1:9.2f} {len(labels):8d}")  # fmt: skip
    lines += ["", "confusion matrix (rows: true class, columns: predicted):", str(matrix)]
    emit(payload, args.json, "\n".join(lines))
    return 0


# --- squad -----------------------------------------------------------------------------------------------


def _squad_official(data_path: str, predictions_path: str) -> tuple[list[str], list[list[str]]]:
    """The official script's inputs: the SQuAD JSON and a JSON object {question id: answer}."""
    dataset, predictions = _read_json(data_path), _read_json(predictions_path)
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise CorpusError(f'{data_path}: expected SQuAD\'s layout {{"data": [articles...]}}')
    if not isinstance(predictions, dict):
        raise CorpusError(f"{predictions_path}: expected a JSON object {{question id: answer}}")
    answers, predicted = [], []
    for article in dataset["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers.append([a["text"] for a in qa["answers"]])
                predicted.append(predictions.get(qa["id"], None))
    if not answers:
        raise CorpusError(f"{data_path}: no questions found (expected SQuAD's {{'data': [...]}} layout)")
    missing = sum(p is None for p in predicted)
    if missing:
        print(
            f"note: {missing} of {len(answers)} questions have no prediction; they score 0 (as the official script)"
        )
    # An unanswered question scores 0: "\0" normalizes to itself, which no answer does.
    return [p if isinstance(p, str) else "\0" for p in predicted], answers


def _read_json(path: str):
    from lmforge.text import read_text

    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def run_squad(args: argparse.Namespace) -> int:
    from lmforge.metrics.squad import squad_em_f1

    if args.data:
        check_files(args.data, args.hyp)
        predictions, answers = _squad_official(args.data, args.hyp)
    else:
        if not args.ref:
            raise LmforgeError("give the reference answers: --ref FILE (or the SQuAD JSON with --data)")
        check_files(args.hyp, args.ref)
        predictions = read_items(args.hyp, args.hyp_field, "hyp")
        answers = read_items(args.ref, args.ref_field, "ref", allow_lists=True)
        same_length((args.hyp, predictions), (args.ref, answers))
    score = squad_em_f1(predictions, answers)
    emit({"exact_match": score.exact_match, "f1": score.f1, "count": len(predictions)}, args.json,
         f"exact_match = {score.exact_match:.2f}  f1 = {score.f1:.2f}  ({len(predictions)} questions; SQuAD v1.1 normalization)")  # fmt: skip
    return 0


# --- the command line ------------------------------------------------------------------------------------


def _inputs(sub: argparse.ArgumentParser, hyp_field: str, ref_field: str, several_refs: bool = False,
            ref_required: bool = True) -> None:  # fmt: skip
    sub.add_argument("--hyp", "--pred", dest="hyp", required=True, metavar="FILE",
                     help="system outputs: one per line, or a .jsonl file (see --hyp-field)")  # fmt: skip
    if several_refs:
        sub.add_argument("--ref", "--gold", dest="ref", required=True, nargs="+", action="extend", metavar="FILE",
                         help="references, one per line; repeat (or list several files) for several references")  # fmt: skip
    else:
        sub.add_argument("--ref", "--gold", dest="ref", required=ref_required, metavar="FILE",
                         help="references, one per line, or a .jsonl file (see --ref-field)")  # fmt: skip
    sub.add_argument(
        "--hyp-field", default=hyp_field, help=f"JSONL field of the outputs (default {hyp_field})"
    )
    sub.add_argument("--ref-field", default=ref_field,
                     help=f"JSONL field of the references (default {ref_field}); a list of strings is several references")  # fmt: skip
    sub.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _limit(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--explain", action="store_true", help="show, per sentence, why the score is what it is")
    sub.add_argument(
        "--limit",
        type=count_or_zero,
        default=0,
        metavar="N",
        help="with --explain: only the first N sentences",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    from lmforge.metrics.bleu import SMOOTH_DEFAULTS, TOKENIZERS
    from lmforge.metrics.rouge import TOKENIZERS as ROUGE_TOKENIZERS

    metrics = parser.add_subparsers(dest="metric", metavar="METRIC", required=True)

    sub = metrics.add_parser("bleu", help="corpus BLEU, identical to sacrebleu")
    _inputs(sub, "hypothesis", "reference", several_refs=True)
    sub.add_argument(
        "--tokenize", choices=TOKENIZERS, default="13a", help="13a (WMT default), intl, char, none"
    )
    sub.add_argument(
        "--smooth",
        "--smooth-method",
        dest="smooth",
        choices=list(SMOOTH_DEFAULTS),
        default="exp",
        help="smoothing method (default exp)",
    )
    sub.add_argument("--smooth-value", type=float, default=None, help="floor (0.1) or add-k (1) constant")
    sub.add_argument("--lowercase", action="store_true", help="case-insensitive BLEU")
    _limit(sub)
    sub.set_defaults(_run=run_bleu)

    sub = metrics.add_parser("chrf", help="chrF (character n-gram F-score), identical to sacrebleu")
    _inputs(sub, "hypothesis", "reference", several_refs=True)
    sub.add_argument("--char-order", type=count, default=6, help="character n-gram order (default 6)")
    sub.add_argument(
        "--word-order", type=count_or_zero, default=0, help="word n-gram order (2 = chrF++; default 0)"
    )
    sub.add_argument("--beta", type=count, default=2, help="recall is beta times as important as precision")
    sub.add_argument("--lowercase", action="store_true", help="case-insensitive")
    sub.set_defaults(_run=run_chrf)

    sub = metrics.add_parser("rouge", help="ROUGE-1/2/L/Lsum, identical to rouge-score (mean over pairs)")
    _inputs(sub, "hypothesis", "reference")
    sub.add_argument("--stem", action="store_true", help="Porter-stem words longer than 3 letters")
    sub.add_argument("--tokenizer", choices=ROUGE_TOKENIZERS, default="default",
                     help="default: rouge-score's (a-z0-9 only); unicode: letters of every script")  # fmt: skip
    sub.add_argument("--types", default="rouge1,rouge2,rougeL,rougeLsum", help="comma-separated ROUGE types")
    _limit(sub)
    sub.set_defaults(_run=run_rouge)

    sub = metrics.add_parser("accuracy", help="fraction of predicted labels equal to the true label")
    _inputs(sub, "prediction", "label")
    sub.set_defaults(_run=run_accuracy)

    sub = metrics.add_parser("f1", help="precision, recall, F1 per class and averaged; confusion matrix")
    _inputs(sub, "prediction", "label")
    sub.add_argument("--average", choices=["macro", "micro", "weighted"], default="macro",
                     help="macro: mean over classes; micro: pooled counts; weighted: by support")  # fmt: skip
    sub.set_defaults(_run=run_f1)

    sub = metrics.add_parser("squad", help="SQuAD v1.1 exact match and F1")
    _inputs(sub, "prediction", "answers", ref_required=False)
    sub.add_argument(
        "--data", metavar="JSON", help="the SQuAD dataset JSON; then --hyp is {question id: answer} JSON"
    )
    sub.set_defaults(_run=run_squad)


def run(args: argparse.Namespace) -> int:
    return args._run(args)


COMMANDS = [
    Command(
        name="eval",
        help="score outputs against references: bleu, chrf, rouge, accuracy, f1, squad",
        configure=configure,
        run=run,
        description=__doc__.split("\n\n", 1)[0].split(": ", 1)[1]
        + "\n\n"
        + "\n".join(line for line in __doc__.splitlines() if line.startswith("    lmforge")),
    )
]
