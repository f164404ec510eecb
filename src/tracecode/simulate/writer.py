"""Records to files: reference CSVs, upload messages as JSON lines, the truth.

Messages of a chunk are encoded column-wise (``concat_str`` of text pieces gathered from
per-world tables), sorted by upload time and written to
``messages/<upload date>/part-NNNN.jsonl``: a late upload of a day's sale lands in a later
day's folder. With the layout ``per-institution`` each institution's uploads of a day
are one file, ``messages/<upload date>/<fixmedins_code>.jsonl``, as a province receives
them. Everything is sorted before writing, so the same seed gives the same bytes;
a chunk's files are its own, so chunks may be written in any order, on any thread.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl

from tracecode.simulate.runs import lexsort, run_starts, seq_in_groups
from tracecode.simulate.world import DAY, World

INFNOS = ("3501", "3502", "3503", "3504", "3505", "3506", "3507")
BCHNO_PREFIX = ("I", "C", "G", "B", "S", "T", "")  # by infno, as INFNOS
# body shape of each infno (as INFNOS): inventory, change, purchase, sale, delete
SHAPE = np.array([2, 1, 3, 3, 0, 0, 4], dtype=np.int8)
LAYOUTS = ("parts", "per-institution")


def write_reference(world: World, out: Path) -> None:
    ref = out / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    world.inst.select("fixmedins_code", "fixmedins_name", "fixmedins_type", "admdvs",
                      "open_time", "close_time", "chain").write_csv(ref / "institutions.csv")
    world.catalog.select(
        "med_list_codg", "drug_name", "trace_prefix", "pack_units",
        pl.col("pack_price").map_elements(lambda v: f"{v:.2f}", return_dtype=pl.Utf8),
        "gender_limit", "min_age", "max_age", "spec", "manufacturer",
    ).write_csv(ref / "catalog.csv")
    # a Date written as text is YYYY-MM-DD (and far cheaper than strftime on millions)
    world.persons.select(
        "psn_no", "certno", "psn_name", "gender", pl.col("birth_date").cast(pl.Utf8),
        "insu_admdvs", pl.col("death_date").cast(pl.Utf8),
    ).write_csv(ref / "persons.csv")


def write_issuance(world: World, out: Path, rng: np.random.Generator) -> None:
    """Activated lots. A lot's range covers every serial used and some never sold."""
    lots = world.lots
    used = np.maximum(world.lot_used, world.fraud_next - 1)
    used = np.where(lots["kind"].to_numpy() == "normal", used, np.maximum(used, 0))
    slack = rng.integers(50, 5_000, lots.height)
    base = lots["base"].to_numpy()
    frame = lots.with_columns(
        serial_from=pl.Series(base),
        serial_to=pl.Series(base + np.maximum(used, 0) + slack),
        trace_prefix=pl.col("product").replace_strict(
            np.arange(world.catalog.height, dtype=np.int32),
            world.catalog["trace_prefix"], return_dtype=pl.Utf8),
    ).sort("trace_prefix", "serial_from")
    frame.select(
        "trace_prefix",
        pl.col("serial_from").cast(pl.Utf8).str.zfill(9),
        pl.col("serial_to").cast(pl.Utf8).str.zfill(9),
        "manu_lotnum",
        pl.col("manu_date").dt.strftime("%Y-%m-%d"),
        pl.col("expy_end").dt.strftime("%Y-%m-%d"),
    ).write_csv(out / "reference" / "code_issuance.csv")


def write_messages(world: World, rows: pl.DataFrame, chunk: int, out: Path,
                   layout: str = "parts") -> tuple[int, int]:
    """Encode and write one chunk's rows; returns (lines written, codes in valid lines).

    The lines, in file order and each ending in a newline, are written in slices of at
    most ``WRITE_ROWS`` lines, each slice as the buffer of one Arrow array (the memory of
    a slice is reused for the next, where one buffer for a chunk would be fresh memory,
    page faults, every time), except for the few malformed lines, written in their place
    from ``Encoded.replace``. A file's blocks are reserved at its final size before it is
    written, which costs the kernel far less than growing it write by write.
    """
    if rows.height == 0:
        return 0, 0
    per_institution = layout == "per-institution"
    enc = encode(world, rows, chunk, per_institution=per_institution)
    codes = _tables(world).code
    n = enc.lines.len()
    n_codes = int(rows.filter(pl.col("bad").is_null())["n_codes"].fill_null(0).sum())
    size = enc.lines.str.len_bytes().cast(pl.Int64).to_numpy().copy()
    for at, text in enc.replace.items():
        size[at] = len(text)
    ends = np.cumsum(size)
    files = np.flatnonzero((np.diff(enc.day) != 0) | (np.diff(enc.shard) != 0)) + 1
    for lo, hi in pairwise([0, *files.tolist(), n]):
        name = (codes[int(enc.shard[lo])] if per_institution
                else f"part-{int(enc.shard[lo]):04d}")
        path = (out / "messages" / enc.folders[int(enc.day[lo])]
                / f"{name}{'.jsonl.gz' if world.scale.gzip else '.jsonl'}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fixed = np.array([a for a in enc.replace if lo <= a < hi], dtype=np.int64)
        cuts = np.unique(np.concatenate([[lo, hi], np.arange(lo, hi, WRITE_ROWS), fixed,
                                         fixed + 1])).tolist()
        with (gzip.GzipFile(path, "wb", mtime=0) if world.scale.gzip
              else path.open("wb", buffering=0)) as f:
            if not world.scale.gzip:
                _reserve(f.fileno(), int(ends[hi - 1] - ends[lo] + size[lo]))
            for a, b in pairwise(cuts):
                if a in enc.replace:
                    f.write(enc.replace[a])
                    continue
                arr = enc.lines.slice(a, b - a).to_arrow(compat_level=pl.CompatLevel.oldest())
                offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + 1,
                                        offset=arr.offset * 8)
                f.write(memoryview(arr.buffers()[2])[offsets[0]:offsets[-1]])
    return n, n_codes


def _reserve(fd: int, size: int) -> None:
    """Allocate ``size`` bytes of the new file ``fd`` at once, where the system can."""
    if size > 0 and hasattr(os, "posix_fallocate"):
        with contextlib.suppress(OSError):
            os.posix_fallocate(fd, 0, size)


WRITE_ROWS = 16_384


@dataclass(frozen=True)
class Encoded:
    """A chunk's lines in the order written, with where each goes."""

    lines: pl.Series  # each line with its newline
    day: np.ndarray  # upload day, index into folders
    shard: np.ndarray  # part file, or institution (layout per-institution)
    folders: list[str]  # YYYY-MM-DD by day
    replace: dict[int, bytes]  # malformed lines, by position: what is written instead


def encode(world: World, rows: pl.DataFrame, chunk: int, *,
           per_institution: bool = False) -> Encoded:
    """Every row as a JSON line, in the order written (by upload day, part file, upload
    time, institution).

    Lines are assembled with ``concat_str`` from fragments: the institution, person, drug
    and lot parts are encoded once per world and gathered by index, times are a day's
    date plus a second's ``HH:MM:SS`` from a table, and identifiers that carry a date
    and a serial number are one integer written as text. Every value is one the
    simulator made (digits, letters, Chinese), so none needs JSON escaping.
    """
    tab = _tables(world)
    rows = rows.rechunk()  # gathers from one chunk do not copy strings
    n = rows.height
    kind = (rows["infno"].cast(pl.Int32) - 3501).cast(pl.Int8).to_numpy()
    inst = rows["inst"].to_numpy()
    t_up = rows["t_up"].to_numpy()
    t_ev = rows["t_ev"].to_numpy()
    up_day = t_up // DAY
    ev_day = t_ev // DAY
    n_days = int(max(up_day.max(), ev_day.max())) + 1
    days = [world.start + timedelta(days=d) for d in range(n_days)]
    ymd = np.array([d.year * 10_000 + d.month * 100 + d.day for d in days], dtype=np.int64)
    folders = [d.isoformat() for d in days]
    day_str = pl.Series(folders)
    day_sp = pl.Series([f"{d} " for d in folders])
    bad = rows["bad"].is_not_null().to_numpy()

    # lines are built by body shape, each on a contiguous slice, otherwise in the order of
    # the rows (which reads their text in the order it was made): perm is that order,
    # rank its inverse
    shape = SHAPE[kind]
    perm = np.argsort(shape, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)
    # written order (o): file (upload day, shard), then upload time, institution, body
    # shape (sale, change, inventory, purchase, delete), then row
    spc = world.scale.shards_per_chunk
    shard = inst if per_institution else chunk * spc + inst % spc
    o = lexsort((rank, inst, t_up, shard, up_day))
    # msgid: institution + upload second + sequence within that second
    mseq = np.empty(n, dtype=np.int64)
    mseq[o] = seq_in_groups(inst[o], t_up[o])

    # record numbers and receipts: a text per record or receipt, an index per row
    bch_text, bch_of, ref_of = _bchno(rows, kind, inst, t_ev, ev_day, ymd, bad, tab)
    receipt_text, receipt_of = _receipts(rows, inst, t_ev, ymd, bad, tab)
    hms = t_up % DAY
    msgid = (ymd[up_day] * 1_000_000 + (hms // 3600) * 10_000 + (hms // 60 % 60) * 100
             + hms % 60) * 100_000 + mseq  # YYYYMMDDHHMMSS + 5 digits
    person = rows["person"].fill_null(0).to_numpy()
    product = rows["product"].fill_null(0).to_numpy()
    lot = rows["lot"].fill_null(0).to_numpy()
    who_fixed = _who_fixed(world, rows, person)

    fixed = np.zeros(len(person), dtype=bool)
    fixed[list(who_fixed)] = True

    def who(at: np.ndarray) -> pl.Series:
        text = tab.person.gather(person[at])
        mine = np.flatnonzero(fixed[at])
        if len(mine):  # planted frauds with another person's ID or an invalid one
            text = text.scatter(mine, [who_fixed[r] for r in at[mine].tolist()])
        return text

    column: dict[str, Callable[[np.ndarray], pl.Series]] = {
        "infno": lambda at: rows["infno"].gather(at),
        "inst_code": lambda at: tab.code.gather(inst[at]),
        "msgid": lambda at: pl.Series(msgid[at]).cast(pl.Utf8),
        "up_day": lambda at: day_sp.gather(up_day[at]),
        "up_time": lambda at: tab.hms.gather(hms[at]),
        "inst": lambda at: tab.inst.gather(inst[at]),
        "drug": lambda at: tab.drug.gather(product[at]),
        "lot": lambda at: tab.lot.gather(lot[at]),
        "who": who,
        "bchno": lambda at: bch_text.gather(_nullable(bch_of[at])),
        "ref_bchno": lambda at: bch_text.gather(_nullable(ref_of[at])),
        "rtal_docno": lambda at: receipt_text["rtal"].gather(_nullable(receipt_of[at])),
        "setl_id": lambda at: receipt_text["setl"].gather(_nullable(receipt_of[at])),
        "ev_day": lambda at: day_sp.gather(ev_day[at]),
        "ev_date": lambda at: day_str.gather(ev_day[at]),
        "ev_time": lambda at: tab.hms.gather(t_ev[at] % DAY),
        "cnt": lambda at: rows["cnt"].gather(at).cast(pl.Utf8),
        "price": lambda at: rows["price"].gather(at).cast(pl.Utf8),
        **{c: _gather(rows[c]) for c in (
            "codes", "trdn", "setl", "chg_type", "spler", "ref_type")},
    }

    def piece(k: int, at: np.ndarray) -> pl.Series:
        """The lines of rows ``at``, all of body shape ``k``: only its text pieces made."""
        return pl.DataFrame({c: column[c](at) for c in LINE_COLUMNS[k]}).select(
            LINES[k]).to_series()

    # each shape's rows in pieces of at most PIECE: the pieces' columns are small and
    # short-lived, so their memory is reused piece after piece
    bounds = np.searchsorted(shape[perm], np.arange(len(BODIES) + 1)).tolist()
    lines = pl.concat([
        piece(k, perm[lo:min(b, lo + PIECE)])
        for k, (a, b) in enumerate(pairwise(bounds)) for lo in range(a, b, PIECE)
    ], rechunk=True).gather(rank[o])
    bad_at = np.flatnonzero(bad[o])
    replace = _corrupt(lines.gather(bad_at), rows["bad"].gather(o[bad_at]))
    return Encoded(lines, up_day[o], shard[o], folders,
                   dict(zip(bad_at.tolist(), replace, strict=True)))


def _gather(column: pl.Series) -> Callable[[np.ndarray], pl.Series]:
    return lambda at: column.gather(at)


def _nullable(index: np.ndarray) -> pl.Series:
    """Indices for ``gather``, -1 becoming null (a null text)."""
    return pl.select(pl.when(pl.Series(index >= 0)).then(pl.Series(index))).to_series()


def _who_fixed(world: World, rows: pl.DataFrame, person: np.ndarray) -> dict[int, str]:
    """The person part of the rows that override it (planted frauds), by row."""
    at = np.flatnonzero((rows["certno"].is_not_null() | rows["psn_no"].is_not_null())
                        .to_numpy())
    if not len(at):
        return {}
    p = world.persons
    text = rows[at].select(pl.concat_str(
        pl.lit('"psn_no":"'), pl.coalesce("psn_no", p["psn_no"].gather(person[at])),
        pl.lit('","psn_cert_type":"01","certno":"'),
        pl.coalesce("certno", p["certno"].gather(person[at])),
        pl.lit('","psn_name":"'), pl.coalesce("psn_name", p["psn_name"].gather(person[at])),
        pl.lit('"'))).to_series()
    return dict(zip(at.tolist(), text.to_list(), strict=True))


PIECE = 65_536


def _sale_body() -> list[pl.Expr]:
    c = pl.col
    return [
        pl.lit('selinfo":{'), c("drug"), pl.lit(',"fixmedins_bchno":"'), c("bchno"),
        pl.lit('",'), c("who"), pl.lit(","), c("lot"), pl.lit(',"trdn_flag":"'), c("trdn"),
        pl.lit('","sel_retn_cnt":'), c("cnt"), pl.lit(',"sel_retn_time":"'), c("ev_day"),
        c("ev_time"), pl.lit('","finl_trns_pric":'), c("price"), pl.lit(',"rtal_docno":"'),
        c("rtal_docno"), pl.lit('","setl_id":"'), c("setl_id"),
        pl.lit('","mdtrt_setl_type":"'), c("setl"),
        # a sale whose packs were not scanned lists no code (habits.py: capture_gap)
        pl.when(c("codes").is_null()).then(pl.lit('","drugtracinfo":[]')).otherwise(
            pl.concat_str(pl.lit('","drugtracinfo":[{"drug_trac_codg":"'), c("codes"),
                          pl.lit('"}]'))),
        pl.when(c("infno") == "3506").then(
            pl.concat_str(pl.lit(',"medins_prod_sel_no":"'), c("ref_bchno"), pl.lit('"')))
        .otherwise(pl.lit("")),
    ]


def _inventory_body() -> list[pl.Expr]:
    c = pl.col
    return [
        pl.lit('invinfo":{'), c("drug"), pl.lit(',"fixmedins_bchno":"'), c("bchno"),
        pl.lit('","inv_cnt":'), c("cnt"), pl.lit(","), c("lot"), pl.lit(',"invdate":"'),
        c("ev_date"), pl.lit('","drugtracinfo":[{"drug_trac_codg":"'), c("codes"),
        pl.lit('"}]'),
    ]


def _change_body() -> list[pl.Expr]:
    c = pl.col
    return [
        pl.lit('invinfo":{'), c("drug"), pl.lit(',"fixmedins_bchno":"'), c("bchno"),
        pl.lit('","inv_chg_type":"'), c("chg_type"), pl.lit('","cnt":'), c("cnt"),
        pl.lit(',"pric":'), c("price"), pl.lit(',"inv_chg_time":"'), c("ev_day"),
        c("ev_time"), pl.lit('",'), c("lot"), pl.lit(',"trdn_flag":"'), c("trdn"),
        pl.lit('","drugtracinfo":[{"drug_trac_codg":"'), c("codes"), pl.lit('"}]'),
    ]


def _purchase_body() -> list[pl.Expr]:
    c = pl.col
    return [
        pl.lit('purcinfo":{'), c("drug"), pl.lit(',"fixmedins_bchno":"'), c("bchno"),
        pl.lit('","spler_name":"'), c("spler"), pl.lit('",'), c("lot"),
        pl.lit(',"finl_trns_pric":'), c("price"), pl.lit(',"purc_retn_cnt":'), c("cnt"),
        pl.lit(',"purc_retn_stoin_time":"'), c("ev_day"), c("ev_time"),
        pl.lit('","purc_invo_no":"FP'), c("bchno").str.slice(1), pl.lit('"'),
    ]


def _delete_body() -> list[pl.Expr]:
    c = pl.col
    return [pl.lit('data":{"fixmedins_bchno":"'), c("ref_bchno"),
            pl.lit('","inv_data_type":"'), c("ref_type"), pl.lit('"')]


BODIES = (_sale_body, _change_body, _inventory_body, _purchase_body, _delete_body)
LINES = [pl.concat_str(
    pl.lit('{"infno":"'), "infno", pl.lit('","msgid":"'), "inst_code", "msgid",
    pl.lit('","inf_time":"'), "up_day", "up_time", pl.lit('",'), "inst",
    pl.lit(',"input":{"'), *body(), pl.lit("}}}\n")).alias("line") for body in BODIES]
LINE_COLUMNS = [list(dict.fromkeys(line.meta.root_names())) for line in LINES]  # pieces used


def _bchno(rows: pl.DataFrame, kind: np.ndarray, inst: np.ndarray, t_ev: np.ndarray,
           ev_day: np.ndarray, ymd: np.ndarray, bad: np.ndarray, tab: Tables
           ) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """fixmedins_bchno of every record, and for each row the index of its own and of the
    record it refers to (ref_key) in those (-1: none).

    A record's bchno is a letter for its infno, its event date and its place among the
    institution's records of that infno and day, in event order. Versions of a record
    share its key, hence its bchno.
    """
    key = rows["key"].to_numpy()
    own = np.flatnonzero((kind != 6) & ~bad)
    ukey, first, which_own = np.unique(key[own], return_index=True, return_inverse=True)
    src = own[first]
    k, i, t, d = kind[src], inst[src], t_ev[src], ev_day[src]
    order = lexsort((ukey, t, d, k, i))
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = seq_in_groups(i[order], k[order], d[order])
    text = pl.select(pl.concat_str(tab.letters.gather(k), pl.Series(
        ymd[d] * 1_000_000 + seq + 1).cast(pl.Utf8))).to_series()

    def index(keys: np.ndarray) -> np.ndarray:  # -1: no such record
        if not len(ukey):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(ukey, keys), len(ukey) - 1)
        return np.where(ukey[at] == keys, at, -1)

    mine = np.full(len(key), -1, dtype=np.int64)
    mine[own] = which_own.ravel()
    rest = np.flatnonzero(mine < 0)  # deletes (a key of their own) and malformed copies
    mine[rest] = index(key[rest])
    ref = rows["ref_key"].fill_null(-1).to_numpy()
    refs = np.flatnonzero(ref >= 0)
    theirs = np.full(len(key), -1, dtype=np.int64)
    theirs[refs] = index(ref[refs])
    return text, mine, theirs


def _receipts(rows: pl.DataFrame, inst: np.ndarray, t_ev: np.ndarray, ymd: np.ndarray,
              bad: np.ndarray, tab: Tables) -> tuple[pl.DataFrame, np.ndarray]:
    """rtal_docno (per institution and day) and setl_id (when the fund paid) of every
    receipt, and for each row the index of its receipt in those (-1: none)."""
    receipt = rows["receipt"].fill_null(-1).to_numpy()
    has = np.flatnonzero((receipt >= 0) & ~bad)
    if not len(has):
        return (pl.DataFrame({"rtal": [None], "setl": [None]}, schema=dict.fromkeys(
            ("rtal", "setl"), pl.Utf8)), np.full(len(receipt), -1, dtype=np.int64))
    # a receipt's first line (by event time) gives its institution, day and settlement
    by_receipt = has[lexsort((t_ev[has], receipt[has]))]
    starts = run_starts(receipt[by_receipt])
    head = by_receipt[starts]
    which = np.full(len(receipt), -1, dtype=np.int64)  # each row's receipt, index into head
    which[by_receipt] = np.cumsum(starts) - 1
    r_u, i_u, t_u = receipt[head], inst[head], t_ev[head]
    d_u = t_u // DAY
    order = lexsort((r_u, t_u, d_u, i_u))
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = seq_in_groups(i_u[order], d_u[order]) + 1
    # R + YYYYMMDD + 6 digits; admdvs + YYYYMMDD + the institution's 5 digits + 6 digits
    fund = (rows["setl"] == "1").fill_null(False).to_numpy()[head]

    text = pl.DataFrame({"rtal": ymd[d_u] * 1_000_000 + seq, "fund": fund,
                         "setl": ymd[d_u] * 100_000_000_000 + tab.serial[i_u] * 1_000_000 + seq}
                        ).select(
        rtal=pl.concat_str(pl.lit("R"), pl.col("rtal").cast(pl.Utf8)),
        setl=pl.when("fund").then(pl.concat_str(tab.admdvs.gather(i_u),
                                                pl.col("setl").cast(pl.Utf8)))
        .otherwise(pl.lit("")))
    copies = np.flatnonzero((receipt >= 0) & bad)  # malformed copies: their original's
    at = np.minimum(np.searchsorted(r_u, receipt[copies]), len(r_u) - 1)
    which[copies] = np.where(r_u[at] == receipt[copies], at, -1)
    return text, which


@dataclass(frozen=True)
class Tables:
    """The world's JSON fragments and text tables, made once and gathered by index."""

    inst: pl.Series  # "fixmedins_code":"…","fixmedins_name":"…"
    code: pl.Series  # fixmedins_code
    admdvs: pl.Series
    serial: np.ndarray  # an institution's 5-digit serial, as int
    person: pl.Series  # "psn_no":"…","psn_cert_type":"01","certno":"…","psn_name":"…"
    drug: pl.Series  # "med_list_codg":"…"
    lot: pl.Series  # "manu_lotnum":"…","manu_date":"…","expy_end":"…"
    hms: pl.Series  # HH:MM:SS of each second of a day
    letters: pl.Series  # bchno letters, by infno


def prepare(world: World) -> None:
    """Make the world's text tables ahead of the first chunk (they are kept on it)."""
    _tables(world)


_TABLES_LOCK = threading.Lock()


def _tables(world: World) -> Tables:
    """The world's tables, made on first use and kept on the world."""
    with _TABLES_LOCK:
        if world.cache.get("tables") is None:
            world.cache["tables"] = _make_tables(world)
    return world.cache["tables"]  # type: ignore[return-value]


def _make_tables(world: World) -> Tables:
    i, p, c, lots = world.inst, world.persons, world.catalog, world.lots
    second = pl.int_range(DAY, eager=True)

    def two(x: pl.Series) -> pl.Series:
        return x.cast(pl.Utf8).str.zfill(2)

    def text(frame: pl.DataFrame, *parts: str | pl.Expr | pl.Series) -> pl.Series:
        # one chunk each, so that gathers from it copy no text
        return frame.select(pl.concat_str(*parts)).to_series().rechunk()

    return Tables(
        inst=text(i, pl.lit('"fixmedins_code":"'), "fixmedins_code",
                  pl.lit('","fixmedins_name":"'), "fixmedins_name", pl.lit('"')),
        code=i["fixmedins_code"].rechunk(),
        admdvs=i["admdvs"].rechunk(),
        serial=i["serial"].to_numpy(),
        person=text(p, pl.lit('"psn_no":"'), "psn_no", pl.lit('","psn_cert_type":"01","certno":"'),
                    "certno", pl.lit('","psn_name":"'), "psn_name", pl.lit('"')),
        drug=text(c, pl.lit('"med_list_codg":"'), "med_list_codg", pl.lit('"')),
        lot=text(lots, pl.lit('"manu_lotnum":"'), "manu_lotnum", pl.lit('","manu_date":"'),
                 pl.col("manu_date").dt.strftime("%Y-%m-%d"), pl.lit('","expy_end":"'),
                 pl.col("expy_end").dt.strftime("%Y-%m-%d"), pl.lit('"')),
        hms=text(pl.DataFrame(), two(second // 3600), pl.lit(":"), two(second // 60 % 60),
                 pl.lit(":"), two(second % 60)),
        letters=pl.Series(BCHNO_PREFIX),
    )


GBK = "gbk"


def _corrupt(lines: pl.Series, bad: pl.Series) -> list[bytes]:
    """What to write instead of each of ``lines``: the malformation ``bad`` names."""
    if not len(lines):
        return []
    df = pl.DataFrame({"line": lines.str.strip_suffix("\n"), "bad": bad})
    line, kind = pl.col("line"), pl.col("bad")
    body_key = line.str.extract(r'"input":\{"(\w+)"')
    corrupted = (
        pl.when(kind == "truncated").then(line.str.slice(0, line.str.len_chars() // 2))
        .when(kind == "bad_count").then(
            line.str.replace(r'"(sel_retn_cnt|inv_cnt|cnt|purc_retn_cnt)":\d+', r'"$1":"两盒"'))
        .when(kind == "no_body").then(
            pl.concat_str(line.str.extract(r'^(.*"input":)', 1), pl.lit('{"memo":"'),
                          body_key, pl.lit(' missing"}}')))
        .when(kind == "unknown_infno").then(line.str.replace(r'"infno":"\d+"',
                                                             '"infno":"3599"'))
        .when(kind == "not_object").then(pl.concat_str(pl.lit("["), line, pl.lit("]")))
        .when(kind == "codes_not_list").then(
            line.str.replace(r'"drugtracinfo":\[\{"drug_trac_codg":("\w*")\}[^\]]*\]',
                             r'"drugtracinfo":$1'))
        .when(kind == "bad_time").then(
            line.str.replace(r'"inf_time":"[^"]+"', '"inf_time":"2025-13-45 25:61:00"'))
        .when(kind == "empty").then(pl.lit(""))
        .otherwise(line)  # gbk: the line as it is, re-encoded below
    )
    text = df.select(corrupted).to_series().to_list()
    # lines marked gbk are re-encoded in GBK: not valid UTF-8, as some old systems send
    return [(t.encode(GBK) if k == GBK else t.encode()) + b"\n"
            for t, k in zip(text, df["bad"].to_list(), strict=True)]

