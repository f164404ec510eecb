"""The one module that owns DuckDB: opening the file, schema, and every query.

Every statement goes through :meth:`Database.execute` or one of the ``fetch_*`` methods,
which bind parameters by name, log a label with the time taken, materialise the whole
result (a half-fetched DuckDB result blocks the connection's next statement), and turn a
failure into :class:`DatabaseError` naming the label, the SQL file and the SQL.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from tracecode.errors import DatabaseError
from tracecode.settings import EngineSettings

log = logging.getLogger(__name__)

_PARAM = re.compile(r"(?<![\w$])\$([A-Za-z_]\w*)")
_COMMENT = re.compile(r"--[^\n]*")


@cache
def sql_dir() -> Path:
    """The ``sql/`` folder: inside the installed package, or at the repository root."""
    packaged = Path(__file__).parent / "sql"
    if packaged.is_dir():
        return packaged
    repo = Path(__file__).resolve().parents[2] / "sql"
    if repo.is_dir():
        return repo
    raise DatabaseError(f"cannot find the sql/ folder (looked in {packaged} and {repo})")


def read_sql(relative: str) -> str:
    """The text of ``sql/<relative>``."""
    return (sql_dir() / relative).read_text(encoding="utf-8")


def named_params(sql: str) -> set[str]:
    """The ``$name`` parameters a statement uses, outside ``--`` comments (our SQL never
    writes ``$`` or ``--`` in a string literal)."""
    return set(_PARAM.findall(_COMMENT.sub("", sql)))


class Database:
    """A DuckDB file with tracecode's schema applied.

    >>> db = Database.open(Path("tracecode.duckdb"))      # doctest: +SKIP
    >>> db.fetch_rows("count sales", "select count(*) from sales")  # doctest: +SKIP
    [(1234,)]
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self.con = con
        self.path = path

    @classmethod
    def open(
        cls,
        path: Path | None,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
        threads: int | None = None,
        engine: EngineSettings | None = None,
    ) -> Database:
        """Open (creating if absent) and bring the schema and views up to date.

        DuckDB's memory limit, spill folder and threads come from ``engine`` (defaults:
        :class:`EngineSettings`); ``memory_limit`` and ``threads`` override it.
        """
        config = engine_config(path, engine or EngineSettings())
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        target = ":memory:" if path is None else str(path)
        if path is not None and not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(target, read_only=read_only, config=config)
        except duckdb.Error as e:
            raise DatabaseError(_open_failure(target, path, read_only, e)) from e
        db = cls(con, None if path is None else Path(path))
        if not read_only:
            db.apply_schema()
        return db

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the door -----------------------------------------------------------------------

    def _bind(
        self, label: str, sql: str, params: Mapping[str, Any] | None, source: str | None
    ) -> dict[str, Any]:
        wanted = named_params(sql)
        bound = {k: v for k, v in (params or {}).items() if k in wanted}
        missing = wanted - bound.keys()
        if missing:
            raise DatabaseError(
                f"{label}: SQL{f' in {source}' if source else ''} uses parameters "
                f"{sorted(missing)} that were not given"
            )
        return bound

    def _failed(self, label: str, sql: str, source: str | None, e: Exception) -> DatabaseError:
        where = f" (sql/{source})" if source else ""
        return DatabaseError(f"{label}{where} failed: {e}\n--- SQL ---\n{sql.strip()}")

    def _run(
        self, label: str, sql: str, params: Mapping[str, Any] | None, source: str | None
    ) -> duckdb.DuckDBPyConnection:
        bound = self._bind(label, sql, params, source)
        started = time.perf_counter()
        try:
            cur = self.con.execute(sql, bound) if bound else self.con.execute(sql)
        except duckdb.Error as e:
            raise self._failed(label, sql, source, e) from e
        log.debug("%s: %.3fs", label, time.perf_counter() - started)
        return cur

    def execute(
        self,
        label: str,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        source: str | None = None,
    ) -> None:
        """Run a statement whose result is not needed (DDL, INSERT, UPDATE...)."""
        cur = self._run(label, sql, params, source)
        # drain so that the next statement on this connection is never blocked
        cur.fetchall()

    def fetch_rows(
        self, label: str, sql: str, params: Mapping[str, Any] | None = None, *,
        source: str | None = None,
    ) -> list[tuple[Any, ...]]:
        return self._run(label, sql, params, source).fetchall()

    def fetch_one(
        self, label: str, sql: str, params: Mapping[str, Any] | None = None, *,
        source: str | None = None,
    ) -> tuple[Any, ...]:
        rows = self.fetch_rows(label, sql, params, source=source)
        if len(rows) != 1:
            raise DatabaseError(f"{label}: expected one row, got {len(rows)}")
        return rows[0]

    def fetch_arrow(
        self, label: str, sql: str, params: Mapping[str, Any] | None = None, *,
        source: str | None = None,
    ) -> pa.Table:
        bound = self._bind(label, sql, params, source)
        started = time.perf_counter()
        try:
            table = self.con.sql(sql, params=bound or None).to_arrow_table()
        except duckdb.Error as e:
            raise self._failed(label, sql, source, e) from e
        log.debug("%s: %.3fs", label, time.perf_counter() - started)
        return table

    def fetch_polars(
        self, label: str, sql: str, params: Mapping[str, Any] | None = None, *,
        source: str | None = None,
    ) -> pl.DataFrame:
        return pl.from_arrow(self.fetch_arrow(label, sql, params, source=source))  # type: ignore[return-value]

    def run_file(self, relative: str, params: Mapping[str, Any] | None = None) -> None:
        """Run every statement of ``sql/<relative>`` (statements end with ``;``)."""
        text = read_sql(relative)
        for i, stmt in enumerate(split_statements(text), 1):
            self.execute(f"{relative}#{i}", stmt, params, source=relative)

    def register(self, name: str, table: pa.Table) -> None:
        """Expose an Arrow table to SQL under ``name`` (replacing any earlier one)."""
        self.con.register(name, table)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def copy_to_parquet(self, label: str, sql: str, path: Path) -> None:
        """Write a query's result to a Parquet file, streamed (never whole in memory)."""
        started = time.perf_counter()
        try:
            self.con.sql(sql).to_parquet(str(path))
        except duckdb.Error as e:
            raise self._failed(label, sql, None, e) from e
        log.debug("%s: %.3fs", label, time.perf_counter() - started)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: a crash or error inside leaves the database as it was."""
        self.execute("begin", "begin transaction")
        try:
            yield
        except BaseException:
            self.con.execute("rollback")
            raise
        self.execute("commit", "commit")

    # -- schema ---------------------------------------------------------------------------

    def apply_schema(self) -> None:
        """Create missing tables (sql/schema) and (re)create every view (sql/views).

        Skipped when the file already carries the digest of these very SQL files, so that
        opening a database costs one query, not forty.
        """
        digest = schema_digest()
        (known,) = self.fetch_one(
            "schema digest known",
            """select count(*) from duckdb_tables()
               where table_name = 'schema_digest' and schema_name = 'main'
                 and database_name = current_database()""",
        )
        if known and self.fetch_rows("schema digest", "select digest from schema_digest") == [
            (digest,)
        ]:
            return
        for folder in ("schema", "views"):
            for path in sorted((sql_dir() / folder).glob("*.sql")):
                self.run_file(f"{folder}/{path.name}")
        self.execute("record schema digest",
                     "create or replace table schema_digest as select $digest as digest",
                     {"digest": digest})


def engine_config(path: Path | None, engine: EngineSettings) -> dict[str, Any]:
    """DuckDB's config for a database file: an explicit memory limit (60% of the
    machine's memory unless set) and a spill folder beside the file (unless set)."""
    config: dict[str, Any] = {"memory_limit": engine.memory_limit or _share_of_memory(0.6)}
    if engine.temp_directory:
        config["temp_directory"] = engine.temp_directory
    elif path is not None:
        config["temp_directory"] = str(Path(path).with_name(Path(path).name + ".tmp"))
    if engine.threads:
        config["threads"] = engine.threads
    return config


def _share_of_memory(share: float) -> str:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{int(total * share / 2**20)}MiB"


@cache
def schema_digest() -> str:
    """SHA-256 of every schema and view file, in the order they are applied."""
    h = hashlib.sha256()
    for folder in ("schema", "views"):
        for path in sorted((sql_dir() / folder).glob("*.sql")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def split_statements(text: str) -> list[str]:
    """Split a .sql file on ``;`` at line ends; our SQL keeps ``;`` out of literals."""
    parts = re.split(r";\s*(?:\n|$)", text)
    return [p.strip() for p in parts if _has_code(p)]


def _has_code(chunk: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in chunk.splitlines())


def snapshot_path(db_path: Path) -> Path:
    """The read-only snapshot investigators query, published beside the database by each
    run when it finishes (``tracecode.duckdb`` -> ``tracecode.snapshot.duckdb``)."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.stem + ".snapshot" + db_path.suffix)


def publish_snapshot(db: Database) -> Path:
    """Publish a consistent read-only copy of ``db`` at :func:`snapshot_path`.

    The caller holds the run lock and has committed: a checkpoint writes everything into
    the file, the copy goes to a temp name beside the target and is renamed over it, so a
    reader sees the previous snapshot or the new one whole. A reader that has the old one
    open keeps reading it: readers and the batch never wait on each other.
    """
    if db.path is None:
        raise DatabaseError("an in-memory database has no snapshot")
    target = snapshot_path(db.path)
    for left in target.parent.glob(f".{target.name}.*.tmp"):
        left.unlink()  # a copy a killed run left (the lock says no other run is copying)
    db.execute("checkpoint before snapshot", "force checkpoint")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(db.path, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("snapshot: published %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target


def _open_failure(target: str, path: Path | None, read_only: bool, e: Exception) -> str:
    """Why a file could not be opened, and what to do: only naming a snapshot that exists."""
    text = f"cannot open database {target}: {e}."
    if path is None or "lock" not in str(e).lower():
        return text
    snapshot = snapshot_path(path)
    if path == snapshot:
        return text + " The snapshot is being replaced or is held by a writer; try again."
    hint = (f" Investigators should query the read-only snapshot {snapshot}, which every run"
            " publishes when it finishes."
            if snapshot.exists() else
            " No run has published a read-only snapshot yet; it appears as "
            f"{snapshot.name} when the next run finishes.")
    who = ("a tracecode run or another DuckDB client holds it for writing"
           if read_only else "another process has it open (a run, or a reader of the live "
           "file)")
    return f"{text} {who[0].upper()}{who[1:]}: wait for it to finish.{hint}"
