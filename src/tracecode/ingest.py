"""Ingest a landing directory: reference CSVs and NHSA upload messages into DuckDB.

Messages are read as raw lines in large blocks (numpy finds the newlines, Arrow carries
the bytes without copying) and parsed, validated and typed by DuckDB's JSON functions in
``sql/ingest/parse_lines.sql``: no Python runs per line. Files are merged in groups, each
group in one transaction together with its entries in the file registry, so a crash
leaves whole files in or out and a re-run finishes the job.

Lines of a rare, non-spec shape (batch messages, upper-case keys, codes outside
``drugtracinfo``...) are rewritten by :mod:`tracecode.shapes` and parsed a second time.

For every file: lines read = records stored + records replaced + lines quarantined, where
a batch line counts once (stored when any of its records is current) and its records are
counted in ``batch_records``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from tracecode import codes, message_files, message_lines, shapes
from tracecode.db import Database, read_sql
from tracecode.message_files import MESSAGE_SUFFIXES, FileNotice
from tracecode.settings import IngestSettings

log = logging.getLogger(__name__)

__all__ = ["MESSAGE_SUFFIXES", "FileStats", "IngestResult", "ingest_messages"]

BLOCK_BYTES = 64 << 20
GROUP_BYTES = 1 << 30


# -- results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStats:
    path: str
    lines_read: int
    records_stored: int
    records_replaced: int
    lines_quarantined: int
    # records stored from this file's batch lines (each such line counts once above)
    batch_records: int = 0

    def balanced(self) -> bool:
        return self.lines_read == (
            self.records_stored + self.records_replaced + self.lines_quarantined
        )


@dataclass(frozen=True)
class IngestResult:
    files: tuple[FileStats, ...] = ()
    files_skipped: int = 0
    # stored records of earlier runs that a line of this run replaced
    earlier_records_replaced: int = 0
    records_retracted: int = 0
    codes_stored: int = 0
    # records kept beside another record under the same key (a reused fixmedins_bchno)
    key_collisions: int = 0
    seconds: float = 0.0
    # files refused, changed or newly disappeared (message_files.plan), new or noticed
    # before; and how many files of each kind there are now
    notices: tuple[FileNotice, ...] = ()
    notice_counts: dict[str, int] = field(default_factory=dict)

    @property
    def batch_records(self) -> int:
        return sum(f.batch_records for f in self.files)

    @property
    def lines_read(self) -> int:
        return sum(f.lines_read for f in self.files)

    @property
    def records_stored(self) -> int:
        return sum(f.records_stored for f in self.files)

    @property
    def records_replaced(self) -> int:
        return sum(f.records_replaced for f in self.files)

    @property
    def lines_quarantined(self) -> int:
        return sum(f.lines_quarantined for f in self.files)


# -- message files ----------------------------------------------------------------------


_PlannedFile = message_files.MessageFile


@dataclass
class _Group:
    files: list[_PlannedFile] = field(default_factory=list)
    size: int = 0


def discover_message_files(landing: Path) -> list[tuple[str, Path]]:
    """Message files under ``LANDING/messages`` at any depth, by relative path."""
    found, _refused = message_files.discover(landing)
    return [(f.rel, f.path) for f in found]


def plan_message_files(
    db: Database, landing: Path, select: Callable[[str], bool] | None = None
) -> message_files.Plan:
    """Which files are new (of those ``select`` keeps); which registered ones changed or
    disappeared (reported, not fatal); which entries are refused (see ``message_files``)."""
    return message_files.plan(db, landing, select)


def ingest_messages(
    db: Database,
    landing: Path,
    run_id: str,
    *,
    block_bytes: int = BLOCK_BYTES,
    group_bytes: int = GROUP_BYTES,
    settings: IngestSettings | None = None,
    select: Callable[[str], bool] | None = None,
) -> IngestResult:
    """Ingest every message file under ``LANDING/messages`` not ingested before (of those
    ``select`` keeps, e.g. one day's folder)."""
    started = time.perf_counter()
    plan = plan_message_files(db, landing, select)
    message_files.record_plan(db, plan, run_id)
    groups: list[_Group] = []
    for planned in plan.new:
        if not groups or groups[-1].size >= group_bytes:
            groups.append(_Group())
        groups[-1].files.append(planned)
        groups[-1].size += planned.size

    all_stats: list[FileStats] = []
    earlier_replaced = 0
    codes_stored = 0
    collisions = 0
    for group in groups:
        stats, replaced, n_codes, n_collisions = _ingest_group(
            db, group.files, run_id, block_bytes, settings or IngestSettings())
        all_stats.extend(stats)
        earlier_replaced += replaced
        codes_stored += n_codes
        collisions += n_collisions
    retracted = _count_retracted(db, run_id) if plan.new else 0
    result = IngestResult(
        files=tuple(all_stats),
        files_skipped=plan.skipped,
        earlier_records_replaced=earlier_replaced,
        records_retracted=retracted,
        codes_stored=codes_stored,
        key_collisions=collisions,
        seconds=time.perf_counter() - started,
        notices=tuple(plan.notices),
        notice_counts=plan.counts,
    )
    log.info(
        "ingest: %d new files (%d already in), %d lines read, %d stored, %d replaced, "
        "%d quarantined, %d codes, %d retracted, %d key collisions, %.1fs",
        len(result.files), plan.skipped, result.lines_read, result.records_stored,
        result.records_replaced, result.lines_quarantined, codes_stored, retracted,
        collisions, result.seconds,
    )
    if plan.counts:
        log.warning("ingest: %s", ", ".join(
            f"{n} file(s) {kind}" for kind, n in sorted(result.notice_counts.items())))
    return result


def _ingest_group(
    db: Database, files: Sequence[_PlannedFile], run_id: str, block_bytes: int,
    settings: IngestSettings,
) -> tuple[list[FileStats], int, int, int]:
    parse_sql = read_sql("ingest/parse_lines.sql")
    with db.transaction():
        _create_stage(db, settings)
        file_ids = np.asarray([r[0] for r in db.fetch_rows(
            "next file ids", "select nextval('file_id_seq') from range($n)", {"n": len(files)}
        )], dtype=np.int64)
        rels = pa.array([f.rel for f in files], pa.string())
        packer = message_lines.LinePacker(block_bytes)

        def parse_packed() -> None:
            batch = packer.take(file_ids, rels)
            if batch is None:
                return
            db.register("batch_lines", batch)
            db.execute(
                f"parse {batch.num_rows} lines",
                "insert into stage_parsed by name " + parse_sql,
                {"run_id": run_id},
                source="ingest/parse_lines.sql",
            )
            db.unregister("batch_lines")

        reads: list[message_lines.FileRead] = []
        early = message_lines.read_ahead(files)
        for i, (planned, ahead) in enumerate(zip(files, early, strict=True)):
            read = message_lines.FileRead()
            for first_line, block, n_lines in message_lines.read_lines(
                planned, block_bytes, read, ahead
            ):
                packer.add(i, first_line, block, n_lines)
                if packer.full():
                    parse_packed()
            if read.error is not None:
                _quarantine_unreadable(db, planned.rel, read, run_id)
            reads.append(read)
        parse_packed()
        shapes.reshape_stage(db, parse_sql, run_id)
        lines_read = {f.rel: r.lines for f, r in zip(files, reads, strict=True)}
        _split_stage(db)
        _stage_code_map(db)
        db.run_file("ingest/merge_stage.sql", {"run_id": run_id})
        stats = _file_stats(db, files, lines_read)
        earlier_replaced, n_codes, n_collisions = db.fetch_one(
            "merge counts",
            """select count(*) filter (where wins and rival_rec_id is not null),
                      coalesce(sum(n_codes), 0),
                      (select key_collisions from stage_collisions)
               from stage_decided""",
        )
        db.execute(
            "quarantine lines",
            """insert into quarantine
               select 'messages/' || src_file, line_no, reason, raw_text, $run_id
               from stage_bad""",
            {"run_id": run_id},
        )
        _register_files(db, files, file_ids, reads, stats, run_id)
        for st in stats:
            if not st.balanced():
                raise AssertionError(f"line accounting does not add up for {st}")
        _drop_stage(db)
    return stats, int(earlier_replaced), int(n_codes), int(n_collisions)


def _register_files(
    db: Database, files: Sequence[_PlannedFile], file_ids: np.ndarray,
    reads: Sequence[message_lines.FileRead], stats: Sequence[FileStats], run_id: str,
) -> None:
    """The group's files in the registry, in one insert."""
    db.register("registry_arrow", pa.table({
        "file_id": pa.array(file_ids, pa.int32()),
        "path": [f.rel for f in files],
        "sha256": [r.sha256 for r in reads],
        "size_bytes": pa.array([r.size for r in reads], pa.int64()),
        "mtime_ns": pa.array([f.mtime_ns for f in files], pa.int64()),
        "ctime_ns": pa.array([f.ctime_ns for f in files], pa.int64()),
        "inode": pa.array([f.inode for f in files], pa.int64()),
        "lines_read": pa.array([s.lines_read for s in stats], pa.int64()),
        "records_stored": pa.array([s.records_stored for s in stats], pa.int64()),
        "records_replaced": pa.array([s.records_replaced for s in stats], pa.int64()),
        "lines_quarantined": pa.array([s.lines_quarantined for s in stats], pa.int64()),
        "batch_records": pa.array([s.batch_records for s in stats], pa.int64()),
    }))
    db.execute(
        "register files",
        """insert into ingested_files by name
           select *, $run_id as run_id, $now as ingested_at from registry_arrow""",
        {"run_id": run_id, "now": datetime.now()},
    )
    db.unregister("registry_arrow")


def _create_stage(db: Database, settings: IngestSettings) -> None:
    db.run_file("ingest/parse_macros.sql")
    db.execute(
        "ingest bounds",
        """create or replace temp table ingest_bounds as
           select $earliest::timestamp as earliest_time,
                  $now::timestamp + to_hours($future) as latest_inf_time,
                  $future::integer as future_tolerance_hours,
                  $after::integer as event_after_upload_hours,
                  $offset::integer as local_offset_minutes,
                  $max_count::double as max_count,
                  $max_price::double as max_price,
                  $earliest_date::date as earliest_date,
                  $latest_date::date as latest_date""",
        {
            "earliest": settings.earliest_time, "now": datetime.now(),
            "future": settings.future_tolerance_hours,
            "after": settings.event_after_upload_hours,
            "offset": settings.local_offset_minutes, "max_count": settings.max_count,
            "max_price": settings.max_price, "earliest_date": settings.earliest_date,
            "latest_date": settings.latest_date,
        },
    )
    db.execute(
        "stage table",
        """create or replace temp table stage_parsed as
           select null::bigint as line_no, null::varchar as raw_text, null::varchar as reason,
                  null::boolean as needs_shape,
                  * exclude (is_current, line_no, superseded_run_id), null::varchar[] as codes
           from records limit 0""",
    )


def _split_stage(db: Database) -> None:
    # rec_id: one number per record in ingest order, above every stored one (a batch line
    # yields several records, so the line alone cannot name them)
    (base,) = db.fetch_one("last rec_id", "select coalesce(max(rec_id), 0) from records")
    # (file, line, element) numbered without sorting the stage: each file takes a block of
    # (its last line + 1) * (the group's largest batch + 1) ids
    db.execute(
        "stage valid lines",
        """create or replace temp table stage_records as
           with per_file as (
               select src_file, max(line_no) + 1 as n from stage_parsed group by src_file
           ),
           offsets as (
               select src_file,
                      coalesce(sum(n) over (order by src_file rows between unbounded preceding
                                                              and 1 preceding), 0) as before
               from per_file
           ),
           width as (select coalesce(max(elem_no), 0) + 1 as k from stage_parsed)
           select p.* exclude (raw_text, reason, needs_shape)
                      replace (($base + (o.before + p.line_no) * w.k + p.elem_no)::bigint
                               as rec_id)
           from stage_parsed as p
           join offsets as o using (src_file)
           cross join width as w
           where p.reason is null""",
        {"base": base + 1},
    )
    db.execute(
        "stage bad lines",
        """create or replace temp table stage_bad as
           select src_file, line_no, reason, raw_text from stage_parsed where reason is not null""",
    )
    db.execute("drop parsed stage", "drop table stage_parsed")


def _stage_code_map(db: Database) -> None:
    """Classify the few codes that are not the 20-digit form (GS1 or invalid) in Python."""
    rows = db.fetch_rows(
        "odd codes",
        """select distinct c
           from (select unnest(codes) as c from stage_records where n_codes > 0)
           where not regexp_full_match(c, '8[0-9]{19}')""",
    )
    db.register("code_map_arrow", codes.code_map(r[0] for r in rows))
    db.execute("code map", "create or replace temp table code_map as select * from code_map_arrow")
    db.unregister("code_map_arrow")


def _file_stats(
    db: Database, files: Sequence[_PlannedFile], lines_read: dict[str, int]
) -> list[FileStats]:
    # a line counts once: stored when any of its records (batch elements) won
    counts = {
        row[0]: row[1:]
        for row in db.fetch_rows(
            "per-file counts",
            """select src_file,
                      sum(stored)::bigint, sum(replaced)::bigint, sum(quarantined)::bigint,
                      sum(batch_records)::bigint
               from (
                   select src_file, bool_or(wins)::int as stored,
                          (not bool_or(wins))::int as replaced, 0 as quarantined,
                          count(*) filter (where wins and elem_no > 0) as batch_records
                   from stage_decided
                   group by src_file, line_no
                   union all
                   select src_file, 0, 0, 1, 0 from stage_bad
               )
               group by src_file""",
        )
    }
    return [
        FileStats(f.rel, lines_read[f.rel], *(int(x) for x in counts.get(f.rel, (0, 0, 0, 0))))
        for f in files
    ]


def _quarantine_unreadable(
    db: Database, rel: str, read: message_lines.FileRead, run_id: str
) -> None:
    """A file that breaks off (truncated gzip, I/O error) keeps the lines before the break
    and quarantines the rest as one more line, with what was left of it."""
    read.lines += 1
    db.execute(
        "quarantine unreadable rest",
        """insert into stage_parsed (src_file, line_no, reason, raw_text)
           values ($rel, $line, $reason, $raw)""",
        {"rel": rel, "line": read.lines, "reason": read.error,
         "raw": read.tail.decode("utf-8", errors="backslashreplace") or None},
    )


def _drop_stage(db: Database) -> None:
    for table in ("stage_records", "stage_bad", "stage_keys", "stored_rivals",
                  "stage_decided", "stage_collisions", "code_map", "ingest_bounds"):
        db.execute(f"drop {table}", f"drop table if exists {table}")


def _count_retracted(db: Database, run_id: str) -> int:
    """Stored records (of any run) that a 3507 of this run deletes."""
    (n,) = db.fetch_one(
        "retracted by this run",
        """select count(*)
           from current_records r
           semi join (
               select fixmedins_code, fixmedins_bchno, inv_data_type, inf_time
               from current_records
               where infno = '3507' and run_id = $run_id
           ) d
             on d.fixmedins_code = r.fixmedins_code
            and d.fixmedins_bchno = r.fixmedins_bchno
            and d.inv_data_type = case r.infno when '3501' then '1' when '3502' then '2'
                                    when '3503' then '3' when '3504' then '3' else '4' end
            and d.inf_time >= r.inf_time
           where r.infno <> '3507'""",
        {"run_id": run_id},
    )
    return int(n)
