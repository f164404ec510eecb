"""Landing days: uploads delivered one folder a day, ``LANDING/messages/YYYY-MM-DD/``.

A daily run ingests whatever is new anywhere under ``messages/`` (a late file in an old
day's folder included). A backfill runs the day folders of a date range one by one, in
date order, each as a run of its own; files outside day folders are not part of any day.

>>> landing_days(Path("sample_data"), date(2025, 11, 2), date(2025, 11, 3))  # doctest: +SKIP
[datetime.date(2025, 11, 2), datetime.date(2025, 11, 3)]
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from tracecode.errors import InputError


def day_of(rel: str) -> date | None:
    """The day of a message file from its first folder (``2025-11-02/part-0.jsonl``)."""
    head = rel.split("/", 1)[0]
    if "/" not in rel or len(head) != 10:
        return None
    try:
        return date.fromisoformat(head)
    except ValueError:
        return None


def landing_days(landing: Path, first: date | None = None, last: date | None = None) -> list[date]:
    """The day folders under ``LANDING/messages`` within ``first..last`` (inclusive)."""
    root = Path(landing) / "messages"
    if not root.is_dir():
        raise InputError(f"{root} does not exist: a landing directory holds messages/")
    days = sorted(d for p in root.iterdir() if p.is_dir() and (d := day_of(p.name + "/x")))
    return [d for d in days if (first is None or d >= first) and (last is None or d <= last)]


def only_day(day: date) -> Callable[[str], bool]:
    """A file selection for :func:`tracecode.ingest.ingest_messages`: that day's folder."""
    return lambda rel: day_of(rel) == day


def parse_day(text: str | date, what: str = "day") -> date:
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(text)
    except ValueError as e:
        raise InputError(f"{what} must be YYYY-MM-DD, got {text!r}") from e
