"""Planted frauds, one small scene per case, each with its subject in the truth.

Every scene makes its own codes (from the upper half of the selling institution's own
lot, which normal stock never reaches) and its own stock records, so that a scene shows
its category's signal and, as far as the world allows, no other:

- a fraudulent sale that needs a box in stock gets a purchase-in (3502 108 + 3503) before
  it, so ``no_inbound`` stays quiet;
- where a scene must sell a box that was never in the shop (re-sold reflux boxes),
  at most two such boxes land at one shop, under the ``no_inbound`` threshold of five;
- the people a scene uses buy at one to three shops of one city, within opening hours,
  are alive and may take the drug, unless that is the fraud.

Scenes loop once per planted case (a few hundred at most); nothing loops per normal
record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tracecode.simulate import data
from tracecode.simulate.ids import check_digits, trace_codes
from tracecode.simulate.normal import time_of_day
from tracecode.simulate.records import FRAUD_KEY_BASE, RECORD_SCHEMA, join_codes
from tracecode.simulate.world import (
    ACUTE,
    CLINIC,
    DAY,
    DORMANT,
    HOSPITAL,
    PHARMACY,
    World,
    drug_limits,
    eligible,
)

log = logging.getLogger(__name__)

# members: for a ring, its institutions (';'-joined); empty otherwise
TRUTH_SCHEMA = {"category": pl.Utf8, "subject_type": pl.Utf8, "subject_id": pl.Utf8,
                "note": pl.Utf8, "members": pl.Utf8}
SUBJECT_TYPE = {
    **dict.fromkeys(
        ("dup_same_institution", "dup_cross_long_gap", "dup_cross_short_gap", "split_overdraw",
         "return_resold", "reflux_inbound", "unknown_code", "lot_expiry_mismatch",
         "expired_sale", "product_mismatch"), "code"),
    **dict.fromkeys(
        ("deceased_person", "identity_mismatch", "impossible_travel", "demographic_mismatch",
         "card_hopping", "anomaly_person"), "person"),
    **dict.fromkeys(("no_inbound", "off_hours_burst", "anomaly_institution", "ring"),
                    "institution"),
}
# a shop may sell at most this many boxes it never had, over all scenes
UNSTOCKED_CAP = 2
COMMON_DRUGS = ("阿托伐他汀钙片", "苯磺酸氨氯地平片", "复方阿胶浆", "阿莫西林胶囊",
                "连花清瘟胶囊", "蒙脱石散", "甲钴胺片")


class SkipScene(Exception):
    """The world has no room for this scene (too few days, shops or people)."""


@dataclass
class Planner:
    world: World
    rng: np.random.Generator
    rows: list[dict] = field(default_factory=list)
    truth: list[dict] = field(default_factory=list)
    next_key: int = FRAUD_KEY_BASE

    def __post_init__(self) -> None:
        w = self.world
        p = w.persons
        self.days = w.days
        self.kind = w.pa["kind_id"]  # index into PERSON_KINDS
        self.used = np.zeros(p.height, dtype=bool)  # people a scene already used
        self.exclusive = np.zeros(w.inst.height, dtype=bool)  # shops that are a subject
        self.involved = np.zeros(w.inst.height, dtype=bool)  # shops any scene used
        self.unstocked = np.zeros(w.inst.height, dtype=np.int64)  # boxes sold never stocked
        self.of_types: dict[tuple[int, ...], np.ndarray] = {}
        self.limits = drug_limits(w.catalog)
        self.male = w.pa["male"]
        self.age = w.pa["age"]
        # adults well past 18, so that any adult-only drug suits them
        self.dormant_pool = np.flatnonzero((self.kind == DORMANT) & (self.age >= 20))
        self.death_day = w.pa["death_day"]
        self.region = w.pa["region"]
        self.p_city = w.regions["city"].to_numpy()[self.region]
        self.p_gd = (w.regions["province"] == "44").to_numpy()[self.region]
        self.traveller = w.pa["traveller"]
        self.inst_of = np.stack([w.pa["inst1"], w.pa["inst2"], w.pa["inst3"]], axis=1)
        self.dead_pool = np.flatnonzero((self.death_day < w.days) & (self.age >= 30)
                                        & ~self.traveller & (self.inst_of[:, 0] >= 0))
        self.i_code = w.inst["fixmedins_code"].to_numpy()
        self.i_name = w.inst["fixmedins_name"].to_numpy()
        self.gd = (w.inst["admdvs"].str.slice(0, 2) == "44").to_numpy()
        cat = w.catalog
        self.drug = {n: i for i, n in enumerate(cat["drug_name"].to_list())}
        self.units = cat["pack_units"].to_numpy()
        self.price = cat["unit_price"].to_numpy()
        self.prefix = cat["prefix_int"].to_numpy()
        self.psn_no = p["psn_no"]
        self.certno = p["certno"]
        # regular customers of each institution (alive, not travelling)
        regular = (self.kind <= ACUTE) & ~self.traveller & (
            self.death_day > w.days + 1)
        who = np.repeat(np.arange(len(self.kind)), 3)
        where = self.inst_of.ravel()
        ok = (where >= 0) & np.repeat(regular, 3)
        # (institution, person) pairs are unique: sorted as one number, by institution
        # then person
        pairs = np.sort(where[ok] * len(self.kind) + who[ok])
        self.cust_inst, self.cust_who = np.divmod(pairs, len(self.kind))

    # -- people -------------------------------------------------------------------------

    def gd_person(self, c: np.ndarray) -> np.ndarray:
        return self.p_gd[c]

    def customers(self, inst: int) -> np.ndarray:
        c = self._all_customers(inst)
        return c[~self.used[c]]

    def may_take(self, person: int, drug: int) -> bool:
        return bool(self.may_take_all(np.array([person]), drug)[0])

    def may_take_all(self, people: np.ndarray, drug: int) -> np.ndarray:
        a = self.age[people]
        return eligible(self.limits, np.full(len(people), drug), self.male[people], a,
                        a + self.days / 365.25 + 1)

    def dormant(self, where: Callable[[np.ndarray], np.ndarray] | None = None,
                drug: int | None = None) -> int:
        """An unused dormant person (buys nothing normally) meeting ``where``."""
        cand = self.dormant_pool[~self.used[self.dormant_pool]]
        if len(cand) > 5000:  # a random few thousand are plenty to choose from
            pick = np.sort(self.rng.integers(0, len(cand), 5000))
            cand = cand[pick[np.concatenate([[True], pick[1:] != pick[:-1]])]]
        if where is not None:
            cand = cand[where(cand)]
        if drug is not None:
            cand = cand[self.may_take_all(cand, drug)]
        if len(cand) == 0:
            raise SkipScene("no dormant person left")
        person = int(cand[self.rng.integers(0, len(cand))])
        self.used[person] = True
        return person

    def buyer(self, inst: int, drug: int, reuse: bool = False) -> int:
        """A regular customer of ``inst`` who may take ``drug``; else a dormant local."""
        cust = self.customers(inst) if not reuse else self._all_customers(inst)
        cust = cust[self.may_take_all(cust, drug)]
        if len(cust):
            return int(cust[self.rng.integers(0, len(cust))])
        region = self.world.i_region[inst]
        return self.dormant(lambda c: self.region[c] == region, drug)

    def _all_customers(self, inst: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.cust_inst, [inst, inst + 1])
        return self.cust_who[lo:hi]  # sorted, each person once

    # -- shops --------------------------------------------------------------------------

    def shop(self, types: tuple[int, ...] = (PHARMACY,), *, gd: bool | None = True,
             hours: bool | None = None, exclusive: bool = False,
             where: Callable[[np.ndarray], np.ndarray] | None = None,
             unstocked: int = 0) -> int:
        w = self.world
        if types not in self.of_types:
            self.of_types[types] = np.flatnonzero(np.isin(w.i_type, types))
        cand = self.of_types[types]
        if gd is not None:
            cand = cand[self.gd[cand] == gd]
        if hours is not None:
            cand = cand[w.i_has_hours[cand] == hours]
        if where is not None:
            cand = cand[where(cand)]
        cand = cand[~self.exclusive[cand]]
        if unstocked:
            cand = cand[self.unstocked[cand] + unstocked <= UNSTOCKED_CAP]
        if len(cand) == 0:
            raise SkipScene("no institution fits")
        # prefer shops no scene used yet (a fraud's subject shop: only those)
        fresh = cand[~self.involved[cand]]
        pool = fresh if len(fresh) else cand
        inst = int(pool[self.rng.integers(0, len(pool))])
        self.involved[inst] = True
        if exclusive:
            self.exclusive[inst] = True
        if unstocked:
            self.unstocked[inst] += unstocked
        return inst

    def when(self, inst: int, day: int, lo: int = 0, hi: int = DAY) -> int:
        return int(day * DAY + time_of_day(self.world, np.array([inst]), self.rng, lo, hi)[0])

    # -- records ------------------------------------------------------------------------

    def key(self) -> int:
        self.next_key += 1
        return self.next_key

    def codes(self, drug: int, inst: int, n: int) -> tuple[list[str], int]:
        lot = int(self.world.normal_lot(np.array([drug]), np.array([inst]))[0])
        serials = self.world.take_fraud_serials(lot, n)
        return trace_codes(np.full(n, self.prefix[drug]), serials), lot

    def stock_in(self, inst: int, drug: int, lot: int, codes: list[str], t: int,
                 chg_type: str = "108", shady: bool = False) -> None:
        """Codes into ``inst``'s stock at ``t``: a purchase (108 with its 3503) or another
        inbound."""
        t = max(30, int(t))
        cnt = len(codes) * int(self.units[drug])
        buy = round(float(self.price[drug]) * 0.82, 4)
        suppliers = data.SHADY_SUPPLIERS if shady else data.SUPPLIERS
        spler = suppliers[int(self.rng.integers(0, len(suppliers)))]
        base = dict(inst=inst, t_ev=t, t_up=t + int(self.rng.integers(5, 600)), product=drug,
                    lot=lot, cnt=cnt, price=buy, role="fraud")
        self.rows.append(dict(base, key=self.key(), infno="3502", codes=list(codes), trdn="0",
                              chg_type=chg_type))
        if chg_type == "108":
            self.rows.append(dict(base, key=self.key(), infno="3503", spler=spler))

    def sell(self, inst: int, drug: int, lot: int, codes: list[str], t: int, person: int, *,
             units: int | None = None, billed: int | None = None, setl: str | None = None,
             psn_no: str | None = None, certno: str | None = None,
             psn_name: str | None = None) -> int:
        """A 3505 sale; whole packs unless ``units`` (a split sale of one code)."""
        billed = drug if billed is None else billed
        k = self.key()
        if units is None:
            cnt, trdn = len(codes) * int(self.units[billed]), "0"
        else:
            cnt, trdn = units, "1"
        if setl is None:
            setl = "1" if self.rng.random() < 0.9 else "2"
        self.rows.append(dict(
            key=k, infno="3505", inst=inst, t_ev=int(t), t_up=int(t) +
            int(self.rng.integers(5, 300)), product=billed, lot=lot, codes=list(codes),
            cnt=cnt, price=float(self.price[billed]), trdn=trdn, person=person, psn_no=psn_no,
            certno=certno, psn_name=psn_name, setl=setl, receipt=k, role="fraud"))
        return k

    def give_back(self, sale_key: int, t: int) -> None:
        """A 3506 returning the whole of sale ``sale_key``."""
        sale = next(r for r in self.rows if r["key"] == sale_key)
        self.rows.append(dict(sale, key=self.key(), infno="3506", t_ev=int(t),
                              t_up=int(t) + int(self.rng.integers(5, 300)), ref_key=sale_key))

    def plant(self, category: str, subject: str, note: str, members: str | None = None) -> None:
        self.truth.append(dict(category=category, subject_type=SUBJECT_TYPE[category],
                               subject_id=subject, note=note, members=members))

    def label(self, inst: int) -> str:
        return f"{self.i_name[inst]} ({self.i_code[inst]})"

    def any_day(self, last_margin: int = 0) -> int:
        return int(self.rng.integers(0, max(1, self.days - last_margin)))

    def pick_drug(self, names: tuple[str, ...] = COMMON_DRUGS) -> int:
        return self.drug[names[int(self.rng.integers(0, len(names)))]]


# -- scenes, one function per category ---------------------------------------------------


def dup_same_institution(pl_: Planner) -> None:
    """One box settled again and again at one clinic (the 复方阿胶浆 case: up to 60)."""
    inst = pl_.shop((CLINIC, HOSPITAL, PHARMACY), gd=None)
    drug = pl_.pick_drug(("复方阿胶浆", "阿托伐他汀钙片", "甘精胰岛素注射液", "苯磺酸氨氯地平片"))
    (code,), lot = pl_.codes(drug, inst, 1)
    times = int(pl_.rng.integers(3, min(60, 3 + 3 * pl_.days) + 1))
    sales = sorted(pl_.when(inst, pl_.any_day()) for _ in range(times))
    pl_.stock_in(inst, drug, lot, [code], sales[0] - int(pl_.rng.integers(3600, 30 * 3600)))
    for t in sales:
        pl_.sell(inst, drug, lot, [code], t, pl_.buyer(inst, drug, reuse=True))
    pl_.plant("dup_same_institution", code,
              f"one box sold {times} times at {pl_.label(inst)}")


def dup_cross_long_gap(pl_: Planner) -> None:
    """A box dispensed in Guangdong, re-sold weeks later across a province border (the
    Ulanqab case: 30 and 68 days after the first sale)."""
    if pl_.days < 9:
        # two net sales more than cross_gap_days (7) apart, each a day inside the window:
        # a 7-day history cannot hold them (the first sale would have to predate it)
        raise SkipScene("needs 9 days of history: its two sales are more than 7 days apart")
    a = pl_.shop((PHARMACY, CLINIC), gd=True)
    drug = pl_.pick_drug(("复方阿胶浆", "阿托伐他汀钙片", "硫酸氢氯吡格雷片", "甘精胰岛素注射液"))
    (code,), lot = pl_.codes(drug, a, 1)
    gaps = [30, 68] if pl_.days > 70 else [int(pl_.rng.integers(8, pl_.days))]
    d0 = int(pl_.rng.integers(0, pl_.days - max(gaps)))
    t0 = pl_.when(a, d0)
    pl_.stock_in(a, drug, lot, [code], t0 - int(pl_.rng.integers(3600, 30 * 3600)))
    pl_.sell(a, drug, lot, [code], t0, pl_.buyer(a, drug))
    resold_at: list[int] = []
    for gap in gaps:
        b = pl_.shop((PHARMACY,), gd=False, unstocked=1,
                     where=lambda c: ~np.isin(c, resold_at))
        resold_at.append(b)
        pl_.sell(b, drug, lot, [code], pl_.when(b, d0 + gap), pl_.buyer(b, drug))
    shops = ", ".join(pl_.label(b) for b in resold_at)
    pl_.plant("dup_cross_long_gap", code,
              f"sold at {pl_.label(a)}, re-sold {'/'.join(map(str, gaps))} days later at "
              f"{shops}")


def dup_cross_short_gap(pl_: Planner) -> None:
    """A code copied onto fake boxes: sold at three shops within two days. The fakes were
    bought in (from a dubious wholesaler) before any of the sales."""
    shops: list[int] = []
    for _ in range(3):
        shops.append(pl_.shop((PHARMACY,), gd=True, where=lambda c: ~np.isin(c, shops)))
    drug = pl_.pick_drug(("阿托伐他汀钙片", "苯磺酸氨氯地平片", "硫酸氢氯吡格雷片",
                          "瑞舒伐他汀钙片"))
    (code,), lot = pl_.codes(drug, shops[0], 1)
    span_days = min(1, pl_.days - 1)
    d0 = int(pl_.rng.integers(0, pl_.days - span_days))
    t_sales = [pl_.when(s, d0 + int(pl_.rng.integers(0, span_days + 1))) for s in shops]
    first = min(t_sales)
    for i, s in enumerate(shops):
        pl_.stock_in(s, drug, lot, [code], first - int(pl_.rng.integers(600, 20 * 3600)),
                     shady=i > 0)
        pl_.sell(s, drug, lot, [code], t_sales[i], pl_.buyer(s, drug))
    pl_.plant("dup_cross_short_gap", code,
              "sold at " + ", ".join(pl_.label(s) for s in shops) + " within "
              f"{(max(t_sales) - first) / 3600:.0f} hours")


def split_overdraw(pl_: Planner) -> None:
    """A split box dispensed for far more units than it holds."""
    inst = pl_.shop((CLINIC, HOSPITAL), gd=None)
    drug = pl_.pick_drug(("阿莫西林胶囊", "左甲状腺素钠片", "头孢克肟分散片", "蒙脱石散",
                          "注射用头孢曲松钠"))
    (code,), lot = pl_.codes(drug, inst, 1)
    pack = int(pl_.units[drug])
    dose = int(pl_.world.catalog["split_dose"][drug])
    target = int(pack * pl_.rng.uniform(1.5, 3.0))
    n = max(2, -(-target // dose))
    times = sorted(pl_.when(inst, pl_.any_day()) for _ in range(n))
    pl_.stock_in(inst, drug, lot, [code], times[0] - int(pl_.rng.integers(3600, 30 * 3600)))
    for t in times:
        pl_.sell(inst, drug, lot, [code], t, pl_.buyer(inst, drug, reuse=True), units=dose)
    pl_.plant("split_overdraw", code,
              f"{n * dose} units split-sold from a box of {pack} at {pl_.label(inst)}")


def return_resold(pl_: Planner) -> None:
    """A clinic's settled drugs 'returned', then sold by a pharmacy of the same city (the
    Xining case). The pharmacy never had them in stock."""
    clinic = pl_.shop((CLINIC, HOSPITAL), gd=True)
    city = pl_.world.i_city[clinic]
    n = int(pl_.rng.integers(1, UNSTOCKED_CAP + 1))
    shop = pl_.shop((PHARMACY,), gd=True, unstocked=n,
                    where=lambda c: pl_.world.i_city[c] == city)
    drug = pl_.pick_drug(("复方阿胶浆", "甘精胰岛素注射液", "阿托伐他汀钙片", "瑞舒伐他汀钙片"))
    codes, lot = pl_.codes(drug, clinic, n)
    last = pl_.days - 1
    d_sale = int(pl_.rng.integers(0, max(1, last - 1)))
    d_ret = min(last, d_sale + int(pl_.rng.integers(0, 2)))
    d_resale = min(last, d_ret + int(pl_.rng.integers(1, 4)))
    t_sale = pl_.when(clinic, d_sale, hi=12 * 3600)
    t_ret = max(t_sale + 1800, pl_.when(clinic, d_ret, lo=12 * 3600, hi=15 * 3600))
    t_resale = max(t_ret + 3600, pl_.when(shop, d_resale, lo=16 * 3600))
    pl_.stock_in(clinic, drug, lot, codes, t_sale - int(pl_.rng.integers(3600, 30 * 3600)))
    k = pl_.sell(clinic, drug, lot, codes, t_sale, pl_.buyer(clinic, drug))
    pl_.give_back(k, t_ret)
    pl_.sell(shop, drug, lot, codes, t_resale, pl_.buyer(shop, drug))
    for c in codes:
        pl_.plant("return_resold", c,
                  f"returned at {pl_.label(clinic)}, re-sold at {pl_.label(shop)}")


def reflux_inbound(pl_: Planner) -> None:
    """Boxes dispensed to patients, bought back from them and taken into a shop's stock."""
    a = pl_.shop((PHARMACY, CLINIC), gd=True)
    city = pl_.world.i_city[a]
    b = a if pl_.rng.random() < 0.3 else pl_.shop(
        (PHARMACY,), gd=True, where=lambda c: pl_.world.i_city[c] == city)
    drug = pl_.pick_drug(("甘精胰岛素注射液", "司美格鲁肽注射液", "复方阿胶浆", "利拉鲁肽注射液"))
    n = int(pl_.rng.integers(1, 4))
    codes, lot = pl_.codes(drug, a, n)
    d = int(pl_.rng.integers(0, pl_.days))
    t_sale = pl_.when(a, d, hi=14 * 3600)
    pl_.stock_in(a, drug, lot, codes, t_sale - int(pl_.rng.integers(3600, 30 * 3600)))
    pl_.sell(a, drug, lot, codes, t_sale, pl_.buyer(a, drug))
    d_in = min(pl_.days - 1, d + int(pl_.rng.integers(0, 6)))
    t_in = max(t_sale + 3600, pl_.when(b, d_in, lo=15 * 3600))
    chg = "108" if pl_.rng.random() < 0.6 else "106"
    pl_.stock_in(b, drug, lot, codes, t_in, chg_type=chg, shady=True)
    for c in codes:
        pl_.plant("reflux_inbound", c,
                  f"sold at {pl_.label(a)}, taken into stock ({chg}) at {pl_.label(b)}")


def unknown_code(pl_: Planner) -> None:
    """A box whose code no manufacturer activated (or that is not even 20 digits), bought
    in with genuine boxes and sold."""
    inst = pl_.shop((PHARMACY,), gd=True)
    drug = pl_.pick_drug()
    good, lot = pl_.codes(drug, inst, int(pl_.rng.integers(2, 6)))
    serial = pl_.world.free_serial(drug, pl_.rng)
    check = int(check_digits(np.array([pl_.prefix[drug]]), np.array([serial]))[0])
    if pl_.rng.random() < 0.7:
        bad, how = f"{pl_.prefix[drug]}{serial:09d}{check:04d}", "never activated"
    else:
        bad, how = f"{pl_.prefix[drug]}{serial:09d}{check % 1000:03d}", "19 digits"
    d = pl_.any_day()
    t = pl_.when(inst, d)
    pl_.stock_in(inst, drug, lot, [bad, *good], t - int(pl_.rng.integers(3600, 30 * 3600)),
                 shady=True)
    pl_.sell(inst, drug, lot, [bad], t, pl_.buyer(inst, drug))
    pl_.plant("unknown_code", bad, f"{how}, sold at {pl_.label(inst)}")


def lot_expiry_mismatch(pl_: Planner) -> None:
    """A sale that reports another lot (and its expiry) than the code was activated with."""
    inst = pl_.shop((PHARMACY,), gd=True)
    drug = pl_.pick_drug()
    (code,), lot = pl_.codes(drug, inst, 1)
    lots = pl_.world.lots
    others = np.flatnonzero((lots["product"].to_numpy() == drug)
                            & (lots["kind"].to_numpy() == "normal"))
    others = others[lots["manu_lotnum"].to_numpy()[others] != lots["manu_lotnum"][lot]]
    printed = int(others[pl_.rng.integers(0, len(others))])
    t = pl_.when(inst, pl_.any_day())
    pl_.stock_in(inst, drug, lot, [code], t - int(pl_.rng.integers(3600, 30 * 3600)))
    pl_.sell(inst, drug, printed, [code], t, pl_.buyer(inst, drug))
    pl_.plant("lot_expiry_mismatch", code,
              f"activated in lot {lots['manu_lotnum'][lot]}, sold as lot "
              f"{lots['manu_lotnum'][printed]} at {pl_.label(inst)}")


def expired_sale(pl_: Planner) -> None:
    """An expired box sold from old stock, or a box sold before its lot was made."""
    inst = pl_.shop((PHARMACY, CLINIC), gd=True)
    drug = pl_.pick_drug()
    kind = "expired" if pl_.rng.random() < 0.6 else "future"
    lot = pl_.world.special_lot(drug, kind)
    serials = pl_.world.take_fraud_serials(lot, int(pl_.rng.integers(1, 4)))
    codes = trace_codes(np.full(len(serials), pl_.prefix[drug]), serials)
    t = pl_.when(inst, pl_.any_day())
    if kind == "expired":  # old stock, in the inventory snapshot
        pl_.rows.append(dict(key=pl_.key(), infno="3501", inst=inst, t_ev=0,
                             t_up=int(pl_.rng.integers(600, 7200)), product=drug, lot=lot,
                             codes=codes, cnt=len(codes) * int(pl_.units[drug]), role="fraud"))
    else:
        pl_.stock_in(inst, drug, lot, codes, t - int(pl_.rng.integers(3600, 30 * 3600)),
                     shady=True)
    pl_.sell(inst, drug, lot, codes[:1], t, pl_.buyer(inst, drug))
    lots = pl_.world.lots
    what = (f"expired {lots['expy_end'][lot]}" if kind == "expired"
            else f"made {lots['manu_date'][lot]}")
    pl_.plant("expired_sale", codes[0],
              f"lot {lots['manu_lotnum'][lot]} {what}, sold at {pl_.label(inst)}")


def product_mismatch(pl_: Planner) -> None:
    """A cheap box dispensed and a dear drug billed (串换)."""
    inst = pl_.shop((PHARMACY,), gd=True)
    cheap = pl_.pick_drug(("阿莫西林胶囊", "蒙脱石散", "连花清瘟胶囊", "甲钴胺片"))
    dear = pl_.pick_drug(("复方阿胶浆", "沙美特罗替卡松吸入粉雾剂", "甘精胰岛素注射液"))
    (code,), lot = pl_.codes(cheap, inst, 1)
    t = pl_.when(inst, pl_.any_day())
    pl_.stock_in(inst, cheap, lot, [code], t - int(pl_.rng.integers(3600, 30 * 3600)))
    person = pl_.buyer(inst, dear)
    pl_.sell(inst, cheap, lot, [code], t, person, billed=dear)
    names = pl_.world.catalog["drug_name"]
    pl_.plant("product_mismatch", code,
              f"box of {names[cheap]} billed as {names[dear]} at {pl_.label(inst)}")


def deceased_person(pl_: Planner) -> None:
    """A dead person's card still swiped at his usual pharmacy."""
    # sales from the day after the death: a sale on the day of death is no evidence
    dead = pl_.dead_pool[~pl_.used[pl_.dead_pool] & (pl_.death_day[pl_.dead_pool] < pl_.days - 1)]
    if len(dead) == 0:
        raise SkipScene("nobody died")
    person = int(dead[pl_.rng.integers(0, len(dead))])
    pl_.used[person] = True
    inst = int(pl_.inst_of[person, 0])
    pl_.involved[inst] = True
    chronic = int(pl_.world.persons["chronic1"][person])
    drug = chronic if chronic >= 0 else pl_.drug["阿托伐他汀钙片"]
    if not pl_.may_take(person, drug):
        drug = pl_.drug["阿托伐他汀钙片"]
    first = max(0, int(pl_.death_day[person]) + 1)
    n = int(pl_.rng.integers(1, 5))
    codes, lot = pl_.codes(drug, inst, n)
    times = sorted(pl_.when(inst, int(pl_.rng.integers(first, pl_.days))) for _ in range(n))
    pl_.stock_in(inst, drug, lot, codes, times[0] - int(pl_.rng.integers(3600, 30 * 3600)))
    for c, t in zip(codes, times, strict=True):
        pl_.sell(inst, drug, lot, [c], t, person, setl="1")
    pl_.plant("deceased_person", str(pl_.psn_no[person]),
              f"died {pl_.world.persons['death_date'][person]}, {n} sales after at "
              f"{pl_.label(inst)}")


def identity_mismatch(pl_: Planner) -> None:
    """A son drawing drugs on his mother's insurance with his own ID; or an ID number that
    cannot exist."""
    if pl_.rng.random() < 0.65:
        mother = pl_.dormant(lambda c: (~pl_.male[c]) & (pl_.age[c] >= 60) & pl_.gd_person(c))
        region = pl_.region[mother]
        son = pl_.dormant(lambda c: pl_.male[c] & (pl_.age[c] >= 25) & (pl_.age[c] <= 50)
                          & (pl_.region[c] == region))
        holder, certno, how = mother, str(pl_.certno[son]), "mother's card, son's ID"
        note_extra = f" (ID {certno} is {pl_.psn_no[son]}'s)"
    else:
        holder = pl_.dormant(pl_.gd_person)
        good = str(pl_.certno[holder])
        wrong = "10X98765432"[("10X98765432".index(good[-1]) + 3) % 11]
        certno, how, note_extra = good[:17] + wrong, "ID with a wrong check character", ""
    region = pl_.region[holder]
    shops = [pl_.shop((PHARMACY,), where=lambda c: pl_.world.i_region[c] == region)]
    if pl_.rng.random() < 0.5:
        shops.append(pl_.shop((PHARMACY,), where=lambda c: (pl_.world.i_region[c] == region)
                              & ~np.isin(c, shops)))
    drug = pl_.pick_drug(("阿托伐他汀钙片", "苯磺酸氨氯地平片", "复方阿胶浆", "甲钴胺片"))
    for i in range(int(pl_.rng.integers(2, 5))):
        s = shops[i % len(shops)]
        (code,), lot = pl_.codes(drug, s, 1)
        t = pl_.when(s, pl_.any_day())
        pl_.stock_in(s, drug, lot, [code], t - int(pl_.rng.integers(3600, 30 * 3600)))
        pl_.sell(s, drug, lot, [code], t, holder, certno=certno, setl="1")
    pl_.plant("identity_mismatch", str(pl_.psn_no[holder]), how + note_extra)


def impossible_travel(pl_: Planner) -> None:
    """One card used in two cities an hour or two apart."""
    person = pl_.dormant(pl_.gd_person)
    region = pl_.region[person]
    home = pl_.shop((PHARMACY,), hours=None, where=lambda c: pl_.world.i_region[c] == region)
    city = pl_.world.i_city[home]
    away = pl_.shop((PHARMACY,), gd=True, where=lambda c: pl_.world.i_city[c] != city)
    d = pl_.any_day()
    t1 = pl_.when(home, d, lo=10 * 3600, hi=16 * 3600)
    t2 = t1 + int(pl_.rng.integers(20 * 60, 150 * 60))
    for s, t, names in ((home, t1, ("阿托伐他汀钙片", "苯磺酸氨氯地平片")),
                        (away, t2, ("布洛芬缓释胶囊", "连花清瘟胶囊", "氯雷他定片"))):
        drug = pl_.pick_drug(names)
        (code,), lot = pl_.codes(drug, s, 1)
        pl_.stock_in(s, drug, lot, [code], t - int(pl_.rng.integers(3600, 30 * 3600)))
        pl_.sell(s, drug, lot, [code], t, person, setl="1")
    pl_.plant("impossible_travel", str(pl_.psn_no[person]),
              f"bought at {pl_.label(home)} and {(t2 - t1) // 60} minutes later at "
              f"{pl_.label(away)}")


def demographic_mismatch(pl_: Planner) -> None:
    """A drug the buyer cannot be taking: a man's progesterone, a child's antibiotic for
    adults, a pensioner's children's granules."""
    for _ in range(50):
        inst = pl_.shop((PHARMACY, CLINIC), gd=None)
        cust = pl_.customers(inst)
        if not len(cust):
            continue
        person = int(cust[pl_.rng.integers(0, len(cust))])
        a, m = pl_.age[person], pl_.male[person]
        if m and a > 20:
            drug = pl_.pick_drug(("黄体酮胶囊", "戊酸雌二醇片"))
        elif not m and a > 20:
            drug = pl_.pick_drug(("非那雄胺片", "盐酸坦索罗辛缓释胶囊", "小儿氨酚黄那敏颗粒"))
        elif a < 15:
            drug = pl_.pick_drug(("左氧氟沙星片", "司美格鲁肽注射液"))
        else:
            continue
        break
    else:
        raise SkipScene("no customer fits")
    pl_.used[person] = True
    (code,), lot = pl_.codes(drug, inst, 1)
    t = pl_.when(inst, pl_.any_day())
    pl_.stock_in(inst, drug, lot, [code], t - int(pl_.rng.integers(3600, 30 * 3600)))
    pl_.sell(inst, drug, lot, [code], t, person)
    names = pl_.world.catalog["drug_name"]
    pl_.plant("demographic_mismatch", str(pl_.psn_no[person]),
              f"{'male' if m else 'female'}, age {a:.0f}, bought {names[drug]} at "
              f"{pl_.label(inst)}")


def card_hopping(pl_: Planner) -> None:
    """A collector's card: one drug at four to six shops of one city within days."""
    w = pl_.world
    n = int(pl_.rng.integers(4, 7))
    open_shops = (w.i_type == PHARMACY) & ~pl_.exclusive
    cities, count = np.unique(w.i_city[open_shops], return_counts=True)
    cities = cities[(count >= n) & (cities // 100 == 44)]
    if not len(cities):
        raise SkipScene("no city has enough shops")
    city = cities[pl_.rng.integers(0, len(cities))]
    person = pl_.dormant(lambda c: pl_.p_city[c] == city)
    shops: list[int] = []
    for _ in range(n):
        shops.append(pl_.shop((PHARMACY,), where=lambda c: (pl_.world.i_city[c] == city)
                              & ~np.isin(c, shops)))
    drug = pl_.pick_drug(("甘精胰岛素注射液", "复方阿胶浆", "瑞舒伐他汀钙片"))
    span = min(5, pl_.days)
    d0 = int(pl_.rng.integers(0, pl_.days - span + 1))
    times = sorted(pl_.when(s, d0 + int(pl_.rng.integers(0, span)), lo=9 * 3600,
                            hi=17 * 3600) for s in shops)
    times = [t + 1800 * i for i, t in enumerate(times)]
    for s, t in zip(shops, times, strict=True):
        codes, lot = pl_.codes(drug, s, int(pl_.rng.integers(1, 3)))
        pl_.stock_in(s, drug, lot, codes, t - int(pl_.rng.integers(3600, 30 * 3600)))
        pl_.sell(s, drug, lot, codes, t, person)
    pl_.plant("card_hopping", str(pl_.psn_no[person]),
              f"{pl_.world.catalog['drug_name'][drug]} at {n} shops within {span} days")


def no_inbound(pl_: Planner) -> None:
    """A shop selling boxes that never entered its stock: no purchase, no transfer."""
    inst = pl_.shop((PHARMACY,), gd=True, exclusive=True)
    n = int(pl_.rng.integers(6, 13))
    # the rule judges a sale once the upload lag (2 days) has passed: sell before that
    margin = 3 if pl_.days > 4 else 0
    for _ in range(n):
        drug = pl_.pick_drug()
        (code,), lot = pl_.codes(drug, inst, 1)
        pl_.sell(inst, drug, lot, [code], pl_.when(inst, pl_.any_day(margin)),
                 pl_.buyer(inst, drug, reuse=True))
    pl_.plant("no_inbound", str(pl_.i_code[inst]),
              f"{n} boxes sold without any stock record at {pl_.label(inst)}")


def off_hours_burst(pl_: Planner) -> None:
    """Cards swiped at night in a shop that closes in the evening: 10-25 people."""
    inst = pl_.shop((PHARMACY,), gd=True, hours=True, exclusive=True,
                    where=lambda c: pl_.world.i_open[c] >= 7 * 3600)
    n = int(pl_.rng.integers(10, 26))
    day = min(pl_.days - 1, 1 + pl_.any_day(1)) if pl_.days > 1 else 0
    lo, hi = 30 * 60, min(4 * 3600 + 1800, int(pl_.world.i_open[inst]) - 3600)
    region = pl_.world.i_region[inst]
    people: list[int] = []
    regulars = list(pl_.customers(inst))
    for _ in range(n):
        drug = pl_.pick_drug(("阿托伐他汀钙片", "复方阿胶浆", "苯磺酸氨氯地平片", "甲钴胺片"))
        while regulars:
            p = int(regulars.pop(int(pl_.rng.integers(0, len(regulars)))))
            if pl_.may_take(p, drug):
                break
        else:
            p = pl_.dormant(lambda c: pl_.region[c] == region, drug)
        pl_.used[p] = True
        people.append(p)
        (code,), lot = pl_.codes(drug, inst, 1)
        t = day * DAY + int(pl_.rng.integers(lo, hi))
        pl_.stock_in(inst, drug, lot, [code], day * DAY - int(pl_.rng.integers(4, 30)) * 3600)
        pl_.sell(inst, drug, lot, [code], t, p, setl="1")
    pl_.plant("off_hours_burst", str(pl_.i_code[inst]),
              f"{n} people's cards swiped between {lo // 3600:02d}:{lo % 3600 // 60:02d} and "
              f"{hi // 3600:02d}:{hi % 3600 // 60:02d} on day {day + 1} at {pl_.label(inst)}")


RULE_SCENES: dict[str, Callable[[Planner], None]] = {
    f.__name__: f
    for f in (dup_same_institution, dup_cross_long_gap, dup_cross_short_gap, split_overdraw,
              return_resold, reflux_inbound, unknown_code, lot_expiry_mismatch, expired_sale,
              product_mismatch, deceased_person, identity_mismatch, impossible_travel,
              demographic_mismatch, card_hopping, no_inbound, off_hours_burst)
}


def plan_frauds(world: World, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All planted frauds: their records (in ``RECORD_SCHEMA``) and the truth table."""
    # the behaviour scenes plan on this module's Planner
    from tracecode.simulate import behaviour

    planner = Planner(world, rng)
    s = world.scale
    scenes = {**RULE_SCENES, "anomaly_institution": behaviour.anomaly_institution,
              "anomaly_person": behaviour.anomaly_person, "ring": behaviour.ring}
    counts = {name: s.frauds for name in scenes}
    counts["ring"] = max(1, s.frauds // 2)
    counts["anomaly_institution"] = s.anomaly_institutions
    counts["anomaly_person"] = s.anomaly_persons
    skipped: dict[str, str] = {}
    for name, scene in scenes.items():
        for _ in range(counts[name]):
            n_rows, n_truth = len(planner.rows), len(planner.truth)
            try:
                scene(planner)
            except SkipScene as why:  # undo the half-built scene
                del planner.rows[n_rows:], planner.truth[n_truth:]
                skipped[name] = str(why)
    behaviour.lookalikes(planner, max(3, s.anomaly_persons))
    for name, why in skipped.items():
        log.warning("planted fewer %s than asked: %s", name, why)
    for row in planner.rows:
        if "codes" in row:
            row["n_codes"] = len(row["codes"])
            row["codes"] = join_codes(row["codes"])
    rows = pl.DataFrame(planner.rows, schema=RECORD_SCHEMA) if planner.rows else pl.DataFrame(
        schema=RECORD_SCHEMA)
    truth = pl.DataFrame(planner.truth, schema=TRUTH_SCHEMA).unique(
        ["category", "subject_type", "subject_id"], keep="first", maintain_order=True)
    return rows, truth
