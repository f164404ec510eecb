"""Records to files: reference CSVs, upload messages as JSON lines, the truth.

Messages of a chunk are encoded column-wise (polars structs to JSON), sorted by upload
time and written to ``messages/<upload date>/part-NNNN.jsonl``: a late upload of a day's
sale lands in a later day's folder. Everything is sorted before writing, so the same
seed gives the same bytes.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path

import numpy as np
import polars as pl

from tracecode.simulate.world import DAY, World

BCHNO_PREFIX = {"3501": "I", "3502": "C", "3503": "G", "3504": "B", "3505": "S", "3506": "T"}
TIME_FMT = "%Y-%m-%d %H:%M:%S"
GBK_MARK = "\x01GBK\x01"


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
    world.persons.select(
        "psn_no", "certno", "psn_name", "gender",
        pl.col("birth_date").dt.strftime("%Y-%m-%d"), "insu_admdvs",
        pl.col("death_date").dt.strftime("%Y-%m-%d"),
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


def write_messages(world: World, rows: pl.DataFrame, chunk: int, out: Path) -> tuple[int, int]:
    """Encode and write one chunk's rows; returns (lines written, codes in valid lines)."""
    if rows.height == 0:
        return 0, 0
    lines = encode(world, rows, chunk)
    n_codes = int(rows.filter(pl.col("bad").is_null())["codes"].list.len().fill_null(0).sum())
    suffix = ".jsonl.gz" if world.scale.gzip else ".jsonl"
    for (folder, shard), part in lines.group_by("folder", "shard", maintain_order=True):
        path = out / "messages" / str(folder) / f"part-{int(shard):04d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not world.scale.gzip and not (part["bad"] == "gbk").any():
            part.select("line").write_csv(path, include_header=False, quote_style="never")
            continue
        buf = io.BytesIO()
        part.select("line").write_csv(buf, include_header=False, quote_style="never")
        blob = _gbk_lines(buf.getvalue())
        if world.scale.gzip:
            with gzip.GzipFile(path, "wb", mtime=0) as f:
                f.write(blob)
        else:
            path.write_bytes(blob)
    return lines.height, n_codes


def _gbk_lines(blob: bytes) -> bytes:
    """Lines marked for it are re-encoded in GBK: not valid UTF-8, as some old systems send."""
    mark = GBK_MARK.encode()
    out, pos = [], 0
    while (at := blob.find(mark, pos)) >= 0:
        end = blob.find(b"\n", at)
        out += [blob[pos:at], blob[at + len(mark):end].decode().encode("gbk")]
        pos = end
    return b"".join([*out, blob[pos:]])


def encode(world: World, rows: pl.DataFrame, chunk: int) -> pl.DataFrame:
    """``folder, shard, bad, line`` for every row, sorted as written.

    Lines are assembled with ``concat_str`` from fragments: the institution, person, drug
    and lot parts are encoded once per world and gathered by index. Every value is one
    the simulator made (digits, letters, Chinese), so none needs JSON escaping.
    """
    frag = _fragments(world)
    n = rows.height
    # rows grouped by body shape, so that each shape is built on a slice (no copies)
    shape = rows["infno"].replace_strict(SHAPE, return_dtype=pl.Int8).to_numpy()
    by_shape = np.argsort(shape, kind="stable")
    rows, shape = rows[by_shape], shape[by_shape]
    inst = rows["inst"].to_numpy()
    t_up = rows["t_up"].to_numpy()
    t_ev = rows["t_ev"].to_numpy()
    up_day = t_up // DAY
    n_days = int(max(up_day.max(), 0)) + 2
    ymd = pl.Series([(np.datetime64(world.start, "D") + d).astype(str).replace("-", "")
                     for d in range(n_days)])
    folders = np.array([(np.datetime64(world.start, "D") + d).astype(str)
                        for d in range(n_days)])

    # fixmedins_bchno: per institution, kind and event day, in event order; versions of a
    # record share its key, hence its bchno
    infno = rows["infno"]
    key = rows["key"].to_numpy()
    own = ((infno != "3507") & rows["bad"].is_null()).to_numpy()
    ukey, first = np.unique(key[own], return_index=True)
    src = np.flatnonzero(own)[first]
    kind_code = shape[src] * 10 + (infno.to_numpy()[src] == "3504") + (
        infno.to_numpy()[src] == "3506")
    ev_day = t_ev[src] // DAY
    order = np.lexsort((ukey, t_ev[src], ev_day, kind_code, inst[src]))
    seq = np.empty(len(order), dtype=np.int64)
    seq[order] = _seq_in_groups(inst[src][order], kind_code[order], ev_day[order])
    names = pl.select(pl.concat_str(
        infno.gather(src).replace_strict(BCHNO_PREFIX, return_dtype=pl.Utf8),
        ymd.gather(ev_day), pl.Series(seq + 1).cast(pl.Utf8).str.zfill(6))).to_series()

    def lookup(keys: np.ndarray) -> pl.Series:
        at = np.clip(np.searchsorted(ukey, keys), 0, max(len(ukey) - 1, 0))
        found = (ukey[at] == keys) if len(ukey) else np.zeros(len(keys), bool)
        return names.gather(at).zip_with(pl.Series(found), pl.Series([None], dtype=pl.Utf8))

    bchno = lookup(key)
    ref = rows["ref_key"].fill_null(-1).to_numpy()
    ref_bchno = lookup(ref)

    # receipts: rtal_docno per institution and day; setl_id when the fund paid
    rc = (
        rows.select("receipt", "inst", "t_ev", "setl")
        .filter(pl.col("receipt").is_not_null() & rows["bad"].is_null())
        .sort("receipt", "t_ev")
        .unique("receipt", keep="first", maintain_order=True)
        .with_columns(day=pl.col("t_ev") // DAY)
        .sort("inst", "day", "t_ev", "receipt")
    )
    rseq = pl.Series(_seq_in_groups(rc["inst"].to_numpy(), rc["day"].to_numpy()) + 1).cast(
        pl.Utf8).str.zfill(6)
    rday = ymd.gather(rc["day"].to_numpy())
    rc = rc.select(
        "receipt",
        rtal_docno=pl.concat_str(pl.lit("R"), rday, rseq),
        setl_id=pl.when(pl.col("setl") == "1").then(pl.concat_str(
            frag.admdvs.gather(rc["inst"].to_numpy()), rday,
            frag.serial.gather(rc["inst"].to_numpy()), rseq)).otherwise(pl.lit("")),
    )
    docs = rows.select("receipt").join(rc, on="receipt", how="left", maintain_order="left")

    # msgid: institution + upload second + sequence within that second
    order = np.lexsort((np.arange(n), t_up, inst))
    mseq = np.empty(n, dtype=np.int64)
    mseq[order] = _seq_in_groups(inst[order], t_up[order])

    start = datetime.combine(world.start, time())
    fmt = lambda t: (pl.lit(start) + pl.duration(seconds=pl.Series(t))).dt.strftime(  # noqa: E731
        TIME_FMT)
    tab = pl.select(inf_time=fmt(t_up), ev_time=fmt(t_ev),
                    stamp=(pl.lit(start) + pl.duration(seconds=pl.Series(t_up))).dt.strftime(
                        "%Y%m%d%H%M%S"))
    person = rows["person"].to_numpy()
    has_person = ~np.isnan(rows["person"].cast(pl.Float64).to_numpy())
    who = frag.person.gather(np.where(has_person, person, 0).astype(np.int64))
    override = rows["certno"].is_not_null() | rows["psn_no"].is_not_null()
    if override.any():
        p = world.persons
        idx = np.where(has_person, person, 0).astype(np.int64)
        who = pl.select(pl.when(override).then(pl.concat_str(
            pl.lit('"psn_no":"'), pl.coalesce(rows["psn_no"], p["psn_no"].gather(idx)),
            pl.lit('","psn_cert_type":"01","certno":"'),
            pl.coalesce(rows["certno"], p["certno"].gather(idx)),
            pl.lit('","psn_name":"'), pl.coalesce(rows["psn_name"], p["psn_name"].gather(idx)),
            pl.lit('"'))).otherwise(who)).to_series()
    product = rows["product"].fill_null(0).to_numpy()
    lot = rows["lot"].fill_null(0).to_numpy()
    env = pl.select(pl.concat_str(
        pl.lit('","msgid":"'), frag.code.gather(inst),
        tab["stamp"], pl.Series(mseq).cast(pl.Utf8).str.zfill(5),
        pl.lit('","inf_time":"'), tab["inf_time"], pl.lit('",'), frag.inst.gather(inst),
        pl.lit(',"input":{"'))).to_series()
    cols = pl.DataFrame({
        "env": env,
        "drug": frag.drug.gather(product),
        "lot": frag.lot.gather(lot),
        "who": who,
        "bchno": bchno,
        "ref_bchno": ref_bchno,
        "rtal_docno": docs["rtal_docno"],
        "setl_id": docs["setl_id"],
        "ev_time": tab["ev_time"],
        "codes": rows["codes"].list.join('"},{"drug_trac_codg":"'),
        "cnt": rows["cnt"].cast(pl.Utf8),
        "price": rows["price"].cast(pl.Utf8),
        "trdn": rows["trdn"],
        "setl": rows["setl"],
        "chg_type": rows["chg_type"],
        "spler": rows["spler"],
        "ref_type": rows["ref_type"],
        "infno": infno,
    })
    # one body shape per kind of message, each built on its own slice of rows
    bounds = np.searchsorted(shape, np.arange(len(BODIES) + 1))
    # in pieces of at most 50,000 rows, built in parallel
    pieces = [
        (body, int(lo), int(min(lo + PIECE, b)))
        for body, a, b in zip(BODIES, bounds[:-1], bounds[1:], strict=True)
        for lo in range(int(a), int(b), PIECE)
    ]
    parts = pl.collect_all([
        cols.lazy().slice(lo, hi - lo).select(line=pl.concat_str(
            pl.lit('{"infno":"'), "infno", "env", body(), pl.lit("}}}")))
        for body, lo, hi in pieces
    ])
    lines = _corrupt(pl.concat([p["line"] for p in parts]), rows["bad"])

    shard = chunk * world.scale.shards_per_chunk + inst % world.scale.shards_per_chunk
    out_order = np.lexsort((mseq, inst, t_up, shard, up_day))
    return pl.DataFrame({
        "folder": folders[up_day],
        "shard": shard,
        "bad": rows["bad"],
        "line": lines,
    })[out_order]


PIECE = 50_000
SHAPE = {"3505": 0, "3506": 0, "3502": 1, "3501": 2, "3503": 3, "3504": 3, "3507": 4}


def _sale_body() -> pl.Expr:
    c = pl.col
    return pl.concat_str(
        pl.lit('selinfo":{'), c("drug"), pl.lit(',"fixmedins_bchno":"'), c("bchno"),
        pl.lit('",'), c("who"), pl.lit(","), c("lot"), pl.lit(',"trdn_flag":"'), c("trdn"),
        pl.lit('","sel_retn_cnt":'), c("cnt"), pl.lit(',"sel_retn_time":"'), c("ev_time"),
        pl.lit('","finl_trns_pric":'), c("price"), pl.lit(',"rtal_docno":"'), c("rtal_docno"),
        pl.lit('","setl_id":"'), c("setl_id"), pl.lit('","mdtrt_setl_type":"'), c("setl"),
        pl.lit('","drugtracinfo":[{"drug_trac_codg":"'), c("codes"), pl.lit('"}]'),
        pl.when(c("infno") == "3506").then(
            pl.concat_str(pl.lit(',"medins_prod_sel_no":"'), c("ref_bchno"), pl.lit('"')))
        .otherwise(pl.lit("")),
    )


def _inventory_body() -> pl.Expr:
    c = pl.col
    return pl.concat_str(
        pl.lit('invinfo":{'), c("drug"), pl.lit(',"fixmedins_bchno":"'), c("bchno"),
        pl.lit('","inv_cnt":'), c("cnt"), pl.lit(","), c("lot"), pl.lit(',"invdate":"'),
        c("ev_time").str.slice(0, 10), pl.lit('","drugtracinfo":[{"drug_trac_codg":"'),
        c("codes"), pl.lit('"}]'))


def _change_body() -> pl.Expr:
    c = pl.col
    return pl.concat_str(
        pl.lit('invinfo":{'), c("drug"), pl.lit(',"fixmedins_bchno":"'), c("bchno"),
        pl.lit('","inv_chg_type":"'), c("chg_type"), pl.lit('","cnt":'), c("cnt"),
        pl.lit(',"pric":'), c("price"), pl.lit(',"inv_chg_time":"'), c("ev_time"),
        pl.lit('",'), c("lot"), pl.lit(',"trdn_flag":"'), c("trdn"),
        pl.lit('","drugtracinfo":[{"drug_trac_codg":"'), c("codes"), pl.lit('"}]'))


def _purchase_body() -> pl.Expr:
    c = pl.col
    return pl.concat_str(
        pl.lit('purcinfo":{'), c("drug"), pl.lit(',"fixmedins_bchno":"'), c("bchno"),
        pl.lit('","spler_name":"'), c("spler"), pl.lit('",'), c("lot"),
        pl.lit(',"finl_trns_pric":'), c("price"), pl.lit(',"purc_retn_cnt":'), c("cnt"),
        pl.lit(',"purc_retn_stoin_time":"'), c("ev_time"), pl.lit('","purc_invo_no":"FP'),
        c("bchno").str.slice(1), pl.lit('"'))


def _delete_body() -> pl.Expr:
    c = pl.col
    return pl.concat_str(pl.lit('data":{"fixmedins_bchno":"'), c("ref_bchno"),
                         pl.lit('","inv_data_type":"'), c("ref_type"), pl.lit('"'))


BODIES = (_sale_body, _change_body, _inventory_body, _purchase_body, _delete_body)


def _seq_in_groups(*keys: np.ndarray) -> np.ndarray:
    """0, 1, 2... within runs of equal keys (the arrays are sorted by the keys)."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    idx = np.arange(n)
    return idx - np.maximum.accumulate(np.where(change, idx, 0))


@dataclass(frozen=True)
class Fragments:
    inst: pl.Series  # "fixmedins_code":"…","fixmedins_name":"…"
    code: pl.Series
    admdvs: pl.Series
    serial: pl.Series  # 5 digits
    person: pl.Series  # "psn_no":"…","psn_cert_type":"01","certno":"…","psn_name":"…"
    drug: pl.Series  # "med_list_codg":"…"
    lot: pl.Series  # "manu_lotnum":"…","manu_date":"…","expy_end":"…"


def _fragments(world: World) -> Fragments:
    """The world's JSON fragments, made on first use and kept on the world."""
    if world.cache.get("fragments") is None:
        i, p, c, lots = world.inst, world.persons, world.catalog, world.lots
        world.cache["fragments"] = Fragments(
            inst=i.select(pl.concat_str(pl.lit('"fixmedins_code":"'), "fixmedins_code",
                                        pl.lit('","fixmedins_name":"'), "fixmedins_name",
                                        pl.lit('"'))).to_series(),
            code=i["fixmedins_code"],
            admdvs=i["admdvs"],
            serial=i["serial"].cast(pl.Utf8).str.zfill(5),
            person=p.select(pl.concat_str(
                pl.lit('"psn_no":"'), "psn_no", pl.lit('","psn_cert_type":"01","certno":"'),
                "certno", pl.lit('","psn_name":"'), "psn_name", pl.lit('"'))).to_series(),
            drug=c.select(pl.concat_str(pl.lit('"med_list_codg":"'), "med_list_codg",
                                        pl.lit('"'))).to_series(),
            lot=lots.select(pl.concat_str(
                pl.lit('"manu_lotnum":"'), "manu_lotnum", pl.lit('","manu_date":"'),
                pl.col("manu_date").dt.strftime("%Y-%m-%d"), pl.lit('","expy_end":"'),
                pl.col("expy_end").dt.strftime("%Y-%m-%d"), pl.lit('"'))).to_series(),
        )
    return world.cache["fragments"]


def _corrupt(lines: pl.Series, bad: pl.Series) -> pl.Series:
    """Each line marked ``bad`` turned into the malformation it is marked with (the rest
    are returned unchanged; only the few marked lines are worked on)."""
    mask = bad.is_not_null()
    if not mask.any():
        return lines
    df = pl.DataFrame({"line": lines.filter(mask), "bad": bad.filter(mask)})
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
        .when(kind == "gbk").then(pl.concat_str(pl.lit(GBK_MARK), line))
        .when(kind == "not_object").then(pl.concat_str(pl.lit("["), line, pl.lit("]")))
        .when(kind == "codes_not_list").then(
            line.str.replace(r'"drugtracinfo":\[\{"drug_trac_codg":("\w*")\}[^\]]*\]',
                             r'"drugtracinfo":$1'))
        .when(kind == "bad_time").then(
            line.str.replace(r'"inf_time":"[^"]+"', '"inf_time":"2025-13-45 25:61:00"'))
        .when(kind == "empty").then(pl.lit(""))
        .otherwise(line)
    )
    out = lines.clone()
    return out.scatter(np.flatnonzero(mask.to_numpy()), df.select(corrupted).to_series())
