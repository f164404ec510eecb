"""Cells that a spreadsheet will not run: text starting with ``= + - @``, a tab or a
carriage return is read by Excel and WPS as a formula (CSV injection), so exported text
gets a leading apostrophe.

>>> neutralise("=cmd|' /C calc'!A0")
"'=cmd|' /C calc'!A0"
>>> neutralise("-12") == "'-12", neutralise("广州") == "广州"
(True, True)
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str | None) -> str | None:
    """``text`` with a leading apostrophe when a spreadsheet would read it as a formula."""
    if text is not None and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def neutralise_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column of ``frame`` neutralised (numbers stay numbers)."""
    starts = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_STARTS) + "]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(starts)).then("'" + pl.col(c)).otherwise(pl.col(c))
        .alias(c)
        for c, dtype in frame.schema.items() if dtype == pl.Utf8
    )


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    """UTF-8 with a BOM (Excel opens it as UTF-8), text neutralised, written whole or not
    at all."""
    from tracecode.report import _atomic  # report builds on the exports, not the reverse

    safe = neutralise_frame(frame)
    _atomic(path, lambda p: safe.write_csv(p, include_bom=True,
                                           datetime_format="%Y-%m-%d %H:%M:%S"))
