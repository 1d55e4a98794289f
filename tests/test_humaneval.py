"""lmforge.humaneval without HTTP: the design, the study file (never overwritten, judgments stored once, no
personal data), the report's fields, the exports' columns, the demo, and the CLI's errors."""

from __future__ import annotations

import csv
import itertools
import json
import sqlite3
import time
from collections import Counter

import pytest

from lmforge.errors import LmforgeError
from lmforge.humaneval import Study, analyze, create_study, export_battles, export_csv, simulate
from lmforge.humaneval.study import REFERENCE, JudgmentError

SYSTEMS = {"alpha": 0.5, "beta": 0.0, "gamma": -0.5}


def _study(path, *, items=8, raters=4, per_item=3, references=True, **options) -> Study:
    outputs = {s: [f"{s} says {i}" for i in range(items)] for s in SYSTEMS}
    return create_study(
        path,
        name="t",
        outputs=outputs,
        sources=[f"source {i}" for i in range(items)],
        references=[[f"reference {i}", f"other reference {i}"] for i in range(items)] if references else None,
        raters=raters,
        per_item=per_item,
        **options,
    )


def test_the_design_balances_raters_pairs_and_positions(tmp_path):
    with _study(tmp_path / "s.db", items=10, raters=5, per_item=3) as study:
        rows = study.assignments()
    real = [r for r in rows if not r["item_id"].startswith("check-")]
    units = Counter((r["item_id"], tuple(sorted((r["left_system"], r["right_system"])))) for r in real)
    pairs = list(itertools.combinations(sorted(SYSTEMS), 2))
    assert set(units) == {(str(i), p) for i in range(1, 11) for p in pairs}  # every item with every pair
    assert set(units.values()) == {3}  # ... judged by K raters
    for unit in units:  # ... who are distinct
        assert (
            len(
                {
                    r["rater"]
                    for r in real
                    if (r["item_id"], tuple(sorted((r["left_system"], r["right_system"])))) == unit
                }
            )
            == 3
        )
    loads = Counter(r["rater"] for r in real)
    assert max(loads.values()) - min(loads.values()) <= 1
    for first, second in pairs:
        on_left = Counter(
            r["left_system"] for r in real if {r["left_system"], r["right_system"]} == {first, second}
        )
        assert abs(on_left[first] - on_left[second]) <= 1
    orders = {rater: [int(r["item_id"]) for r in real if r["rater"] == rater] for rater in loads}
    assert all(order != sorted(order) for order in orders.values())  # each rater's own random order
    assert len({tuple(order) for order in orders.values()}) == len(orders)


def test_attention_checks_pair_the_reference_with_another_items_output(tmp_path):
    with _study(tmp_path / "s.db", items=6, raters=3, per_item=2) as study:
        rows = [r for r in study.assignments() if r["item_id"].startswith("check-")]
        assert len(rows) >= 6 and all(
            sum(1 for r in rows if r["rater"] == rater) >= 2 for rater in study.raters()
        )
        outputs = dict(
            ((item, system), text) for item, system, text in study.connection.execute("SELECT * FROM outputs")
        )
        for row in rows:
            assert REFERENCE in (row["left_system"], row["right_system"])
            system = row["right_system"] if row["left_system"] == REFERENCE else row["left_system"]
            shown = outputs[(row["item_id"], system)]
            source = study.connection.execute(
                "SELECT source FROM items WHERE item_id = ?", (row["item_id"],)
            ).fetchone()[0]
            assert outputs[(row["item_id"], REFERENCE)] == "reference " + source.split()[-1]
            assert shown.startswith(system) and shown.split()[-1] != source.split()[-1]  # another item's
    with _study(tmp_path / "plain.db", references=False) as study:
        assert not any(r["item_id"].startswith("check-") for r in study.assignments())


def test_a_study_file_is_never_overwritten(tmp_path):
    path = tmp_path / "s.db"
    _study(path).close()
    before = path.read_bytes()
    with pytest.raises(LmforgeError, match="never overwritten"):
        _study(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


def test_judgments_are_stored_once_and_checked(tmp_path):
    with _study(tmp_path / "s.db") as study:
        rater, other = list(study.raters())[:2]
        item = study.next_for(rater)
        assert set(item) == {"assignment", "source", "outputs"}
        ratings = {"fluency": [4, 2], "adequacy": [5, 1]}
        assert study.record(rater, item["assignment"], "key-00000001", choice="left", ratings=ratings) is True
        assert (
            study.record(rater, item["assignment"], "key-00000001", choice="left", ratings=ratings) is False
        )
        assert len(study.judgments()) == 1 and study.progress(rater)[0] == 1
        assert study.next_for(rater)["assignment"] != item["assignment"]  # the next one
        with pytest.raises(JudgmentError, match="answered already") as caught:
            study.record(rater, item["assignment"], "key-00000002", choice="tie", ratings=ratings)
        assert caught.value.status == 409
        theirs = study.next_for(other)["assignment"]
        with pytest.raises(JudgmentError, match="not one of this rater's items") as caught:
            study.record(rater, theirs, "key-00000003", choice="tie", ratings=ratings)
        assert caught.value.status == 403
        mine = study.next_for(rater)["assignment"]
        for bad, message in [
            ({"choice": "left", "ratings": {"fluency": [4, 2]}}, "exactly the criteria"),
            ({"choice": "best", "ratings": ratings}, "choice: one of left, right, tie, both_bad"),
            ({"choice": "left", "ratings": {"fluency": [6, 2], "adequacy": [1, 1]}}, "from 1 to 5"),
            ({"choice": "left", "ratings": {"fluency": [True, 2], "adequacy": [1, 1]}}, "from 1 to 5"),
        ]:
            with pytest.raises(JudgmentError, match=message):
                study.record(rater, mine, "key-00000004", **bad)
        assert len(study.judgments()) == 1


def test_the_file_holds_no_personal_data(tmp_path):
    with _study(tmp_path / "s.db") as study:
        columns = {
            column[1]
            for (table,) in study.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            for column in study.connection.execute(f"PRAGMA table_info({table})")
        }
        assert study.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert not columns & {"ip", "address", "user_agent", "agent", "email", "host"}
    assert {"rater", "token", "idempotency_key"} <= columns


def test_report_export_and_battles(tmp_path):
    with _study(tmp_path / "s.db", items=12, raters=4, per_item=2) as study:
        simulate(study, SYSTEMS, seed=1)
        report = analyze(study, resamples=100)
        export_csv(study, tmp_path / "j.csv")
        export_battles(study, tmp_path / "b.jsonl")
        judgments = study.judgments()
    for field in ("systems", "win_rate", "bradley_terry", "cohen_kappa", "fleiss_kappa", "krippendorff_alpha",
                  "attention_pass_rate", "metric_agreement"):  # fmt: skip
        assert field in report, field
    assert report["systems"] == list(SYSTEMS)
    assert set(report["bradley_terry"]["alpha"]) == {"strength", "ci_low", "ci_high"}
    assert set(report["krippendorff_alpha"]) == {"preference", "fluency", "adequacy"}
    assert set(report["metric_agreement"]) == {"bleu", "chrf"}
    assert all("|" in pair for pair in report["cohen_kappa"])
    assert set(report["attention_pass_rate"]) == {"R01", "R02", "R03", "R04"}
    json.dumps(report, allow_nan=False)  # strict JSON: undefined figures are null

    rows = list(csv.DictReader((tmp_path / "j.csv").open(encoding="utf-8")))
    assert list(rows[0]) == ["item_id", "rater", "left_system", "right_system", "choice",
                             "fluency_left", "fluency_right", "adequacy_left", "adequacy_right"]  # fmt: skip
    assert len(rows) == len(judgments)
    assert {r["choice"] for r in rows} <= {"left", "right", "tie", "both_bad"}
    assert any(r["item_id"].startswith("check-") for r in rows)
    battles = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert len(battles) == sum(1 for j in judgments if not j["is_check"])
    assert {"model_a", "model_b", "winner", "judge", "tstamp"} <= set(battles[0])
    assert {b["winner"] for b in battles} <= {"model_a", "model_b", "tie", "tie (bothbad)"}


def test_rating_only_study_exports_empty_choices(tmp_path):
    with _study(tmp_path / "s.db", task="rating", criteria=["fluency"], references=False) as study:
        simulate(study, SYSTEMS, seed=0)
        export_csv(study, tmp_path / "j.csv")
        report = analyze(study, resamples=50)
    rows = list(csv.DictReader((tmp_path / "j.csv").open(encoding="utf-8")))
    assert list(rows[0])[-2:] == ["fluency_left", "fluency_right"] and {r["choice"] for r in rows} == {""}
    assert report["bradley_terry"] == {} and report["likert"]["fluency"]["alpha"]["mean"] > 3


def test_canonical_preferences_make_agreement_about_systems_not_positions(tmp_path):
    """Two raters who prefer the same system, seen on opposite sides, agree perfectly."""
    with _study(tmp_path / "s.db", items=6, raters=2, per_item=2, references=False, task="pairwise") as study:
        for rater in study.raters():
            for row in study.assignments(rater):
                winner = min(row["left_system"], row["right_system"])  # alphabetically first always wins
                choice = "left" if row["left_system"] == winner else "right"
                study.record(rater, row["assignment_id"], f"k-{row['assignment_id']:08d}", choice=choice)
        sides = Counter(r["left_system"] for r in study.assignments())
        report = analyze(study, resamples=20)
    assert len(sides) == 3  # positions varied
    assert report["cohen_kappa"] == {"R01|R02": None} or report["cohen_kappa"]["R01|R02"] == 1.0
    assert report["krippendorff_alpha"]["preference"] in (None, 1.0)


# --- the command line --------------------------------------------------------------------------------------


def test_create_aligns_jsonl_by_id_and_refuses_misaligned_files(cli, tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": 1, "text": "uno"}\n{"id": 2, "text": "dos"}\n')
    (tmp_path / "b.jsonl").write_text('{"id": 2, "text": "DOS"}\n{"id": 1, "text": "UNO"}\n')
    (tmp_path / "c.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "d.txt").write_text("1\n2\n")
    code, out, err = cli("humaneval", "create", "--name", "n", "--system", f"a={tmp_path}/a.jsonl",
                         f"b={tmp_path}/b.jsonl", "--raters", "2", "--out", tmp_path / "s.db")  # fmt: skip
    assert code == 0, err
    with Study(tmp_path / "s.db") as study:
        assert {i["item_id"]: i["outputs"] for i in study.items()} == {
            "1": {"a": "uno", "b": "UNO"},
            "2": {"a": "dos", "b": "DOS"},
        }
    code, _, err = cli("humaneval", "create", "--name", "n", "--system", f"c={tmp_path}/c.txt",
                       "--system", f"d={tmp_path}/d.txt", "--out", tmp_path / "t.db")  # fmt: skip
    assert code == 2 and "--system d: misaligned with c: 2 outputs, c has 3" in err
    code, _, err = cli("humaneval", "create", "--name", "n", "--system", f"c={tmp_path}/c.txt",
                       f"a={tmp_path}/a.jsonl", "--out", tmp_path / "t.db")  # fmt: skip
    assert code == 2 and "has ids and c has not" in err
    assert not (tmp_path / "t.db").exists()


def test_a_file_that_is_not_a_study_is_refused(cli, tmp_path):
    (tmp_path / "notes.db").write_text("hello\n")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE x (y)")
    other.commit()
    other.close()
    for name in ("notes.db", "other.db"):
        code, _, err = cli("humaneval", "report", "--study", tmp_path / name, "--out", tmp_path / "r")
        assert (
            code == 2 and f"{tmp_path / name}: not a study file" in err and len(err.strip().splitlines()) == 1
        )
    assert not (tmp_path / "r").exists()


def test_demo_with_simulated_raters(cli, tmp_path):
    started = time.perf_counter()
    code, out, err = cli(
        "humaneval", "demo", "--simulate", "6", "--resamples", "100", "--out", tmp_path / "d"
    )
    assert code == 0, err
    assert time.perf_counter() - started < 60
    report = json.loads((tmp_path / "d" / "report" / "report.json").read_text())
    assert report["systems"] == ["greedy", "beam4", "short"]
    assert report["flagged_raters"] == ["R01"]  # the careless simulated rater
    bt = report["without_flagged"]["bradley_terry"]
    assert sorted(bt, key=lambda s: -bt[s]["strength"]) == ["beam4", "greedy", "short"]  # the true order
    assert (tmp_path / "d" / "report" / "index.html").is_file() and (
        tmp_path / "d" / "report" / "strengths.png"
    ).is_file()
    code, _, err = cli("humaneval", "demo", "--out", tmp_path / "d")
    assert code == 2 and "never overwritten" in err
