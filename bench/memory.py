"""Peak memory of a stage, a DuckDB memory limit for benchmarks on a shared machine, and
landing folders that do not double the disk a province-sized world takes."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

from tracecode.db import Database


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRSS:
    """The highest resident set size seen while the block runs (sampled every 20 ms)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRSS:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def gb(self) -> float:
        return self.peak / 1e9


def duckdb_memory_limit(limit: str) -> None:
    """Every database the benchmark opens gets this ``memory_limit`` (the machine is
    shared), unless the caller gives one."""
    original = Database.open.__func__  # type: ignore[attr-defined]

    def open_limited(cls: type[Database], path: Any, **kwargs: Any) -> Database:
        kwargs.setdefault("memory_limit", limit)
        return original(cls, path, **kwargs)

    Database.open = classmethod(open_limited)  # type: ignore[method-assign,assignment]


def link_tree(src: Path, dst: Path) -> None:
    """``src`` into ``dst`` as hard links (regular files, which the landing reader takes;
    a symbolic link out of the landing directory it refuses), copied where the two sit on
    different file systems. A province day is gigabytes of messages."""

    def link(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link, dirs_exist_ok=True)
