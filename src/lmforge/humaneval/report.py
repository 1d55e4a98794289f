"""From a study's judgments to figures: the ranking with confidence, agreement between raters, attention, and how
well BLEU and chrF agree with the people. `analyze` returns report.json's dictionary; `write_report` writes it
with an HTML page and PNG plots; `export_csv` / `export_battles` write the judgments for other tools.

    report = analyze(Study("study.db"), resamples=1000)
    report["bradley_terry"]["beam4"]      # {"strength": 0.41, "ci_low": 0.18, "ci_high": 0.66}

Conventions: a preference is first mapped to its pair's canonical order (the two systems sorted by name:
`first`, `second`, `tie`, `both_bad`), so agreement is about systems, not screen positions. Win rates and
Bradley–Terry count a tie or both-bad as half a win each way. Agreement figures leave out the attention
checks; the checks give each rater's pass rate, and raters below the threshold are flagged and the ranking is
shown again without them.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from lmforge.humaneval import stats
from lmforge.humaneval.study import REFERENCE, Study
from lmforge.io import save_figure, write_json, write_text

SCORE = {"left": 1.0, "right": 0.0, "tie": 0.5, "both_bad": 0.5}  # the left system's share of the win
CANONICAL = ("first", "second", "tie", "both_bad")


def canonical_preference(judgment: dict) -> tuple[tuple[str, str], str]:
    """((first, second) systems sorted by name, the preference as first / second / tie / both_bad)."""
    left, right, choice = judgment["left_system"], judgment["right_system"], judgment["choice"]
    pair = tuple(sorted((left, right)))
    if choice in ("tie", "both_bad"):
        return pair, choice
    preferred = left if choice == "left" else right
    return pair, "first" if preferred == pair[0] else "second"


def _none_if_nan(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _ranking(judgments: list[dict], systems: list[str], *, alpha: float, resamples: int, seed: int) -> dict:
    index = {s: i for i, s in enumerate(systems)}
    comparisons = [
        (index[j["left_system"]], index[j["right_system"]], SCORE[j["choice"]])
        for j in judgments
        if j["choice"] is not None
    ]
    if not comparisons:
        return {"win_rate": {}, "bradley_terry": {}, "comparisons": 0}
    rates = stats.win_rates(comparisons, len(systems))
    strengths = stats.bradley_terry(stats.win_matrix(comparisons, len(systems)), alpha)
    fits = stats.bootstrap_bradley_terry(
        comparisons, len(systems), alpha=alpha, resamples=resamples, seed=seed
    )
    low, high = stats.percentile_interval(fits)
    return {
        "win_rate": {s: _none_if_nan(rates[i]) for s, i in index.items()},
        "bradley_terry": {
            s: {"strength": float(strengths[i]), "ci_low": float(low[i]), "ci_high": float(high[i])}
            for s, i in index.items()
        },
        "comparisons": len(comparisons),
    }


def _attention(judgments: list[dict]) -> dict[str, float]:
    """Per rater, the share of answered checks where the reference was preferred (or rated higher)."""
    passed: dict[str, list[bool]] = defaultdict(list)
    for j in judgments:
        if not j["is_check"]:
            continue
        reference_side = "left" if j["left_system"] == REFERENCE else "right"
        if j["choice"] is not None:
            passed[j["rater"]].append(j["choice"] == reference_side)
        else:
            side = 0 if reference_side == "left" else 1
            reference = np.mean([v[side] for v in j["ratings"].values()])
            other = np.mean([v[1 - side] for v in j["ratings"].values()])
            passed[j["rater"]].append(bool(reference > other))
    return {rater: float(np.mean(results)) for rater, results in sorted(passed.items())}


def _agreement(judgments: list[dict], raters: list[str], criteria: list[str], per_item: int) -> dict:
    preference: dict[tuple, dict[str, str]] = defaultdict(dict)  # (item, pair) -> {rater: label}
    scores: dict[str, dict[tuple, dict[str, int]]] = {c: defaultdict(dict) for c in criteria}
    for j in judgments:
        if j["choice"] is not None:
            pair, label = canonical_preference(j)
            preference[(j["item_id"], pair)][j["rater"]] = label
        for criterion, (left, right) in j["ratings"].items():
            scores[criterion][(j["item_id"], j["left_system"])][j["rater"]] = left
            scores[criterion][(j["item_id"], j["right_system"])][j["rater"]] = right

    cohen = {}
    for first, second in itertools.combinations(raters, 2):
        both = [u for u in preference.values() if first in u and second in u]
        if both:
            kappa = stats.cohen_kappa([u[first] for u in both], [u[second] for u in both])
            cohen[f"{first}|{second}"] = _none_if_nan(kappa)
    full = [u for u in preference.values() if len(u) == per_item]
    fleiss = None
    if full and per_item >= 2:
        table = np.array([[list(u.values()).count(c) for c in CANONICAL] for u in full])
        fleiss = _none_if_nan(stats.fleiss_kappa(table))

    def alpha(units: dict[tuple, dict[str, object]], level: str, code) -> float | None:
        if not units:
            return None
        keys = list(units)
        matrix = np.full((len(raters), len(keys)), np.nan)
        for column, key in enumerate(keys):
            for rater, value in units[key].items():
                matrix[raters.index(rater), column] = code(value)
        return _none_if_nan(stats.krippendorff_alpha(matrix, level))

    krippendorff = {"preference": alpha(preference, "nominal", CANONICAL.index)}
    for criterion in criteria:
        krippendorff[criterion] = alpha(scores[criterion], "ordinal", float)
    return {
        "cohen_kappa": cohen,
        "fleiss_kappa": fleiss,
        "fleiss_units": len(full),
        "krippendorff_alpha": krippendorff,
    }


def _likert(
    judgments: list[dict], systems: list[str], criteria: list[str], resamples: int, seed: int
) -> dict:
    values: dict[tuple[str, str], list[int]] = defaultdict(list)
    for j in judgments:
        for criterion, (left, right) in j["ratings"].items():
            values[(criterion, j["left_system"])].append(left)
            values[(criterion, j["right_system"])].append(right)
    result: dict[str, dict] = {}
    for criterion in criteria:
        result[criterion] = {}
        for system in systems:
            found = values.get((criterion, system))
            if found:
                mean, low, high = stats.bootstrap_mean_interval(found, resamples=resamples, seed=seed)
                result[criterion][system] = {"mean": mean, "ci_low": low, "ci_high": high, "n": len(found)}
    return result


def _metric_agreement(study: Study, judgments: list[dict]) -> tuple[dict, dict]:
    """Kendall τ (WMT form) of sentence BLEU and chrF with each preference judgment (ties left out)."""
    from lmforge.metrics import chrf, sentence_bleu

    items = {i["item_id"]: i for i in study.items()}
    if not any(i["references"] for i in items.values()):
        return {}, {}
    cache: dict[tuple[str, str], tuple[float, float]] = {}

    def scores(item_id: str, system: str) -> tuple[float, float]:
        if (item_id, system) not in cache:
            item = items[item_id]
            text, refs = item["outputs"][system], item["references"]
            cache[(item_id, system)] = (
                sentence_bleu(text, refs).score,
                chrf([text], [[r] for r in refs]).score,
            )
        return cache[(item_id, system)]

    human, differences = [], {"bleu": [], "chrf": []}
    for j in judgments:
        if j["choice"] is None:
            continue
        human.append({"left": 1, "right": -1}.get(j["choice"], 0))
        left, right = scores(j["item_id"], j["left_system"]), scores(j["item_id"], j["right_system"])
        differences["bleu"].append(left[0] - right[0])
        differences["chrf"].append(left[1] - right[1])
    taus, counts = {}, {}
    for metric, difference in differences.items():
        tau, concordant, discordant = stats.kendall_tau_wmt(human, difference)
        taus[metric] = _none_if_nan(tau)
        counts[metric] = {"concordant": concordant, "discordant": discordant, "pairs": len(human)}
    return taus, counts


def analyze(
    study: Study, *, resamples: int = 1000, alpha: float = 0.01, threshold: float = 0.75, seed: int = 0
) -> dict:
    """report.json's dictionary for the judgments stored so far."""
    everything = study.judgments()
    judgments = [j for j in everything if not j["is_check"]]
    raters = list(study.raters())
    systems = study.systems
    attention = _attention(everything)
    flagged = [r for r, rate in attention.items() if rate < threshold]
    ranking = _ranking(judgments, systems, alpha=alpha, resamples=resamples, seed=seed)
    attentive = _ranking(
        [j for j in judgments if j["rater"] not in flagged],
        systems,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
    )
    taus, counts = _metric_agreement(study, judgments)
    report = {
        "study": study.name,
        "task": study.task,
        "systems": systems,
        "criteria": study.criteria if study.task != "pairwise" else [],
        "judgments": len(judgments),
        "attention_judgments": len(everything) - len(judgments),
        "raters": raters,
        "win_rate": ranking["win_rate"],
        "bradley_terry": ranking["bradley_terry"],
        "bradley_terry_alpha": alpha,
        "bootstrap_resamples": resamples,
        "comparisons": ranking["comparisons"],
        **_agreement(judgments, raters, study.criteria if study.task != "pairwise" else [], study.per_item),
        "likert": _likert(judgments, systems, study.criteria, resamples, seed),
        "attention_pass_rate": attention,
        "attention_threshold": threshold,
        "flagged_raters": flagged,
        "without_flagged": {"win_rate": attentive["win_rate"], "bradley_terry": attentive["bradley_terry"]},
        "metric_agreement": taus,
        "metric_agreement_counts": counts,
    }
    return report


# --- files ---------------------------------------------------------------------------------------------------


def _plot_strengths(report: dict, path: Path) -> Path | None:
    ranked = sorted(report["bradley_terry"].items(), key=lambda kv: kv[1]["strength"])
    if not ranked:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 0.5 + 0.5 * len(ranked)), layout="constrained")
    axes = figure.add_subplot()
    names = [name for name, _ in ranked]
    strength = np.array([v["strength"] for _, v in ranked])
    errors = np.array([[v["strength"] - v["ci_low"], v["ci_high"] - v["strength"]] for _, v in ranked]).T
    axes.errorbar(strength, names, xerr=errors, fmt="o", capsize=4)
    axes.axvline(0, color="#999", linewidth=0.8)
    axes.set_xlabel("Bradley–Terry log-strength (95% bootstrap interval)")
    return save_figure(figure, path, dpi=110)


def _plot_likert(report: dict, path: Path) -> Path | None:
    likert = {c: v for c, v in report["likert"].items() if v}
    if not likert:
        return None
    from matplotlib.figure import Figure

    systems = report["systems"]
    figure = Figure(figsize=(6, 3), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / len(likert)
    for k, (criterion, per_system) in enumerate(likert.items()):
        x = np.arange(len(systems)) + k * width
        mean = [per_system.get(s, {}).get("mean", np.nan) for s in systems]
        low = [per_system[s]["mean"] - per_system[s]["ci_low"] if s in per_system else 0 for s in systems]
        high = [per_system[s]["ci_high"] - per_system[s]["mean"] if s in per_system else 0 for s in systems]
        axes.bar(x, mean, width, yerr=[low, high], capsize=3, label=criterion)
    axes.set_xticks(np.arange(len(systems)) + width * (len(likert) - 1) / 2, systems)
    axes.set_ylim(1, 5)
    axes.set_ylabel("mean rating (1–5)")
    axes.legend()
    return save_figure(figure, path, dpi=110)


def _number(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(report: dict, images: list[str]) -> str:
    systems = sorted(
        report["systems"], key=lambda s: -(report["bradley_terry"].get(s, {}).get("strength", 0))
    )
    bt, without = report["bradley_terry"], report["without_flagged"]["bradley_terry"]
    ranking = [
        [s, _number(report["win_rate"].get(s)), _number(bt.get(s, {}).get("strength")),
         f"[{_number(bt.get(s, {}).get('ci_low'))}, {_number(bt.get(s, {}).get('ci_high'))}]",
         _number(without.get(s, {}).get("strength"))]
        for s in systems
    ]  # fmt: skip
    likert = [
        [c, s, _number(v["mean"]), f"[{_number(v['ci_low'])}, {_number(v['ci_high'])}]", str(v["n"])]
        for c, per_system in report["likert"].items()
        for s, v in per_system.items()
    ]
    agreement = [["Fleiss' κ (preferences)", _number(report["fleiss_kappa"])]] + [
        [f"Krippendorff's α ({name})", _number(value)] for name, value in report["krippendorff_alpha"].items()
    ]
    kappas = [[pair, _number(value)] for pair, value in report["cohen_kappa"].items()]
    attention = [
        [r, _number(rate), "flagged" if r in report["flagged_raters"] else ""]
        for r, rate in report["attention_pass_rate"].items()
    ]
    metrics = [[m, _number(t)] for m, t in report["metric_agreement"].items()]
    plots = "".join(f'<p><img src="{html.escape(name)}" alt="{html.escape(name)}"></p>' for name in images)
    title = html.escape(f"Human evaluation: {report['study']}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:15px/1.4 system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem}}
table{{border-collapse:collapse;margin:.5rem 0 1rem}}td,th{{border:1px solid #ccc;padding:.2rem .5rem}}</style>
</head><body><h1>{title}</h1>
<p>{report["judgments"]} judgments ({report["comparisons"]} preferences) by {len(report["raters"])} raters,
plus {report["attention_judgments"]} attention checks. Bradley–Terry: mean-zero log-strengths, L2 penalty
{report["bradley_terry_alpha"]}, 95% intervals from {report["bootstrap_resamples"]} bootstrap resamples of the
judgments; a tie or both-bad counts half a win each way.</p>
<h2>Ranking</h2>{_table(["system", "win rate", "log-strength", "95% interval", "without flagged raters"], ranking)}
{plots}
<h2>Ratings</h2>{_table(["criterion", "system", "mean", "95% interval", "ratings"], likert)}
<h2>Agreement between raters</h2>{_table(["statistic", "value"], agreement)}
{_table(["raters", "Cohen's κ"], kappas)}
<h2>Attention checks</h2><p>The reference against another item's output; raters below
{report["attention_threshold"]} are flagged.</p>{_table(["rater", "pass rate", ""], attention)}
<h2>Automatic metrics against the people</h2><p>Kendall's τ, WMT form (C − D) / (C + D) over judged pairs
(human and metric ties left out).</p>{_table(["metric", "τ"], metrics)}
</body></html>
"""


def write_report(study: Study, out: str | Path, **options) -> dict:
    """report.json, index.html and PNG plots in `out` (created); every file written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = analyze(study, **options)
    images = []
    for name, plot in (("strengths.png", _plot_strengths), ("ratings.png", _plot_likert)):
        if plot(report, out / name) is not None:
            images.append(name)
    write_json(out / "report.json", report, newline=True)
    write_text(out / "index.html", render_html(report, images))
    return report


def export_csv(study: Study, path: str | Path) -> Path:
    """One row per judgment: item_id, rater, left_system, right_system, choice, then C_left, C_right per
    criterion (empty when not asked)."""
    criteria = study.criteria if study.task != "pairwise" else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["item_id", "rater", "left_system", "right_system", "choice"]
        + [f"{c}_{side}" for c in criteria for side in ("left", "right")]
    )
    for j in study.judgments():
        ratings = [v for c in criteria for v in j["ratings"].get(c, ["", ""])]
        writer.writerow(
            [j["item_id"], j["rater"], j["left_system"], j["right_system"], j["choice"] or "", *ratings]
        )
    return write_text(path, buffer.getvalue())


def export_battles(study: Study, path: str | Path) -> Path:
    """FastChat / Chatbot Arena battles, one JSON object per preference (attention checks left out)."""
    winner = {"left": "model_a", "right": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
    lines = [
        json.dumps(
            {
                "question_id": j["item_id"],
                "model_a": j["left_system"],
                "model_b": j["right_system"],
                "winner": winner[j["choice"]],
                "judge": j["rater"],
                "tstamp": j["created"],
            },
            ensure_ascii=False,
        )
        + "\n"
        for j in study.judgments()
        if j["choice"] is not None and not j["is_check"]
    ]
    return write_text(path, "".join(lines))
