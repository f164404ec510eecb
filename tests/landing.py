"""Build small landing directories for tests, in the contract's formats.

A default world that raises nothing by itself: institutions with opening hours, drugs
with activated lots, persons with valid resident IDs (but p16, whose registered ID is
broken, and p5, who died on 2025-10-01). Codes are written ``A:7`` (drug A, serial 7) and
expanded to 20 digits; unless told otherwise every code a test sells is stocked at the
selling institution a day before its first sale there.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(region: str, birth: str, seq: int, male: bool) -> str:
    """A valid 18-character resident ID (ISO 7064 MOD 11-2 check character)."""
    order = seq * 2 + (1 if male else 0)
    body = f"{region}{birth.replace('-', '')}{order % 1000:03d}"
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]
    return body + check


def wrong_check(certno: str) -> str:
    """The same resident ID with a wrong check character."""
    return certno[:17] + ("1" if certno[17] == "0" else "0")


INSTITUTIONS = [
    # code, name, type, admdvs, open, close
    ("P44010600001", "广州康民大药房", "pharmacy", "440106", "08:00", "22:00"),
    ("P44010600002", "广州仁和药店", "pharmacy", "440106", "08:00", "22:00"),
    ("P44010400003", "广州越秀健民药房", "pharmacy", "440104", "08:30", "21:30"),
    ("H44010600004", "广州天河社区卫生服务中心", "clinic", "440106", "08:00", "17:30"),
    ("P44030400005", "深圳福田百姓大药房", "pharmacy", "440304", "08:00", "22:00"),
    ("H44010600006", "广州第一人民医院", "hospital", "440106", "", ""),
    # a night pharmacy: its hours cross midnight
    ("P44010600007", "广州通宵大药房", "pharmacy", "440106", "20:00", "02:00"),
]

# letter, med_list_codg, name, trace_prefix, pack_units, pack_price, gender, min_age, max_age
DRUGS = {
    "A": ("XC10AAA123A001010104321", "阿托伐他汀钙片", "8123456", 28, 56.0, "", "", ""),
    "B": ("ZA09BAA0123010104567890", "复方阿胶浆", "8234567", 12, 180.0, "", "", ""),
    "C": ("XA10BJA123B002010181234", "司美格鲁肽注射液", "8345678", 1, 1200.0, "", "18", ""),
    "D": ("XG03DAA045A001010100321", "黄体酮软胶囊", "8456789", 10, 90.0, "F", "18", "55"),
}
LOT = ("B2409011", "2024-09-01", "2026-08-31")
# Every drug's activated lots by serial range: LOT, a later lot, and an old lot already
# expired in the tests' autumn of 2025. Serials from 3,000,000 on were never activated.
LOTS = (
    (1, 999_999, LOT),
    (1_000_000, 1_999_999, ("B2503152", "2025-03-15", "2027-03-14")),
    (2_000_000, 2_999_999, ("B2206010", "2022-06-01", "2025-05-31")),
)


@dataclass
class Person:
    psn_no: str
    certno: str
    name: str
    gender: str
    birth: str
    admdvs: str = "440106"
    death: str = ""


PERSONS = {
    "p1": Person("44000000000001", resident_id("440106", "1960-03-15", 101, True), "张伟", "M",
                 "1960-03-15"),
    "p2": Person("44000000000002", resident_id("440104", "1985-07-02", 102, False), "王芳", "F",
                 "1985-07-02", "440104"),
    "p3": Person("44000000000003", resident_id("440304", "1972-11-30", 103, True), "李强", "M",
                 "1972-11-30", "440304"),
    "p4": Person("44000000000004", resident_id("440106", "1990-01-20", 104, False), "刘洋", "F",
                 "1990-01-20"),
    "p5": Person("44000000000005", resident_id("440106", "1948-05-05", 105, True), "陈明", "M",
                 "1948-05-05", death="2025-10-01"),
    # turns 56 on 2025-11-15 (drug D is for women up to 55)
    "p6": Person("44000000000006", resident_id("440106", "1969-11-15", 106, False), "赵丽", "F",
                 "1969-11-15"),
    # turns 18 on 2025-11-20 (drug C is from 18)
    "p7": Person("44000000000007", resident_id("440104", "2007-11-20", 107, True), "孙浩", "M",
                 "2007-11-20", "440104"),
}


def _shopper(n: int, birth: str) -> Person:
    male = n % 2 == 0
    return Person(f"440000000000{n:02d}", resident_id("440106", birth, 100 + n, male),
                  f"顾客{n}", "M" if male else "F", birth)


# More shoppers, enough for a night's burst of sales: valid, alive, adult, both sexes.
PERSONS.update({
    f"p{n}": _shopper(n, birth)
    for n, birth in enumerate(("1968-09-18", "1969-01-19", "1970-02-10", "1971-03-11",
                               "1972-04-12", "1973-05-13", "1974-06-14", "1975-07-15"), start=8)
})
PERSONS.update({
    # the register itself holds an ID with a wrong check character
    "p16": Person("44000000000016", wrong_check(resident_id("440106", "1980-02-02", 116, False)),
                  "周敏", "F", "1980-02-02"),
    # p3 enrolled again under a second insured number (moved to Guangzhou): one ID, two psn_no
    "p17": Person("44000000000017", PERSONS["p3"].certno, "李强", "M", "1972-11-30"),
})
# Ten different adults who may buy any drug but D (for women up to 55).
SHOPPERS = ("p1", "p2", "p3", "p4", "p8", "p9", "p10", "p11", "p12", "p13")


def code(alias: str) -> str:
    """``'A:7'`` -> drug A's prefix, serial 000000007, check digits 0000."""
    letter, _, serial = alias.partition(":")
    if letter not in DRUGS or not serial.isdigit():
        return alias  # a literal code, e.g. a malformed one
    return f"{DRUGS[letter][2]}{int(serial):09d}0000"


@dataclass
class Landing:
    """Messages added in order; ``write`` puts them under ``root``."""

    root: Path
    messages: list[tuple[str, dict[str, Any] | str | bytes]] = field(default_factory=list)
    auto_stock: bool = True
    _msg_seq: int = 0
    _stocked: set[tuple[str, str]] = field(default_factory=set)
    _stock_seq: int = 0

    # -- messages ------------------------------------------------------------------------

    def envelope(self, infno: str, inst: str, inf_time: str, node: str,
                 body: dict[str, Any]) -> dict[str, Any]:
        self._msg_seq += 1
        return {
            "infno": infno,
            "msgid": f"{inst}{inf_time.replace('-', '').replace(' ', '').replace(':', '')}"
                     f"{self._msg_seq:05d}",
            "inf_time": inf_time,
            "fixmedins_code": inst,
            "fixmedins_name": next((i[1] for i in INSTITUTIONS if i[0] == inst), ""),
            "input": {node: body},
        }

    def add(self, message: dict[str, Any] | str | bytes, file: str = "day1.jsonl") -> None:
        self.messages.append((file, message))

    def sale(self, inst: str, bchno: str, codes: Iterable[str], time: str, *,
             person: str = "p1", drug: str | None = None, qty: float | None = None,
             split: bool = False, price: float | None = None, inf_time: str | None = None,
             infno: str = "3505", of: str | None = None, file: str = "day1.jsonl",
             insured: bool = True, stock: bool | None = None, **override: Any) -> None:
        """A sale (or, with ``infno='3506'`` and ``of``, a sale return)."""
        full = [code(c) for c in codes]
        letter = drug or (_letter(full[0]) if full else "A")
        med, _name, _prefix, pack, pack_price = DRUGS[letter][:5]
        lot = lot_of(full[0]) if full else LOT
        p = PERSONS[person]
        units = qty if qty is not None else (1 if split else pack * max(len(full), 1))
        unit_price = price if price is not None else round(pack_price / pack, 4)
        if infno == "3505" and (stock if stock is not None else self.auto_stock):
            self._stock_before(inst, full, time, file)
        body: dict[str, Any] = {
            "med_list_codg": med, "fixmedins_bchno": bchno, "psn_no": p.psn_no,
            "psn_cert_type": "01", "certno": p.certno, "psn_name": p.name,
            "manu_lotnum": lot[0], "manu_date": lot[1], "expy_end": lot[2],
            "trdn_flag": "1" if split else "0", "sel_retn_cnt": units, "sel_retn_time": time,
            "finl_trns_pric": unit_price, "rtal_docno": f"R{bchno}",
            "setl_id": f"SETL{bchno}" if insured else "",
            "mdtrt_setl_type": "1" if insured else "2",
            "drugtracinfo": [{"drug_trac_codg": c} for c in full],
        }
        if of is not None:
            body["medins_prod_sel_no"] = of
        body.update(override)
        self.add(self.envelope(infno, inst, inf_time or _later(time, 60), "selinfo", body), file)

    def sale_series(self, inst: str, bchno: str, codes: Iterable[str], time: str, *,
                    every_minutes: int = 10, persons: Iterable[str] = SHOPPERS,
                    **kw: Any) -> None:
        """One whole-pack sale per code, ``every_minutes`` apart, each to the next person."""
        people = list(persons)
        for i, c in enumerate(codes):
            self.sale(inst, f"{bchno}-{i + 1}", [c], _later(time, 60 * every_minutes * i),
                      person=people[i % len(people)], **kw)

    def sale_return(self, inst: str, bchno: str, codes: Iterable[str], time: str, *,
                    of: str | None = None, **kw: Any) -> None:
        self.sale(inst, bchno, codes, time, infno="3506", of=of, **kw)

    def stock(self, inst: str, bchno: str, codes: Iterable[str], time: str, *,
              chg_type: str = "108", drug: str | None = None, file: str = "day1.jsonl",
              inf_time: str | None = None, cnt: int | None = None) -> None:
        full = [code(c) for c in codes]
        letter = drug or (_letter(full[0]) if full else "A")
        lot = lot_of(full[0]) if full else LOT
        body = {
            "med_list_codg": DRUGS[letter][0], "fixmedins_bchno": bchno,
            "inv_chg_type": chg_type, "cnt": len(full) if cnt is None else cnt,
            "pric": DRUGS[letter][4],
            "inv_chg_time": time, "manu_lotnum": lot[0], "manu_date": lot[1],
            "expy_end": lot[2], "trdn_flag": "0",
            "drugtracinfo": [{"drug_trac_codg": c} for c in full],
        }
        self.add(self.envelope("3502", inst, inf_time or _later(time, 60), "invinfo", body), file)
        if chg_type in ("101", "103", "106", "108", "110"):
            self._stocked.update((inst, c) for c in full)

    def snapshot(self, inst: str, bchno: str, codes: Iterable[str], time: str, *,
                 drug: str | None = None, file: str = "day1.jsonl",
                 inf_time: str | None = None) -> None:
        """An inventory snapshot (3501) listing codes on the shelf."""
        full = [code(c) for c in codes]
        letter = drug or (_letter(full[0]) if full else "A")
        lot = lot_of(full[0]) if full else LOT
        body = {
            "med_list_codg": DRUGS[letter][0], "fixmedins_bchno": bchno, "inv_cnt": len(full),
            "manu_lotnum": lot[0], "manu_date": lot[1], "expy_end": lot[2], "invdate": time,
            "drugtracinfo": [{"drug_trac_codg": c} for c in full],
        }
        self.add(self.envelope("3501", inst, inf_time or _later(time, 60), "invinfo", body), file)
        self._stocked.update((inst, c) for c in full)

    def purchase(self, inst: str, bchno: str, time: str, *, drug: str = "A", qty: float = 10,
                 file: str = "day1.jsonl", inf_time: str | None = None) -> None:
        """A purchase (3503): no codes, so no rule screens it; it moves the data's clock."""
        med, _name, _prefix, _pack, pack_price = DRUGS[drug][:5]
        body = {
            "med_list_codg": med, "fixmedins_bchno": bchno, "spler_name": "国药控股广州有限公司",
            "manu_lotnum": LOT[0], "manu_date": LOT[1], "expy_end": LOT[2],
            "finl_trns_pric": pack_price, "purc_retn_cnt": qty, "purc_retn_stoin_time": time,
            "purc_invo_no": f"INV{bchno}",
        }
        self.add(self.envelope("3503", inst, inf_time or _later(time, 60), "purcinfo", body),
                 file)

    def delete(self, inst: str, bchno: str, inf_time: str, *, data_type: str = "4",
               file: str = "day1.jsonl") -> None:
        body = {"fixmedins_bchno": bchno, "inv_data_type": data_type}
        self.add(self.envelope("3507", inst, inf_time, "data", body), file)

    def _stock_before(self, inst: str, full: list[str], time: str, file: str) -> None:
        missing = [c for c in full if (inst, c) not in self._stocked and c[:1] == "8"]
        if not missing:
            return
        self._stock_seq += 1
        self.stock(inst, f"AUTO{self._stock_seq:05d}", missing, _later(time, -86400), file=file)

    # -- files ---------------------------------------------------------------------------

    def write(self, *, encoding: str = "utf-8", persons: dict[str, Person] | None = None,
              gz: Iterable[str] = ()) -> Path:
        """Write reference/ and messages/; ``gz`` names message files to gzip."""
        self.write_reference(encoding=encoding, persons=persons)
        by_file: dict[str, list[bytes]] = {}
        for file, message in self.messages:
            if isinstance(message, dict):
                line = json.dumps(message, ensure_ascii=False).encode()
            elif isinstance(message, str):
                line = message.encode()
            else:
                line = message
            by_file.setdefault(file, []).append(line)
        gz = set(gz)
        for file, lines in by_file.items():
            data = b"\n".join(lines) + b"\n"
            path = self.root / "messages" / (file + (".gz" if file in gz else ""))
            path.parent.mkdir(parents=True, exist_ok=True)
            if file in gz:
                path.write_bytes(gzip.compress(data, mtime=0))
            else:
                path.write_bytes(data)
        (self.root / "messages").mkdir(parents=True, exist_ok=True)
        return self.root

    def write_reference(self, *, encoding: str = "utf-8",
                        persons: dict[str, Person] | None = None) -> None:
        ref = self.root / "reference"
        ref.mkdir(parents=True, exist_ok=True)
        persons = persons or PERSONS
        tables = {
            "institutions": (
                ["fixmedins_code", "fixmedins_name", "fixmedins_type", "admdvs", "open_time",
                 "close_time"],
                INSTITUTIONS,
            ),
            "catalog": (
                ["med_list_codg", "drug_name", "trace_prefix", "pack_units", "pack_price",
                 "gender_limit", "min_age", "max_age"],
                list(DRUGS.values()),
            ),
            "persons": (
                ["psn_no", "certno", "psn_name", "gender", "birth_date", "insu_admdvs",
                 "death_date"],
                [(p.psn_no, p.certno, p.name, p.gender, p.birth, p.admdvs, p.death)
                 for p in persons.values()],
            ),
            "code_issuance": (
                ["trace_prefix", "serial_from", "serial_to", "manu_lotnum", "manu_date",
                 "expy_end"],
                [(d[2], f"{lo:09d}", f"{hi:09d}", *lot)
                 for d in DRUGS.values() for lo, hi, lot in LOTS],
            ),
        }
        for name, (header, rows) in tables.items():
            with open(ref / f"{name}.csv", "w", encoding=encoding, newline="") as fh:
                w = csv.writer(fh)
                w.writerow(header)
                w.writerows(rows)


def lot_of(full_code: str) -> tuple[str, str, str]:
    """The lot a 20-digit code was activated in (LOT for any other code)."""
    serial = int(full_code[7:16]) if len(full_code) == 20 and full_code.isdigit() else 0
    return next((lot for lo, hi, lot in LOTS if lo <= serial <= hi), LOT)


def _letter(full_code: str) -> str:
    return next((k for k, v in DRUGS.items() if v[2] == full_code[:7]), "A")


def _later(time: str, seconds: int) -> str:
    t = datetime.fromisoformat(time) + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%d %H:%M:%S")
