"""One run at a time per database: an explicit lock file beside it.

``tracecode.duckdb.lock`` holds who runs (pid, host, run id, since when) as JSON, and the
holder keeps an exclusive ``flock`` on it for the whole run. The kernel drops that lock
when the process dies, however it dies (SIGKILL included), so a lock left by a dead run
never blocks the next one: the file's text then only tells who crashed.

>>> with RunLock.acquire(Path("tracecode.duckdb"), "R1", wait_seconds=60):  # doctest: +SKIP
...     ...  # the run
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tracecode.errors import RunLockedError

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2


def lock_path(db_path: Path) -> Path:
    """``tracecode.duckdb`` -> ``tracecode.duckdb.lock``."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.name + ".lock")


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the lock, as written in the lock file."""

    pid: int
    host: str
    run_id: str
    started_at: str

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host}) since {self.started_at}"

    def is_dead(self) -> bool:
        """True when the holder is a process of this host that no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def read_holder(db_path: Path) -> Holder | None:
    """What the lock file says, or None when there is none or it is empty."""
    try:
        text = lock_path(db_path).read_text(encoding="utf-8")
        return Holder(**json.loads(text)) if text.strip() else None
    except (FileNotFoundError, ValueError, TypeError):
        return None


class RunLock:
    """The exclusive right to write one database, held for a whole run."""

    def __init__(self, db_path: Path, fd: int, holder: Holder) -> None:
        self.db_path = Path(db_path)
        self.fd = fd
        self.holder = holder

    @classmethod
    def acquire(cls, db_path: Path, run_id: str, *, wait_seconds: float = 0) -> RunLock:
        """Take the lock, waiting up to ``wait_seconds`` for a running holder to finish;
        raise :class:`RunLockedError` naming the holder when it does not."""
        path = lock_path(db_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(wait_seconds, 0)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_holder(db_path)
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RunLockedError(_refusal(db_path, holder, wait_seconds)) from None
                if not announced:
                    log.info("waiting up to %.0fs for %s to finish", wait_seconds,
                             holder.describe() if holder else "another run")
                    announced = True
                time.sleep(POLL_SECONDS)
        stale = read_holder(db_path)
        if stale is not None:
            # the lock was free, so its last holder is gone without releasing it
            log.warning("lock %s was left by %s, which ended without releasing it%s; "
                        "taking it over", path, stale.describe(),
                        " (its process is dead)" if stale.is_dead() else "")
        holder = Holder(os.getpid(), socket.gethostname(), run_id,
                        datetime.now().isoformat(timespec="seconds"))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        os.fsync(fd)
        return cls(db_path, fd, holder)

    def release(self) -> None:
        """Empty the lock file (nobody holds it) and let go."""
        if self.fd < 0:
            return
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _refusal(db_path: Path, holder: Holder | None, wait_seconds: float) -> str:
    who = holder.describe() if holder else "another run (it has not written its name yet)"
    waited = f"after waiting {wait_seconds:g}s " if wait_seconds > 0 else ""
    return (
        f"database {db_path} is in use {waited}by {who}; lock file {lock_path(db_path)}. "
        "Only one run may write a database at a time: let that run finish, or pass "
        "--wait SECONDS to wait for it."
    )
