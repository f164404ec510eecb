"""The HTML report as a browser shows it: headless Chromium (Debian's ``chromium``, which
.ci/run installs) loads report.html and a lead page from disk, with the network off."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from landing import Landing

from tracecode import pipeline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (see .ci/run)")


def _chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}", *args, url],
        capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.slow
def test_the_report_opens_offline_with_its_sections_charts_and_lead_pages(
    landing: Landing, tmp_path: Path
) -> None:
    landing.sale("P44010600001", "S1", ["A:1"], "2025-11-01 10:00:00")
    landing.sale("P44010600001", "S2", ["A:1"], "2025-11-02 10:00:00", person="p2")
    landing.sale("P44030400005", "S3", ["A:9"], "2025-11-03 10:00:00", price=1.05, qty=28)
    landing.sale("P44010600002", "S4", ["A:9"], "2025-11-05 10:00:00", person="p3")
    landing.write()
    out = tmp_path / "out"
    pipeline.run(landing.root, tmp_path / "db.duckdb", out)
    page = out / "report.html"
    html = page.read_text(encoding="utf-8")
    # no CDN, no web font, no script from anywhere: only the SVG namespaces are addresses
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert addresses <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}

    dom = _chromium(tmp_path, page.as_uri(), "--dump-dom").stdout
    for section in ("id=\"summary\"", "id=\"charts\"", "id=\"cases\"", "id=\"leads\""):
        assert section in dom, section
    assert dom.count("<svg") >= 4 and "按类别的线索数" in dom and "机构清单" in dom
    assert "广州康民大药房" in dom  # the institution by name, not only by code
    # amounts with two decimals, never a float's tail
    assert "29.400000000000002" not in dom

    lead_id = pl.read_csv(out / "leads.csv")["lead_id"][0]
    lead_page = (out / "report" / f"{lead_id}.html").as_uri()
    lead_dom = _chromium(tmp_path, lead_page, "--dump-dom").stdout
    assert "证据" in lead_dom and "返回线索列表" in lead_dom

    shot = tmp_path / "report.png"
    _chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.stat().st_size > 20_000  # a page with charts, not a blank one
