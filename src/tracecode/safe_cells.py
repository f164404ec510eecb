"""Cells a spreadsheet cannot run: text that begins like a formula is made inert.

The uploading institution is the party under investigation and controls trace codes,
names and batch numbers; a value such as ``=HYPERLINK("http://x","y")`` must reach the
investigator's Excel as text. CSV cells get a leading ``'`` (the OWASP advice; the value
stays readable); in .xlsx files strings are written with ``write_string`` and a
quote-prefix format (see :mod:`tracecode.workbook`), so nothing is ever a formula.

>>> neutralise("=1+1")
"'=1+1"
>>> neutralise("8123456000000070001")
'8123456000000070001'
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracecode.exports import atomic_file

# what Excel, LibreOffice and Google Sheets read as the start of a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: str) -> bool:
    return value.startswith(FORMULA_STARTS)


def neutralise(value: str) -> str:
    """``value`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + value if is_formula_like(value) else value


def neutralise_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Every text column neutralised; numbers, dates and nulls as they were."""
    pattern = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_STARTS) + "]"
    text = [c for c, t in df.schema.items() if t == pl.String]
    if not text:
        return df
    return df.with_columns(
        pl.when(pl.col(c).str.contains(pattern))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text
    )


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    """UTF-8 with a BOM (Excel opens it as UTF-8), text neutralised, written whole or not
    at all."""
    safe = neutralise_frame(frame)
    atomic_file(path, lambda p: safe.write_csv(p, include_bom=True,
                                               datetime_format="%Y-%m-%d %H:%M:%S"))
