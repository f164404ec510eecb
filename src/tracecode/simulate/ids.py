"""Identifiers, vectorised: resident IDs, trace codes, names.

A resident ID is 6-digit region + 8-digit birth date + 3-digit order (odd for men) + one
ISO 7064 MOD 11-2 check character. A trace code is a 7-digit product prefix, a 9-digit
serial and 4 check digits; the real check algorithm is not public, so ours is a fixed
hash of prefix and serial (same inputs, same digits).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tracecode.simulate.data import GIVEN_FEMALE, GIVEN_MALE, SURNAMES

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK = "10X98765432"


def id_check_char(body17: str) -> str:
    """The check character of a 17-digit resident-ID body.

    >>> id_check_char("11010519491231002")
    'X'
    """
    total = sum(int(d) * int(w) for d, w in zip(body17, ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11]


def is_valid_resident_id(certno: str) -> bool:
    """Whether an 18-character ID has digits, a real birth date and a right check character."""
    if len(certno) != 18 or not certno[:17].isdigit():
        return False
    try:
        np.datetime64(f"{certno[6:10]}-{certno[10:12]}-{certno[12:14]}", "D")
    except ValueError:
        return False
    return id_check_char(certno[:17]) == certno[17]


def resident_ids(region: np.ndarray, birth: np.ndarray, order: np.ndarray) -> pl.Series:
    """18-character IDs from region codes (int, 6 digits), birth dates (datetime64[D]) and
    3-digit order numbers (odd for men)."""
    d = pl.Series(birth.astype("datetime64[D]")).dt
    ymd_int = (d.year().cast(pl.Int64) * 10_000 + d.month().cast(pl.Int64) * 100
               + d.day().cast(pl.Int64)).to_numpy()
    # a region code has 6 digits, the first not 0: the body always has 17
    body = region.astype(np.int64) * 10**11 + ymd_int * 1000 + order.astype(np.int64)
    check = np.zeros(len(body), dtype=np.int64)
    for g, table in enumerate(_ID_TABLES):  # three digits at a time, from the last
        check += table[body // 10 ** (3 * g) % 1000]
    return pl.select(pl.concat_str(
        pl.Series(body).cast(pl.Utf8), pl.Series(list(ID_CHECK)).gather(check % 11),
    )).to_series().alias("certno")


def _id_tables() -> list[np.ndarray]:
    """For each group of three digits of a 17-digit body (from the last), the weighted sum
    its value 0-999 adds to the check."""
    v = np.arange(1000)
    tables = []
    for g in range(6):
        t = np.zeros(1000, dtype=np.int64)
        for j in range(3):
            if 3 * g + j < 17:
                t += v // 10**j % 10 * ID_WEIGHTS[16 - 3 * g - j]
        tables.append(t)
    return tables


_ID_TABLES = _id_tables()


def check_digits(prefix: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """4 deterministic check digits for each (prefix, serial), as int."""
    x = prefix.astype(np.uint64) * np.uint64(1_000_003) + serial.astype(np.uint64)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(32)
    return (x % np.uint64(10_000)).astype(np.int64)


def trace_code_expr(prefix: str, serial: str) -> pl.Expr:
    """A polars expression: the 20-digit code from int columns ``prefix`` and ``serial``
    and an int column ``check`` computed by :func:`check_digits`."""
    return pl.concat_str(
        pl.col(prefix).cast(pl.Utf8),
        pl.col(serial).cast(pl.Utf8).str.zfill(9),
        pl.col("check").cast(pl.Utf8).str.zfill(4),
    )


def trace_codes(prefix: np.ndarray, serial: np.ndarray) -> list[str]:
    """20-digit codes, for the few built one by one (planted frauds)."""
    check = check_digits(prefix, serial)
    return [f"{p:07d}{s:09d}{c:04d}" for p, s, c in zip(prefix, serial, check, strict=True)]


def chinese_names(rng: np.random.Generator, male: np.ndarray) -> pl.Series:
    """Surname + one or two given characters, by sex."""
    n = len(male)
    chars = pl.Series(list(SURNAMES) + list(GIVEN_MALE) + list(GIVEN_FEMALE) + [""])
    m0, f0 = len(SURNAMES), len(SURNAMES) + len(GIVEN_MALE)

    def given() -> np.ndarray:
        return np.where(male, m0 + rng.integers(0, len(GIVEN_MALE), n),
                        f0 + rng.integers(0, len(GIVEN_FEMALE), n))

    first, second = given(), given()
    second = np.where(rng.random(n) < 0.7, second, len(chars) - 1)
    surname = rng.integers(0, len(SURNAMES), n)
    # every possible name once (90 x 72 x 73), then each person's by index
    g = len(chars) - m0  # given characters, and "" last
    s_, f_, t_ = (a.ravel() for a in np.meshgrid(np.arange(m0), np.arange(m0, m0 + g - 1),
                                                 np.arange(m0, m0 + g), indexing="ij"))
    names = pl.select(pl.concat_str(chars.gather(s_), chars.gather(f_), chars.gather(t_))
                      ).to_series()
    return names.gather((surname * (g - 1) + first - m0) * g + second - m0).alias("psn_name")
