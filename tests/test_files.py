"""Message files as they really arrive: the bad-input corpus for files, links and special
files, truncated gzip, change detection, and many files packed into one parse.

Every case ends with the per-file accounting checked against the database (lines read =
stored + replaced + quarantined, and those rows really there), and with the number of
lines read checked against an independent count of the file's lines.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import threading
import zlib
from pathlib import Path

import pytest
from landing import Landing
from test_ingest import assert_balanced

from tracecode import message_files, message_lines, pipeline
from tracecode.db import Database
from tracecode.ingest import IngestResult, ingest_messages


def ingest(landing: Landing, tmp_path: Path, run_id: str = "R1") -> IngestResult:
    """Ingest only (no screening): what the corpus tests need, in a fraction of the time."""
    db_path = tmp_path / "db.duckdb"
    _refs, result = pipeline.ingest_stage(db_path, landing.root, run_id)
    assert_balanced(db_path)
    return result


def files(tmp_path: Path) -> dict[str, tuple[int, int, int, int]]:
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        return {r[0]: tuple(r[1:]) for r in db.fetch_rows(
            "registry", """select path, lines_read, records_stored, records_replaced,
                                  lines_quarantined from ingested_files""")}


def quarantine(tmp_path: Path) -> list[tuple[str, int, str, str | None]]:
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        return db.fetch_rows("q", """select src_file, line_no, reason, raw from quarantine
                                     where src_file like 'messages/%' order by all""")


def count_lines(data: bytes) -> int:
    """Lines as the contract reads them: LF, CRLF or a lone CR ends one."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return len(re.findall(rb"\r\n|\r|\n", data)) + (0 if re.search(rb"[\r\n]\Z", data)
                                                     or not data else 1)


def sale_lines(landing: Landing, n: int, prefix: str = "S") -> list[bytes]:
    for i in range(n):
        landing.sale("P44010600001", f"{prefix}{i}", [f"A:{i + 1}"], "2025-11-01 10:00:00",
                     stock=False, file="scratch")
    lines = [json.dumps(m, ensure_ascii=False).encode() for _, m in landing.messages]
    landing.messages.clear()
    return lines


def put(landing: Landing, rel: str, data: bytes) -> Path:
    path = landing.root / "messages" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- the corpus -------------------------------------------------------------------------


def test_every_bad_file_is_accounted_line_by_line(landing: Landing, tmp_path: Path) -> None:
    landing.write()
    good = sale_lines(landing, 4)
    nul, gbk_other, big_other = (sale_lines(landing, 3, p) for p in "UGO")
    rng = random.Random(7)
    gbk = json.loads(good[1])
    gbk["input"]["selinfo"]["psn_name"] = "张三"
    corpus = {
        "empty.jsonl": b"",
        "binary.jsonl": bytes(rng.randrange(256) for _ in range(20_000)),
        "nul.jsonl": nul[0] + b"\n" + nul[1].replace(b'"P440', b'"\x00P440', 1) + b"\n"
                     + b"\x00\x00\x00\n" + nul[2] + b"\n",
        "crlf.jsonl": b"\r\n".join(sale_lines(landing, 4, "R")) + b"\r\n",
        "lone_cr.jsonl": b"\r".join(sale_lines(landing, 3, "C")) + b"\r",
        "bom.jsonl": b"\xef\xbb\xbf" + b"\n".join(sale_lines(landing, 2, "B")) + b"\n",
        "no_final_newline.jsonl": b"\n".join(sale_lines(landing, 2, "N")),
        "gbk.jsonl": json.dumps(gbk, ensure_ascii=False).encode("gbk").replace(
            b'"S1"', b'"G1"') + b"\n" + gbk_other[0] + b"\n",
        "oversized.jsonl": b'{"infno": "3505", "x": "' + b"x" * (10 << 20) + b'"}\n'
                           + b"y" * (10 << 20) + b"\n" + big_other[0] + b"\n",
        "dup/copy_a.jsonl": b"\n".join(good) + b"\n",
        "dup/copy_b.jsonl": b"\n".join(good) + b"\n",
    }
    for rel, data in corpus.items():
        put(landing, rel, data)
    result = ingest(landing, tmp_path)
    got = files(tmp_path)
    assert set(got) == set(corpus)
    for rel, data in corpus.items():
        assert got[rel][0] == count_lines(data), rel
    assert result.files_skipped == 0 and not result.notices
    reasons = {(f.removeprefix("messages/"), line): reason
               for f, line, reason, _ in quarantine(tmp_path)}
    assert got["empty.jsonl"] == (0, 0, 0, 0)
    assert got["binary.jsonl"][1:3] == (0, 0)
    assert got["nul.jsonl"][1:] == (2, 0, 2)  # the sales without a NUL are stored
    assert got["crlf.jsonl"] == (4, 4, 0, 0)
    assert got["lone_cr.jsonl"] == (3, 3, 0, 0)
    assert got["bom.jsonl"] == (2, 2, 0, 0)
    assert got["no_final_newline.jsonl"] == (2, 2, 0, 0)
    assert reasons[("gbk.jsonl", 1)] == "not valid UTF-8"
    assert got["gbk.jsonl"] == (2, 1, 0, 1)
    assert got["oversized.jsonl"] == (3, 1, 0, 2)
    # the same lines under two names: stored once, the other copy counted as replaced
    assert got["dup/copy_a.jsonl"][1] + got["dup/copy_b.jsonl"][1] == 4
    assert got["dup/copy_a.jsonl"][2] + got["dup/copy_b.jsonl"][2] == 4


def test_a_gbk_line_keeps_its_bytes_readable_in_the_quarantine(
    landing: Landing, tmp_path: Path
) -> None:
    landing.write()
    put(landing, "gbk.jsonl", '{"psn_name": "张三"}\n'.encode("gbk"))
    ingest(landing, tmp_path)
    [(_, _, reason, raw)] = quarantine(tmp_path)
    assert reason == "not valid UTF-8" and raw == '{"psn_name": "\\xd5\\xc5\\xc8\\xfd"}'


# -- gzip -------------------------------------------------------------------------------


def complete_lines_of(broken_gz: bytes) -> int:
    text = zlib.decompressobj(wbits=31).decompress(broken_gz)
    return text.count(b"\n")


def test_a_truncated_gzip_keeps_every_complete_line_before_the_break(
    landing: Landing, tmp_path: Path
) -> None:
    landing.write()
    data = gzip.compress(b"\n".join(sale_lines(landing, 200)) + b"\n", mtime=0)
    broken = data[: len(data) * 2 // 3]
    put(landing, "day1.jsonl.gz", broken)
    kept = complete_lines_of(broken)
    assert 50 < kept < 200
    ingest(landing, tmp_path)
    assert files(tmp_path)["day1.jsonl.gz"] == (kept + 1, kept, 0, 1)
    [(_, line, reason, raw)] = quarantine(tmp_path)
    assert (line, reason) == (kept + 1, f"truncated gzip after line {kept}")
    assert raw  # what was left of the broken line


def test_a_corrupt_or_fake_gzip_keeps_what_came_before(landing: Landing, tmp_path: Path):
    landing.write()
    data = bytearray(gzip.compress(b"\n".join(sale_lines(landing, 300)) + b"\n", mtime=0))
    data[len(data) // 2] ^= 0xFF
    put(landing, "corrupt.jsonl.gz", bytes(data))
    put(landing, "fake.jsonl.gz", b'{"infno": "3505"}\n')
    put(landing, "two_members.jsonl.gz",
        gzip.compress(b"\n".join(sale_lines(landing, 2, "M")) + b"\n")
        + gzip.compress(b"\n".join(sale_lines(landing, 3, "K")) + b"\n"))
    ingest(landing, tmp_path)
    got = files(tmp_path)
    reasons = {f: r for f, _, r, _ in quarantine(tmp_path)}
    assert reasons["messages/corrupt.jsonl.gz"].startswith("corrupt gzip")
    assert got["corrupt.jsonl.gz"][1] > 0  # lines before the damage are kept
    assert reasons["messages/fake.jsonl.gz"].startswith("corrupt gzip")
    assert reasons["messages/fake.jsonl.gz"].endswith("after line 0")
    assert got["fake.jsonl.gz"] == (1, 0, 0, 1)
    assert got["two_members.jsonl.gz"] == (5, 5, 0, 0)


def test_a_file_read_ahead_gives_what_streaming_it_gives(
    landing: Landing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing.write()
    gz = gzip.compress(b"\n".join(sale_lines(landing, 200)) + b"\n", mtime=0)
    put(landing, "truncated.jsonl.gz", gz[: len(gz) * 2 // 3])
    damaged = bytearray(gz)
    damaged[len(damaged) // 2] ^= 0xFF
    put(landing, "corrupt.jsonl.gz", bytes(damaged))
    put(landing, "crlf_bom.jsonl", b"\xef\xbb\xbf" + b"\r\n".join(sale_lines(landing, 5, "R")))
    put(landing, "empty.jsonl", b"")
    put(landing, "io_error.jsonl", b"\n".join(sale_lines(landing, 3, "E")) + b"\n")
    real_read = os.read

    def failing_read(fd: int, n: int) -> bytes:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("io_error.jsonl"):
            raise OSError(5, "Input/output error")
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", failing_read)
    early_reads: list[str] = []
    real = message_lines._read_early
    monkeypatch.setattr(message_lines, "_read_early",
                        lambda f: early_reads.append(f.rel) or real(f))

    def registry(db_dir: Path) -> tuple[list[tuple], list[tuple]]:
        db_dir.mkdir()
        ingest(landing, db_dir)
        with Database.open(db_dir / "db.duckdb", read_only=True) as db:
            return (db.fetch_rows("files", """select path, sha256, size_bytes, lines_read,
                                              records_stored, lines_quarantined
                                              from ingested_files order by path"""),
                    quarantine(db_dir))

    ahead = registry(tmp_path / "ahead")
    assert len(early_reads) == 5
    monkeypatch.setattr(message_lines, "AHEAD_FILE_BYTES", -1)  # every file streamed
    streamed = registry(tmp_path / "streamed")
    assert len(early_reads) == 5
    assert ahead == streamed
    reasons = [reason for _, _, reason, _ in ahead[1]]
    for broken in ("corrupt gzip", "truncated gzip", "read error (Input/output error)"):
        assert any(r.startswith(broken) for r in reasons), broken


# -- links and special files ------------------------------------------------------------


def test_links_out_of_the_landing_and_dangling_links_are_refused_not_read(
    landing: Landing, tmp_path: Path
) -> None:
    landing.write()
    outside = tmp_path / "secret.jsonl"
    outside.write_text("top secret\n", encoding="utf-8")
    put(landing, "day1.jsonl", b"\n".join(sale_lines(landing, 2)) + b"\n")
    messages = landing.root / "messages"
    (messages / "out.jsonl").symlink_to(outside)
    (messages / "passwd.jsonl").symlink_to("/etc/passwd")
    (messages / "gone.jsonl").symlink_to(messages / "nowhere.jsonl")
    (messages / "inside.jsonl").symlink_to(messages / "day1.jsonl")
    (messages / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    result = ingest(landing, tmp_path)
    assert set(files(tmp_path)) == {"day1.jsonl", "inside.jsonl"}
    rows = quarantine(tmp_path)
    reasons = {f.removeprefix("messages/"): r for f, line, r, raw in rows if line == 0}
    assert "outside the landing directory" in reasons["out.jsonl"]
    assert "outside the landing directory" in reasons["passwd.jsonl"]
    assert reasons["gone.jsonl"].startswith("dangling symbolic link")
    assert "not followed" in reasons["elsewhere"]
    assert not any("secret" in (raw or "") or "root:" in (raw or "") for *_, raw in rows)
    assert result.notice_counts == {"refused": 4}
    # the next run notices them again but quarantines nothing twice
    again = ingest(landing, tmp_path, "R2")
    assert again.notice_counts == {"refused": 4} and not any(n.new for n in again.notices)
    assert quarantine(tmp_path) == rows


def test_a_fifo_is_never_opened(landing: Landing, tmp_path: Path) -> None:
    landing.write()
    os.mkfifo(landing.root / "messages" / "pipe.jsonl")
    put(landing, "day1.jsonl", b"\n".join(sale_lines(landing, 1)) + b"\n")
    done: list[IngestResult] = []
    worker = threading.Thread(target=lambda: done.append(ingest(landing, tmp_path)))
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "ingest hangs on a FIFO"
    assert set(files(tmp_path)) == {"day1.jsonl"}
    [(src, _, reason, _)] = [q for q in quarantine(tmp_path) if q[1] == 0]
    assert src == "messages/pipe.jsonl" and reason.startswith("FIFO")


# -- change detection -------------------------------------------------------------------


def test_a_same_size_edit_with_the_mtime_kept_is_noticed_without_blocking_new_files(
    landing: Landing, tmp_path: Path
) -> None:
    landing.write()
    path = put(landing, "day1.jsonl", b"\n".join(sale_lines(landing, 2)) + b"\n")
    ingest(landing, tmp_path)
    st = path.stat()
    path.write_bytes(path.read_bytes().replace(b'"S1"', b'"S7"'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    put(landing, "day2.jsonl", b"\n".join(sale_lines(landing, 1, "T")) + b"\n")
    result = ingest(landing, tmp_path, "R2")
    assert [f.path for f in result.files] == ["day2.jsonl"]
    [notice] = result.notices
    assert (notice.path, notice.kind, notice.new) == ("day1.jsonl", "changed", True)
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("q", "select path, kind, run_id from file_notices") == [
            ("day1.jsonl", "changed", "R2")]
    again = ingest(landing, tmp_path, "R3")
    assert [(n.kind, n.new) for n in again.notices] == [("changed", False)]


def test_a_file_that_disappeared_is_reported_and_its_records_stay(
    landing: Landing, tmp_path: Path
) -> None:
    landing.write()
    put(landing, "day1.jsonl", b"\n".join(sale_lines(landing, 2)) + b"\n").unlink()
    put(landing, "day2.jsonl", b"\n".join(sale_lines(landing, 2, "D")) + b"\n")
    ingest(landing, tmp_path)
    (landing.root / "messages" / "day2.jsonl").unlink()
    result = ingest(landing, tmp_path, "R2")
    assert [(n.path, n.kind) for n in result.notices] == [("day2.jsonl", "disappeared")]
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        assert db.fetch_rows("q", "select count(*) from records") == [(2,)]


def test_only_files_whose_quick_check_fails_are_hashed_again(
    landing: Landing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing.write()
    for day in range(5):
        put(landing, f"d{day}.jsonl", b"\n".join(sale_lines(landing, 1, f"H{day}")) + b"\n")
    ingest(landing, tmp_path)
    hashed: list[Path] = []
    real = message_files.file_sha256
    monkeypatch.setattr(message_files, "file_sha256", lambda p: hashed.append(p) or real(p))
    path = landing.root / "messages" / "d3.jsonl"
    path.write_bytes(path.read_bytes())  # touched, same content
    result = ingest(landing, tmp_path, "R2")
    assert [p.name for p in hashed] == ["d3.jsonl"]
    assert result.files_skipped == 5 and not result.notices
    hashed.clear()
    assert ingest(landing, tmp_path, "R3").files_skipped == 5
    assert hashed == []  # the touched file's new stat was recorded


def test_a_changed_file_shows_in_run_summary_json(landing: Landing, tmp_path: Path) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.write()
    pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    with open(landing.root / "messages" / "day1.jsonl", "a", encoding="utf-8") as fh:
        fh.write("{}\n")
    landing.sale("P44010600002", "S2", ["B:1"], "2025-11-02 10:00:00", file="day2.jsonl")
    Landing(landing.root, messages=[m for m in landing.messages if m[0] == "day2.jsonl"]
            ).write()
    (landing.root / "messages" / "gone.jsonl").symlink_to("nowhere.jsonl")
    summary = pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    assert summary.files_ingested == 1
    written = json.loads((tmp_path / "out" / "run_summary.json").read_text(encoding="utf-8"))
    assert written["files_noticed"] == {"changed": 1, "refused": 1}
    assert [(n["path"], n["kind"]) for n in written["file_notices"]] == [
        ("gone.jsonl", "refused"), ("day1.jsonl", "changed")]
    exported = (tmp_path / "out" / "quarantine.csv").read_text(encoding="utf-8-sig")
    assert "messages/gone.jsonl,0,dangling symbolic link" in exported


# -- many files, one parse --------------------------------------------------------------


def test_many_small_files_pack_into_few_parses_with_exact_line_numbers(
    landing: Landing, tmp_path: Path
) -> None:
    landing.write()
    lines = sale_lines(landing, 120)
    for k in range(40):  # 40 files of 3 lines; a 2 kB block holds several files
        put(landing, f"2025-11-01/P{k:05d}.jsonl", b"\n".join(lines[3 * k: 3 * k + 3]) + b"\n")
    put(landing, "2025-11-01/big.jsonl", b"junk\n" * 1000)
    with Database.open(tmp_path / "db.duckdb") as db:
        from tracecode import reference
        reference.load_reference(db, landing.root, "R1")
        parses: list[str] = []
        real = db.execute
        db.execute = lambda label, *a, **k: (parses.append(label)  # type: ignore[method-assign]
                                             if label.startswith("parse") else None,
                                             real(label, *a, **k))[1]
        result = ingest_messages(db, landing.root, "R1", block_bytes=2048)
        db.execute = real  # type: ignore[method-assign]
        rows = db.fetch_rows("q", """select src_file, line_no, fixmedins_bchno from records
                                     order by src_file, line_no""")
    assert_balanced(tmp_path / "db.duckdb")
    assert result.records_stored == 120 and result.lines_quarantined == 1000
    assert len(parses) < 41 + 1000 * 5 // 2048 + 2
    expected = [(f"2025-11-01/P{k:05d}.jsonl", i + 1, f"S{3 * k + i}")
                for k in range(40) for i in range(3)]
    assert rows == expected


@pytest.mark.parametrize("bad_share", [0.0005, 0.02, 1.0])
def test_a_block_with_invalid_utf8_keeps_every_good_line(bad_share: float) -> None:
    import pyarrow as pa

    rnd = random.Random(7)
    lines = [('{"psn_name": "张三"}'.encode("gbk") + b"\r\n") if rnd.random() < bad_share
             else f'{{"psn_name": "张三", "n": {i}}}\n'.encode() for i in range(5000)]
    lines[0] = b"\xff\n"  # the first line too
    txt, bad = message_lines._split_invalid_utf8(pa.array(lines, pa.large_binary()))
    for line, t, b in zip(lines, txt.to_pylist(), bad.to_pylist(), strict=True):
        try:
            assert (t, b) == (line.decode("utf-8"), None)
        except UnicodeDecodeError:
            assert t is None and b == line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
