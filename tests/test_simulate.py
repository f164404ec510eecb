"""The simulator: deterministic, contract-shaped, and honest about what it planted.

An independent reading of the generated landing (record versions, 3507 deletions, 3506
returns, net sales) re-derives, for every rule category, the subjects the contract's
definition flags. Each category's flagged set must equal the truth's: planted frauds
have their shape, and normal buying and the look-alikes flag nothing.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import tracecode.simulate as simulation
from tracecode.simulate import SCALES, SimulationError, simulate
from tracecode.simulate.ids import is_valid_resident_id
from tracecode.simulate.runs import join_runs, lexsort, search_right

DAYS = 12
SEED = 11
WEEK = 7 * 86_400


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    simulate(out, scale="demo", days=DAYS, seed=SEED)
    return out


@dataclass
class Landing:
    truth: pl.DataFrame
    inst: pl.DataFrame
    catalog: pl.DataFrame
    persons: pl.DataFrame
    issuance: pl.DataFrame
    records: pl.DataFrame  # live records (current version, not deleted), one row per record
    sales: pl.DataFrame  # net sales, one row per code
    returns: pl.DataFrame  # live 3506, one row per code
    stock: pl.DataFrame  # live 3501 and 3502, one row per code
    bad_lines: int

    def truth_subjects(self, category: str) -> set[str]:
        return set(self.truth.filter(pl.col("category") == category)["subject_id"])


def read_landing(path: Path) -> Landing:
    ref = path / "reference"
    csvs = {n: pl.read_csv(ref / f"{n}.csv", infer_schema=False) for n in
            ("institutions", "catalog", "persons", "code_issuance")}
    rows, bad = [], 0
    for f in sorted((path / "messages").glob("*/*.jsonl")):
        for i, raw in enumerate(f.read_bytes().split(b"\n")[:-1]):
            try:
                m = json.loads(raw.decode())
                node = next(iter(m["input"].values()))
                assert isinstance(node, dict) and m["infno"] in {
                    "3501", "3502", "3503", "3504", "3505", "3506", "3507"}
                assert "fixmedins_bchno" in node
                codes = node.get("drugtracinfo", [])
                assert isinstance(codes, list)
                assert m["inf_time"][:4].isdigit() and int(m["inf_time"][5:7]) <= 12
                assert all(isinstance(node[k], int | float) for k in (
                    "sel_retn_cnt", "inv_cnt", "cnt", "purc_retn_cnt") if k in node)
            except (ValueError, KeyError, AssertionError, StopIteration, AttributeError,
                    TypeError):
                bad += 1
                continue
            rows.append({
                "file": str(f), "line": i, "infno": m["infno"], "inf_time": m["inf_time"],
                "inst": m["fixmedins_code"], "bchno": node["fixmedins_bchno"],
                "codes": [c["drug_trac_codg"] for c in codes],
                **{k: str(v) for k, v in node.items() if k != "drugtracinfo"},
            })
    fields = ("med_list_codg", "psn_no", "certno", "manu_lotnum", "manu_date", "expy_end",
              "trdn_flag", "sel_retn_cnt", "sel_retn_time", "medins_prod_sel_no", "invdate",
              "inv_chg_type", "inv_chg_time", "inv_data_type")
    df = pl.DataFrame(rows, infer_schema_length=None)
    df = df.with_columns([pl.lit(None, pl.Utf8).alias(f) for f in fields if f not in df.columns])
    df = df.with_columns(
        inf_time=pl.col("inf_time").str.to_datetime("%Y-%m-%d %H:%M:%S"),
        t=pl.coalesce(
            pl.col("sel_retn_time").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False),
            pl.col("inv_chg_time").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False),
            pl.col("invdate").str.to_datetime("%Y-%m-%d", strict=False),
        ),
    )
    # the current version of each record, less those a later-or-equal 3507 deleted
    current = (
        df.filter(pl.col("infno") != "3507")
        .sort("inf_time", "file", "line")
        .group_by("inst", "infno", "bchno").last()
    )
    kinds = {"3501": "1", "3502": "2", "3503": "3", "3504": "3", "3505": "4", "3506": "4"}
    deletes = df.filter(pl.col("infno") == "3507").group_by(
        "inst", "bchno", "inv_data_type").agg(deleted=pl.col("inf_time").max())
    live = (
        current.with_columns(inv_data_type=pl.col("infno").replace_strict(kinds))
        .join(deletes, on=["inst", "bchno", "inv_data_type"], how="left")
        .filter(pl.col("deleted").is_null() | (pl.col("deleted") < pl.col("inf_time")))
    )
    per_code = live.explode("codes").rename({"codes": "code"}).filter(
        pl.col("code").is_not_null())
    sold = per_code.filter(pl.col("infno") == "3505")
    returns = per_code.filter(pl.col("infno") == "3506")
    sales = sold.join(
        returns.select("inst", "code", bchno="medins_prod_sel_no"),
        on=["inst", "bchno", "code"], how="anti")
    stock = per_code.filter(pl.col("infno").is_in(["3501", "3502"]))
    return Landing(
        truth=pl.read_csv(path / "truth.csv", infer_schema=False), inst=csvs["institutions"],
        catalog=csvs["catalog"], persons=csvs["persons"], issuance=csvs["code_issuance"],
        records=live, sales=sales.with_columns(units=pl.col("sel_retn_cnt").cast(pl.Float64)),
        returns=returns, stock=stock, bad_lines=bad)


# -- the contract's definitions, read independently of the pipeline ------------------------

INBOUND = ("101", "103", "106", "108", "110")


def in_stock_before(ld: Landing) -> pl.DataFrame:
    """Net sales, each with whether its code was in the selling institution's stock
    (3501, or 3502 inbound) at or before the sale."""
    inbound = ld.stock.filter(
        (pl.col("infno") == "3501") | pl.col("inv_chg_type").is_in(INBOUND)
    ).group_by("inst", "code").agg(first_in=pl.col("t").min())
    return ld.sales.join(inbound, on=["inst", "code"], how="left").with_columns(
        stocked=pl.col("first_in").is_not_null() & (pl.col("first_in") <= pl.col("t")))


def activation(ld: Landing) -> pl.DataFrame:
    """Net sales joined to the activated lot their code falls in (null: none)."""
    iss = ld.issuance.with_columns(pl.col("serial_from", "serial_to").cast(pl.Int64))
    s = ld.sales.with_columns(
        prefix=pl.col("code").str.slice(0, 7),
        serial=pl.when(pl.col("code").str.contains(r"^8\d{19}$"))
        .then(pl.col("code").str.slice(7, 9).cast(pl.Int64)),
    ).with_row_index("sale")
    hit = s.join(iss.rename({"manu_lotnum": "act_lot", "manu_date": "act_manu",
                             "expy_end": "act_expy"}),
                 left_on="prefix", right_on="trace_prefix").filter(
        pl.col("serial").is_between(pl.col("serial_from"), pl.col("serial_to")))
    return s.join(hit.select("sale", "act_lot", "act_manu", "act_expy"), on="sale", how="left")


def flagged(ld: Landing) -> dict[str, set[str]]:
    s = ld.sales
    out: dict[str, set[str]] = {}
    whole = s.filter(pl.col("trdn_flag") == "0")
    per_code = whole.group_by("code").agg(
        n_inst=pl.col("inst").n_unique(), span=(pl.col("t").max() - pl.col("t").min()),
        most_at_one=pl.col("inst").value_counts().struct.field("count").max())
    cross = s.group_by("code").agg(n_inst=pl.col("inst").n_unique(),
                                   span=(pl.col("t").max() - pl.col("t").min()))
    out["dup_same_institution"] = set(per_code.filter(pl.col("most_at_one") >= 2)["code"])
    many = cross.filter(pl.col("n_inst") >= 2)
    out["dup_cross_long_gap"] = set(many.filter(pl.col("span").dt.total_seconds() > WEEK)["code"])
    out["dup_cross_short_gap"] = set(many.filter(pl.col("span").dt.total_seconds() <= WEEK)[
        "code"])
    pack = ld.catalog.select("med_list_codg", pl.col("pack_units").cast(pl.Float64))
    split = s.filter(pl.col("trdn_flag") == "1").join(pack, on="med_list_codg")
    out["split_overdraw"] = set(split.group_by("code").agg(
        over=pl.col("units").sum() > pl.col("pack_units").first()).filter("over")["code"])
    ret = ld.returns.group_by("code", "inst").agg(returned=pl.col("t").min())
    resold = s.join(ret, on="code", suffix="_ret").filter(
        (pl.col("inst") != pl.col("inst_ret")) & (pl.col("t") > pl.col("returned")))
    out["return_resold"] = set(resold["code"])
    inbound = ld.stock.filter(pl.col("inv_chg_type").is_in(INBOUND))
    reflux = s.join(inbound, on="code", suffix="_in").filter(pl.col("t_in") > pl.col("t"))
    out["reflux_inbound"] = set(reflux["code"])
    act = activation(ld)
    out["unknown_code"] = set(act.filter(pl.col("act_lot").is_null())["code"])
    known = act.filter(pl.col("act_lot").is_not_null())
    out["lot_expiry_mismatch"] = set(known.filter(
        (pl.col("manu_lotnum") != pl.col("act_lot")) | (pl.col("expy_end") != pl.col("act_expy"))
    )["code"])
    day = pl.col("t").dt.date()
    out["expired_sale"] = set(known.filter(
        (day > pl.col("act_expy").str.to_date()) | (day < pl.col("act_manu").str.to_date())
    )["code"])
    prefix = ld.catalog.select("med_list_codg", "trace_prefix")
    out["product_mismatch"] = set(known.join(prefix, on="med_list_codg").filter(
        pl.col("code").str.slice(0, 7) != pl.col("trace_prefix"))["code"])

    people = ld.persons.select("psn_no", pl.col("certno").alias("p_cert"), "gender",
                               pl.col("birth_date").str.to_date(),
                               pl.col("death_date").str.to_date(strict=False))
    buys = s.join(people, on="psn_no", how="left").join(
        ld.inst.select(pl.col("fixmedins_code").alias("inst"), "admdvs", "open_time",
                       "close_time"), on="inst")
    out["deceased_person"] = set(buys.filter(day >= pl.col("death_date"))["psn_no"])
    out["identity_mismatch"] = set(buys.filter(
        (pl.col("certno") != pl.col("p_cert")) | pl.col("p_cert").is_null()
        | ~pl.col("certno").map_elements(is_valid_resident_id, return_dtype=pl.Boolean)
    )["psn_no"])
    visits = buys.select("psn_no", "t", city=pl.col("admdvs").str.slice(0, 4)).unique().sort(
        "psn_no", "t")
    hop = visits.with_columns(
        prev_t=pl.col("t").shift().over("psn_no"), prev_city=pl.col("city").shift().over(
            "psn_no")).filter((pl.col("city") != pl.col("prev_city"))
                              & ((pl.col("t") - pl.col("prev_t")).dt.total_seconds() < 3 * 3600))
    out["impossible_travel"] = set(hop["psn_no"])
    limits = ld.catalog.select("med_list_codg", "gender_limit",
                               pl.col("min_age").cast(pl.Int64), pl.col("max_age").cast(pl.Int64))
    age = (day - pl.col("birth_date")).dt.total_days() / 365.25
    out["demographic_mismatch"] = set(buys.join(limits, on="med_list_codg").filter(
        ((pl.col("gender_limit") != "") & (pl.col("gender_limit") != pl.col("gender")))
        | (age < pl.col("min_age")) | (age > pl.col("max_age") + 1)
    )["psn_no"])
    pairs = buys.select("psn_no", "med_list_codg", "inst", "t")
    window = pairs.join(pairs, on=["psn_no", "med_list_codg"], suffix="_2").filter(
        (pl.col("t_2") >= pl.col("t")) & ((pl.col("t_2") - pl.col("t")).dt.total_seconds()
                                          <= WEEK))
    out["card_hopping"] = set(window.group_by("psn_no", "med_list_codg", "t").agg(
        pl.col("inst_2").n_unique()).filter(pl.col("inst_2") >= 4)["psn_no"])
    stocked = in_stock_before(ld)
    out["no_inbound"] = set(stocked.filter(~pl.col("stocked")).group_by("inst").agg(
        pl.col("code").n_unique()).filter(pl.col("code") >= 5)["inst"])
    tod = pl.col("t").dt.strftime("%H:%M")
    night = buys.filter((pl.col("open_time") != "") & ((tod < pl.col("open_time"))
                                                       | (tod >= pl.col("close_time"))))
    night = night.with_columns(night=(pl.col("t") - pl.duration(hours=12)).dt.date())
    out["off_hours_burst"] = set(night.group_by("inst", "night").agg(
        pl.col("psn_no").n_unique()).filter(pl.col("psn_no") >= 10)["inst"])
    return out


RULE_CATEGORIES = (
    "dup_same_institution", "dup_cross_long_gap", "dup_cross_short_gap", "split_overdraw",
    "return_resold", "reflux_inbound", "unknown_code", "lot_expiry_mismatch", "expired_sale",
    "product_mismatch", "deceased_person", "identity_mismatch", "impossible_travel",
    "demographic_mismatch", "card_hopping", "no_inbound", "off_hours_burst")


@pytest.fixture(scope="module")
def read(landing: Path) -> Landing:
    return read_landing(landing)


@pytest.fixture(scope="module")
def flags(read: Landing) -> dict[str, set[str]]:
    return flagged(read)


# -- tests ---------------------------------------------------------------------------------


def well_formed(landing: Path) -> Iterator[dict]:
    for f in sorted((landing / "messages").glob("*/*.jsonl")):
        for raw in f.read_bytes().splitlines():
            try:
                m = json.loads(raw.decode())
                body = next(iter(m["input"].values()))
            except (ValueError, TypeError, KeyError, StopIteration, AttributeError):
                continue
            if m["infno"] in ("3501", "3502", "3503", "3504", "3505", "3506", "3507") and (
                    isinstance(body, dict)):
                yield m



def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        simulate(tmp_path / name, scale="demo", days=3, seed=5)
    first, second = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert first == second
    assert any(name.startswith("messages/") for name in first)


def digest(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture
def three_chunks(monkeypatch: pytest.MonkeyPatch) -> str:
    """The demo world in three chunks, so that several are written at once."""
    monkeypatch.setitem(SCALES, "demo3", replace(SCALES["demo"], name="demo3", chunks=3))
    return "demo3"


def test_the_bytes_do_not_depend_on_how_many_threads_write(
    tmp_path: Path, three_chunks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate(tmp_path / "two", scale=three_chunks, days=3, seed=5)
    monkeypatch.setattr(simulation, "WRITERS", 1)
    simulate(tmp_path / "one", scale=three_chunks, days=3, seed=5)
    assert digest(tmp_path / "one") == digest(tmp_path / "two")
    assert len(list((tmp_path / "one" / "messages").glob("*/part-0005.jsonl"))) >= 3


def test_gzipped_messages_hold_the_same_lines(
    tmp_path: Path, three_chunks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulate(tmp_path / "plain", scale=three_chunks, days=2, seed=8)
    monkeypatch.setitem(SCALES, three_chunks, replace(SCALES[three_chunks], gzip=True))
    simulate(tmp_path / "gz", scale=three_chunks, days=2, seed=8)
    plain = sorted((tmp_path / "plain" / "messages").rglob("*.jsonl"))
    zipped = sorted((tmp_path / "gz" / "messages").rglob("*.jsonl.gz"))
    assert [p.name + ".gz" for p in plain] == [p.name for p in zipped]
    for p, z in zip(plain, zipped, strict=True):
        assert gzip.decompress(z.read_bytes()) == p.read_bytes()


def test_the_fast_sorts_and_searches_agree_with_numpy() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 60))
        keys = tuple(rng.integers(-(2 ** int(rng.integers(1, 44))), 2 ** int(rng.integers(1, 44)),
                                  n) for _ in range(int(rng.integers(1, 5))))
        assert (lexsort(keys) == np.lexsort(keys)).all()
    axis = np.sort(rng.integers(0, 30, 5_000) + rng.random(5_000) ** 3)
    u = np.concatenate([rng.integers(-1, 32, 200_000) + rng.random(200_000), axis[:500]])
    assert (search_right(axis, u) == np.searchsorted(axis, u, side="right")).all()


def test_runs_of_codes_are_joined_in_order() -> None:
    values = pl.Series(["a", "b", "c", "d", "e", "f"])
    starts = np.array([True, False, True, True, False, False])
    assert join_runs(values, starts, "|").to_list() == ["a|b", "c", "d|e|f"]
    assert join_runs(values, np.ones(6, bool), "|").to_list() == values.to_list()


def test_another_seed_writes_another_world(tmp_path: Path) -> None:
    a = simulate(tmp_path / "a", scale="demo", days=2, seed=1)
    b = simulate(tmp_path / "b", scale="demo", days=2, seed=2)
    assert (a.out / "reference/persons.csv").read_bytes() != (
        b.out / "reference/persons.csv").read_bytes()


def test_the_landing_has_the_contract_layout(landing: Path) -> None:
    for name, columns in {
        "institutions": ["fixmedins_code", "fixmedins_name", "fixmedins_type", "admdvs",
                         "open_time", "close_time"],
        "catalog": ["med_list_codg", "drug_name", "trace_prefix", "pack_units", "pack_price",
                    "gender_limit", "min_age", "max_age"],
        "persons": ["psn_no", "certno", "psn_name", "gender", "birth_date", "insu_admdvs",
                    "death_date"],
        "code_issuance": ["trace_prefix", "serial_from", "serial_to", "manu_lotnum",
                          "manu_date", "expy_end"],
    }.items():
        with (landing / "reference" / f"{name}.csv").open(encoding="utf-8") as f:
            header = next(csv.reader(f))
        assert header[: len(columns)] == columns
    days = sorted(p.name for p in (landing / "messages").iterdir())
    assert days[0] == "2025-11-01" and len(days) >= DAYS
    assert (landing / "truth.csv").read_text().splitlines()[0] == (
        "category,subject_type,subject_id,note,members")  # members: a ring's institutions


def test_institution_codes_and_traceability_codes_look_real(read: Landing) -> None:
    assert read.inst["fixmedins_code"].str.contains(r"^[PH]\d{11}$").all()
    assert (read.inst["fixmedins_code"].str.slice(1, 6) == read.inst["admdvs"]).all()
    assert read.catalog["trace_prefix"].str.contains(r"^8\d{6}$").all()
    unknown = read.truth_subjects("unknown_code")
    codes = read.sales.filter(~pl.col("code").is_in(list(unknown)))["code"]
    assert codes.str.contains(r"^8\d{19}$").all()


def test_every_resident_id_is_valid_and_agrees_with_birth_date_and_sex(read: Landing) -> None:
    p = read.persons
    assert p["certno"].n_unique() == p.height and p["psn_no"].n_unique() == p.height
    for certno, gender, birth in p.select("certno", "gender", "birth_date").iter_rows():
        assert is_valid_resident_id(certno), certno
        assert certno[6:14] == birth.replace("-", "")
        assert (int(certno[16]) % 2 == 1) == (gender == "M")


def test_msgids_are_unique_and_files_are_placed_by_upload_date(landing: Path) -> None:
    seen: set[str] = set()
    for f in (landing / "messages").glob("*/*.jsonl"):
        for raw in f.read_bytes().splitlines():
            try:
                m = json.loads(raw.decode())
                msgid, inf_time = m["msgid"], m["inf_time"]
            except (ValueError, TypeError, KeyError):
                continue
            assert msgid not in seen
            seen.add(msgid)
            if inf_time[5:7] <= "12":
                assert inf_time[:10] == f.parent.name


def test_some_uploads_are_late_by_up_to_two_days(read: Landing) -> None:
    sales = read.records.filter(pl.col("infno") == "3505")
    lag = (sales["inf_time"] - sales["t"]).dt.total_seconds()
    assert (lag > 6 * 3600).any()
    assert lag.max() <= 2 * 86_400 + 60
    assert (lag >= 0).all()


def test_the_look_alikes_are_present(landing: Path, read: Landing) -> None:
    live = read.records
    assert (live["infno"] == "3506").any()  # cancels and customer returns
    assert read.bad_lines >= 9  # every kind of malformed line
    raw = list(well_formed(landing))
    keys = [(m["fixmedins_code"], m["infno"], next(iter(m["input"].values()))
             ["fixmedins_bchno"]) for m in raw if m["infno"] != "3507"]
    assert len(keys) > len(set(keys))  # re-sent and corrected records
    assert any(m["infno"] == "3507" for m in raw)
    split = read.sales.filter(pl.col("trdn_flag") == "1").group_by("code").len()
    assert (split["len"] >= 3).any()  # split packs used up over many sales
    assert (read.stock["inv_chg_type"] == "101").any()  # transfers between a chain's shops


def test_every_sold_code_was_activated_and_stocked_first_unless_a_fraud_says_otherwise(
    read: Landing,
) -> None:
    # re-sold boxes the reseller never bought in, and the no-inbound shops' sales
    exempt = read.truth_subjects("dup_cross_long_gap") | read.truth_subjects("return_resold")
    no_inbound_shops = read.truth_subjects("no_inbound")
    stocked = in_stock_before(read).filter(
        ~pl.col("code").is_in(list(exempt)) & ~pl.col("inst").is_in(list(no_inbound_shops)))
    assert stocked["stocked"].all(), stocked.filter(~pl.col("stocked")).head()
    unknown = list(read.truth_subjects("unknown_code"))
    act = activation(read).filter(~pl.col("code").is_in(unknown))
    assert act["act_lot"].is_not_null().all()


def test_split_sales_never_exceed_a_pack_except_in_split_overdraw_frauds(read: Landing) -> None:
    pack = read.catalog.select("med_list_codg", pl.col("pack_units").cast(pl.Float64))
    used = read.sales.filter(pl.col("trdn_flag") == "1").join(pack, on="med_list_codg").group_by(
        "code").agg(pl.col("units").sum(), pl.col("pack_units").first())
    over = set(used.filter(pl.col("units") > pl.col("pack_units"))["code"])
    assert over == read.truth_subjects("split_overdraw")
    assert len(used) > 20


@pytest.mark.parametrize("category", RULE_CATEGORIES)
def test_a_rule_category_flags_exactly_the_planted_subjects(
    category: str, read: Landing, flags: dict[str, set[str]]
) -> None:
    planted = read.truth_subjects(category)
    assert planted, f"nothing planted for {category}"
    assert flags[category] == planted


def test_behaviour_only_frauds_are_planted_for_the_model(read: Landing) -> None:
    shops = read.truth_subjects("anomaly_institution")
    people = read.truth_subjects("anomaly_person")
    assert len(shops) == SCALES["demo"].anomaly_institutions
    assert len(people) == SCALES["demo"].anomaly_persons
    notes = dict(read.truth.filter(pl.col("category") == "anomaly_institution")
                 .select("subject_id", "note").iter_rows())
    # one dear drug rises above its first days: thirty-fold, five-fold, or a ramp
    rise = {"remote_jump": 10, "local_jump_5x": 3, "ramp": 2}
    assert {n.split(":")[0] for n in notes.values()} <= set(rise)
    for shop in shops:
        sales = read.sales.filter(pl.col("inst") == shop)
        top = sales.group_by("med_list_codg").len().sort("len")["med_list_codg"][-1]
        day = (pl.col("t") - pl.datetime(2025, 11, 1)).dt.total_days()
        drug = sales.filter(pl.col("med_list_codg") == top)
        before = drug.filter(day < DAYS // 2).height
        after = drug.filter(day >= DAYS // 2).height
        assert after >= rise[notes[shop].split(":")[0]] * max(before, 1)
    for person in people:  # far more boxes than a patient needs, at 1-3 shops
        bought = read.sales.filter(pl.col("psn_no") == person)
        assert bought.height >= 8 and bought["inst"].n_unique() <= 3


def test_the_truth_names_each_subject_with_the_contract_subject_type(read: Landing) -> None:
    kinds = dict(read.truth.select("category", "subject_type").unique().iter_rows())
    assert {c for c, k in kinds.items() if k == "code"} == {
        "dup_same_institution", "dup_cross_long_gap", "dup_cross_short_gap", "split_overdraw",
        "return_resold", "reflux_inbound", "unknown_code", "lot_expiry_mismatch",
        "expired_sale", "product_mismatch"}
    assert {c for c, k in kinds.items() if k == "institution"} == {
        "no_inbound", "off_hours_burst", "anomaly_institution", "ring"}
    assert read.truth["note"].str.len_chars().min() > 10


def test_a_short_history_skips_what_it_cannot_plant(tmp_path: Path) -> None:
    result = simulate(tmp_path / "short", scale="demo", days=2, seed=3)
    truth = pl.read_csv(result.out / "truth.csv", infer_schema=False)
    assert "dup_cross_long_gap" not in set(truth["category"])
    assert result.n_truth == truth.height > 10


def test_unknown_scales_and_foreign_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="unknown scale"):
        simulate(tmp_path / "x", scale="planet")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SimulationError, match="not empty"):
        simulate(tmp_path / "mine", scale="demo", days=1)


def test_the_default_week_plants_every_category_but_the_long_gap(tmp_path: Path) -> None:
    from tracecode.categories import CATEGORIES

    result = simulate(tmp_path / "week", scale="demo", days=7, seed=0)
    truth = pl.read_csv(result.out / "truth.csv", infer_schema=False)
    # dup_cross_long_gap needs two sales more than 7 days apart: not within 7 days
    assert set(truth["category"]) == set(CATEGORIES) - {"dup_cross_long_gap"}
    ring = truth.filter(pl.col("category") == "ring").row(0, named=True)
    assert len(ring["members"].split(";")) >= 4


def test_the_per_institution_layout_holds_the_same_lines_one_file_per_institution_day(
    tmp_path: Path, three_chunks: str
) -> None:
    simulate(tmp_path / "parts", scale=three_chunks, days=2, seed=8)
    simulate(tmp_path / "inst", scale=three_chunks, days=2, seed=8, layout="per-institution")

    def lines(root: Path) -> dict[str, list[bytes]]:
        return {str(p.relative_to(root / "messages")): p.read_bytes().splitlines()
                for p in sorted((root / "messages").rglob("*.jsonl"))}

    parts, inst = lines(tmp_path / "parts"), lines(tmp_path / "inst")
    assert sorted(x for v in parts.values() for x in v) == sorted(
        x for v in inst.values() for x in v)
    assert len(inst) > 3 * len(parts)
    for rel, file_lines in inst.items():
        day, name = rel.split("/")
        senders = {json.loads(x)["fixmedins_code"] for x in file_lines if _is_json(x)}
        assert senders <= {name.removesuffix(".jsonl")}, rel
        assert len(day) == 10
    with pytest.raises(SimulationError, match="layout"):
        simulate(tmp_path / "x", scale=three_chunks, days=2, seed=8, layout="flat")


def _is_json(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict) and "fixmedins_code" in json.loads(line)
    except ValueError:
        return False
