"""The world: regions, institutions, the drug catalogue, manufacturers' lots and people.

Everything here is reference data, built once per simulation with numpy. Times inside
the simulator are integer seconds from the window's first midnight (``t``); dates are
numpy ``datetime64[D]``.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl

from tracecode.simulate import data
from tracecode.simulate.ids import chinese_names, resident_ids
from tracecode.simulate.runs import search_right, seq_in_groups, stable_argsort
from tracecode.simulate.scales import Scale

PHARMACY, CLINIC, HOSPITAL = 0, 1, 2
PERSON_KINDS = ("chronic", "acute", "dormant", "dead")
CHRONIC, ACUTE, DORMANT, DEAD = range(4)
TYPE_NAMES = np.array(["pharmacy", "clinic", "hospital"])
DAY = 86_400
BLOCK = 1 << 20  # serials reserved per lot; normal sales use the lower half
FRAUD_OFFSET = 1 << 19  # planted frauds take serials from the upper half of a lot
FIRST_SLOT_SERIAL = 100_000_000
N_SLOTS = (999_999_999 - FIRST_SLOT_SERIAL) // BLOCK
# chronic refill intervals (days) and the share of people on chronic treatment by age band
REFILL_DAYS = np.arange(14, 36)
ACUTE_RATE = 0.03  # acute purchases per person and day
MESSAGES_PER_CHUNK = 400_000


@dataclass
class World:
    scale: Scale
    start: date
    days: int
    seed: int
    regions: pl.DataFrame  # admdvs, name, city, chunk
    inst: pl.DataFrame  # one row per institution, index = row number
    catalog: pl.DataFrame  # one row per drug, index = row number
    lots: pl.DataFrame  # one row per activated lot, index = row number
    persons: pl.DataFrame  # one row per person, index = row number
    # numpy views of the columns the generators use
    i_region: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    i_city: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    i_type: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    i_open: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    i_close: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    i_chunk: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    i_flagship: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    p_chunk: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    pa: dict[str, np.ndarray] = field(repr=False, default_factory=dict)  # persons' columns
    cache: dict[str, object] = field(repr=False, default_factory=dict)
    lot_used: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]
    fraud_next: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        i = self.inst
        self.i_region = i["region"].to_numpy()
        self.i_city = i["city"].to_numpy()
        self.i_type = i["type_id"].to_numpy()
        self.i_open = i["open_s"].to_numpy()
        self.i_close = i["close_s"].to_numpy()
        self.i_chunk = i["chunk"].to_numpy()
        self.i_flagship = i["flagship"].to_numpy()
        self.p_chunk = self.persons["chunk"].to_numpy()
        p = self.persons
        self.pa = {c: p[c].to_numpy() for c in (
            "birth_date", "death_date", "region", "inst1", "inst2", "inst3",
            "traveller", "away", "trip_start", "trip_len", "chronic1", "chronic2", "chronic3",
            "interval", "phase", "kind_id")}
        self.pa["kind"] = np.array(PERSON_KINDS)[self.pa["kind_id"]]
        self.pa["male"] = (p["gender"] == "M").to_numpy()
        d0 = np.datetime64(self.start, "D")
        death = self.pa["death_date"]
        self.pa["death_day"] = np.where(np.isnat(death), 1 << 30, (death - d0).astype(
            "timedelta64[D]").astype(np.int64))
        self.pa["age"] = (d0 - self.pa["birth_date"]).astype(np.int64) / 365.25
        self.i_has_hours = (self.inst["open_time"] != "").to_numpy()
        self.lot_used = np.full(self.lots.height, -1, dtype=np.int64)
        self.fraud_next = np.where(self.lots["kind"].to_numpy() == "normal", FRAUD_OFFSET, 0)

    @property
    def n_chunks(self) -> int:
        return int(self.regions["chunk"].max()) + 1

    @property
    def blocks_per_product(self) -> int:
        return 2 * self.n_chunks + 2

    def normal_lot(self, product: np.ndarray, inst: np.ndarray) -> np.ndarray:
        """The lot an institution's stock of a drug comes from (one of two per region group)."""
        j = (inst.astype(np.int64) * 7919 + product.astype(np.int64) * 104_729 + self.seed) % 2
        return product * self.blocks_per_product + self.i_chunk[inst] * 2 + j

    def special_lot(self, product: int, kind: str) -> int:
        """The already-expired (``expired``) or not-yet-made (``future``) lot of a drug."""
        return product * self.blocks_per_product + 2 * self.n_chunks + (kind == "future")

    def take_fraud_serials(self, lot: int, n: int) -> np.ndarray:
        """Serials of lot ``lot`` that no normal sale uses, for planted frauds."""
        first = int(self.fraud_next[lot])
        self.fraud_next[lot] = first + n
        base = int(self.lots["base"][lot])
        return base + np.arange(first, first + n, dtype=np.int64)

    def free_serial(self, product: int, rng: np.random.Generator) -> int:
        """A serial of the drug's prefix that no lot activated (for unknown codes)."""
        used = set(self.lots.filter(pl.col("product") == product)["slot"].to_list())
        free = [s for s in range(N_SLOTS) if s not in used]
        slot = free[int(rng.integers(0, len(free)))]
        return FIRST_SLOT_SERIAL + slot * BLOCK + int(rng.integers(0, BLOCK))


def build_world(scale: Scale, start: date, days: int, seed: int) -> World:
    rng = np.random.default_rng([seed, 1])
    regions = _regions(scale, days)
    inst = _institutions(scale, regions, rng)
    catalog = _catalog()
    lots = _lots(int(regions["chunk"].max()) + 1, catalog, start, days, rng)
    with ThreadPoolExecutor(1, thread_name_prefix="simulate-world") as pool:
        persons = _persons(scale, regions, inst, catalog, start, days, rng, pool)
    return World(scale, start, days, seed, regions, inst, catalog, lots, persons)


def _regions(scale: Scale, days: int) -> pl.DataFrame:
    wanted = scale.regions or tuple(r.admdvs for r in data.REGIONS)
    rows = [r for r in data.REGIONS if r.admdvs in wanted]
    df = pl.DataFrame(
        {
            "admdvs": [r.admdvs for r in rows],
            "name": [r.name for r in rows],
            "weight": [r.weight for r in rows],
        }
    ).with_columns(
        city=pl.col("admdvs").str.slice(0, 4).cast(pl.Int32),
        province=pl.col("admdvs").str.slice(0, 2),
        city_name=pl.col("name").str.extract(r"^(.+?市)"),
    )
    # chunks are runs of whole regions of about equal weight, so that a district's
    # people, shops and chains are generated together
    # more chunks for long histories, so that a chunk stays near MESSAGES_PER_CHUNK
    expected = scale.population * 0.1 * days
    chunks = min(df.height, max(scale.chunks, -(-int(expected) // MESSAGES_PER_CHUNK)))
    share = (df["weight"].cum_sum() - df["weight"] / 2) / df["weight"].sum()
    chunk = np.minimum((share.to_numpy() * chunks).astype(np.int32), chunks - 1)
    return df.with_columns(chunk=pl.Series(chunk, dtype=pl.Int32))


def _hhmm_seconds(hhmm: np.ndarray) -> np.ndarray:
    h = np.char.partition(hhmm.astype(str), ":")
    return h[:, 0].astype(np.int64) * 3600 + h[:, 2].astype(np.int64) * 60


def _institutions(scale: Scale, regions: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    w = regions["weight"].to_numpy()
    per_region = np.maximum(np.round(w / w.sum() * scale.institutions).astype(np.int64), 5)
    region = np.repeat(np.arange(len(w)), per_region)
    n = len(region)
    # the first institutions of each region are a hospital, a clinic and two pharmacies,
    # so that every district has each kind; then 70% pharmacies, 23% clinics, 7% hospitals
    rank = np.arange(n) - np.repeat(np.cumsum(per_region) - per_region, per_region)
    itype = rng.choice(3, size=n, p=[0.70, 0.23, 0.07])
    itype = np.where(rank == 0, HOSPITAL, np.where(rank == 1, CLINIC, itype))
    itype = np.where((rank == 2) | (rank == 3), PHARMACY, itype)

    weight = rng.lognormal(0.0, 0.7, n) * np.array([1.0, 0.7, 4.0])[itype]
    busy = (itype == PHARMACY) & (rng.random(n) < 0.02)
    weight = np.where(busy, weight * 8, weight)

    hours_ph = np.array([["08:00", "22:00"], ["08:30", "21:30"], ["09:00", "21:00"],
                         ["07:30", "22:30"], ["", ""]])
    hours_cl = np.array([["08:00", "17:30"], ["08:30", "20:00"], ["08:00", "21:00"]])
    h_ph = hours_ph[rng.choice(5, size=n, p=[0.4, 0.25, 0.15, 0.1, 0.1])]
    h_cl = hours_cl[rng.choice(3, size=n, p=[0.5, 0.3, 0.2])]
    hours = np.where((itype == PHARMACY)[:, None], h_ph, np.where((itype == CLINIC)[:, None],
                                                                 h_cl, np.array(["", ""])))
    # busy pharmacies stay open long; big ones round the clock
    hours = np.where((busy & (rng.random(n) < 0.5))[:, None], np.array(["", ""]), hours)
    has_hours = hours[:, 0] != ""
    open_s = np.where(has_hours, _hhmm_seconds(np.where(has_hours, hours[:, 0], "0:0")), 0)
    close_s = np.where(has_hours, _hhmm_seconds(np.where(has_hours, hours[:, 1], "0:0")), DAY)

    admdvs = regions["admdvs"].to_numpy()[region]
    reg_name = regions["name"].to_numpy()[region]
    city_name = np.char.replace(regions["city_name"].to_numpy().astype(str)[region], "市", "")
    district = np.char.replace(reg_name.astype(str), regions["city_name"].to_numpy().astype(str)
                               [region], "")
    is_city = district == ""
    district = np.where(is_city, city_name, np.char.replace(district, "区", ""))
    dsuffix = np.where(is_city, "市", "区")

    # pharmacies: 55% belong to a chain; a chain's shops in one district share stock,
    # which comes from the first (flagship) shop by transfer
    # (two or three brands dominate a district)
    brand = (region * 3 + rng.choice(3, size=n, p=[0.5, 0.35, 0.15])) % len(data.CHAINS)
    chain = np.where((itype == PHARMACY) & (rng.random(n) < 0.55), brand, -1)
    street = np.array(data.STREETS)[rng.integers(0, len(data.STREETS), n)]
    city_code = np.array([a[:4] for a in admdvs.astype(str)])
    for city, names in data.CITY_STREETS.items():  # one loop per city: local street names
        here = (city_code == city) & (rng.random(n) < 0.8)
        street = np.where(here, np.array(names)[rng.integers(0, len(names), n)], street)
    word = np.array(data.SHOP_WORDS)[rng.integers(0, len(data.SHOP_WORDS), n)]
    chain_name = np.array((*data.CHAINS, ""))[chain]
    surname = np.array(list(data.SURNAMES))[rng.integers(0, len(data.SURNAMES), n)]
    hosp_kind = rng.integers(0, 4, n)
    hosp = np.select(
        [hosp_kind == 0, hosp_kind == 1, hosp_kind == 2],
        [np.char.add(np.char.add(city_name, "市第"),
                     np.char.add(np.array(list("一二三四五六七八"))[rng.integers(0, 8, n)],
                                 "人民医院")),
         np.char.add(np.char.add(district, dsuffix), "人民医院"),
         np.char.add(city_name, "市中医院")],
        np.char.add(np.char.add(district, dsuffix), "妇幼保健院"))
    clin_kind = rng.integers(0, 3, n)
    clinic = np.select(
        [clin_kind == 0, clin_kind == 1],
        [np.char.add(np.char.add(district, street), "社区卫生服务中心"),
         np.char.add(np.char.add(surname, word), "诊所")],
        np.char.add(np.char.add(district, word), "门诊部"))
    pharm = np.where(chain >= 0,
                     np.char.add(np.char.add(chain_name, np.char.add(city_name, street)), "店"),
                     np.char.add(np.char.add(district, word), np.where(rng.random(n) < 0.6,
                                                                       "大药房", "药店")))
    name = _unique_names(np.select([itype == PHARMACY, itype == CLINIC], [pharm, clinic], hosp))

    serial = np.zeros(n, dtype=np.int64)
    for r in range(len(w)):  # one loop per region: unique 5-digit serials within it
        idx = np.flatnonzero(region == r)
        serial[idx] = np.sort(rng.choice(np.arange(1, 100_000), size=len(idx), replace=False))
    letter = np.where(itype == PHARMACY, "P", "H")
    code = np.char.add(np.char.add(letter, admdvs.astype(str)),
                       np.char.zfill(serial.astype(str), 5))

    df = pl.DataFrame(
        {
            "fixmedins_code": code,
            "fixmedins_name": name,
            "fixmedins_type": TYPE_NAMES[itype],
            "admdvs": admdvs,
            "open_time": hours[:, 0],
            "close_time": hours[:, 1],
            "chain": chain_name,
            "type_id": itype.astype(np.int8),
            "region": region.astype(np.int32),
            "serial": serial,
            "weight": weight,
            "open_s": open_s.astype(np.int64),
            "close_s": close_s.astype(np.int64),
            "chain_id": chain.astype(np.int32),
        }
    ).with_columns(
        city=pl.col("admdvs").str.slice(0, 4).cast(pl.Int32),
        chunk=pl.Series(regions["chunk"].to_numpy()[region]),
    ).with_row_index("idx")
    # the flagship of a chain in a district: its first shop; -1 for the flagship itself
    # and for independents
    first = (
        df.filter(pl.col("chain_id") >= 0)
        .group_by("region", "chain_id")
        .agg(flag=pl.col("idx").min(), n=pl.len())
    )
    df = df.join(first, on=["region", "chain_id"], how="left", maintain_order="left")
    df = df.with_columns(
        flagship=pl.when((pl.col("n") >= 2) & (pl.col("flag") != pl.col("idx")))
        .then(pl.col("flag"))
        .otherwise(-1)
        .cast(pl.Int64)
    ).drop("flag", "n", "idx")
    return df


def _unique_names(name: np.ndarray) -> np.ndarray:
    """Later holders of a taken name become a branch: 二分店, 二店, (东院区), (二部)."""
    numerals = np.array(list("一二三四五六七八九十"))
    campus = np.array(list("东西南北中"))
    names = pl.Series(name.astype(str))
    for _ in range(3):
        k = pl.DataFrame({"n": names}).select(pl.int_range(pl.len()).over("n")).to_series(
        ).to_numpy()
        if k.max() == 0:
            break
        num = numerals[np.minimum(k, 9)]
        n = names.to_numpy().astype(str)
        shop = np.char.endswith(n, "药店") | np.char.endswith(n, "药房")
        branch = np.select(
            [shop, np.char.endswith(n, "店"), np.char.endswith(n, "院")],
            [np.char.add(n, np.char.add(num, "分店")),
             np.char.add(np.char.rstrip(n, "店"), np.char.add(num, "店")),
             np.char.add(n, np.char.add(np.char.add("(", campus[k % 5]), "院区)"))],
            np.char.add(n, np.char.add(np.char.add("(", num), "部)")))
        names = pl.Series(np.where(k > 0, branch, n))
    return names.to_numpy()


def _catalog() -> pl.DataFrame:
    rng = np.random.default_rng(20240701)  # the catalogue is the same in every world
    n = len(data.DRUGS)
    prefixes = 8_000_000 + rng.choice(999_999, size=n, replace=False) + 1
    d = data.DRUGS
    generic = rng.integers(1, 999, n)
    form = rng.integers(1, 99, n)
    maker = rng.integers(100_000, 999_999, n)
    codg = [
        f"{'Z' if x.tcm else 'X'}{x.atc}{'AB'[i % 2]}{generic[i]:03d}"
        f"{'ABC'[i % 3]}{form[i]:03d}{(i * 37) % 1000:03d}{maker[i]}"
        for i, x in enumerate(d)
    ]
    return pl.DataFrame(
        {
            "med_list_codg": codg,
            "drug_name": [x.name for x in d],
            "trace_prefix": prefixes.astype(str),
            "pack_units": [x.pack_units for x in d],
            "pack_price": [x.pack_price for x in d],
            "gender_limit": [x.gender for x in d],
            "min_age": [x.min_age for x in d],
            "max_age": [x.max_age for x in d],
            "spec": [x.spec for x in d],
            "manufacturer": [x.manufacturer for x in d],
            "kind": [x.kind for x in d],
            "split_dose": [x.split_dose for x in d],
            "popularity": [x.weight for x in d],
            "prefix_int": prefixes,
        },
        schema_overrides={"min_age": pl.Int32, "max_age": pl.Int32},
    ).with_columns(
        # price of one smallest unit, to 4 decimals as NHSA prices are
        unit_price=(pl.col("pack_price") / pl.col("pack_units")).round(4),
        shelf_days=pl.when(pl.col("kind") == "hospital").then(730).otherwise(1095),
    )


def _lots(chunks: int, catalog: pl.DataFrame, start: date, days: int,
          rng: np.random.Generator) -> pl.DataFrame:
    n_prod = catalog.height
    per = 2 * chunks + 2
    product = np.repeat(np.arange(n_prod), per)
    k = np.tile(np.arange(per), n_prod)
    kind = np.where(k < 2 * chunks, "normal", np.where(k == per - 2, "expired", "future"))
    slot = np.concatenate([rng.choice(N_SLOTS, size=per, replace=False) for _ in range(n_prod)])
    shelf = catalog["shelf_days"].to_numpy()[product]
    d0 = np.datetime64(start, "D")
    manu = d0 - rng.integers(30, 540, len(product))
    # normal lots stay valid through the window and a month after
    manu = np.maximum(manu, d0 + days + 31 - shelf)
    expired_end = d0 - rng.integers(3, 60, len(product))
    future_manu = d0 + days + rng.integers(3, 40, len(product))
    manu = np.select([kind == "expired", kind == "future"],
                     [expired_end - shelf + 1, future_manu], manu)
    expy = manu + shelf - 1
    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))[product % 24]
    yymm = np.char.replace(manu.astype("datetime64[M]").astype(str), "-", "")
    yymm = np.array([s[2:] for s in yymm])
    lotnum = np.char.add(np.char.add(letters, yymm),
                         np.char.zfill(((k * 7 + product * 3) % 900 + 100).astype(str), 3))
    return pl.DataFrame(
        {
            "product": product.astype(np.int32),
            "kind": kind,
            "slot": slot.astype(np.int64),
            "base": (FIRST_SLOT_SERIAL + slot.astype(np.int64) * BLOCK),
            "manu_lotnum": lotnum,
            "manu_date": manu,
            "expy_end": expy,
        }
    )


def _persons(scale: Scale, regions: pl.DataFrame, inst: pl.DataFrame, catalog: pl.DataFrame,
             start: date, days: int, rng: np.random.Generator, pool: Executor) -> pl.DataFrame:
    """People who buy in the window, plus a register of dormant and deceased people.

    Columns that drive behaviour: ``kind`` (chronic | acute | dormant | dead),
    ``inst1..3`` (usual pharmacy, second pharmacy, clinic or hospital: all in the home
    district, at most three, so that nobody hops shops by accident), ``chronic1..3``
    (drug indices), ``interval``/``phase`` (chronic refills), ``trip_*`` (travellers).
    """
    w = regions["weight"].to_numpy()
    pop = scale.population * w / w.sum()
    chronic_share = 0.35
    p_active_chronic = np.minimum(1.0, days / REFILL_DAYS).mean()
    n_chronic = np.round(pop * chronic_share * p_active_chronic).astype(np.int64)
    n_acute = np.round(pop * (1 - chronic_share) * (1 - np.exp(-ACUTE_RATE * days))).astype(
        np.int64)
    active = n_chronic + n_acute
    # dormant people: registered, buying nothing, unless a planted fraud or a behaviour
    # look-alike (simulate.behaviour) uses their card
    need = 1.5 * (4 * scale.frauds + 10 * scale.anomaly_persons
                  + 110 * scale.anomaly_institutions)
    n_dormant = np.round(active * 0.05 + 10 + need * w / w.sum()).astype(np.int64)
    n_dead = np.maximum(np.round(active * 0.002).astype(np.int64), 2 * scale.frauds)
    per_region = np.stack([n_chronic, n_acute, n_dormant, n_dead], axis=1)
    region = np.repeat(np.repeat(np.arange(len(w)), 4), per_region.ravel())
    kind_id = np.repeat(np.tile(np.arange(4), len(w)), per_region.ravel())
    n = len(region)

    male = rng.random(n) < 0.5
    # ages: chronic patients older; children only among acute buyers and the register
    age_acute = np.select(
        [rng.random(n) < 0.15, rng.random(n) < 0.55],
        [rng.uniform(0.2, 14, n), rng.uniform(15, 45, n)], rng.uniform(45, 90, n))
    age_chronic = np.clip(rng.normal(62, 12, n), 25, 95)
    age = np.where(kind_id == CHRONIC, age_chronic, age_acute)
    d0 = np.datetime64(start, "D")
    birth = d0 - (age * 365.25).astype(np.int64)

    # insured where they live, except migrants insured in another province
    admdvs = regions["admdvs"].to_numpy().astype(np.int64)
    home = admdvs[region]
    is_gd = home // 10_000 == 44
    other = np.array([int(r.admdvs) for r in data.REGIONS if r.admdvs[:2] != "44"])
    migrant = is_gd & (rng.random(n) < 0.04)
    insu = np.where(migrant, other[rng.integers(0, len(other), n)], home)
    birthplace = np.where(migrant | (rng.random(n) < 0.8), insu, home)

    # resident IDs (made on a second thread while this one draws on)
    certno = pool.submit(_certnos, birthplace, birth, male, rng.integers(0, 150, n))

    # psn_no: province + 0000 + 8-digit number, unique
    number = rng.permutation(n) + 10_000_000 + rng.integers(0, 80_000_000)
    psn_no = pl.Series((insu // 10_000) * 10**12 + number).cast(pl.Utf8)

    # deaths: the register's deceased died before the window; a few buyers die in it
    death = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    dead_before = kind_id == DEAD
    death = np.where(dead_before, d0 - rng.integers(5, 400, n), death)
    if days >= 3:
        dies = (kind_id <= ACUTE) & (rng.random(n) < 0.004)
        death = np.where(dies, d0 + rng.integers(1, days, n), death)

    # usual institutions, by busyness, in the home district
    i_region = inst["region"].to_numpy()
    i_type = inst["type_id"].to_numpy()
    i_w = inst["weight"].to_numpy()
    i_hours = inst["open_time"].to_numpy() != ""
    inst1 = _pick_institution(rng, region, i_region, i_w, i_type == PHARMACY)
    inst2 = _pick_institution(rng, region, i_region, i_w, i_type == PHARMACY)
    inst2 = np.where((rng.random(n) < 0.35) & (inst2 != inst1), inst2, -1)
    inst3 = _pick_institution(rng, region, i_region, i_w, i_type != PHARMACY)
    inst3 = np.where(rng.random(n) < 0.6, inst3, -1)

    # travellers: one trip of 1-3 days to another Guangdong city, buying at a pharmacy
    # with opening hours; at most three institutions in all, so no shop hopping
    city = admdvs[region] // 100
    gd_regions = np.flatnonzero(admdvs // 10_000 == 44)
    traveller = (is_gd & (kind_id <= ACUTE) & (age > 18)
                 & (rng.random(n) < 0.02))
    away_region = gd_regions[rng.integers(0, len(gd_regions), n)]
    traveller &= city != admdvs[away_region] // 100
    away = _pick_institution(rng, away_region, i_region, i_w, (i_type == PHARMACY) & i_hours)
    traveller &= away >= 0
    inst2 = np.where(traveller, -1, inst2)
    trip_start = rng.integers(0, max(days, 1), n)
    trip_len = rng.integers(1, 4, n)

    chronic = _chronic_drugs(rng, catalog, male, age, days, kind_id == CHRONIC)
    interval = rng.choice(REFILL_DAYS, size=n, p=_refill_weights(days))
    phase = rng.random(n) * np.minimum(interval, days)

    names = chinese_names(rng, male)
    return pl.DataFrame(
        {
            "psn_no": psn_no,
            "certno": certno.result(),
            "psn_name": names,
            "gender": pl.Series(male).replace_strict({True: "M", False: "F"},
                                                     return_dtype=pl.Utf8),
            "birth_date": birth,
            "insu_admdvs": pl.Series(insu).cast(pl.Utf8),
            "death_date": death,
            "kind": pl.Series(kind_id).replace_strict(dict(enumerate(PERSON_KINDS)),
                                                      return_dtype=pl.Utf8),
            "kind_id": kind_id.astype(np.int8),
            "region": region.astype(np.int32),
            "chunk": regions["chunk"].to_numpy()[region],
            "inst1": inst1,
            "inst2": inst2,
            "inst3": inst3,
            "traveller": traveller,
            "away": np.where(traveller, away, -1),
            "trip_start": trip_start.astype(np.int32),
            "trip_len": trip_len.astype(np.int32),
            "chronic1": chronic[:, 0],
            "chronic2": chronic[:, 1],
            "chronic3": chronic[:, 2],
            "interval": interval.astype(np.int32),
            "phase": phase,
        }
    ).pipe(lambda df: df if df["chunk"].is_sorted() else df.sort("chunk", maintain_order=True))


def _certnos(birthplace: np.ndarray, birth: np.ndarray, male: np.ndarray,
             base: np.ndarray) -> pl.Series:
    """Resident IDs, with order numbers unique within (birthplace, birth date), odd for
    men: ``base`` (0-149) plus the person's place among those born there that day."""
    same = stable_argsort((birthplace.astype(np.int64) * 200_000 + (
        birth - birth.min()).astype(np.int64)) * 2 + male)
    k = np.empty(len(male), dtype=np.int64)
    k[same] = seq_in_groups(birthplace[same], birth[same], male[same])
    return resident_ids(birthplace, birth, 2 * ((base + k) % 500) + male)


def _refill_weights(days: int) -> np.ndarray:
    # among the people who buy in the window, short refill intervals are over-represented
    w = np.minimum(1.0, days / REFILL_DAYS)
    return w / w.sum()


def _pick_institution(rng: np.random.Generator, region: np.ndarray, i_region: np.ndarray,
                      weight: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """For each person, an allowed institution of their region, chosen by weight (-1 if the
    region has none)."""
    idx = np.flatnonzero(allowed)
    order = idx[np.lexsort((idx, i_region[idx]))]
    reg = i_region[order]
    w = weight[order]
    n_regions = int(max(i_region.max(), region.max())) + 1
    total = np.bincount(reg, weights=w, minlength=n_regions)
    cum = np.cumsum(w) - np.repeat(np.cumsum(total) - total, np.bincount(reg,
                                                                         minlength=n_regions))
    # position on a global axis where region r occupies [r, r+1)
    axis = reg + cum / total[reg]
    u = region + rng.random(len(region)) * (1 - 1e-12)
    pos = search_right(axis, u)
    pos = np.minimum(pos, len(order) - 1)
    ok = (total[region] > 0) & (reg[pos] == region)
    return np.where(ok, order[pos], -1).astype(np.int64)


def eligible(catalog: pl.DataFrame | tuple[np.ndarray, ...], product: np.ndarray,
             male: np.ndarray, age_lo: np.ndarray, age_hi: np.ndarray) -> np.ndarray:
    """Whether each person may take each drug by its gender and age limits, with a year of
    margin on the ages (``age_lo``/``age_hi``: the person's age at the window's ends).
    ``catalog`` may be given as :func:`drug_limits` of it, to save the lookup."""
    g, lo, hi = drug_limits(catalog) if isinstance(catalog, pl.DataFrame) else catalog
    g, lo, hi = g[product], lo[product], hi[product]
    ok_g = (g == 0) | ((g == 1) & male) | ((g == 2) & ~male)
    return ok_g & (age_lo >= lo + 1) & (age_hi < hi)


def drug_limits(catalog: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gender limit (0 none, 1 men, 2 women), minimum and maximum age of each drug."""
    gender = catalog["gender_limit"].replace_strict({"": 0, "M": 1, "F": 2},
                                                    return_dtype=pl.Int8)
    return (gender.to_numpy(), catalog["min_age"].fill_null(-1).to_numpy(),
            catalog["max_age"].fill_null(999).to_numpy())


def _chronic_drugs(rng: np.random.Generator, catalog: pl.DataFrame, male: np.ndarray,
                   age: np.ndarray, days: int, is_chronic: np.ndarray) -> np.ndarray:
    n = len(male)
    kind = catalog["kind"].to_numpy()
    pool = np.flatnonzero((kind == "chronic") | (kind == "expensive"))
    w = catalog["popularity"].to_numpy()[pool].astype(float)
    w = np.where(kind[pool] == "expensive", w * 0.15, w)
    out = pool[rng.choice(len(pool), size=(n, 3), p=w / w.sum())]
    how_many = rng.choice([1, 2, 3], size=n, p=[0.45, 0.38, 0.17])
    out = np.where(np.arange(3)[None, :] < how_many[:, None], out, -1)
    fallback = 0  # 阿托伐他汀钙片: no limits
    limits = drug_limits(catalog)
    for j in range(3):
        col = out[:, j]
        ok = eligible(limits, np.maximum(col, 0), male, age, age + days / 365.25 + 1)
        out[:, j] = np.where((col >= 0) & ~ok, fallback, col)
    out[:, 1] = np.where(out[:, 1] == out[:, 0], -1, out[:, 1])
    out[:, 2] = np.where((out[:, 2] == out[:, 0]) | (out[:, 2] == out[:, 1]), -1, out[:, 2])
    return np.where(is_chronic[:, None], out, -1).astype(np.int32)
