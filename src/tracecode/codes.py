"""What a traceability code is: the 20-digit NMPA form, a GS1 element string, or neither.

The 20-digit form (``^8\\d{19}$``: 7-digit product, 9-digit serial, 4 check digits whose
algorithm is not public) is recognised in SQL, where nearly every code is. The rare other
strings come here, to be parsed as GS1 (AI 01 GTIN-14 with its check digit, AI 21 serial);
a GS1 pack is identified by GTIN + serial.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa
from biip import ParseError
from biip.gs1_messages import GS1Message

NMPA20 = re.compile(r"8\d{19}")
_GS1_PREFIXES = ("]d2", "]C1", "]Q3", "]e0")


def classify(code: str) -> tuple[str, str, str | None]:
    """``(code_id, code_format, product_key)`` of one code.

    >>> classify("(01)06912345678902(21)ABC123")
    ('010691234567890221ABC123', 'gs1', '06912345678902')
    >>> classify("12345")
    ('12345', 'invalid', None)
    """
    if NMPA20.fullmatch(code):
        return code, "nmpa20", code[:7]
    gs1 = _parse_gs1(code)
    if gs1 is None:
        return code, "invalid", None
    gtin, serial = gs1
    return f"01{gtin}21{serial}", "gs1", gtin


def _parse_gs1(code: str) -> tuple[str, str] | None:
    text = code.strip()
    for prefix in _GS1_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
    try:
        msg = GS1Message.parse_hri(text) if text.startswith("(") else GS1Message.parse(text)
    except (ParseError, ValueError):
        return None
    gtin = msg.element_strings.get(ai="01")
    serial = msg.element_strings.get(ai="21")
    if gtin is None or serial is None or gtin.gtin is None or gtin.gtin_error:
        return None
    return gtin.value, serial.value


def code_map(codes: Iterable[str]) -> pa.Table:
    """The classification of each distinct code, as the ``code_map`` the ingest joins."""
    distinct = sorted(set(codes))
    rows = [classify(c) for c in distinct]
    return pa.table(
        {
            "drug_trac_codg": pa.array(distinct, pa.string()),
            "code_id": pa.array([r[0] for r in rows], pa.string()),
            "code_format": pa.array([r[1] for r in rows], pa.string()),
            "product_key": pa.array([r[2] for r in rows], pa.string()),
        }
    )
