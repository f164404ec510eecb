"""Codes and the supply chain of one chunk: every code sold is stocked first.

For each institution and drug, the packs that its sale lines need (whole packs, and the
boxes that split sales open one after another) plus a margin of unsold packs get serials
from the institution's lot. They reach the shelf in deliveries: the first in the
inventory snapshot (3501) at the window's start, later ones by purchase (3502 108 with
its 3503) or, for a chain's branch, by transfer from the chain's flagship shop (3502 102
there, 101 here), always before the first sale that needs them.

All of it is sorting and run arithmetic (``runs.py``) in numpy over the chunk's lines and
packs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tracecode.simulate import data
from tracecode.simulate.ids import check_digits
from tracecode.simulate.records import CODE_SEP, STOCK_KEY_BASE, conform
from tracecode.simulate.runs import join_runs, lexsort, run_first, run_starts, seq_in_groups
from tracecode.simulate.world import DAY, FRAUD_OFFSET, World

NEVER = 1 << 40  # first-use time of a pack that is not sold in the window
WHOLE, OPENED, MARGIN = 0, 1, 2  # why a pack is on the shelf


def allocate(world: World, lines: pl.DataFrame, rng: np.random.Generator
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sale records and stock records for the sale lines of one chunk."""
    cat = world.catalog
    n_prod = cat.height
    units = cat["pack_units"].to_numpy().astype(np.int64)
    lines = lines.rechunk()
    o = lexsort(tuple(lines[c].to_numpy() for c in ("receipt", "t", "product", "inst")))
    inst = lines["inst"].to_numpy()[o]
    product = lines["product"].to_numpy()[o].astype(np.int64)
    t = lines["t"].to_numpy()[o]
    split = lines["split"].to_numpy()[o]
    n = lines["n"].to_numpy()[o]
    g = inst * n_prod + product  # (institution, drug), in sorted order
    size = units[product]

    # split lines take units from the open box; a dose that would straddle two boxes is
    # cut to what is left in the first (the box is used up, the next one opened)
    sl = np.flatnonzero(split)
    taken = np.cumsum(n[sl]) - n[sl]
    taken -= taken[run_first(g[sl])]
    box = taken // size[sl]
    n = n.copy()
    n[sl] = np.minimum(n[sl], size[sl] - taken % size[sl])
    opens = run_starts(g[sl], box)
    box_of_line = np.cumsum(opens) - 1  # which opened box each split line uses

    # whole lines: one pack per unit of n, numbered within (institution, drug)
    wl = np.flatnonzero(~split)
    w_line = np.repeat(wl, n[wl])
    w_pack = seq_in_groups(g[w_line])

    # packs sold (whole, or opened for splitting), then a margin of unsold ones
    sold_g = np.concatenate([g[w_line], g[sl][opens]])
    groups, sold = np.unique(sold_g, return_counts=True)
    margin = np.floor(sold * 0.08 + rng.random(len(groups))).astype(np.int64)
    m_g = np.repeat(groups, margin)
    pk_g = np.concatenate([sold_g, m_g])
    pk_t = np.concatenate([t[w_line], t[sl][opens], np.full(len(m_g), NEVER)])
    pk_kind = np.repeat(np.array([WHOLE, OPENED, MARGIN], dtype=np.int8),
                        [len(w_line), int(opens.sum()), len(m_g)])
    pk_pack = np.concatenate([w_pack, box[opens], seq_in_groups(m_g)])
    ps = lexsort((pk_pack, pk_kind, pk_t, pk_g))
    pos = np.empty(len(ps), dtype=np.int64)  # where each pack lands in shelf order
    pos[ps] = np.arange(len(ps))
    shelf = _Shelf(world, pk_g[ps], pk_t[ps], pk_kind[ps])

    # serials: each (institution, drug) draws from one lot, in turn
    lot_order = np.argsort(shelf.lot, kind="stable")
    offset = np.empty(len(ps), dtype=np.int64)
    offset[lot_order] = seq_in_groups(shelf.lot[lot_order])
    if len(offset) and int(offset.max()) >= FRAUD_OFFSET:
        raise RuntimeError("a lot ran out of serials; use more chunks for this scale")
    np.maximum.at(world.lot_used, shelf.lot, offset)
    serial = world.lots["base"].to_numpy()[shelf.lot] + offset
    prefix = cat["prefix_int"].to_numpy()[shelf.product]
    # serials have 9 digits (no leading zero), so serial and check digits are one number
    shelf.code = pl.select(pl.concat_str(
        cat["trace_prefix"].gather(shelf.product),
        pl.Series(serial * 10_000 + check_digits(prefix, serial)).cast(pl.Utf8),
    )).to_series()

    # each line's codes: its whole packs, joined; or the one box it splits
    w_first = run_starts(w_line)
    w_codes = join_runs(shelf.code.gather(pos[:len(w_line)]), w_first, CODE_SEP)
    s_codes = shelf.code.gather(pos[len(w_line) + box_of_line])
    line_of = np.concatenate([w_line[w_first], sl])
    at = np.full(len(o), -1, dtype=np.int64)
    at[line_of] = np.arange(len(line_of))
    coded = np.flatnonzero(at >= 0)
    codes = pl.concat([w_codes, s_codes], rechunk=True).gather(at[coded])
    n_codes = np.concatenate([np.diff(np.append(np.flatnonzero(w_first), len(w_line))),
                              np.ones(len(sl), np.int64)])
    sales = _sale_records(world, lines[o[coded]], coded, n[coded], codes,
                          n_codes[at[coded]])
    stock = _stock_records(world, shelf, rng)
    return sales, stock


class _Shelf:
    """The chunk's packs in shelf order: by institution and drug, then first use."""

    def __init__(self, world: World, g: np.ndarray, t: np.ndarray, kind: np.ndarray) -> None:
        n_prod = world.catalog.height
        self.g, self.t, self.kind = g, t, kind
        self.inst, self.product = g // n_prod, g % n_prod
        self.local = seq_in_groups(g)  # place within (institution, drug)
        self.lot = world.normal_lot(self.product, self.inst)
        self.code: pl.Series = pl.Series(dtype=pl.Utf8)


def _sale_records(world: World, lines: pl.DataFrame, key: np.ndarray, n: np.ndarray,
                  codes: pl.Series, n_codes: np.ndarray) -> pl.DataFrame:
    cat = world.catalog
    product = lines["product"].to_numpy()
    inst = lines["inst"].to_numpy()
    split = lines["split"]
    return conform(pl.DataFrame({
        "key": key,
        "infno": pl.repeat("3505", len(key), eager=True),
        "inst": inst,
        "t_ev": lines["t"],
        "product": product,
        "lot": world.normal_lot(product.astype(np.int64), inst),
        "codes": codes,
        "n_codes": n_codes,
        "cnt": np.where(split.to_numpy(), n, n * cat["pack_units"].to_numpy()[product]),
        "price": cat["unit_price"].to_numpy()[product],
        "trdn": pl.select(pl.when(split).then(pl.lit("1")).otherwise(pl.lit("0"))
                          ).to_series(),
        "person": lines["person"],
        "setl": lines["setl"],
        "receipt": lines["receipt"],
        "role": pl.repeat("normal", len(key), eager=True),
    }))


def _stock_records(world: World, shelf: _Shelf, rng: np.random.Generator) -> pl.DataFrame:
    cat = world.catalog
    # deliveries: about one every four days per drug and institution
    starts = run_starts(shelf.g)
    run = np.cumsum(starts) - 1  # each pack's (institution, drug)
    sold = np.bincount(run, weights=shelf.kind < MARGIN).astype(np.int64) if len(run) else (
        np.zeros(0, np.int64))
    n_deliv = 1 + world.days // 4
    per = np.maximum(3, -(-sold // n_deliv))
    last = (np.maximum(sold, 1) - 1) // per
    d = np.minimum(shelf.local // per[run], last[run])
    new = run_starts(shelf.g, d)
    deliv = np.cumsum(new) - 1  # each pack's delivery
    dv = np.flatnonzero(new)  # each delivery's first pack
    n = len(dv)
    t_min = shelf.t[dv]
    lag = rng.integers(2 * 3600, 36 * 3600, n)
    t_arr = (t_min - lag) // DAY * DAY + rng.integers(8 * 3600, 11 * 3600, n)
    t_arr = np.where(t_arr >= t_min - 600, t_arr - DAY, t_arr)
    inv = (d[dv] == 0) | (t_arr < 3600) | (t_min >= NEVER)
    inst = shelf.inst[dv]
    flag = world.i_flagship[inst]
    transfer = ~inv & (flag >= 0) & (rng.random(n) < 0.5)
    t_flag_in = t_arr - rng.integers(2 * 3600, 20 * 3600, n)
    transfer &= t_flag_in >= 3600
    spler = rng.integers(0, len(data.SUPPLIERS), n)

    # inventory deliveries are one snapshot record per (institution, drug); each other
    # delivery is a record of its own
    grp = np.where(inv, -1, d[dv])[deliv]
    ro = lexsort((shelf.local, grp, shelf.g))
    rec_new = run_starts(shelf.g[ro], grp[ro])
    heads = ro[rec_new]  # each record's first pack (its first delivery)
    dh = deliv[heads]
    rec_codes = join_runs(shelf.code.gather(ro), rec_new, CODE_SEP)
    rec_n = np.diff(np.append(np.flatnonzero(rec_new), len(ro)))
    product = shelf.product[heads]
    buy = (cat["unit_price"] * 0.82).round(4).to_numpy()[product]
    via = np.where(inv[dh], 0, np.where(transfer[dh], 2, 1))  # inventory, purchase, transfer
    g = pl.DataFrame({
        "key": STOCK_KEY_BASE + np.arange(len(heads)) * 4,
        "inst": shelf.inst[heads],
        "flag": flag[dh],
        "t_arr": np.where(via == 0, 0, t_arr[dh]),
        "t_flag_in": t_flag_in[dh],
        "product": product.astype(np.int32),
        "lot": shelf.lot[heads].astype(np.int32),
        "code": rec_codes,
        "n_codes": rec_n.astype(np.int32),
        "cnt": rec_n * cat["pack_units"].to_numpy()[product],
        "buy": buy,
        "spler": pl.Series(data.SUPPLIERS).gather(spler[dh]),
        "via": via,
    })
    key = pl.col("key")
    common: dict[str, Any] = dict(product="product", lot="lot", cnt="cnt",
                                  role=pl.lit("stock"))
    inv_rec = g.filter(pl.col("via") == 0).select(
        key=key, infno=pl.lit("3501"), inst="inst", t_ev=pl.lit(0, pl.Int64), codes="code",
        n_codes="n_codes", **common)
    bought = g.filter(pl.col("via") == 1)
    moved = g.filter(pl.col("via") == 2)
    purchase_in = pl.concat([
        bought.select(key=key, inst="inst", t_ev="t_arr", code="code", n_codes="n_codes",
                      spler="spler", buy="buy", **common),
        moved.select(key=key, inst="flag", t_ev="t_flag_in", code="code", n_codes="n_codes",
                     spler="spler", buy="buy", **common),
    ])
    codes: dict[str, Any] = dict(codes="code", n_codes="n_codes", price="buy",
                                 trdn=pl.lit("0"))
    parts = [
        inv_rec,
        purchase_in.select(key="key", infno=pl.lit("3502"), inst="inst", t_ev="t_ev",
                           chg_type=pl.lit("108"), **codes, **common),
        purchase_in.select(key=key + 1, infno=pl.lit("3503"), inst="inst",
                           t_ev="t_ev", price="buy", spler="spler", **common),
        moved.select(key=key + 2, infno=pl.lit("3502"), inst="flag",
                     t_ev=pl.col("t_arr") - 1800, chg_type=pl.lit("102"), **codes, **common),
        moved.select(key=key + 3, infno=pl.lit("3502"), inst="inst", t_ev="t_arr",
                     chg_type=pl.lit("101"), **codes, **common),
    ]
    return pl.concat([conform(p) for p in parts]).sort("key")
