"""The statements that dominate a stage: tracecode.db logs each statement's label and
seconds at DEBUG; this gathers them (numbers in labels folded: "parse 12,345 lines")."""

from __future__ import annotations

import logging
import re
from collections import Counter

_TIMED = re.compile(r"(.*): ([0-9.]+)s$")
_NUMBER = re.compile(r"(?<![#\w/])\d[\d,]*(?!\w)")


class StatementTimes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        m = _TIMED.match(record.getMessage())
        if m:
            label = _NUMBER.sub("N", m.group(1))
            self.seconds[label] += float(m.group(2))
            self.calls[label] += 1

    def install(self) -> StatementTimes:
        db_log = logging.getLogger("tracecode.db")
        db_log.setLevel(logging.DEBUG)
        db_log.addHandler(self)
        return self

    def print_top(self, n: int) -> None:
        total = sum(self.seconds.values())
        print(f"\nslowest statements ({total:.1f} s in SQL in all)")
        print("| statement | calls | s | share |\n|---|--:|--:|--:|")
        for label, s in self.seconds.most_common(n):
            print(f"| {label} | {self.calls[label]} | {s:.2f} | {s / total:.0%} |")

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()
