"""Investigators' decisions on leads: an append-only audit trail (``lead_reviews``).

Decisions arrive one at a time (``tracecode mark``) or as an edited workbook or CSV
(``tracecode review import``), whose lead sheet carries 核查结论 / 核查说明 / 核查人. Every
decision is a new row with who decided, when, and the evidence records the lead had then;
a lead's status is its latest decision (``sql/review/apply.sql``), so a dismissed lead
stays out of the lists until a record it has not been judged on arrives (``reopened``).

>>> record_decisions(db, [Decision("L0123456789abcdef", "dismissed", "药店已说明", "张科")],
...                  source="mark")                                   # doctest: +SKIP
RecordResult(recorded=1, unchanged=0)
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa

from tracecode.db import Database
from tracecode.errors import InputError
from tracecode.safe_cells import FORMULA_STARTS

DECISIONS = ("confirmed", "dismissed", "open")
# what the workbook's 核查结论 column offers, and the English words accepted besides
DECISION_ZH = {"confirmed": "属实", "dismissed": "排除", "open": "待核查"}
STATUS_ZH = {**DECISION_ZH, "open": "待核查", "reopened": "重新打开（有新证据）"}
_FROM_TEXT = {**{v: k for k, v in DECISION_ZH.items()}, **{k: k for k in DECISIONS},
              "确认": "confirmed", "不属实": "dismissed", "待查": "open"}

# the lead sheet's review columns, as written by tracecode.workbook and read back here
LEAD_ID_HEADER = "线索编号"
REVIEW_HEADERS = ("核查结论", "核查说明", "核查人")
_ENGLISH_HEADERS = {"lead_id": LEAD_ID_HEADER, "status": "核查结论", "decision": "核查结论",
                    "note": "核查说明", "decided_by": "核查人"}


@dataclass(frozen=True)
class Decision:
    lead_id: str
    status: str        # confirmed | dismissed | open
    note: str = ""
    decided_by: str = ""


@dataclass(frozen=True)
class RecordResult:
    recorded: int      # new rows in lead_reviews
    unchanged: int     # equal to the lead's latest decision: not recorded again


def parse_decision(text: str) -> str:
    """'排除' or 'dismissed' -> 'dismissed'; anything else is an error naming the choices."""
    key = text.strip().lower()
    if key not in _FROM_TEXT:
        choices = "、".join(DECISION_ZH.values()) + " / " + ", ".join(DECISIONS)
        raise InputError(f"unknown decision {text!r}: use one of {choices}")
    return _FROM_TEXT[key]


def record_decisions(db: Database, decisions: list[Decision], *, source: str) -> RecordResult:
    """Append ``decisions`` (all or none: an unknown lead id fails the whole batch) and
    update the leads' status."""
    if not decisions:
        return RecordResult(0, 0)
    known = {r[0] for r in db.fetch_rows("lead ids", "select lead_id from leads")}
    unknown = sorted({d.lead_id for d in decisions} - known)
    if unknown:
        shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise InputError(f"{len(unknown)} lead id(s) not in the database: {shown}. "
                         "Check the file belongs to this database (--db).")
    default_by = _user()
    now = datetime.now()
    db.register("review_batch_arrow", pa.table({
        "ord": list(range(len(decisions))),
        "lead_id": [d.lead_id for d in decisions],
        "status": [d.status for d in decisions],
        "note": [d.note for d in decisions],
        "decided_by": [d.decided_by or default_by for d in decisions],
        "decided_at": pa.array([now] * len(decisions), pa.timestamp("us")),
        "source": [source] * len(decisions),
    }))
    with db.transaction():
        (before,) = db.fetch_one("reviews before", "select count(*) from lead_reviews")
        db.execute("review batch", "create or replace temp table review_batch as "
                                   "select * from review_batch_arrow")
        db.run_file("review/record.sql")
        (after,) = db.fetch_one("reviews after", "select count(*) from lead_reviews")
        apply_reviews(db)
        db.execute("drop review batch", "drop table review_batch")
    db.unregister("review_batch_arrow")
    recorded = int(after - before)
    return RecordResult(recorded, len(decisions) - recorded)


def apply_reviews(db: Database) -> None:
    """Set every lead's status from its latest decision (open, confirmed, dismissed or
    reopened)."""
    db.run_file("review/apply.sql")


def read_review_file(path: Path) -> list[Decision]:
    """The decisions in an edited ``leads.xlsx`` (sheet 线索) or a CSV with the same
    columns (or lead_id, status, note, decided_by); rows without a 核查结论 are skipped."""
    if not path.is_file():
        raise InputError(f"review file {path} does not exist")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            frame = pl.read_excel(path, sheet_name="线索", infer_schema_length=0)
        except Exception as e:  # fastexcel raises its own types
            raise InputError(f"cannot read sheet 线索 of {path}: {e}") from e
    elif path.suffix.lower() == ".csv":
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    else:
        raise InputError(f"{path}: give the edited leads.xlsx or a .csv")
    frame = frame.rename({c: _ENGLISH_HEADERS.get(c.strip().lstrip("\ufeff"), c.strip())
                          for c in frame.columns})
    missing = [c for c in (LEAD_ID_HEADER, REVIEW_HEADERS[0]) if c not in frame.columns]
    if missing:
        raise InputError(f"{path} has no column {', '.join(missing)}: export the workbook "
                         "with `tracecode export` and fill in 核查结论 on sheet 线索")
    decisions = []
    for row in frame.iter_rows(named=True):
        verdict = _plain(row.get(REVIEW_HEADERS[0]))
        if not verdict:
            continue
        decisions.append(Decision(
            lead_id=_plain(row[LEAD_ID_HEADER]),
            status=parse_decision(verdict),
            note=_plain(row.get(REVIEW_HEADERS[1])),
            decided_by=_plain(row.get(REVIEW_HEADERS[2])),
        ))
    return decisions


def review_history(db: Database, lead_id: str) -> pl.DataFrame:
    return db.fetch_polars(
        "review history",
        """select decided_at, status, decided_by, note, source, evidence_fingerprint,
                  len(evidence_rec_ids) as n_evidence_records
           from lead_reviews where lead_id = $lead_id order by review_id""",
        {"lead_id": lead_id},
    )


def _plain(value: object) -> str:
    """A cell as text, without the quote that neutralised it in a CSV export."""
    text = "" if value is None else str(value).strip()
    if text.startswith("'") and text[1:2] and text[1] in FORMULA_STARTS:
        text = text[1:]
    return text


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
