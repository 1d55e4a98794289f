"""A study: the outputs to judge, the raters, who judges what in which order, and every judgment, in one SQLite
file (WAL mode, so `report` can read while `serve` writes).

    study = create_study("s.db", name="mt", outputs={"A": [...], "B": [...]}, sources=[...], raters=4, per_item=2)
    study.next_for(token)                       # the rater's first unanswered assignment, or None
    study.record(token, assignment, key, choice="left", ratings={"fluency": (4, 2)})

The design: every item is shown with every pair of systems (a *unit*), and each unit goes to `per_item`
different raters, the raters with the fewest assignments so far first (ties broken at random), so loads
differ by at most one. Each pair's two systems sit on the left equally often (within one), so positions
are balanced per pair; each rater's list is shuffled with its own seed. When references exist,
each rater also gets attention checks: the reference against an output of another item (shuffled), under
ids `check-N`; an attentive rater prefers the reference.

Judgments: one per assignment, committed (synchronous=FULL) before the next assignment is returned, keyed by
an idempotency key the page sends, so a double click or a retried request is stored once. The file holds no
IP address, no user agent and no names: raters are pseudonyms (R01, R02, ...) reached by a random token.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import LmforgeError, MissingFileError

FORMAT = "lmforge-humaneval-1"
TASKS = ("pairwise", "rating", "both")
CHOICES = ("left", "right", "tie", "both_bad")
DEFAULT_CRITERIA = ("fluency", "adequacy")
REFERENCE = "(reference)"  # the pseudo-system of attention checks; real system names cannot hold parentheses
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE systems (system TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE items (
    item_id TEXT PRIMARY KEY, position INTEGER NOT NULL, source TEXT, references_json TEXT NOT NULL,
    is_check INTEGER NOT NULL DEFAULT 0);
CREATE TABLE outputs (
    item_id TEXT NOT NULL REFERENCES items, system TEXT NOT NULL, text TEXT NOT NULL,
    PRIMARY KEY (item_id, system));
CREATE TABLE raters (rater TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE);
CREATE TABLE assignments (
    assignment_id INTEGER PRIMARY KEY, rater TEXT NOT NULL REFERENCES raters, position INTEGER NOT NULL,
    item_id TEXT NOT NULL REFERENCES items, left_system TEXT NOT NULL, right_system TEXT NOT NULL,
    UNIQUE (rater, position));
CREATE TABLE judgments (
    judgment_id INTEGER PRIMARY KEY, assignment_id INTEGER NOT NULL UNIQUE REFERENCES assignments,
    idempotency_key TEXT NOT NULL UNIQUE, choice TEXT, ratings_json TEXT NOT NULL, seconds REAL,
    created REAL NOT NULL);
"""


class JudgmentError(LmforgeError, ValueError):
    """A judgment the study cannot take; `status` is the HTTP status the page gets."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


# --- reading the systems' outputs --------------------------------------------------------------------------


def read_outputs(
    path: str | os.PathLike, *, option: str, text_field: str = "text"
) -> dict[str, str] | list[str]:
    """A system's outputs: a JSONL file (`text_field` of each object; by `id` when every line has one) or a
    text file (one output per line). Returns {id: text} for JSONL with ids, else the list in file order."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{option} {path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise LmforgeError(f"{option} {path}: not UTF-8 text (byte {exc.start})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise LmforgeError(f"{option} {path}: the file is empty")
    if path.suffix != ".jsonl":
        return lines
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LmforgeError(f"{option} {path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise LmforgeError(
                f"{option} {path}:{number}: no string field {text_field!r} (choose one with --text-field)"
            )
        records.append(record)
    if not all("id" in r for r in records):
        return [r[text_field] for r in records]
    by_id: dict[str, str] = {}
    for number, record in enumerate(records, 1):
        key = str(record["id"])
        if key in by_id:
            raise LmforgeError(f"{option} {path}:{number}: id {key!r} appears twice")
        by_id[key] = record[text_field]
    return by_id


def align(outputs: dict[str, dict[str, str] | list[str]]) -> tuple[list[str], dict[str, list[str]]]:
    """(item ids, {system: texts in item order}) from each system's outputs, aligned by id when every
    system has ids, else by line; a system that does not line up with the first is an error naming both."""
    names = list(outputs)
    first = names[0]
    keyed = [isinstance(outputs[n], dict) for n in names]
    if all(keyed):
        ids = list(outputs[first])
        for name in names[1:]:
            missing = [i for i in ids if i not in outputs[name]]
            extra = [i for i in outputs[name] if i not in outputs[first]]
            if missing or extra:
                what = f"lacks id {missing[0]!r}" if missing else f"has id {extra[0]!r} that {first} lacks"
                raise LmforgeError(f"--system {name}: misaligned with {first}: it {what}")
        return ids, {n: [outputs[n][i] for i in ids] for n in names}
    if any(keyed):
        raise LmforgeError(
            f"--system: {names[keyed.index(True)]} has ids and {names[keyed.index(False)]} has not: "
            "give every system an `id` per line, or none"
        )
    count = len(outputs[first])
    for name in names[1:]:
        if len(outputs[name]) != count:
            raise LmforgeError(
                f"--system {name}: misaligned with {first}: {len(outputs[name])} outputs, {first} has {count}"
            )
    return [str(i) for i in range(1, count + 1)], {n: list(outputs[n]) for n in names}


# --- the design --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    rater: str
    item_id: str
    left_system: str
    right_system: str


def design(
    item_ids: Sequence[str],
    systems: Sequence[str],
    raters: Sequence[str],
    per_item: int,
    seed: int,
    checks: Sequence[tuple[str, str, str]] = (),
) -> list[Assignment]:
    """Every (item, system pair) to `per_item` distinct raters, least-loaded first; each pair's first
    system on the left as often as on the right (within one); `checks` (item id, reference pseudo-system, real system) one per rater in turn; each
    rater's list shuffled by its own seed. The returned list is in each rater's order."""
    rng = random.Random(seed)
    load = {r: 0 for r in raters}
    given: dict[str, list[Assignment]] = {r: [] for r in raters}
    pairs = list(itertools.combinations(sorted(systems), 2))
    first_on_left = {pair: 0 for pair in pairs}  # minus the times it sat on the right
    for item, (first, second) in itertools.product(item_ids, pairs):
        order = sorted(raters, key=lambda r: (load[r], rng.random()))
        for rater in order[:per_item]:
            balance = first_on_left[(first, second)]
            left, right = (
                (first, second) if balance < 0 or (balance == 0 and rng.random() < 0.5) else (second, first)
            )
            first_on_left[(first, second)] += 1 if left == first else -1
            given[rater].append(Assignment(rater, item, left, right))
            load[rater] += 1
    for number, (item, reference, system) in enumerate(checks):
        rater = raters[number % len(raters)]
        left, right = (reference, system) if number % 2 == 0 else (system, reference)
        given[rater].append(Assignment(rater, item, left, right))
    ordered = []
    for index, rater in enumerate(raters):
        mine = given[rater]
        random.Random(f"{seed}-{index}").shuffle(mine)
        ordered += mine
    return ordered


# --- the study file ----------------------------------------------------------------------------------------


def create_study(
    path: str | os.PathLike,
    *,
    name: str,
    outputs: dict[str, Sequence[str]],
    item_ids: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    references: Sequence[Sequence[str]] | None = None,
    raters: int = 3,
    per_item: int = 2,
    task: str = "both",
    criteria: Sequence[str] = DEFAULT_CRITERIA,
    checks_per_rater: int | None = None,
    seed: int = 0,
) -> Study:
    """Write a new study file at `path` (refusing an existing one) and open it. `outputs`: {system: texts},
    all in item order; `references[i]` holds item i's reference translations (the first is shown in checks).
    `checks_per_rater`: attention checks per rater when references exist (default: one per 15 items, at
    least 2)."""
    path = Path(path)
    if path.exists():
        raise LmforgeError(f"--out {path}: exists; a study file is never overwritten (choose another name)")
    if not path.parent.is_dir():
        raise LmforgeError(f"--out {path}: directory {path.parent} does not exist; create it first")
    systems = list(outputs)
    count = len(next(iter(outputs.values()), []))
    item_ids = [str(i) for i in range(1, count + 1)] if item_ids is None else [str(i) for i in item_ids]
    _check_design(systems, outputs, item_ids, sources, references, raters, per_item, task, criteria)
    rng = random.Random(seed)
    rater_names = [f"R{i:02d}" for i in range(1, raters + 1)]
    if checks_per_rater is None:
        load = count * math.comb(len(systems), 2) * per_item / raters
        checks_per_rater = max(2, math.ceil(load / 15))
    checks, check_rows = [], []
    if references is not None and count >= 2:
        for number in range(checks_per_rater * raters):
            index = rng.randrange(count)
            other = (index + rng.randrange(1, count)) % count  # another item's output: plainly wrong
            system = systems[number % len(systems)]
            check_id = f"check-{number + 1}"
            checks.append((check_id, REFERENCE, system))
            source = sources[index] if sources is not None else None
            check_rows.append((check_id, source, references[index], system, outputs[system][other]))
    plan = design(item_ids, systems, rater_names, per_item, seed, checks)

    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        connection = sqlite3.connect(temporary)
        connection.execute("PRAGMA synchronous=OFF")  # a scratch file until the fsync and link below
        with connection:  # one transaction
            connection.executescript("BEGIN;" + SCHEMA)
            meta = {
                "format": FORMAT,
                "name": name,
                "task": task,
                "criteria": json.dumps(list(criteria)),
                "per_item": str(per_item),
                "seed": str(seed),
                "created": str(time.time()),
            }
            connection.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            connection.executemany(
                "INSERT INTO systems VALUES (?, ?)", [(s, i) for i, s in enumerate(systems)]
            )
            connection.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?, 0)",
                [
                    (item, i, sources[i] if sources is not None else None,
                     json.dumps(list(references[i]) if references is not None else []))
                    for i, item in enumerate(item_ids)
                ],
            )  # fmt: skip
            connection.executemany(
                "INSERT INTO outputs VALUES (?, ?, ?)",
                [(item, s, outputs[s][i]) for i, item in enumerate(item_ids) for s in systems],
            )
            for position, (check_id, source, refs, system, text) in enumerate(check_rows):
                connection.execute(
                    "INSERT INTO items VALUES (?, ?, ?, ?, 1)",
                    (check_id, count + position, source, json.dumps(refs)),
                )
                connection.execute("INSERT INTO outputs VALUES (?, ?, ?)", (check_id, REFERENCE, refs[0]))
                connection.execute("INSERT INTO outputs VALUES (?, ?, ?)", (check_id, system, text))
            connection.executemany(
                "INSERT INTO raters VALUES (?, ?)", [(r, secrets.token_urlsafe(16)) for r in rater_names]
            )
            positions: dict[str, int] = {}
            rows = []
            for a in plan:
                positions[a.rater] = positions.get(a.rater, 0) + 1
                rows.append((a.rater, positions[a.rater], a.item_id, a.left_system, a.right_system))
            connection.executemany(
                "INSERT INTO assignments (rater, position, item_id, left_system, right_system) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        connection.close()
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.link(temporary, path)  # fails if `path` appeared meanwhile: never overwrite a study
    except FileExistsError:
        raise LmforgeError(
            f"--out {path}: exists; a study file is never overwritten (choose another name)"
        ) from None
    finally:
        temporary.unlink(missing_ok=True)
    return Study(path)


def _check_design(systems, outputs, item_ids, sources, references, raters, per_item, task, criteria) -> None:
    if len(systems) < 2:
        raise LmforgeError("--system: give at least two systems to compare (NAME=FILE each)")
    for system in systems:
        if not _NAME.match(system):
            raise LmforgeError(f"--system {system!r}: a name is letters, digits and _ . + - (no spaces)")
    count = len(item_ids)
    if count == 0:
        raise LmforgeError("--system: the outputs are empty")
    for system in systems:
        if len(outputs[system]) != count:
            raise LmforgeError(f"--system {system}: {len(outputs[system])} outputs for {count} items")
    if len(set(item_ids)) != count or any(i.startswith("check-") for i in item_ids):
        raise LmforgeError("item ids must be unique and must not start with 'check-' (reserved for checks)")
    for option, values in (("--source", sources), ("--reference", references)):
        if values is not None and len(values) != count:
            raise LmforgeError(
                f"{option}: {len(values)} lines for {count} items (misaligned with the systems)"
            )
    if references is not None and any(not refs for refs in references):
        raise LmforgeError("--reference: every item needs at least one reference")
    if task not in TASKS:
        raise LmforgeError(f"--task {task!r}: choose one of {', '.join(TASKS)}")
    if task != "pairwise" and not criteria:
        raise LmforgeError("--criteria: name at least one criterion to rate (e.g. fluency,adequacy)")
    for criterion in criteria:
        if not re.match(r"^[a-z][a-z0-9_]*$", criterion):
            raise LmforgeError(
                f"--criteria {criterion!r}: a criterion is a lower-case word (letters, digits, _)"
            )
    if per_item > raters:
        raise LmforgeError(
            f"--per-item {per_item}: more than --raters {raters}; each item goes to distinct raters"
        )


class Study:
    """An open study file. Thread-safe: one connection, one lock (writes are serialised; SQLite's WAL lets
    other processes read meanwhile)."""

    def __init__(self, path: str | os.PathLike, *, option: str = "--study"):
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"{option} {path}: no such file")
        with open(path, "rb") as handle:
            if handle.read(16) != _SQLITE_MAGIC:
                raise LmforgeError(
                    f"{option} {path}: not a study file (not SQLite; make one with `lmforge humaneval create`)"
                )
        self.path = path
        self.lock = threading.Lock()
        self.connection = sqlite3.connect(
            f"file:{path}?mode=rw", uri=True, check_same_thread=False, timeout=30
        )
        self.connection.row_factory = sqlite3.Row
        try:
            meta = dict(self.connection.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            self.connection.close()
            raise LmforgeError(f"{option} {path}: not a study file (no study tables)") from None
        if meta.get("format") != FORMAT:
            self.connection.close()
            raise LmforgeError(f"{option} {path}: not a study file of this version ({meta.get('format')!r})")
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")  # a judgment acknowledged is on disk
        self.name = meta["name"]
        self.task = meta["task"]
        self.criteria: list[str] = json.loads(meta["criteria"])
        self.per_item = int(meta["per_item"])
        self.seed = int(meta["seed"])
        self.systems = [r[0] for r in self.connection.execute("SELECT system FROM systems ORDER BY position")]

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _query(self, sql: str, parameters: Sequence = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.connection.execute(sql, parameters).fetchall()

    def raters(self) -> dict[str, str]:
        """{pseudonym: token}."""
        return {r["rater"]: r["token"] for r in self._query("SELECT rater, token FROM raters ORDER BY rater")}

    def rater_of(self, token: str) -> str | None:
        rows = self._query("SELECT rater FROM raters WHERE token = ?", (token,))
        return rows[0]["rater"] if rows else None

    def progress(self, rater: str) -> tuple[int, int]:
        """(answered, assigned) of a rater."""
        row = self._query(
            "SELECT COUNT(*) AS assigned, COUNT(j.judgment_id) AS answered FROM assignments a "
            "LEFT JOIN judgments j USING (assignment_id) WHERE a.rater = ?",
            (rater,),
        )[0]
        return row["answered"], row["assigned"]

    def next_for(self, rater: str) -> dict | None:
        """The rater's first unanswered assignment as the page sees it (texts only, never a system name or
        an item id), or None when all are answered."""
        rows = self._query(
            "SELECT a.assignment_id, i.source, l.text AS left_text, r.text AS right_text FROM assignments a "
            "JOIN items i USING (item_id) "
            "JOIN outputs l ON l.item_id = a.item_id AND l.system = a.left_system "
            "JOIN outputs r ON r.item_id = a.item_id AND r.system = a.right_system "
            "WHERE a.rater = ? AND a.assignment_id NOT IN (SELECT assignment_id FROM judgments) "
            "ORDER BY a.position LIMIT 1",
            (rater,),
        )
        if not rows:
            return None
        row = rows[0]
        return {
            "assignment": row["assignment_id"],
            "source": row["source"],
            "outputs": [row["left_text"], row["right_text"]],
        }

    def record(
        self,
        rater: str,
        assignment: int,
        key: str,
        *,
        choice: str | None = None,
        ratings: dict[str, Sequence[int]] | None = None,
        seconds: float | None = None,
    ) -> bool:
        """Store one judgment, committed before returning; True when stored, False when this idempotency key
        was stored already (a retry). Raises JudgmentError (with an HTTP status) for anything else."""
        if ratings is None:
            ratings = {}
        if not isinstance(ratings, dict):
            raise JudgmentError("ratings: an object {criterion: [output 1, output 2]}")
        if not isinstance(key, str) or not 8 <= len(key) <= 100:
            raise JudgmentError("key: give an idempotency key of 8 to 100 characters")
        if self.task in ("pairwise", "both") and choice not in CHOICES:
            raise JudgmentError(f"choice: one of {', '.join(CHOICES)} is required")
        if self.task == "rating" and choice is not None:
            raise JudgmentError("choice: this study asks for ratings only")
        wanted = self.criteria if self.task in ("rating", "both") else []
        if sorted(ratings) != sorted(wanted):
            raise JudgmentError(f"ratings: give exactly the criteria {', '.join(wanted) or '(none)'}")
        for criterion, pair in ratings.items():
            if (
                not isinstance(pair, list | tuple)
                or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5 for v in pair)
            ):
                raise JudgmentError(
                    f"ratings.{criterion}: two whole numbers from 1 to 5 (output 1, output 2)"
                )
        with self.lock:
            connection = self.connection
            owner = connection.execute(
                "SELECT rater FROM assignments WHERE assignment_id = ?", (assignment,)
            ).fetchone()
            if owner is None or owner["rater"] != rater:
                raise JudgmentError(f"assignment {assignment} is not one of this rater's items", 403)
            stored = connection.execute(
                "SELECT assignment_id FROM judgments WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if stored is not None:
                if stored["assignment_id"] != assignment:
                    raise JudgmentError("key: this idempotency key was used for another item", 409)
                return False
            try:
                with connection:  # one transaction, committed on leaving
                    connection.execute(
                        "INSERT INTO judgments (assignment_id, idempotency_key, choice, ratings_json, seconds, created) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (assignment, key, choice, json.dumps({c: list(v) for c, v in ratings.items()}), seconds,
                         round(time.time(), 3)),
                    )  # fmt: skip
            except sqlite3.IntegrityError:
                raise JudgmentError(f"assignment {assignment} is answered already", 409) from None
            return True

    def judgments(self) -> list[dict]:
        """Every judgment with its assignment: item_id, rater, left_system, right_system, choice, ratings
        ({criterion: [left, right]}), is_check, created; in the order they were stored."""
        rows = self._query(
            "SELECT a.item_id, a.rater, a.left_system, a.right_system, j.choice, j.ratings_json, j.created, "
            "i.is_check FROM judgments j JOIN assignments a USING (assignment_id) JOIN items i USING (item_id) "
            "ORDER BY j.judgment_id"
        )
        return [
            {
                "item_id": r["item_id"],
                "rater": r["rater"],
                "left_system": r["left_system"],
                "right_system": r["right_system"],
                "choice": r["choice"],
                "ratings": json.loads(r["ratings_json"]),
                "is_check": bool(r["is_check"]),
                "created": r["created"],
            }
            for r in rows
        ]

    def items(self) -> list[dict]:
        """The real items (not the checks): item_id, source, references, outputs {system: text}."""
        outputs: dict[str, dict[str, str]] = {}
        for r in self._query("SELECT item_id, system, text FROM outputs"):
            outputs.setdefault(r["item_id"], {})[r["system"]] = r["text"]
        return [
            {
                "item_id": r["item_id"],
                "source": r["source"],
                "references": json.loads(r["references_json"]),
                "outputs": outputs[r["item_id"]],
            }
            for r in self._query("SELECT * FROM items WHERE is_check = 0 ORDER BY position")
        ]

    def assignments(self, rater: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT a.*, j.judgment_id IS NOT NULL AS answered FROM assignments a LEFT JOIN judgments j USING (assignment_id)"
        if rater is None:
            return self._query(sql + " ORDER BY a.rater, a.position")
        return self._query(sql + " WHERE a.rater = ? ORDER BY a.position", (rater,))
