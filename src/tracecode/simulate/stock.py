"""Codes and the supply chain of one chunk: every code sold is stocked first.

For each institution and drug, the packs that its sale lines need (whole packs, and the
boxes that split sales open one after another) plus a margin of unsold packs get serials
from the institution's lot. They reach the shelf in deliveries: the first in the
inventory snapshot (3501) at the window's start, later ones by purchase (3502 108 with
its 3503) or, for a chain's branch, by transfer from the chain's flagship shop (3502 102
there, 101 here), always before the first sale that needs them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tracecode.simulate import data
from tracecode.simulate.ids import check_digits, trace_code_expr
from tracecode.simulate.records import STOCK_KEY_BASE, conform
from tracecode.simulate.world import DAY, FRAUD_OFFSET, World

NEVER = 1 << 40  # first-use time of a pack that is not sold in the window


def allocate(world: World, lines: pl.DataFrame, rng: np.random.Generator
             ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sale records and stock records for the sale lines of one chunk."""
    cat = world.catalog
    units = pl.Series(cat["pack_units"].to_numpy())
    lines = (
        lines.sort("inst", "product", "t", "receipt")
        .with_row_index("line")
        .with_columns(line=pl.col("line").cast(pl.Int64),
                      P=pl.col("product").replace_strict(
                          np.arange(cat.height, dtype=np.int32), units, return_dtype=pl.Int64))
    )

    # split lines take units from the open box; a dose that would straddle two boxes is
    # cut to what is left in the first (the box is used up, the next one opened)
    split = (
        lines.filter(pl.col("split"))
        .with_columns(s=(pl.col("n").cum_sum() - pl.col("n")).over("inst", "product"))
        .with_columns(pack=pl.col("s") // pl.col("P"),
                      n=pl.min_horizontal("n", pl.col("P") - pl.col("s") % pl.col("P")))
    )
    whole = (
        lines.filter(~pl.col("split"))
        .with_columns(k=pl.int_ranges(0, "n"))
        .explode("k")
        .with_columns(pack=pl.int_range(pl.len()).over("inst", "product"))
    )
    packs = pl.concat(
        [
            whole.select("inst", "product", "pack", "t", kind=pl.lit(0, pl.Int8)),
            split.group_by("inst", "product", "pack").agg(pl.col("t").min())
            .select("inst", "product", "pack", "t", kind=pl.lit(1, pl.Int8)),
        ]
    )
    # a margin of unsold packs on the shelf
    counts = packs.group_by("inst", "product").agg(sold=pl.len()).sort("inst", "product")
    margin = counts.with_columns(u=pl.Series(rng.random(counts.height))).select(
        "inst", "product",
        pack=pl.int_ranges(0, (pl.col("sold") * 0.08 + pl.col("u")).floor().cast(pl.Int64)),
    ).explode("pack").with_columns(t=pl.lit(NEVER, pl.Int64), kind=pl.lit(2, pl.Int8))
    packs = (
        pl.concat([packs, margin.select(packs.columns)])
        .sort("inst", "product", "t", "kind", "pack")
        .with_columns(local=pl.int_range(pl.len()).over("inst", "product"))
    )

    # serials: each (institution, drug) draws from one lot, in turn
    lot = world.normal_lot(packs["product"].to_numpy(), packs["inst"].to_numpy())
    packs = packs.with_columns(lot=pl.Series(lot, dtype=pl.Int32)).with_columns(
        offset=pl.int_range(pl.len()).over("lot"))
    top = packs.group_by("lot").agg(pl.col("offset").max()).sort("lot")
    if top.height and int(top["offset"].max()) >= FRAUD_OFFSET:
        raise RuntimeError("a lot ran out of serials; use more chunks for this scale")
    world.lot_used[top["lot"].to_numpy()] = np.maximum(
        world.lot_used[top["lot"].to_numpy()], top["offset"].to_numpy())
    base = world.lots["base"].to_numpy()
    prefix = cat["prefix_int"].to_numpy()
    serial = base[packs["lot"].to_numpy()] + packs["offset"].to_numpy()
    pfx = prefix[packs["product"].to_numpy()]
    packs = packs.with_columns(
        prefix=pl.Series(pfx), serial=pl.Series(serial), check=pl.Series(check_digits(pfx,
                                                                                     serial))
    ).with_columns(code=trace_code_expr("prefix", "serial")).drop("prefix", "serial", "check")

    sales = _sale_records(world, lines, whole, split, packs)
    stock = _stock_records(world, packs, rng)
    return sales, stock


def _sale_records(world: World, lines: pl.DataFrame, whole: pl.DataFrame,
                  split: pl.DataFrame, packs: pl.DataFrame) -> pl.DataFrame:
    price = pl.Series(world.catalog["unit_price"].to_numpy())
    codes = packs.filter(pl.col("kind") < 2).select("inst", "product", "kind", "pack", "code",
                                                    "lot")
    w = (
        whole.select("line", "inst", "product", "pack", "k")
        .join(codes.filter(pl.col("kind") == 0), on=["inst", "product", "pack"])
        .sort("line", "k")
        .group_by("line", maintain_order=True)
        .agg(pl.col("code"), pl.col("lot").first())
    )
    s = split.select("line", "inst", "product", "pack", "n").join(
        codes.filter(pl.col("kind") == 1), on=["inst", "product", "pack"]
    ).select("line", "n", code=pl.concat_list("code"), lot="lot")
    coded = pl.concat([w.join(lines.select("line", "n"), on="line"), s.select([*w.columns, "n"])])
    out = lines.drop("n").join(coded, on="line").sort("line")
    return conform(
        out.select(
            key=pl.col("line"),
            infno=pl.lit("3505"),
            inst="inst",
            t_ev="t",
            product="product",
            lot="lot",
            codes="code",
            cnt=pl.when(pl.col("split")).then(pl.col("n")).otherwise(pl.col("n") * pl.col("P")),
            price=pl.col("product").replace_strict(
                np.arange(len(price), dtype=np.int32), price, return_dtype=pl.Float64),
            trdn=pl.when(pl.col("split")).then(pl.lit("1")).otherwise(pl.lit("0")),
            person="person",
            setl="setl",
            receipt="receipt",
            role=pl.lit("normal"),
        )
    )


def _stock_records(world: World, packs: pl.DataFrame, rng: np.random.Generator
                   ) -> pl.DataFrame:
    days = world.days
    # deliveries: about one every four days per drug and institution
    per = packs.group_by("inst", "product").agg(
        sold=(pl.col("kind") < 2).sum(), tot=pl.len()).sort("inst", "product")
    n_deliv = 1 + days // 4
    per = per.with_columns(
        B=pl.max_horizontal(pl.lit(3), (pl.col("sold") / n_deliv).ceil().cast(pl.Int64)))
    packs = packs.join(per, on=["inst", "product"]).with_columns(
        d=pl.min_horizontal(pl.col("local") // pl.col("B"),
                            (pl.max_horizontal(pl.col("sold"), 1) - 1) // pl.col("B")))
    deliv = (
        packs.group_by("inst", "product", "d")
        .agg(t_min=pl.col("t").min(), lot=pl.col("lot").first())
        .sort("inst", "product", "d")
    )
    n = deliv.height
    t_min = deliv["t_min"].to_numpy()
    lag = rng.integers(2 * 3600, 36 * 3600, n)
    t_arr = (t_min - lag) // DAY * DAY + rng.integers(8 * 3600, 11 * 3600, n)
    t_arr = np.where(t_arr >= t_min - 600, t_arr - DAY, t_arr)
    inv = (deliv["d"].to_numpy() == 0) | (t_arr < 3600) | (t_min >= NEVER)
    inst = deliv["inst"].to_numpy()
    flag = world.i_flagship[inst]
    transfer = ~inv & (flag >= 0) & (rng.random(n) < 0.5)
    t_flag_in = t_arr - rng.integers(2 * 3600, 20 * 3600, n)
    transfer &= t_flag_in >= 3600
    deliv = deliv.with_columns(
        t_arr=pl.Series(np.where(inv, 0, t_arr)),
        via=pl.Series(np.select([inv, transfer], ["inv", "transfer"], "purchase")),
        flag=pl.Series(flag),
        t_flag_in=pl.Series(t_flag_in),
        spler=pl.Series(np.array(data.SUPPLIERS)[rng.integers(0, len(data.SUPPLIERS), n)]),
    )
    # inventory deliveries are one snapshot record per (institution, drug)
    deliv = deliv.with_columns(
        grp=pl.when(pl.col("via") == "inv").then(-1).otherwise(pl.col("d")))
    codes = (
        packs.join(deliv.select("inst", "product", "d", "grp"), on=["inst", "product", "d"])
        .sort("inst", "product", "grp", "local")
        .group_by("inst", "product", "grp", maintain_order=True)
        .agg(pl.col("code"), n_codes=pl.len())
    )
    groups = (
        deliv.group_by("inst", "product", "grp", maintain_order=True)
        .agg(pl.all().first())
        .join(codes, on=["inst", "product", "grp"])
        .sort("inst", "product", "grp")
        .with_row_index("g")
        .with_columns(
            P=pl.col("product").replace_strict(
                np.arange(world.catalog.height, dtype=np.int32),
                pl.Series(world.catalog["pack_units"].to_numpy()), return_dtype=pl.Int64),
            buy=pl.col("product").replace_strict(
                np.arange(world.catalog.height, dtype=np.int32),
                pl.Series((world.catalog["unit_price"] * 0.82).round(4).to_numpy()),
                return_dtype=pl.Float64),
        )
        .with_columns(cnt=pl.col("n_codes") * pl.col("P"))
    )
    key = STOCK_KEY_BASE + pl.col("g") * 4
    common = dict(product="product", lot="lot", cnt="cnt", role=pl.lit("stock"))
    inv_rec = groups.filter(pl.col("via") == "inv").select(
        key=key, infno=pl.lit("3501"), inst="inst", t_ev=pl.lit(0, pl.Int64), codes="code",
        **common)
    bought = groups.filter(pl.col("via") == "purchase")
    moved = groups.filter(pl.col("via") == "transfer")
    purchase_in = pl.concat([
        bought.select(key=key, inst="inst", t_ev="t_arr", code="code", spler="spler",
                      buy="buy", **common),
        moved.select(key=key, inst="flag", t_ev="t_flag_in", code="code", spler="spler",
                     buy="buy", **common),
    ])
    recs = [
        inv_rec,
        purchase_in.select(key="key", infno=pl.lit("3502"), inst="inst", t_ev="t_ev",
                           codes="code", price="buy", trdn=pl.lit("0"),
                           chg_type=pl.lit("108"), **common),
        purchase_in.select(key=pl.col("key") + 1, infno=pl.lit("3503"), inst="inst",
                           t_ev="t_ev", price="buy", spler="spler", **common),
        moved.select(key=key + 2, infno=pl.lit("3502"), inst="flag",
                     t_ev=pl.col("t_arr") - 1800, codes="code", price="buy",
                     trdn=pl.lit("0"), chg_type=pl.lit("102"), **common),
        moved.select(key=key + 3, infno=pl.lit("3502"), inst="inst", t_ev="t_arr",
                     codes="code", price="buy", trdn=pl.lit("0"), chg_type=pl.lit("101"),
                     **common),
    ]
    return pl.concat([conform(r) for r in recs]).sort("key")
