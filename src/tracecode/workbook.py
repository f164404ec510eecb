"""``leads.xlsx``, the workbook an inspection team works in: 概览, 线索 (with the review
columns that ``tracecode review import`` reads back), 机构 (the institution case list),
证据, and 数据质量 / 合规 / 团伙 when those findings exist.

Every string is written with ``write_string`` (never a formula, whatever it starts with)
and text that looks like a formula also gets Excel's quote prefix, so that editing the cell
does not turn it into one either; numbers stay numbers, times are Excel dates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar

import polars as pl

from tracecode.review import DECISION_ZH, LEAD_ID_HEADER, REVIEW_HEADERS, STATUS_ZH
from tracecode.safe_cells import is_formula_like

# Excel's sheet limit, less the header row
EXCEL_ROWS = 1_048_575


@dataclass(frozen=True)
class Col:
    """A column of a sheet: the frame's field, its header, how to show it, its width."""

    field: str
    header: str
    kind: str = "text"   # text | wrap | money | int | num | time | date | pct
    width: float = 12


LEAD_COLS = (
    Col("lead_id", LEAD_ID_HEADER, width=19),
    Col("score", "优先级", "num", 8),
    Col("category_zh", "类别", "wrap", 18),
    Col("subject_type_zh", "对象类型", width=8),
    Col("subject_id", "对象", width=22),
    Col("fixmedins_names", "机构名称", "wrap", 24),
    Col("fixmedins_codes", "机构编码", "wrap", 16),
    Col("city", "地市", width=8),
    Col("first_time", "最早时间", "time", 18),
    Col("last_time", "最晚时间", "time", 18),
    Col("n_events", "证据条数", "int", 8),
    Col("amount", "涉及金额（元）", "money", 13),
    Col("reason", "疑点说明", "wrap", 60),
    Col("status_zh", "当前状态", width=12),
    Col("decision_zh", REVIEW_HEADERS[0], width=10),
    Col("decision_note", REVIEW_HEADERS[1], "wrap", 30),
    Col("decided_by", REVIEW_HEADERS[2], width=10),
    Col("rule_id", "规则", width=20),
    Col("anomaly_score", "模型评分", "num", 8),
    Col("anomaly_reason", "模型说明", "wrap", 40),
    Col("reason_en", "Reason (English)", "wrap", 50),
)

CASE_COLS = (
    Col("fixmedins_code", "机构编码", width=15),
    Col("fixmedins_name", "机构名称", "wrap", 24),
    Col("fixmedins_type_zh", "类型", width=8),
    Col("city", "地市", width=8),
    Col("admdvs", "区划", width=8),
    Col("n_leads", "线索数", "int", 7),
    Col("leads_by_category", "各类线索", "wrap", 30),
    Col("amount_at_risk", "涉及金额（元）", "money", 14),
    Col("top_score", "最高优先级", "num", 9),
    Col("top_reasons", "主要疑点（前三）", "wrap", 70),
    Col("n_persons", "涉及人数", "int", 8),
    Col("persons", "人员（前五）", "wrap", 20),
    Col("n_codes", "涉及追溯码数", "int", 9),
    Col("codes", "追溯码（前五）", "wrap", 24),
)

EVIDENCE_COLS = (
    Col("lead_id", LEAD_ID_HEADER, width=19),
    Col("category", "类别代码", width=18),
    Col("subject_id", "对象", width=22),
    Col("event_time", "发生时间", "time", 18),
    Col("fixmedins_code", "机构编码", width=15),
    Col("fixmedins_name", "机构名称", width=22),
    Col("infno", "接口", width=6),
    Col("fixmedins_bchno", "单据号", width=18),
    Col("med_list_codg", "医保目录编码", width=24),
    Col("code", "追溯码", width=22),
    Col("psn_no", "人员编号", width=16),
    Col("certno", "证件号码", width=19),
    Col("psn_name", "姓名", width=8),
    Col("trdn_flag", "拆零", width=5),
    Col("qty", "数量", "num", 7),
    Col("price", "单价", "money", 10),
    Col("amount", "金额（元）", "money", 11),
    Col("manu_lotnum", "批号", width=11),
    Col("expy_end", "有效期至", "date", 11),
    Col("setl_id", "结算编号", width=24),
    Col("inf_time", "上传时间", "time", 18),
    Col("src_file", "文件", width=30),
    Col("line_no", "行号", "int", 7),
)

# headers of the other helpers' findings tables, when present; other columns keep their name
FINDING_HEADERS = {
    "finding_id": "编号", "category": "类别代码", "category_zh": "类别",
    "fixmedins_code": "机构编码", "fixmedins_name": "机构名称", "admdvs": "区划",
    "pattern": "问题代码", "pattern_zh": "问题", "n_records": "记录数", "share": "占比",
    "examples": "示例", "reason": "说明", "reason_en": "Reason (English)",
    "first_time": "最早时间", "last_time": "最晚时间", "metric": "指标",
    "peer_median": "同类中位数", "amount": "金额（元）", "score": "评分",
    "ring_id": "团伙编号", "n_institutions": "机构数", "n_persons": "人数",
    "n_codes": "追溯码数", "members": "成员",
    # the headline's tables by day and by city (run_summary.json)
    "day": "日期", "city": "地市", "level": "层级", "region": "区划",
    "institutions_uploading": "上传机构", "institutions_registered": "登记机构",
    "institutions_connected": "已接入机构", "connected_rate": "接入率", "sales": "销售",
    "insured_sales": "医保销售", "insured_with_codes": "带码医保销售",
    "capture_rate": "采集率", "codes_collected": "采集追溯码",
    "fund_without_codes": "无码结算基金（元）", "leads": "线索",
}
# run_summary.json's headline (when the run computes one), shown first in 概览 and the report
HEADLINE_ZH = {
    "institutions_registered": "登记机构", "institutions_connected": "已接入机构",
    "connected_rate": "接入率", "codes_collected": "采集追溯码", "insured_sales": "医保销售",
    "insured_sales_with_codes": "带码医保销售", "capture_rate": "采集率",
    "leads_raised": "线索", "leads_confirmed": "属实", "leads_dismissed": "排除",
    "leads_open": "待核查", "institutions_proposed": "建议检查机构",
    "amount_at_risk": "涉及金额（元）",
}
OPTIONAL_SHEETS = {"dq_findings": "数据质量", "compliance_findings": "合规", "rings": "团伙"}

SUBJECT_ZH = {"code": "追溯码", "person": "人员", "institution": "机构"}
TYPE_ZH = {"pharmacy": "药店", "clinic": "诊所", "hospital": "医院"}


def write_workbook(
    path: str,
    *,
    overview: Sequence[tuple[str, Sequence[tuple[str, Any]]]],
    lead_sheet: pl.DataFrame,
    cases: pl.DataFrame,
    evidence: pl.DataFrame,
    findings: dict[str, pl.DataFrame],
) -> None:
    """Write the workbook to ``path``. ``overview`` is a list of titled blocks of
    (label, value) rows for 概览."""
    import xlsxwriter

    with xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False,
                                    "strings_to_numbers": False,
                                    "default_date_format": "yyyy-mm-dd"}) as wb:
        cells = _Cells(wb)
        _overview(wb, cells, overview)
        leads = lead_sheet.with_columns(
            pl.col("subject_type").replace_strict(SUBJECT_ZH, default=pl.col("subject_type"))
            .alias("subject_type_zh"),
            pl.col("status").replace_strict(STATUS_ZH, default=pl.col("status"))
            .alias("status_zh"),
            pl.col("decision").replace_strict(DECISION_ZH, default=None,
                                              return_dtype=pl.String).alias("decision_zh"),
        )
        ws = _table(wb, cells, "线索", leads, LEAD_COLS)
        choices = list(DECISION_ZH.values())
        column = [c.header for c in LEAD_COLS].index(REVIEW_HEADERS[0])
        ws.data_validation(1, column, max(leads.height, 1) + 500, column,
                           {"validate": "list", "source": choices,
                            "input_title": "核查结论", "input_message": "、".join(choices)})
        _table(wb, cells, "机构", cases.with_columns(
            pl.col("fixmedins_type").replace_strict(TYPE_ZH, default=pl.col("fixmedins_type"))
            .alias("fixmedins_type_zh")), CASE_COLS)
        _table(wb, cells, "证据", evidence.head(EXCEL_ROWS), EVIDENCE_COLS)
        if evidence.height > EXCEL_ROWS:
            note = wb.add_worksheet("说明")
            note.write_string(0, 0, f"证据共 {evidence.height} 行，超出 Excel 上限，"
                                    f"此处仅列前 {EXCEL_ROWS} 行；"
                                    "完整内容见 evidence.parquet 或 report 文件夹。")
        for table, sheet in OPTIONAL_SHEETS.items():
            if table in findings:
                _table(wb, cells, sheet, findings[table], finding_cols(findings[table]))


def write_table_workbook(path: str, sheet: str, frame: pl.DataFrame) -> None:
    """One sheet holding ``frame`` (``tracecode sql --to result.xlsx``)."""
    import xlsxwriter

    with xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False,
                                    "strings_to_numbers": False}) as wb:
        _table(wb, _Cells(wb), sheet, frame, finding_cols(frame))


def finding_cols(frame: pl.DataFrame) -> tuple[Col, ...]:
    cols = []
    for name, dtype in frame.schema.items():
        if dtype.is_temporal():
            kind, width = "time", 18
        elif name in ("amount", "fund_without_codes") and dtype.is_float():
            kind, width = "money", 13
        elif name == "share" or name.endswith("_rate"):
            kind, width = "pct", 8
        elif dtype.is_integer():
            kind, width = "int", 9
        elif dtype.is_float():
            kind, width = "num", 9
        elif name.startswith("reason") or name in ("examples", "members"):
            kind, width = "wrap", 50
        else:
            kind, width = "text", 16
        cols.append(Col(name, FINDING_HEADERS.get(name, name), kind, width))
    return tuple(cols)


class _Cells:
    """One format per kind of cell, and the writer that never writes a formula."""

    _NUM: ClassVar[dict[str, str]] = {
        "money": "#,##0.00", "int": "#,##0", "num": "0.0#", "pct": "0.0%",
        "time": "yyyy-mm-dd hh:mm:ss", "date": "yyyy-mm-dd"}

    def __init__(self, wb: Any) -> None:
        self.wb = wb
        self.header = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1,
                                     "text_wrap": True, "valign": "top"})
        self.formats: dict[tuple[str, bool], Any] = {}

    def fmt(self, kind: str, quoted: bool = False) -> Any:
        key = (kind, quoted)
        if key not in self.formats:
            props: dict[str, Any] = {"valign": "top"}
            if kind == "wrap":
                props["text_wrap"] = True
            if kind in self._NUM:
                props["num_format"] = self._NUM[kind]
            if quoted:
                props["quote_prefix"] = True
            self.formats[key] = self.wb.add_format(props)
        return self.formats[key]

    def write(self, ws: Any, row: int, col: int, value: Any, kind: str) -> None:
        if value is None:
            return
        if isinstance(value, str):
            ws.write_string(row, col, value, self.fmt(kind, is_formula_like(value)))
        elif isinstance(value, bool):
            ws.write_boolean(row, col, value, self.fmt(kind))
        elif isinstance(value, int | float):
            if value != value or value in (float("inf"), float("-inf")):
                ws.write_string(row, col, str(value), self.fmt(kind))
            else:
                ws.write_number(row, col, value, self.fmt(kind))
        elif isinstance(value, datetime | date):
            ws.write_datetime(row, col, value, self.fmt(kind))
        else:
            text = str(value)
            ws.write_string(row, col, text, self.fmt(kind, is_formula_like(text)))


def _table(wb: Any, cells: _Cells, name: str, frame: pl.DataFrame,
           cols: Sequence[Col]) -> Any:
    ws = wb.add_worksheet(name)
    cols = [c for c in cols if c.field in frame.columns]
    for j, c in enumerate(cols):
        ws.set_column(j, j, c.width)
        ws.write_string(0, j, c.header, cells.header)
    for i, row in enumerate(frame.select(c.field for c in cols).iter_rows(), start=1):
        for j, value in enumerate(row):
            cells.write(ws, i, j, value, cols[j].kind)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(frame.height, 1), len(cols) - 1)
    return ws


def _overview(wb: Any, cells: _Cells,
              blocks: Sequence[tuple[str, Sequence[tuple[str, Any]]]]) -> None:
    ws = wb.add_worksheet("概览")
    ws.set_column(0, 0, 34)
    ws.set_column(1, 3, 18)
    title = wb.add_format({"bold": True, "font_size": 13})
    row = 0
    for heading, items in blocks:
        ws.write_string(row, 0, heading, title)
        row += 1
        for label, value in items:
            ws.write_string(row, 0, label)
            values = value if isinstance(value, tuple) else (value,)
            for j, v in enumerate(values, start=1):
                kind = "money" if isinstance(v, float) else "int" if isinstance(v, int) else "text"
                cells.write(ws, row, j, v, kind)
            row += 1
        row += 1
