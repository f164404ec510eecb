"""Names of China's administrative regions (行政区划) for display, from python-stdnum's
region table (the one ``quality`` checks resident IDs against).

>>> city_name("440100"), city_name("4401"), city_name("999999")
('广州市', '广州市', None)
"""

from __future__ import annotations

import re
from functools import cache

import polars as pl
from stdnum import numdb

# a name valid from a year on carries it as a prefix: "[2003-]乌兰察布市"
_SINCE = re.compile(r"^\[[^\]]*\]")


@cache
def city_name(code: str | None) -> str | None:
    """The city (地市) of a region code: its first four digits, as a name; None when the
    table does not know it. A municipality's city level is its own name (北京市)."""
    if not code or len(code) < 4 or not code[:4].isdigit():
        return None
    parts = numdb.get("cn/loc").info(code[:4] + "00")
    if len(parts) < 2:
        return None
    (_, province), (_, city) = parts[0], parts[1]
    name = city.get("county")
    if not name:
        return None
    name = _SINCE.sub("", name)
    return province.get("province") if name in ("市辖区", "县") else name


def with_city_names(frame: pl.DataFrame, column: str = "city") -> pl.DataFrame:
    """``column`` shown as "广州市（440100）" where the name is known, the code otherwise."""
    if column not in frame.columns or frame.is_empty():
        return frame
    codes = frame[column].cast(pl.String).unique().to_list()
    labels = {c: f"{city_name(c)}（{c}）" if city_name(c) else c for c in codes if c}
    return frame.with_columns(pl.col(column).cast(pl.String).replace(labels))
