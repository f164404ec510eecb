"""Normal buying: chronic refills at the usual pharmacy, acute purchases, travellers.

The output is a table of sale *lines* without codes (codes come from the stock, in
``stock.py``): ``receipt, inst, product, person, t, split, n, setl``. ``n`` is packs for a
whole-pack line and smallest units for a split (拆零) line.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tracecode.simulate.world import (
    ACUTE_RATE,
    CLINIC,
    DAY,
    HOSPITAL,
    PHARMACY,
    World,
    eligible,
)

HOUR_PROFILE = np.array(
    [
        # pharmacy: morning and evening peaks
        [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 3, 4, 4.5, 4, 3.5, 3, 3, 3.2, 3.5, 4, 4.5, 5,
         4.5, 3.5, 2, 0.8],
        # clinic: morning and afternoon sessions
        [0, 0, 0, 0, 0, 0, 0.2, 1, 4, 6, 6, 5, 2, 2, 4.5, 5, 4.5, 3, 2, 2, 1.5, 0.8, 0.2, 0],
        # hospital: outpatient hours, a thin night of emergencies
        [0.5, 0.3, 0.3, 0.3, 0.3, 0.5, 1, 3, 6, 7, 7, 5, 2, 2, 5, 5, 4, 2.5, 2, 1.5, 1.2, 1,
         0.8, 0.6],
    ]
)
# cumulative hour shares, as rng.choice(24, p=...) makes them (drawing through them
# directly gives the same hours, without choice's checks of p on every call)
HOUR_CDF = np.array([np.cumsum(HOUR_PROFILE[k] / HOUR_PROFILE[k].sum()) for k in range(3)])
HOUR_CDF /= HOUR_CDF[:, -1:]
WEEKDAY_WEIGHT = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 0.85])  # Monday first

LINE_COLUMNS = {
    "receipt": pl.Int64,
    "inst": pl.Int64,
    "product": pl.Int32,
    "person": pl.Int64,
    "t": pl.Int64,
    "split": pl.Boolean,
    "n": pl.Int64,
    "setl": pl.Utf8,
}


def time_of_day(world: World, inst: np.ndarray, rng: np.random.Generator,
                lo: int = 0, hi: int = DAY) -> np.ndarray:
    """Seconds after midnight for sales at ``inst``: the type's hourly profile, kept a
    minute inside the opening hours (and inside ``[lo, hi)``)."""
    itype = world.i_type[inst]
    n = len(inst)
    hour = np.empty(n, dtype=np.int64)
    for k in (PHARMACY, CLINIC, HOSPITAL):
        m = itype == k
        if size := int(m.sum()):
            hour[m] = HOUR_CDF[k].searchsorted(rng.random(size), side="right")
    s = hour * 3600 + rng.integers(0, 3600, n)
    first = np.maximum(world.i_open[inst] + 60, lo)
    last = np.minimum(world.i_close[inst] - 60, hi)
    outside = (s < first) | (s >= last)
    s = np.where(outside, first + (rng.random(n) * (last - first)).astype(np.int64), s)
    return s


def home_lines(world: World, chunk: int, rng: np.random.Generator) -> pl.DataFrame:
    """Sale lines of the people who live in ``chunk``'s regions, at their usual places."""
    rows = np.flatnonzero(world.p_chunk == chunk)
    rows = rows[np.isin(world.pa["kind"][rows], ["chronic", "acute"])]
    if len(rows) == 0:
        return _empty()
    kind = world.pa["kind"][rows]
    days = world.days
    start_weekday = world.start.weekday()
    day_w = WEEKDAY_WEIGHT[(start_weekday + np.arange(days)) % 7]

    # chronic refills: phase + k * interval, a day early or late
    chronic = kind == "chronic"
    interval = world.pa["interval"][rows]
    phase = world.pa["phase"][rows]
    n_ref = np.where(chronic, np.floor((days - phase) / interval).astype(np.int64) + 1, 0)
    who_c = np.repeat(np.arange(len(rows)), n_ref)
    k = np.arange(len(who_c)) - np.repeat(np.cumsum(n_ref) - n_ref, n_ref)
    day_c = np.floor(phase[who_c] + k * interval[who_c] + rng.integers(-1, 2, len(who_c)))
    day_c = np.clip(day_c, 0, days - 1).astype(np.int64)

    # acute purchases: at least one for acute-only buyers
    lam = ACUTE_RATE * days
    n_acute = rng.poisson(lam, len(rows))
    zero = (~chronic) & (n_acute == 0)
    while zero.any():
        n_acute[zero] = rng.poisson(lam, int(zero.sum()))
        n_acute[zero & (n_acute == 0) & (rng.random(len(rows)) < 0.5)] = 1
        zero = (~chronic) & (n_acute == 0)
    who_a = np.repeat(np.arange(len(rows)), n_acute)
    day_a = rng.choice(days, size=len(who_a), p=day_w / day_w.sum())

    who = np.concatenate([who_c, who_a])
    day = np.concatenate([day_c, day_a])
    is_chronic_event = np.concatenate([np.ones(len(who_c), bool), np.zeros(len(who_a), bool)])
    person = rows[who]

    # where: chronic at the usual pharmacy mostly; acute at the clinic or hospital often
    i1 = world.pa["inst1"][person]
    i2 = world.pa["inst2"][person]
    i3 = world.pa["inst3"][person]
    u = rng.random(len(person))
    inst = np.where(is_chronic_event,
                    np.select([u < 0.72, u < 0.87], [i1, i2], i3),
                    np.select([u < 0.45, u < 0.60], [i3, i2], i1))
    inst = np.where(inst < 0, i1, inst)

    keep = inst >= 0
    # nobody buys on or after their death; travellers buy away during their trip
    death = world.pa["death_date"][person]
    death_day = (death - np.datetime64(world.start, "D")).astype("timedelta64[D]").astype(
        np.int64)
    keep &= np.isnat(death) | (day < death_day)
    trav = world.pa["traveller"][person]
    t0 = world.pa["trip_start"][person]
    t1 = t0 + world.pa["trip_len"][person]
    keep &= ~(trav & (day >= t0) & (day < t1))
    # clinics are quieter on Sundays
    sunday = (start_weekday + day) % 7 == 6
    keep &= ~(sunday & (world.i_type[np.maximum(inst, 0)] == CLINIC) & (rng.random(len(day)) <
                                                                         0.4))
    person, day, inst, is_chronic_event = (person[keep], day[keep], inst[keep],
                                           is_chronic_event[keep])
    t = day * DAY + time_of_day(world, inst, rng)
    return _lines(world, rng, person, inst, t, is_chronic_event, receipt_base=chunk << 40)


def traveller_lines(world: World, rng: np.random.Generator) -> pl.DataFrame:
    """Purchases of travellers at a pharmacy of the city they visit, 09:00-20:00 on trip
    days, so that no two purchases in different cities come within hours."""
    trav = np.flatnonzero(world.pa["traveller"])
    if len(trav) == 0:
        return _empty()
    n = rng.integers(1, 3, len(trav))
    person = np.repeat(trav, n)
    t0 = world.pa["trip_start"][person]
    span = world.pa["trip_len"][person]
    day = t0 + rng.integers(0, 10**6, len(person)) % span
    death = world.pa["death_date"][person]
    death_day = (death - np.datetime64(world.start, "D")).astype("timedelta64[D]").astype(
        np.int64)
    keep = (day < world.days) & (np.isnat(death) | (day < death_day))
    person, day = person[keep], day[keep]
    inst = world.pa["away"][person]
    t = day * DAY + time_of_day(world, inst, rng, lo=9 * 3600, hi=20 * 3600)
    chronic = world.pa["kind"][person] == "chronic"
    return _lines(world, rng, person, inst, t, chronic & (rng.random(len(person)) < 0.5),
                  receipt_base=(world.n_chunks + 1) << 40)


def _lines(world: World, rng: np.random.Generator, person: np.ndarray, inst: np.ndarray,
           t: np.ndarray, chronic_event: np.ndarray, receipt_base: int) -> pl.DataFrame:
    """Expand purchase events into sale lines: what, how much, whole or split."""
    cat = world.catalog
    n_ev = len(person)
    receipt = receipt_base + np.arange(n_ev)
    fund = rng.random(n_ev) < 0.85  # mdtrt_setl_type 1 (the fund pays), else 2

    # chronic events buy each of the person's chronic drugs
    chron = np.stack([world.pa[f"chronic{j}"][person] for j in (1, 2, 3)], axis=1)
    chron = np.where(chronic_event[:, None], chron, -1)
    # acute events buy one or two drugs of the acute lists
    kind = cat["kind"].to_numpy()
    pool = np.flatnonzero((kind == "acute") | (kind == "hospital"))
    w = cat["popularity"].to_numpy()[pool].astype(float)
    acute = pool[rng.choice(len(pool), size=(n_ev, 2), p=w / w.sum())]
    acute[:, 1] = np.where(rng.random(n_ev) < 0.3, acute[:, 1], -1)
    acute = np.where(chronic_event[:, None], -1, acute)
    acute[:, 1] = np.where(acute[:, 1] == acute[:, 0], -1, acute[:, 1])
    prod = np.concatenate([chron, acute], axis=1)
    ev = np.repeat(np.arange(n_ev), prod.shape[1])
    prod = prod.ravel()
    keep = prod >= 0
    ev, prod = ev[keep], prod[keep]

    # drugs the person may not take, or hospital drugs at a pharmacy, are not bought
    male = world.pa["male"][person[ev]]
    birth = world.pa["birth_date"][person[ev]]
    age_lo = (np.datetime64(world.start, "D") - birth).astype(np.int64) / 365.25
    ok = eligible(cat, prod, male, age_lo, age_lo + world.days / 365.25 + 1)
    itype = world.i_type[inst[ev]]
    ok &= ~((kind == "hospital")[prod] & (itype == PHARMACY))
    ev, prod = ev[ok], prod[ok]

    units = cat["pack_units"].to_numpy()[prod]
    dose = cat["split_dose"].to_numpy()[prod]
    expensive = (kind == "expensive")[prod] | (units == 1)
    packs = np.where(expensive, rng.choice([1, 2], len(prod), p=[0.9, 0.1]),
                     rng.choice([1, 2, 3], len(prod), p=[0.8, 0.17, 0.03]))
    # clinics and hospitals split packs (拆零): a dose or two from an opened box
    can_split = (world.i_type[inst[ev]] != PHARMACY) & (dose > 0)
    split = can_split & (rng.random(len(prod)) < np.where((kind == "chronic")[prod], 0.5, 0.8))
    split_units = np.minimum(dose * rng.choice([1, 2], len(prod), p=[0.7, 0.3]), units)
    n = np.where(split, split_units, packs)
    return pl.DataFrame(
        {
            "receipt": receipt[ev],
            "inst": inst[ev],
            "product": prod.astype(np.int32),
            "person": person[ev],
            "t": t[ev],
            "split": split,
            "n": n.astype(np.int64),
            "setl": pl.select(pl.when(pl.Series(fund[ev])).then(pl.lit("1"))
                              .otherwise(pl.lit("2"))).to_series(),
        },
        schema=LINE_COLUMNS,
    )


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=LINE_COLUMNS)
