"""Behaviour no rule names, for the model: frauds in several strengths, and look-alikes.

The frauds (in the truth, as ``anomaly_institution`` / ``anomaly_person``) come in
variants, taken in turn so that every world has each one it has room for:

- shops: the Wuhan case (one dear drug jumps thirty-fold, to buyers from other cities);
  a five-fold jump of a dear drug at a large shop, to locals; a ramp over the window;
- collectors: dear drugs, several boxes every day or two, on a card nobody else uses; or
  on a real chronic patient's card, on top of the patient's own purchases.

The look-alikes are legitimate and not in the truth: a cancer patient's monthly box of a
very dear drug, a diabetic's three-month insulin prescription bought at once, a busy
patient with purchases on many days, a buyer at five pharmacies in a week (different
drugs: no card hopping), a traveller buying in two cities days apart, and a specialty
(DTP) pharmacy selling dear drugs steadily every day. Every box is bought in before it is
sold and sold in opening hours: no rule sees any of it.
"""

from __future__ import annotations

import numpy as np

from tracecode.simulate.frauds import Planner, SkipScene
from tracecode.simulate.world import CHRONIC, DAY, PHARMACY

DEAR = ("司美格鲁肽注射液", "甘精胰岛素注射液", "利拉鲁肽注射液")
CHEAP = ("阿莫西林胶囊", "布洛芬缓释胶囊", "蒙脱石散", "氯雷他定片", "奥美拉唑肠溶胶囊",
         "甲钴胺片", "连花清瘟胶囊", "维生素AD滴剂")
SHOP_VARIANTS = ("remote_jump", "local_jump_5x", "ramp")
PERSON_VARIANTS = ("collector", "on_patient_card")


def anomaly_institution(pl_: Planner) -> None:
    """A pharmacy whose sales of one dear drug jump: see the module's variants."""
    variant = SHOP_VARIANTS[sum(t["category"] == "anomaly_institution" for t in pl_.truth)
                            % len(SHOP_VARIANTS)]
    if variant == "local_jump_5x":
        # the largest shops no scene used: a jump there hides in a large volume
        inst = _large_shop(pl_)
    else:
        inst = pl_.shop((PHARMACY,), gd=True, hours=True, exclusive=True)
    city = pl_.world.i_city[inst]
    drug = pl_.pick_drug(("司美格鲁肽注射液", "利拉鲁肽注射液", "阿达木单抗注射液"))
    jump_from = pl_.days // 2
    plan: list[tuple[int, bool]] = []  # (day, local buyer)
    for d in range(pl_.days):
        if variant == "remote_jump":
            rate, local = (7.5, 0.25) if d >= jump_from else (0.25, 1.0)
        elif variant == "local_jump_5x":
            rate, local = (7.5, 0.8) if d >= jump_from else (1.5, 1.0)
        else:  # a ramp: from half a box a day to eight, day by day
            rate, local = 0.5 + 7.5 * d / max(pl_.days - 1, 1), 0.6
        plan.extend((d, bool(pl_.rng.random() < local)) for _ in range(pl_.rng.poisson(rate)))
    _sell_plan(pl_, inst, drug, plan, city)
    pl_.plant("anomaly_institution", str(pl_.i_code[inst]),
              f"{variant}: {pl_.world.catalog['drug_name'][drug]}, {len(plan)} sales "
              f"at {pl_.label(inst)}")


def anomaly_person(pl_: Planner) -> None:
    """A collector: dear drugs, two to four boxes every day or two, at one to three shops
    of his city (under the card-hopping threshold); on his own card or a patient's."""
    variant = PERSON_VARIANTS[sum(t["category"] == "anomaly_person" for t in pl_.truth)
                              % len(PERSON_VARIANTS)]
    if variant == "on_patient_card":
        person = _patient(pl_)
        home = int(pl_.inst_of[person, 0])
        city = pl_.world.i_city[home]
        shops = [home]
    else:
        person = pl_.dormant(lambda c: pl_.gd_person(c) & (pl_.age[c] <= 65))
        city = pl_.p_city[person]
        shops = []
    for _ in range(int(pl_.rng.integers(1, 4)) - len(shops)):
        try:
            shops.append(pl_.shop((PHARMACY,), where=lambda c: (
                pl_.world.i_city[c] == city) & ~np.isin(c, shops)))
        except SkipScene:
            if not shops:
                raise
            break
    drugs = [pl_.drug[n] for n in DEAR if pl_.may_take(person, pl_.drug[n])]
    if not drugs:
        raise SkipScene("the card's holder may take none of the dear drugs")
    visits = max(2, pl_.days // 2 + int(pl_.rng.integers(0, 3)))
    days = sorted(int(pl_.rng.integers(0, pl_.days)) for _ in range(visits))
    total = 0
    for i, d in enumerate(days):
        s = shops[i % len(shops)]
        drug = drugs[int(pl_.rng.integers(0, len(drugs)))]
        n = int(pl_.rng.integers(2, 5))
        _buy(pl_, s, drug, n, pl_.when(s, d, lo=9 * 3600 + 1800 * i % 7200, hi=20 * 3600),
             person)
        total += n
    pl_.plant("anomaly_person", str(pl_.psn_no[person]),
              f"{variant}: {total} boxes of dear drugs in {visits} visits at "
              f"{len(shops)} shop(s)")


def ring(pl_: Planner) -> None:
    """A ring (the Yulin case): two collectors buy boxes at two or three shops of a city and
    sell them back to two other shops, which take them into stock from a dubious
    wholesaler. Each box is a ``reflux_inbound`` lead; together they are one ring. (A
    chain's own transfers, 3502 102/101 between its shops, are the look-alike: the normal
    stock has them, and no rule flags them.)"""
    w = pl_.world
    free = (w.i_type == PHARMACY) & pl_.gd & ~pl_.exclusive
    cities, count = np.unique(w.i_city[free], return_counts=True)
    cities = cities[count >= 5]
    if not len(cities):
        raise SkipScene("no city has five free pharmacies")
    city = int(cities[pl_.rng.integers(0, len(cities))])
    shops: list[int] = []
    for _ in range(int(pl_.rng.integers(4, 6))):
        shops.append(pl_.shop((PHARMACY,), exclusive=True, where=lambda c: (
            w.i_city[c] == city) & ~np.isin(c, shops)))
    sources, sinks = shops[: len(shops) - 2], shops[len(shops) - 2:]
    collectors = [pl_.dormant(lambda c: pl_.p_city[c] == city) for _ in range(2)]
    drug = pl_.drug["复方阿胶浆"]
    n_codes = 0
    for i in range(int(pl_.rng.integers(3, 5))):  # visits
        c = collectors[i % 2]
        a = sources[i % len(sources)]
        codes, lot = pl_.codes(drug, a, 2)
        d = int(pl_.rng.integers(0, max(1, pl_.days - 2)))
        t = pl_.when(a, d, hi=14 * 3600)
        pl_.stock_in(a, drug, lot, codes, t - int(pl_.rng.integers(3600, 30 * 3600)))
        pl_.sell(a, drug, lot, codes, t, c, setl="1")
        for k, code in enumerate(codes):
            b = sinks[(i + k) % 2]
            t_in = max(t + 3600, pl_.when(b, min(pl_.days - 1, d + 1), lo=15 * 3600))
            pl_.stock_in(b, drug, lot, [code], t_in, shady=True)
            pl_.plant("reflux_inbound", code, f"ring: sold at {pl_.label(a)} to a collector, "
                      f"taken into stock at {pl_.label(b)}")
            n_codes += 1
    members = ";".join(str(pl_.i_code[x]) for x in shops)
    pl_.plant("ring", str(pl_.i_code[sinks[0]]),
              f"{len(shops)} shops and 2 collectors passing {n_codes} boxes; collectors "
              f"{', '.join(str(pl_.psn_no[c]) for c in collectors)}", members=members)


def lookalikes(pl_: Planner, n: int) -> int:
    """``n`` legitimate heavy buyers of each kind, and ``max(1, n // 4)`` specialty
    pharmacies; none in the truth. Returns how many were made."""
    made = 0
    for scene in (_cancer_patient, _long_prescription, _busy_patient, _five_pharmacies,
                  _traveller):
        for _ in range(n):
            n_rows = len(pl_.rows)
            try:
                scene(pl_)
                made += 1
            except SkipScene:
                del pl_.rows[n_rows:]
    for _ in range(max(1, n // 4)):
        n_rows = len(pl_.rows)
        try:
            _dtp_pharmacy(pl_)
            made += 1
        except SkipScene:
            del pl_.rows[n_rows:]
    return made


# -- the look-alikes ------------------------------------------------------------------------


def _cancer_patient(pl_: Planner) -> None:
    """One box a month of a very dear drug (osimertinib, ~5,000 yuan): a course, not a
    stockpile."""
    drug = pl_.drug["甲磺酸奥希替尼片"]
    person = pl_.dormant(lambda c: pl_.gd_person(c) & (pl_.age[c] >= 40), drug)
    shop = _home_shop(pl_, person)
    _buy(pl_, shop, drug, 1, pl_.when(shop, pl_.any_day()), person)


def _long_prescription(pl_: Planner) -> None:
    """A diabetic's three months of insulin, or of a GLP-1 pen, bought in one visit."""
    name = DEAR[int(pl_.rng.integers(0, 2))]
    drug = pl_.drug[name]
    person = pl_.dormant(lambda c: pl_.gd_person(c) & (pl_.age[c] >= 35), drug)
    shop = _home_shop(pl_, person)
    boxes = int(pl_.rng.integers(6, 10)) if name == "甘精胰岛素注射液" else 3
    _buy(pl_, shop, drug, boxes, pl_.when(shop, pl_.any_day()), person)


def _busy_patient(pl_: Planner) -> None:
    """Purchases on most days of the window, one or two cheap boxes each, at two shops."""
    person = pl_.dormant(lambda c: pl_.gd_person(c) & (pl_.age[c] >= 50))
    shops = [_home_shop(pl_, person)]
    city = pl_.p_city[person]
    shops.append(pl_.shop((PHARMACY,), where=lambda c: (pl_.world.i_city[c] == city)
                          & ~np.isin(c, shops)))
    days = sorted(set(int(d) for d in pl_.rng.integers(0, pl_.days, max(3, pl_.days))))
    for i, d in enumerate(days):
        drug = _cheap(pl_, person)
        s = shops[i % 2]
        _buy(pl_, s, drug, int(pl_.rng.integers(1, 3)), pl_.when(s, d), person)


def _five_pharmacies(pl_: Planner) -> None:
    """Five pharmacies of one city in a week, a different cheap drug at each."""
    person = pl_.dormant(lambda c: pl_.gd_person(c) & (pl_.age[c] >= 20))
    city = pl_.p_city[person]
    shops: list[int] = []
    for _ in range(5):
        shops.append(pl_.shop((PHARMACY,), where=lambda c: (pl_.world.i_city[c] == city)
                              & ~np.isin(c, shops)))
    names = list(pl_.rng.permutation(CHEAP))
    for s in shops:
        drug = next(pl_.drug[n] for n in names if pl_.may_take(person, pl_.drug[n]))
        names.remove(str(pl_.world.catalog["drug_name"][drug]))
        _buy(pl_, s, drug, 1, pl_.when(s, pl_.any_day()), person)


def _traveller(pl_: Planner) -> None:
    """Buys at home, then days later in another city, then at home again."""
    person = pl_.dormant(lambda c: pl_.gd_person(c) & (pl_.age[c] >= 20))
    home = _home_shop(pl_, person)
    city = pl_.world.i_city[home]
    away = pl_.shop((PHARMACY,), gd=True, where=lambda c: pl_.world.i_city[c] != city)
    if pl_.days < 3:
        raise SkipScene("needs 3 days")
    for s, d in ((home, 0), (away, pl_.days // 2), (home, pl_.days - 1)):
        _buy(pl_, s, _cheap(pl_, person), int(pl_.rng.integers(1, 3)), pl_.when(s, d), person)


def _dtp_pharmacy(pl_: Planner) -> None:
    """A specialty pharmacy: dear drugs to local patients, about three a day, steadily."""
    inst = pl_.shop((PHARMACY,), gd=True, hours=True, exclusive=True)
    drug = pl_.pick_drug(("司美格鲁肽注射液", "阿达木单抗注射液"))
    plan = [(d, True) for d in range(pl_.days) for _ in range(pl_.rng.poisson(3.0))]
    _sell_plan(pl_, inst, drug, plan, pl_.world.i_city[inst])


# -- helpers ----------------------------------------------------------------------------


def _buy(pl_: Planner, shop: int, drug: int, boxes: int, t: int, person: int) -> None:
    """``boxes`` boxes bought in before ``t`` and sold to ``person`` at ``t``."""
    codes, lot = pl_.codes(drug, shop, boxes)
    pl_.stock_in(shop, drug, lot, codes, t - int(pl_.rng.integers(3600, 30 * 3600)))
    pl_.sell(shop, drug, lot, codes, t, person, setl="1")


def _sell_plan(pl_: Planner, inst: int, drug: int, plan: list[tuple[int, bool]],
               city: int) -> None:
    """Sell one or two boxes per planned sale, restocking every other day."""
    shelf: list[str] = []
    for d in range(0, pl_.days, 2):
        need = sum(1 for x in plan if d <= x[0] < d + 2)
        if need:
            codes, lot = pl_.codes(drug, inst, need * 2 + 2)
            pl_.stock_in(inst, drug, lot, codes, d * DAY - 4 * 3600 - 1)
            shelf.extend(codes)
    lot = int(pl_.world.normal_lot(np.array([drug]), np.array([inst]))[0])
    for d, local in plan:
        if local:
            p = pl_.dormant(lambda c: pl_.p_city[c] == city, drug)
        else:
            p = pl_.dormant(lambda c: pl_.p_city[c] != city, drug)
        k = 1 if pl_.rng.random() < 0.7 else 2
        box, shelf = shelf[:k], shelf[k:]
        pl_.sell(inst, drug, lot, box, pl_.when(inst, d), p, setl="1")


def _large_shop(pl_: Planner) -> int:
    """One of the busiest Guangdong pharmacies (by regular customers) no scene used."""
    w = pl_.world
    cand = np.flatnonzero((w.i_type == PHARMACY) & pl_.gd & ~pl_.involved & w.i_has_hours)
    if not len(cand):
        raise SkipScene("no free pharmacy")
    size = np.array([len(pl_._all_customers(int(c))) for c in cand])
    top = cand[np.argsort(-size, kind="stable")[:max(1, len(cand) // 10)]]
    inst = int(top[pl_.rng.integers(0, len(top))])
    pl_.involved[inst] = pl_.exclusive[inst] = True
    return inst


def _patient(pl_: Planner) -> int:
    """An unused chronic patient with a usual pharmacy, in Guangdong, who may take a dear
    drug: the card a collector borrows."""
    cand = np.flatnonzero((pl_.kind == CHRONIC) & ~pl_.used & pl_.p_gd & ~pl_.traveller
                          & (pl_.inst_of[:, 0] >= 0) & (pl_.age >= 30) & (pl_.age <= 70)
                          & (pl_.death_day > pl_.days + 1))
    home_pharmacy = pl_.world.i_type[np.maximum(pl_.inst_of[cand, 0], 0)] == PHARMACY
    cand = cand[home_pharmacy & ~pl_.exclusive[pl_.inst_of[cand, 0]]]
    if not len(cand):
        raise SkipScene("no chronic patient left")
    person = int(cand[pl_.rng.integers(0, len(cand))])
    pl_.used[person] = True
    pl_.involved[pl_.inst_of[person, 0]] = True
    return person


def _home_shop(pl_: Planner, person: int) -> int:
    region = pl_.region[person]
    return pl_.shop((PHARMACY,), where=lambda c: pl_.world.i_region[c] == region)


def _cheap(pl_: Planner, person: int) -> int:
    for _ in range(20):
        drug = pl_.pick_drug(CHEAP)
        if pl_.may_take(person, drug):
            return drug
    raise SkipScene("no cheap drug suits the person")
