"""Reference CSVs as they really arrive: bad quoting, short and long rows, values over
several lines, missing optional columns, GBK and BOMs. Counts and line numbers exact."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest
from landing import PERSONS, Landing
from typer.testing import CliRunner

from tracecode import pipeline, reference
from tracecode.cli import app
from tracecode.db import Database, sql_dir
from tracecode.errors import InputError


def load(landing: Landing, tmp_path: Path) -> dict[str, reference.ReferenceResult]:
    with Database.open(tmp_path / "db.duckdb") as db:
        return {r.name: r for r in reference.load_reference(db, landing.root, "R1")}


def quarantined(tmp_path: Path, name: str) -> list[tuple[int, str]]:
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        return db.fetch_rows("q", "select line_no, reason from quarantine where src_file = $f "
                                  "order by line_no", {"f": f"reference/{name}.csv"})


def persons_csv(landing: Landing) -> Path:
    landing.write()
    return landing.root / "reference" / "persons.csv"


def rewrite(path: Path, edit: dict[int, str], encoding: str = "utf-8") -> None:
    """Replace lines (1 = the header) of a CSV."""
    lines = path.read_text(encoding=encoding).splitlines()
    for at, text in edit.items():
        lines[at - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding=encoding)


def test_an_unclosed_quote_stops_the_load_naming_file_and_line(
    landing: Landing, tmp_path: Path
) -> None:
    path = persons_csv(landing)
    rewrite(path, {5: 'p4,440106199001011234,"张四,F,1990-01-01,440106,'})
    with pytest.raises(InputError, match=r"reference/persons\.csv line 5: a quoted value"):
        load(landing, tmp_path)
    result = CliRunner().invoke(app, ["run", str(landing.root), "--db",
                                      str(tmp_path / "cli.duckdb"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "persons.csv line 5" in result.output


def test_short_and_long_rows_are_quarantined_once_each_at_their_line(
    landing: Landing, tmp_path: Path
) -> None:
    path = persons_csv(landing)
    n = len(PERSONS)
    rewrite(path, {3: "p2,short", 6: "p5,440106199001011234,x,F,1990-01-01,440106,,extra"})
    got = load(landing, tmp_path)["persons"]
    assert (got.rows_read, got.rows_loaded, got.rows_quarantined) == (n, n - 2, 2)
    rows = quarantined(tmp_path, "persons")
    assert [line for line, _ in rows] == [3, 6]
    assert "Expected Number of Columns" in rows[0][1]


def test_a_value_over_several_lines_keeps_the_later_line_numbers_exact(
    landing: Landing, tmp_path: Path
) -> None:
    path = persons_csv(landing)
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")
    first[2] = '"多行\n姓名"'  # a name over two lines: every later row is one line further
    lines[1] = ",".join(first)
    bad = lines[4].split(",")
    bad[3] = "X"  # record 5, file line 6
    lines[4] = ",".join(bad)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = load(landing, tmp_path)["persons"]
    assert got.rows_quarantined == 1
    [(line, reason)] = quarantined(tmp_path, "persons")
    assert line == 6 and "gender X is not F or M" in reason


def test_mixed_line_ends_still_load(landing: Landing, tmp_path: Path) -> None:
    path = persons_csv(landing)
    data = path.read_bytes().replace(b"\r\n", b"\n")
    first, rest = data.split(b"\n", 1)
    path.write_bytes(first + b"\r\n" + rest)
    assert load(landing, tmp_path)["persons"].rows_loaded == len(PERSONS)


def test_a_missing_optional_column_is_a_warning_naming_the_rule(
    landing: Landing, tmp_path: Path
) -> None:
    path = persons_csv(landing)
    lines = [line.rsplit(",", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    catalog = landing.root / "reference" / "catalog.csv"
    catalog.write_text("med_list_codg,drug_name\nX1,药\n", encoding="utf-8")
    summary = pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    written = json.loads((tmp_path / "out" / "run_summary.json").read_text(encoding="utf-8"))
    warnings = {r["name"]: r["warnings"] for r in written["reference"]}
    assert warnings["persons"] == [
        "reference/persons.csv has no column death_date: deceased_person cannot judge "
        "without it"]
    assert any("pack_units: split_overdraw" in w for w in warnings["catalog"])
    assert any("demographic_mismatch" in w for w in warnings["catalog"])
    assert warnings["institutions"] == warnings["code_issuance"] == []
    assert summary.reference[2]["loaded"]
    # unchanged next run: not reloaded, still said
    again = pipeline.run(landing.root, tmp_path / "db.duckdb", tmp_path / "out")
    assert not again.reference[2]["loaded"] and len(again.reference[2]["warnings"]) == 1


def test_every_rule_a_column_is_needed_by_exists() -> None:
    rules = {p.stem for p in (sql_dir() / "rules").glob("*.sql")}
    named = {r for cols in reference.REFERENCE.values() for c in cols for r in c.needed_by}
    assert named - {reference.MODEL} <= rules


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8"])
def test_a_persons_csv_with_a_bom_loads_in_any_encoding(
    landing: Landing, tmp_path: Path, encoding: str
) -> None:
    path = persons_csv(landing)
    text = path.read_bytes().decode("utf-8")
    path.write_bytes(codecs.BOM_UTF8 + text.encode(encoding))
    got = load(landing, tmp_path)["persons"]
    assert (got.rows_loaded, got.rows_quarantined) == (len(PERSONS), 0)
    with Database.open(tmp_path / "db.duckdb", read_only=True) as db:
        names = dict(db.fetch_rows("q", "select psn_no, psn_name from persons"))
    assert names == {p.psn_no: p.name for p in PERSONS.values()}


def test_two_ranges_from_one_serial_give_a_code_one_activation() -> None:
    # the register should not overlap itself; when it does, a code still has one lot
    with Database.open(None) as db:
        db.execute("issuance", """insert into code_issuance values
            ('8123456', 1000, 1999, 'LOT-A', date '2025-01-01', date '2027-01-01'),
            ('8123456', 1000, 1099, 'LOT-B', date '2025-02-01', date '2027-02-01'),
            ('8123456', 5000, 5999, 'LOT-C', date '2025-03-01', date '2027-03-01')""")
        db.execute("codes", """insert into record_codes values
            (1, 1, '81234560000010500000', '81234560000010500000', 'nmpa20', '8123456'),
            (2, 1, '81234560000015000000', '81234560000015000000', 'nmpa20', '8123456'),
            (3, 1, '81234560000030000000', '81234560000030000000', 'nmpa20', '8123456')""")
        got = db.fetch_rows("activations", """select code_id, manu_lotnum
                                              from code_activations order by all""")
    assert got == [("81234560000010500000", "LOT-A"), ("81234560000015000000", "LOT-A")]
