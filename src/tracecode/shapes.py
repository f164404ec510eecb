"""Rewrite a message of a non-spec shape into the spec's shape, naming each habit it used.

The ingest parses every line once in DuckDB (``sql/ingest/parse_lines.sql``); the few lines
that SQL flags as not spec-shaped (a batch infno, a body node held as a string or under
another infno's name, upper-case keys, codes outside ``drugtracinfo``...) come here, one
line at a time, and go back to the same SQL as spec-shaped JSON, one line per record.
The habits are carried in an extra envelope key, ``_tracecode``, that the SQL reads.

>>> [s.habits for s in normalise('{"infno": "3505A", "input": {"selinfoDetail": '
...                               '[{"fixmedins_bchno": "a"}, {"fixmedins_bchno": "b"}]}}')]
[('batch',), ('batch',)]

A code anywhere in the message must end up in a ``drugtracinfo``; if one would not, the
line is refused with the place of the code (:class:`Refused`), never stored without it.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tracecode.db import Database

log = logging.getLogger(__name__)

META_KEY = "_tracecode"
NODES = {"3501": "invinfo", "3502": "invinfo", "3503": "purcinfo", "3504": "purcinfo",
         "3505": "selinfo", "3506": "selinfo", "3507": "data"}
_BODY_NODES = ("selinfo", "invinfo", "purcinfo", "data")
# the spec's batch node names are camel case; these are not upper-case habits
_CAMEL = {"invinfoDetail", "purcinfoDetail", "selinfoDetail"}
_CAMEL_BY_LOWER = {c.lower(): c for c in _CAMEL}
_CODE_KEY = re.compile(r"drug_?trac_?cod[eg]?|drugtracinfo", re.IGNORECASE)
_CODE_SPLIT = re.compile(r"\s*[,;，；]\s*")


@dataclass(frozen=True)
class Shaped:
    """One record of a message, as spec-shaped JSON text, and the habits it needed."""

    text: str
    habits: tuple[str, ...]
    elem_no: int  # 1.. for the elements of a batch message, 0 otherwise


class Refused(ValueError):
    """The message cannot be read without losing part of it; the text says which part."""


def normalise(line: str) -> list[Shaped] | None:
    """The spec-shaped records of ``line``; ``None`` when the line needs no rewriting (or
    is no JSON object at all: the SQL then gives its usual reason)."""
    try:
        msg = json.loads(line, parse_float=_float, parse_constant=_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(msg, dict):
        return None
    habits: set[str] = set()
    msg = _lower_keys(msg, habits)
    sent_meta = msg.pop(META_KEY, None) is not None
    infno = str(msg.get("infno", "")).strip()
    base = infno[:-1] if infno[-1:] in ("A", "a") and infno[:-1] in NODES else infno
    if base != infno:
        habits.add("batch")
    node = NODES.get(base)
    inp = _unstring(msg.get("input"), habits, "node_string")
    if node is None or not isinstance(inp, dict):
        return None
    inp = _lower_keys(inp, habits)
    bodies = _bodies(inp, node, habits)
    if bodies is None:
        return None
    consumed = _codes_outside_body(msg, inp, node)
    if consumed:
        raise Refused(f"a trace code at {consumed}, outside the body: tracecode cannot tell "
                      "which record it belongs to")
    out = []
    for elem_no, body in bodies:
        body_habits = set(habits)
        body = _read_codes(_lower_keys(body, body_habits), body_habits, elem_no)
        shaped = {k: v for k, v in msg.items() if k != "input"}
        shaped["infno"] = base
        shaped["input"] = {node: body}
        shaped[META_KEY] = {"habits": sorted(body_habits), "elem": elem_no}
        out.append(Shaped(json.dumps(shaped, ensure_ascii=False), tuple(sorted(body_habits)),
                          elem_no))
    if len(out) == 1 and not out[0].habits and not sent_meta:
        return None
    return out


def _float(text: str) -> float | str:
    # 1e400 would become inf and then invalid JSON: keep the text, the SQL names it
    value = float(text)
    return value if math.isfinite(value) else text


def _constant(text: str) -> str:
    return text  # NaN, Infinity: not JSON, but keep the text so the SQL names the field


def _lower_keys(obj: dict[str, Any], habits: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        low = _CAMEL_BY_LOWER.get(key.lower(), key.lower())
        if low != key and key.lower() != key:
            habits.add("upper_keys")
        if low not in out or low == key:  # the spec's spelling wins over a variant
            out[low] = value
    return out


def _unstring(value: Any, habits: set[str], habit: str) -> Any:
    """A JSON object or list held as a string, parsed; anything else as it is."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            parsed = json.loads(value, parse_float=_float, parse_constant=_constant)
        except (ValueError, RecursionError):
            return value
        habits.add(habit)
        return parsed
    return value


def _bodies(inp: dict[str, Any], node: str, habits: set[str]
            ) -> list[tuple[int, dict[str, Any]]] | None:
    """The body records of ``input``: its own node, a batch list, or a misplaced node."""
    detail = f"{node}Detail"
    value = inp.get(node)
    if value is None and detail in inp:
        value = inp[detail]
    elif value is None:
        others = [k for k in inp if k in _BODY_NODES or k in _CAMEL]
        habits.add("node_misplaced")
        if len(others) == 1 and inp[others[0]]:
            value = inp[others[0]]
        elif not others and "fixmedins_bchno" in inp:
            value = inp  # the body's fields straight under input
        else:
            return None
    value = _unstring(value, habits, "node_string")
    if isinstance(value, dict):
        # a batch node may also sit inside the body, beside fields common to its elements
        inner = next((k for k in value if k in _CAMEL), None)
        if inner is None:
            return [(0, value)]
        common = {k: v for k, v in value.items() if k != inner}
        items = _unstring(value[inner], habits, "node_string")
        if not isinstance(items, list):
            return None
        value = [{**common, **item} if isinstance(item, dict) else item for item in items]
    if not isinstance(value, list) or not value:
        return None
    habits.add("batch")
    out = []
    for i, item in enumerate(value, start=1):
        item = _unstring(item, habits, "node_string")
        if not isinstance(item, dict):
            raise Refused(f"input.{detail}[{i}] is not an object")
        out.append((i, item))
    return out


def _codes_outside_body(msg: dict[str, Any], inp: dict[str, Any], node: str) -> str | None:
    """Where a code key sits outside the body nodes, if anywhere."""
    for key in msg:
        if _CODE_KEY.fullmatch(key):
            return key
    for key in inp:
        if _CODE_KEY.fullmatch(key):
            return f"input.{key}"
    return None


def _read_codes(body: dict[str, Any], habits: set[str], elem_no: int) -> dict[str, Any]:
    """Gather every code of a body into one spec ``drugtracinfo`` list."""
    where = f"element {elem_no} of the batch: " if elem_no else ""
    codes: list[str] = []
    had_info = "drugtracinfo" in body
    if had_info:
        info = _unstring(body.pop("drugtracinfo"), habits, "tracinfo_string")
        if isinstance(info, str) and info.strip():
            # a list held as a JSON string is read (above); a bare text is no shape a
            # system sends (docs/messages.md): read as a code, a broken copy of a line
            # would replace the line and lose its other codes
            raise Refused(f"{where}drugtracinfo is not a list (a text, not a list of "
                          "drug_trac_codg objects)")
        if isinstance(info, str):  # "" for none, as C# systems send empty values
            habits.add("tracinfo_string")
        elif isinstance(info, dict):
            habits.add("tracinfo_object")
            info = [info]
        if isinstance(info, list):
            for i, item in enumerate(info, start=1):
                codes += _element_codes(item, habits, f"{where}drugtracinfo[{i}]")
        elif info is not None and not isinstance(info, str):
            raise Refused(f"{where}drugtracinfo is not a list")
    for alias in ("drug_trac_codg", "drug_trac_code"):
        if alias in body:
            value = body.pop(alias)
            habits.add("top_level_code")
            if isinstance(value, list):
                found = [c for v in value for c in _split_codes(v) if isinstance(v, str)]
                if len(found) < len(value):
                    raise Refused(f"{where}{alias} holds a list with a non-text element")
            elif isinstance(value, str | int):
                found = _split_codes(str(value))
            elif value is None:
                found = []
            else:
                raise Refused(f"{where}{alias} is a {type(value).__name__}, not a code")
            codes += [c for c in found if c not in codes]
    for key in body:
        if _CODE_KEY.fullmatch(key):
            raise Refused(f"{where}a trace code under {key!r}, which tracecode does not read")
    if codes or had_info:
        body["drugtracinfo"] = [{"drug_trac_codg": c} for c in codes]
    return body


def _element_codes(item: Any, habits: set[str], where: str) -> list[str]:
    item = _unstring(item, habits, "tracinfo_string")
    if isinstance(item, str):
        habits.add("tracinfo_string")
        return _split_codes(item)
    if not isinstance(item, dict):
        raise Refused(f"{where} is a {type(item).__name__}, not a code object")
    item = _lower_keys(item, habits)
    if "drug_trac_codg" not in item and "drug_trac_code" in item:
        habits.add("code_alias")
        item["drug_trac_codg"] = item.pop("drug_trac_code")
    for key in item:
        if key != "drug_trac_codg" and _CODE_KEY.fullmatch(key):
            raise Refused(f"{where} holds a code under {key!r} beside drug_trac_codg")
    value = item.get("drug_trac_codg")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Refused("drugtracinfo has an element without drug_trac_codg")
    if not isinstance(value, str | int):
        raise Refused(f"{where}.drug_trac_codg is a {type(value).__name__}, not a text")
    return [str(value).strip()]


def _split_codes(text: str) -> list[str]:
    return [c for c in _CODE_SPLIT.split(text.strip()) if c]


def reshape_stage(db: Database, parse_sql: str, run_id: str) -> int:
    """Rewrite the staged lines that ``parse_lines.sql`` flagged ``needs_shape`` and parse
    them again in place of their first parse; returns how many lines were rewritten.

    A batch line becomes one staged row per element; if any element is invalid the whole
    line is quarantined once, naming the element. The quarantine shows the line as sent.
    """
    rows = db.fetch_rows(
        "lines to reshape",
        "select src_file, line_no, raw_text from stage_parsed where needs_shape",
    )
    if not rows:
        return 0
    src: list[str] = []
    line_nos: list[int] = []
    texts: list[str] = []
    refused: dict[str, list[Any]] = {"src_file": [], "line_no": [], "reason": [], "raw": []}
    originals: dict[str, list[Any]] = {"src_file": [], "line_no": [], "raw": []}
    for src_file, line_no, raw in rows:
        try:
            shaped = normalise(raw)
        except Refused as e:
            for key, value in zip(refused, (src_file, line_no, str(e), raw), strict=True):
                refused[key].append(value)
            continue
        if shaped is None:
            continue  # nothing to rewrite: the first parse and its reason stand
        for key, value in zip(originals, (src_file, line_no, raw), strict=True):
            originals[key].append(value)
        for s in shaped:
            src.append(src_file)
            line_nos.append(line_no)
            texts.append(s.text + "\n")
    db.register("reshape_refused", pa.table(refused, schema=_REFUSED))
    db.register("reshape_originals", pa.table(originals, schema=_ORIGINALS))
    db.register("batch_lines", pa.table({
        "txt": pa.array(texts, pa.large_string()),
        "bad_bytes": pa.nulls(len(texts), pa.large_string()),
        "line_no": pa.array(line_nos, pa.int64()),
        "file_id": pa.array([-1] * len(texts), pa.int64()),  # the second parse
        "src_file": pa.array(src, pa.string()),
    }))
    db.execute("parse reshaped lines",
               "create or replace temp table stage_reshaped as " + parse_sql,
               {"run_id": run_id}, source="ingest/parse_lines.sql")
    db.unregister("batch_lines")
    db.run_file("ingest/reshape_stage.sql")
    for name in ("reshape_refused", "reshape_originals"):
        db.unregister(name)
    log.info("reshape: %d lines rewritten, %d refused", len(originals["raw"]),
             len(refused["raw"]))
    return len(originals["raw"]) + len(refused["raw"])


_REFUSED = pa.schema([("src_file", pa.string()), ("line_no", pa.int64()),
                      ("reason", pa.string()), ("raw", pa.large_string())])
_ORIGINALS = pa.schema([("src_file", pa.string()), ("line_no", pa.int64()),
                        ("raw", pa.large_string())])
