"""Legitimate look-alikes and upload behaviour: nothing here may raise a lead.

Rates (share of sale records unless said otherwise):

- same-counter cancel and re-sale: 0.3% returned by a 3506 minutes later, 0.2% deleted by
  a 3507, and sold again (same code, new record) minutes after;
- customer returns a few days later: 0.2% (the box goes back on the shelf, unsold);
- 3507 corrections: 0.3% sent with a wrong price, deleted, and sent again right;
- re-sent records: 1% of every kind of record, minutes to hours later, same content;
- late uploads: 1.5% of institution-days uploaded the next night, 1% of records up to two
  days late;
- malformed lines: 0.1% of lines, corrupted copies of real lines (the original stands).

Split packs used up over many sales, travellers and busy pharmacies come from
``normal.py`` and ``world.py``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tracecode.simulate.normal import time_of_day
from tracecode.simulate.records import LOOKALIKE_KEY_BASE, conform
from tracecode.simulate.world import DAY, World

ROLES = ("", "cancel_return", "cancel_delete", "cust_return", "correct", "resend")
MALFORMED_KINDS = ("truncated", "bad_count", "no_body", "unknown_infno", "gbk", "not_object",
                   "codes_not_list", "bad_time", "empty")


def add_lookalikes(world: World, recs: pl.DataFrame, chunk: int,
                   rng: np.random.Generator) -> pl.DataFrame:
    """All versions of the chunk's normal records, with upload times, look-alikes and
    malformed copies."""
    keys = recs["key"].to_numpy()
    recs = recs.rechunk() if (keys[1:] > keys[:-1]).all() else recs.sort("key")
    n = recs.height
    is_sale = (recs["infno"] == "3505").to_numpy()
    whole = is_sale & (recs["trdn"] == "0").fill_null(False).to_numpy()
    t_ev = recs["t_ev"].to_numpy()
    inst = recs["inst"].to_numpy()
    # a same-counter cancel needs half an hour before closing
    tod = t_ev % DAY
    room = tod < world.i_close[inst] - 1800
    u = rng.random(n)
    role = np.zeros(n, dtype=np.int8)  # index into ROLES; 0: none
    role[whole & room & (u < 0.003)] = 1
    role[whole & room & (u >= 0.003) & (u < 0.005)] = 2
    role[whole & (u >= 0.005) & (u < 0.007)] = 3
    role[is_sale & (u >= 0.007) & (u < 0.010)] = 4
    role[(u >= 0.010) & (u < 0.020)] = 5

    # upload times: seconds after the event, some institution-days the next night,
    # some records up to two days late
    lag = rng.integers(1, 300, n)
    day = t_ev // DAY
    inst_day = inst * 100_003 + day
    late_days = np.unique(inst_day)
    late_days = late_days[rng.random(len(late_days)) < 0.015]
    batch = np.isin(inst_day, late_days) & (role == 0) & (t_ev > 0)
    t_up = t_ev + lag
    t_up = np.where(batch, (day + 1) * DAY + 3600 + rng.integers(0, 4 * 3600, n), t_up)
    late = (role == 0) & ~batch & (rng.random(n) < 0.01)
    t_up = np.where(late, t_ev + rng.integers(6 * 3600, 47 * 3600, n), t_up)
    recs = recs.with_columns(
        t_up=pl.Series(t_up),
        role=pl.when(pl.Series(role == 0)).then(pl.col("role")).otherwise(
            pl.Series(role).replace_strict(dict(enumerate(ROLES)), return_dtype=pl.Utf8)))

    out = [recs]
    nxt = LOOKALIKE_KEY_BASE + chunk * (1 << 30)

    def take(r: str) -> pl.DataFrame:
        return recs[np.flatnonzero(role == ROLES.index(r))]

    # cancel by return: 3506 naming the sale, then the same box sold again
    cr = take("cancel_return")
    k = cr.height
    if k:
        ret_t = cr["t_ev"].to_numpy() + rng.integers(60, 600, k)
        resale_t = ret_t + rng.integers(60, 600, k)
        keys = nxt + 2 * np.arange(k)
        nxt += 2 * k
        out.append(cr.with_columns(key=pl.Series(keys), infno=pl.lit("3506"),
                                   t_ev=pl.Series(ret_t),
                                   t_up=pl.Series(ret_t + rng.integers(1, 120, k)),
                                   ref_key=pl.col("key")))
        out.append(cr.with_columns(key=pl.Series(keys + 1), receipt=pl.Series(keys + 1),
                                   t_ev=pl.Series(resale_t),
                                   t_up=pl.Series(resale_t + rng.integers(1, 120, k))))
    # cancel by delete: 3507 of the sale, then the same box sold again
    cd = take("cancel_delete")
    k = cd.height
    if k:
        del_t = np.maximum(cd["t_up"].to_numpy(), cd["t_ev"].to_numpy() +
                           rng.integers(60, 600, k)) + 1
        resale_t = del_t + rng.integers(60, 600, k)
        keys = nxt + 2 * np.arange(k)
        nxt += 2 * k
        out.append(_deletes(cd, keys, del_t))
        out.append(cd.with_columns(key=pl.Series(keys + 1), receipt=pl.Series(keys + 1),
                                   t_ev=pl.Series(resale_t),
                                   t_up=pl.Series(resale_t + rng.integers(1, 120, k))))
    # a customer brings the box back a few days later
    rt = take("cust_return")
    if rt.height:
        day = rt["t_ev"].to_numpy() // DAY + rng.integers(1, 4, rt.height)
        rt = rt.filter(pl.Series(day < world.days))
        day = day[day < world.days]
        k = rt.height
        if k:
            t = day * DAY + time_of_day(world, rt["inst"].to_numpy(), rng)
            keys = nxt + np.arange(k)
            nxt += k
            out.append(rt.with_columns(key=pl.Series(keys), infno=pl.lit("3506"),
                                       t_ev=pl.Series(t),
                                       t_up=pl.Series(t + rng.integers(1, 300, k)),
                                       ref_key=pl.col("key")))
    # correction: first sent with a wrong price, deleted, sent again right
    co = take("correct")
    k = co.height
    if k:
        del_t = co["t_up"].to_numpy() + rng.integers(120, 3600, k)
        resend_t = del_t + rng.integers(60, 1800, k)
        keys = nxt + np.arange(k)
        nxt += k
        out[0] = recs.with_columns(
            price=pl.when(pl.Series(role == ROLES.index("correct")))
            .then((pl.col("price") * 10).round(4)).otherwise(pl.col("price")))
        out.append(_deletes(co, keys, del_t))
        out.append(co.with_columns(t_up=pl.Series(resend_t)))
    # re-sent: the same record again
    rs = take("resend")
    if rs.height:
        out.append(rs.with_columns(
            t_up=pl.col("t_up") + pl.Series(rng.integers(60, 4 * 3600, rs.height))))
    return pl.concat([conform(o) for o in out])


def _deletes(target: pl.DataFrame, keys: np.ndarray, t: np.ndarray) -> pl.DataFrame:
    return conform(
        pl.DataFrame(
            {
                "key": keys,
                "infno": "3507",
                "inst": target["inst"],
                "t_ev": t,
                "t_up": t,
                "ref_key": target["key"],
                "ref_type": "4",
                "role": target["role"],
            }
        )
    )


def malformed_copies(rows: pl.DataFrame, rng: np.random.Generator,
                     share: float = 0.001) -> pl.DataFrame:
    """Corrupted copies of a few lines (at least one of each kind), uploaded a second after
    the line they copy; the original line stands."""
    n = rows.height
    if n == 0:
        return rows.clear()
    k = min(n, max(len(MALFORMED_KINDS), round(n * share)))
    pick = np.sort(rng.choice(n, size=k, replace=False))
    kinds = np.array(MALFORMED_KINDS)[np.arange(k) % len(MALFORMED_KINDS)]
    rng.shuffle(kinds)
    src = rows[pick]
    infno = src["infno"].to_numpy()
    has_codes = np.isin(infno, ["3501", "3502", "3505", "3506"])
    # a kind that the line cannot show becomes a truncation
    kinds = np.where((kinds == "codes_not_list") & ~has_codes, "truncated", kinds)
    kinds = np.where((kinds == "bad_count") & (infno == "3507"), "truncated", kinds)
    return src.with_columns(bad=pl.Series(kinds), t_up=pl.col("t_up") + 1,
                            role=pl.lit("malformed"))
