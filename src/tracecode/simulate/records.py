"""The record table every generator fills: one row per message, before it becomes JSON.

``key`` names the logical record (its fixmedins_bchno is derived from it); a re-sent
copy or a corrected version shares the key of the record it repeats. ``ref_key`` is the
record a 3506 returns or a 3507 deletes. Person fields (``psn_no`` etc.) are only set
where a planted fraud overrides what ``person`` would give.

``codes`` holds a record's traceability codes already joined the way the message lists
them (``CODE_SEP`` between two codes), so that copying and reordering records moves one
string, not a list; ``n_codes`` counts them.
"""

from __future__ import annotations

import polars as pl

RECORD_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.Int64(),
    "infno": pl.Utf8(),
    "inst": pl.Int64(),
    "t_ev": pl.Int64(),
    "t_up": pl.Int64(),
    "product": pl.Int32(),
    "lot": pl.Int32(),
    "codes": pl.Utf8(),  # c1"},{"drug_trac_codg":"c2 ...: see join_codes
    "n_codes": pl.Int32(),
    "cnt": pl.Int64(),
    "price": pl.Float64(),
    "trdn": pl.Utf8(),
    "person": pl.Int64(),
    "psn_no": pl.Utf8(),
    "certno": pl.Utf8(),
    "psn_name": pl.Utf8(),
    "setl": pl.Utf8(),
    "receipt": pl.Int64(),
    "chg_type": pl.Utf8(),
    "spler": pl.Utf8(),
    "ref_key": pl.Int64(),
    "ref_type": pl.Utf8(),
    "role": pl.Utf8(),  # normal | stock | fraud | a look-alike's name
    "bad": pl.Utf8(),  # kind of malformation, for the few corrupted copies
}

CODE_SEP = '"},{"drug_trac_codg":"'

# Keys: sale lines use their line number; stock records start here; frauds above.
STOCK_KEY_BASE = 1 << 34
LOOKALIKE_KEY_BASE = 1 << 36
FRAUD_KEY_BASE = 1 << 40


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with every record column, in order, nulls where it had none."""
    return df.select(
        [
            pl.col(c).cast(t) if c in df.columns else pl.lit(None, dtype=t).alias(c)
            for c, t in RECORD_SCHEMA.items()
        ]
    )


def join_codes(codes: list[str]) -> str:
    """The ``codes`` value of a record listing ``codes``.

    >>> join_codes(["81", "82"])
    '81"},{"drug_trac_codg":"82'
    """
    return CODE_SEP.join(codes)
