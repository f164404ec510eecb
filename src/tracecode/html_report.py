"""``report.html`` and its ``report/`` folder: the lead list as an investigator reads it,
Chinese first, offline (no script or font from the network).

The page: the summary with charts (pygal, inline SVG), the institution case list and the
leads; each lead links to its own page in ``report/`` with all of its evidence and its
review history. Everything from the data is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

import polars as pl

from tracecode.regions import with_city_names
from tracecode.review import STATUS_ZH
from tracecode.workbook import (
    CASE_COLS,
    EVIDENCE_COLS,
    FINDING_HEADERS,
    HEADLINE_ZH,
    OPTIONAL_SHEETS,
    SUBJECT_ZH,
    TYPE_ZH,
    Col,
    finding_cols,
)

# leads listed on the main page, each with a page of its own
HTML_LEADS = 5000
HTML_CASES = 500
CHART_FONT = ('"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Microsoft YaHei", '
              "sans-serif")

_STYLE = """
body { font-family: FONT; margin: 1.5em 2em; color: #222; }
h1 { margin-bottom: .2em; } .muted { color: #666; } .warn { color: #b00; font-weight: bold; }
table { border-collapse: collapse; font-size: 88%; margin: .5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }
th { background: #eef3f8; position: sticky; top: 0; }
td { white-space: nowrap; } td.n { text-align: right; }
td.w { white-space: normal; min-width: 16em; max-width: 38em; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; margin: 1em 0; }
.card { border: 1px solid #ccd; border-radius: 6px; padding: .6em 1em; min-width: 9em; }
.card b { display: block; font-size: 150%; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1em; }
.charts figure { margin: 0; border: 1px solid #eee; }
nav a { margin-right: 1em; } .scroll { overflow-x: auto; }
""".replace("FONT", CHART_FONT)


def write_report(folder: Path, data: dict[str, Any]) -> str:
    """Write each lead's page into ``folder`` and return the main page's HTML."""
    leads: pl.DataFrame = data["lead_sheet"]
    shown = leads.head(HTML_LEADS)
    by_lead = data["evidence"].partition_by("lead_id", as_dict=True, maintain_order=True)
    reviews = data["reviews"].partition_by("lead_id", as_dict=True, maintain_order=True)
    for lead in shown.iter_rows(named=True):
        key = (lead["lead_id"],)
        page = _lead_page(lead, by_lead.get(key), reviews.get(key), data)
        (folder / f"{lead['lead_id']}.html").write_text(page, encoding="utf-8")
    return _main_page(folder.name, shown, data)


def _main_page(folder: str, shown: pl.DataFrame, data: dict[str, Any]) -> str:
    leads: pl.DataFrame = data["lead_sheet"]
    summary = data["summary"]
    parts = [
        f"<h1>药品追溯码疑点线索</h1><p class=muted>Suspicious leads · 运行 "
        f"{escape(str(summary.get('run_id', '')))} · 导出于 {escape(data['exported_at'])}</p>",
        _privacy(data["unmask"]),
        "<nav><a href='#summary'>概览</a><a href='#charts'>图表</a><a href='#cases'>机构清单</a>"
        "<a href='#leads'>线索</a></nav>",
        "<h2 id=summary>概览</h2>",
        _headline(summary.get("headline")),
        _cards(leads, data["status_counts"]),
        "<h2 id=charts>图表</h2><div class=charts>",
        *(f"<figure>{svg}</figure>" for svg in _charts(leads, data["cases"])),
        "</div>",
        f"<h2 id=cases>机构清单（{data['cases'].height} 家）</h2>",
        "<p class=muted>每家机构一行：检查走访从这里开始。</p>",
        _table(data["cases"].head(HTML_CASES), _case_cols()),
    ]
    for table, title in OPTIONAL_SHEETS.items():
        frame = data["findings"].get(table)
        if frame is not None:
            parts += [f"<h2 id={table}>{title}（{frame.height}）</h2>",
                      _table(frame.head(HTML_CASES), finding_cols(frame))]
    parts += [
        f"<h2 id=leads>线索（{leads.height} 条，按优先级排序）</h2>",
        "" if leads.height <= HTML_LEADS else
        f"<p class=warn>此处列出前 {HTML_LEADS} 条；全部线索见 leads.xlsx。</p>",
        _lead_list(folder, shown),
    ]
    return _page("药品追溯码疑点线索", "".join(parts))


def _lead_page(lead: dict[str, Any], evidence: pl.DataFrame | None,
               reviews: pl.DataFrame | None, data: dict[str, Any]) -> str:
    facts = [
        ("线索编号", lead["lead_id"]), ("类别", lead["category_zh"]),
        ("对象", f"{SUBJECT_ZH.get(lead['subject_type'], lead['subject_type'])} "
                 f"{lead['subject_id']}"),
        ("机构", lead["fixmedins_names"] or ""), ("机构编码", lead["fixmedins_codes"] or ""),
        ("时间", f"{_text(lead['first_time'])} 至 {_text(lead['last_time'])}"),
        ("证据条数", _text(lead["n_events"])), ("涉及金额（元）", _money(lead["amount"])),
        ("优先级", _text(lead["score"])), ("状态", STATUS_ZH.get(lead["status"], lead["status"])),
        ("规则", lead["rule_id"]),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    n = 0 if evidence is None else evidence.height
    body = [
        "<p><a href='../report.html#leads'>← 返回线索列表</a></p>",
        f"<h1>{escape(lead['category_zh'])}</h1>",
        f"<p><b>{escape(lead['reason'])}</b></p><p class=muted>{escape(lead['reason_en'])}</p>",
        _privacy(data["unmask"]),
        f"<table>{rows}</table>",
    ]
    if lead.get("anomaly_reason"):
        body.append(f"<p>模型：{escape(lead['anomaly_reason'])}</p>")
    if reviews is not None and reviews.height:
        body += ["<h2>核查记录</h2>", _table(reviews, (
            Col("decided_at", "时间", "time"), Col("status_zh", "结论"),
            Col("decided_by", "核查人"), Col("note", "说明", "wrap"), Col("source", "来源")))]
    body += [f"<h2>证据（{n} 条）</h2>",
             # the page is the lead's: its id, category and subject are above, once
             _table(evidence, EVIDENCE_COLS[3:]) if evidence is not None else "<p>无</p>"]
    return _page(f"{lead['lead_id']} {lead['category_zh']}", "".join(body))


def _charts(leads: pl.DataFrame, cases: pl.DataFrame) -> list[str]:
    import pygal
    from pygal.style import Style

    style = Style(font_family=CHART_FONT, background="white", plot_background="white",
                  colors=("#2f6fab", "#c0504d", "#9bbb59", "#8064a2"), title_font_size=16,
                  label_font_size=11, major_label_font_size=11, value_font_size=10)
    common = {"js": [], "disable_xml_declaration": True, "style": style, "width": 640,
              "height": 360, "show_legend": False, "print_values": True,
              "truncate_label": -1, "value_formatter": lambda v: f"{v:,.0f}"}

    def bar(title: str, labels: Sequence[str], values: Sequence[float], *,
            horizontal: bool = True, money: bool = False) -> str:
        kind = pygal.HorizontalBar if horizontal else pygal.Bar
        # pygal sizes labels as if every character were Latin: room for the wide CJK ones
        extra = {"margin_left": 7 * max((len(x) for x in labels), default=0)} \
            if horizontal else {}
        chart = kind(title=title, **{**common, **extra, "value_formatter": (
            _wan if money else common["value_formatter"])})
        # the category's short name: the part before its parenthesised gloss
        chart.x_labels = [label.split(" (")[0][:14] for label in labels]
        chart.add("", list(values))
        # pygal's credit comments carry its web address: the page names no address at all
        return re.sub(r"<!--.*?-->", "", chart.render(is_unicode=True), flags=re.S)

    charts = []
    cat = leads.group_by("category_zh").agg(pl.len().alias("n"), pl.col("amount").sum()) \
        .sort("n", "category_zh", descending=[False, True])
    charts.append(bar("按类别的线索数", cat["category_zh"].to_list(), cat["n"].to_list()))
    day = (leads.filter(pl.col("last_time").is_not_null())
           .group_by(pl.col("last_time").dt.date().alias("day")).agg(pl.len().alias("n"))
           .sort("day"))
    charts.append(bar("按日期的线索数（证据最晚日期）",
                      [d.strftime("%m-%d") for d in day["day"]], day["n"].to_list(),
                      horizontal=False))
    city = leads.group_by(pl.col("city").fill_null("未知")).agg(
        pl.len().alias("n"), pl.col("amount").sum()).sort("n", "city", descending=[False, True])
    charts.append(bar("按地市的线索数", city["city"].to_list(), city["n"].to_list()))
    charts.append(bar("按类别的涉及金额（元）", cat["category_zh"].to_list(),
                      [round(v, 2) for v in cat["amount"].to_list()], money=True))
    top = cases.sort("amount_at_risk", descending=True).head(10).reverse()
    charts.append(bar("涉及金额最高的机构（元）",
                      [f"{n or c}" for n, c in zip(top["fixmedins_name"], top["fixmedins_code"],
                                                    strict=True)],
                      [round(v, 2) for v in top["amount_at_risk"].to_list()], money=True))
    return charts


def _wan(value: float) -> str:
    """Chart money in 万元 (10,000 yuan), so that the axis labels stay short."""
    return f"{value / 10_000:,.1f}万" if abs(value) >= 10_000 else f"{value:,.0f}"


def _privacy(unmask: bool) -> str:
    if unmask:
        return ("<p class=warn>注意：本报告按要求显示完整身份证号与姓名（--unmask-personal-data），"
                "请按个人信息保护规定保管。</p>")
    return "<p class=muted>身份证号与姓名已脱敏。</p>"


def _headline(headline: dict[str, Any] | None) -> str:
    if not headline:
        return ""
    cards = []
    for key, label in HEADLINE_ZH.items():
        if key in headline and headline[key] is not None:
            value = headline[key]
            shown = (f"{value:.1%}" if key.endswith("_rate") else _money(value)
                     if key == "amount_at_risk" else _text(value))
            cards.append(f"<div class=card>{escape(label)}<b>{escape(shown)}</b></div>")
    tables = []
    for key, title in (("by_day", "按日"), ("by_city", "按地市")):
        if isinstance(headline.get(key), list) and headline[key]:
            frame = with_city_names(pl.DataFrame(headline[key]))
            tables.append(f"<h3>{title}</h3>" + _table(frame, finding_cols(frame)))
    return f"<div class=cards>{''.join(cards)}</div>" + "".join(tables)


def _cards(leads: pl.DataFrame, status_counts: dict[str, int]) -> str:
    n_inst = leads.select(pl.col("fixmedins_codes").str.split(";").explode()
                          .drop_nulls().n_unique()).item() if leads.height else 0
    items = [("线索", _text(leads.height)), ("涉及机构", _text(n_inst)),
             ("涉及金额（元）", _money(leads["amount"].sum() if leads.height else 0.0))]
    items += [(STATUS_ZH.get(s, s), _text(n)) for s, n in status_counts.items()]
    return "<div class=cards>" + "".join(
        f"<div class=card>{escape(k)}<b>{escape(v)}</b></div>" for k, v in items) + "</div>"


def _lead_list(folder: str, shown: pl.DataFrame) -> str:
    head = "".join(f"<th>{h}</th>" for h in
                   ("优先级", "类别", "对象", "机构", "地市", "金额（元）", "状态", "疑点说明"))
    rows = []
    for lead in shown.iter_rows(named=True):
        link = f"{folder}/{lead['lead_id']}.html"
        rows.append(
            f"<tr><td class=n>{lead['score']:.1f}</td><td>{escape(lead['category_zh'])}</td>"
            f"<td><a href='{escape(link)}'>{escape(str(lead['subject_id']))}</a></td>"
            f"<td>{escape(lead['fixmedins_names'] or '')}</td>"
            f"<td>{escape(lead['city'] or '')}</td><td class=n>{_money(lead['amount'])}</td>"
            f"<td>{escape(STATUS_ZH.get(lead['status'], lead['status']))}</td>"
            f"<td class=w>{escape(lead['reason'])}</td></tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _case_cols() -> tuple[Col, ...]:
    return tuple(Col("fixmedins_type_zh", c.header) if c.field == "fixmedins_type_zh" else c
                 for c in CASE_COLS)


def _table(frame: pl.DataFrame, cols: Iterable[Col]) -> str:
    if "fixmedins_type" in frame.columns and "fixmedins_type_zh" not in frame.columns:
        frame = frame.with_columns(pl.col("fixmedins_type").replace_strict(
            TYPE_ZH, default=pl.col("fixmedins_type")).alias("fixmedins_type_zh"))
    if "status" in frame.columns and "status_zh" not in frame.columns:
        frame = frame.with_columns(pl.col("status").replace_strict(
            STATUS_ZH, default=pl.col("status")).alias("status_zh"))
    cols = [c for c in cols if c.field in frame.columns]
    head = "".join(f"<th>{escape(FINDING_HEADERS.get(c.header, c.header))}</th>" for c in cols)
    body = []
    for row in frame.select(c.field for c in cols).iter_rows():
        cells = []
        for c, v in zip(cols, row, strict=True):
            if c.kind == "money":
                cells.append(f"<td class=n>{_money(v)}</td>")
            elif c.kind in ("int", "num", "pct"):
                cells.append(f"<td class=n>{escape(_text(v, c.kind))}</td>")
            else:
                text = escape(_text(v)).replace("\n", "<br>")
                cells.append(f"<td class=w>{text}</td>" if c.kind == "wrap" else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class=scroll><table><tr>{head}</tr>{''.join(body)}</table></div>"


def _money(value: Any) -> str:
    return "" if value is None else f"{value:,.2f}"


def _text(value: Any, kind: str = "text") -> str:
    if value is None:
        return ""
    if kind == "pct" and isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M:%S" if hasattr(value, "hour") else "%Y-%m-%d")
    return str(value)


def _page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang=zh-CN><head><meta charset=utf-8>"
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body>{body}</body></html>\n")
