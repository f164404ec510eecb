"""A Markdown description of a simulated landing, from its truth and its files."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tracecode.categories import CATEGORIES
from tracecode.simulate.lookalikes import __doc__ as LOOKALIKES_DOC


def describe(out: Path, command: str) -> str:
    """README text for the landing at ``out``: how it was made, what is planted where."""
    truth = pl.read_csv(out / "truth.csv", infer_schema=False)
    files = sorted(p for p in (out / "messages").rglob("*.jsonl*"))
    n_lines = sum(p.read_bytes().count(b"\n") for p in files)
    refs = {p.stem: p.read_bytes().count(b"\n") - 1 for p in (out / "reference").glob("*.csv")}
    lines = [
        "# Sample landing directory",
        "",
        "Simulated NHSA 35xx uploads for the demo and the tests, made by",
        "",
        f"    {command}",
        "",
        "Nothing here is real: names, IDs and codes are generated (resident IDs have valid",
        "check characters; trace codes follow the 20-digit form). `truth.csv` lists every",
        "planted fraud; normal buying and the legitimate look-alikes below are listed",
        "nowhere, so a lead on them is a false positive.",
        "",
        f"- `messages/`: {n_lines:,} lines in {len(files)} files, by upload date",
        "- `reference/`: " + ", ".join(f"{k} ({v:,} rows)" for k, v in sorted(refs.items())),
        f"- `truth.csv`: {truth.height} planted cases",
        "",
        "## Planted",
        "",
        "| category | 类别 | subject | what |",
        "|---|---|---|---|",
    ]
    order = {c: i for i, c in enumerate(CATEGORIES)}
    for row in truth.sort(pl.col("category").replace_strict(order, default=99),
                          maintain_order=True).iter_rows(named=True):
        zh = CATEGORIES[row["category"]].zh if row["category"] in CATEGORIES else ""
        lines.append(f"| `{row['category']}` | {zh} | {row['subject_type']} "
                     f"`{row['subject_id']}` | {row['note']} |")
    lines += ["", "## Look-alikes (not planted, must raise nothing)", "",
              *[ln.strip() if not ln.startswith("-") else ln for ln in
                (LOOKALIKES_DOC or "").split("\n\n", 1)[1].strip().splitlines()], ""]
    return "\n".join(lines)
