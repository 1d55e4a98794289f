"""Simulated raters, so that a report can be checked against a known truth, and the demo that ships.

`simulate(study, strengths)` answers every open assignment as a rater drawn from a pure Bradley–Terry model
would: the left output wins with probability σ(θ_left − θ_right), no ties, no extra noise. Ratings are
3 + θ plus Gaussian noise, rounded into 1–5. An attentive rater prefers the reference in an attention check
(with probability `attention`); a careless one answers everything uniformly at random.

`demo(out)` builds a study from the data in `demo_data/` (the translation preset's model on 40 held-out
Tatoeba sentences: greedy, beam search 4, and a shorter-trained model with beam 4; `demo_data/README.md` says
how they were made) and, with `simulate=N`, fills it with N simulated raters and writes the report.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

from lmforge.humaneval.study import CHOICES, REFERENCE, Study, create_study

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"
DEMO_SYSTEMS = ("greedy", "beam4", "short")
# The truth the simulated raters are drawn from (mean zero, as the report's log-strengths).
DEMO_STRENGTHS = {"greedy": 0.3, "beam4": 0.6, "short": -0.9}


def simulate(
    study: Study,
    strengths: dict[str, float],
    *,
    seed: int = 0,
    careless: Sequence[str] = (),
    attention: float = 0.95,
    rating_noise: float = 0.8,
) -> int:
    """Answer every unanswered assignment of every rater; returns how many judgments were stored."""
    rng = random.Random(seed)
    stored = 0
    study.connection.execute("PRAGMA synchronous=NORMAL")  # a simulation need not fsync every judgment
    try:
        for rater in study.raters():
            for row in study.assignments(rater):
                if row["answered"]:
                    continue
                left, right = row["left_system"], row["right_system"]
                choice, ratings = _answer(
                    rng, study, left, right, strengths, rater in careless, attention, rating_noise
                )
                study.record(
                    rater,
                    row["assignment_id"],
                    f"simulated-{row['assignment_id']}",
                    choice=choice,
                    ratings=ratings,
                )
                stored += 1
    finally:
        study.connection.execute("PRAGMA synchronous=FULL")
    return stored


def _answer(rng, study, left, right, strengths, careless, attention, rating_noise):
    pairwise, rating = study.task in ("pairwise", "both"), study.task in ("rating", "both")
    if careless:
        choice = rng.choice(CHOICES) if pairwise else None
        ratings = {c: [rng.randint(1, 5), rng.randint(1, 5)] for c in study.criteria} if rating else {}
        return choice, ratings
    if REFERENCE in (left, right):  # an attention check
        good = "left" if left == REFERENCE else "right"
        bad = "right" if good == "left" else "left"
        chosen = good if rng.random() < attention else bad
        high, low = [rng.randint(4, 5), rng.randint(1, 2)]
        pair = [high, low] if chosen == "left" else [low, high]
        return (chosen if pairwise else None), ({c: list(pair) for c in study.criteria} if rating else {})
    p_left = 1 / (1 + math.exp(-(strengths[left] - strengths[right])))
    choice = ("left" if rng.random() < p_left else "right") if pairwise else None

    def score(system: str) -> int:
        return min(5, max(1, round(3 + strengths[system] + rng.gauss(0, rating_noise))))

    ratings = {c: [score(left), score(right)] for c in study.criteria} if rating else {}
    return choice, ratings


def demo_inputs() -> dict:
    """The shipped demo data: item ids, sources, references (lists) and each system's outputs."""
    rows = [
        json.loads(line) for line in (DEMO_DATA / "sources.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    outputs = {}
    for system in DEMO_SYSTEMS:
        records = [
            json.loads(line)
            for line in (DEMO_DATA / f"{system}.jsonl").read_text(encoding="utf-8").splitlines()
        ]
        by_id = {r["id"]: r["text"] for r in records}
        outputs[system] = [by_id[r["id"]] for r in rows]
    return {
        "item_ids": [r["id"] for r in rows],
        "sources": [r["source"] for r in rows],
        "references": [r["references"] for r in rows],
        "outputs": outputs,
    }


def demo(out: str | Path, *, simulate_raters: int = 0, raters: int = 5, seed: int = 0, resamples: int = 1000):
    """out/study.db from the shipped data; with `simulate_raters`, filled by that many simulated raters (the
    first of them careless when there are four or more) and reported to out/report/. Returns (study, report)."""
    from lmforge.humaneval.report import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = demo_inputs()
    count = simulate_raters or raters
    study = create_study(
        out / "study.db",
        name="demo: en→es Tatoeba, three decoders",
        outputs=data["outputs"],
        item_ids=data["item_ids"],
        sources=data["sources"],
        references=data["references"],
        raters=count,
        per_item=min(3, count),
        seed=seed,
    )
    report = None
    if simulate_raters:
        careless = ["R01"] if simulate_raters >= 4 else []
        simulate(study, DEMO_STRENGTHS, seed=seed, careless=careless)
        report = write_report(study, out / "report", resamples=resamples, seed=seed)
    return study, report
