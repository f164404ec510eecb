"""The lead categories of shared/contract.md: the vocabulary every lead uses."""

from __future__ import annotations

from typing import NamedTuple


class Category(NamedTuple):
    zh: str
    en: str


CATEGORIES: dict[str, Category] = {
    "dup_same_institution": Category("同机构重复销售 (疑似串换/空刷)",
                                     "same code sold repeatedly at one institution"),
    "dup_cross_long_gap": Category("跨机构重复销售 (疑似回流/盗刷)",
                                   "same code sold at several institutions, long gap"),
    "dup_cross_short_gap": Category("跨机构短期重复 (疑似假药)",
                                    "same code sold at several institutions within days"),
    "split_overdraw": Category("拆零超量", "split sales exceed the pack"),
    "return_resold": Category("退货后异地再售", "returned code re-sold elsewhere"),
    "reflux_inbound": Category("已售药品回流入库", "sold code taken into stock again"),
    "unknown_code": Category("无效/未赋码追溯码", "malformed or never-activated code"),
    "lot_expiry_mismatch": Category("批号/效期不符", "lot or expiry differs from activation"),
    "expired_sale": Category("过期/未生产先销售", "sold after expiry or before manufacture"),
    "product_mismatch": Category("码药不符 (疑似串换)", "code belongs to another drug"),
    "deceased_person": Category("死亡人员购药", "purchase after the person's death"),
    "identity_mismatch": Category("身份信息不符 (疑似冒名)", "insured number and ID disagree"),
    "impossible_travel": Category("异地同时购药", "purchases in two cities too close in time"),
    "demographic_mismatch": Category("性别/年龄不符", "drug's gender or age limit excludes buyer"),
    "card_hopping": Category("频繁多店购药", "one product at many institutions in days"),
    "no_inbound": Category("无进货来源", "codes sold that never were in stock"),
    "off_hours_burst": Category("非营业时间集中刷卡", "burst of sales outside opening hours"),
    "anomaly_institution": Category("机构行为异常 (模型)",
                                    "institution behaves abnormally (model)"),
    "anomaly_person": Category("个人行为异常 (模型)", "person behaves abnormally (model)"),
    "ring": Category("疑似团伙 (回流/倒卖网络)",
                     "institutions and collectors passing codes among themselves"),
}


class Pattern(NamedTuple):
    zh: str          # the pattern's label
    what_zh: str     # what the institution's records do, to finish a Chinese sentence
    what_en: str


# Data-quality patterns (dq_findings, out/data_quality.csv): how an institution's system
# uploads, for the bureau to take to its vendor. Not fraud leads (shared/contract.md).
DQ_PATTERNS: dict[str, Pattern] = {
    "key_reuse": Pattern(
        "业务流水号复用", "同一业务流水号（fixmedins_bchno）用于不同业务",
        "reuse one record key (fixmedins_bchno) for different records"),
    "date_only": Pattern(
        "时间仅有日期", "销售/出入库时间只有日期、没有时分秒",
        "give the sale or stock time as a date alone"),
    "twelve_hour_clock": Pattern(
        "疑似12小时制时间", "销售时间全部早于13:00而营业至下午，疑似按12小时制上传",
        "all fall before 13:00 though it is open later: a 12-hour clock"),
    "dispensing_as_inbound": Pattern(
        "发药按调入上报", "以3502调入（101）上报本机构自己的销售发药",
        "send its own dispensing as 3502 101 transfers in"),
    "placeholder_identity": Pattern(
        "占位身份信息", "使用占位身份信息（同一证件号、人员编号或姓名用于多名参保人）",
        "carry a placeholder identity used for many buyers"),
    "batch": Pattern(
        "批量报文", "使用批量报文（*A 接口）",
        "come in batch messages (*A infnos)"),
    "node_string": Pattern(
        "报文体为字符串", "报文体以 JSON 字符串上传",
        "hold the body as a JSON string"),
    "node_misplaced": Pattern(
        "报文节点错位", "报文体放在其他接口的节点下",
        "put the body under another infno's node"),
    "upper_keys": Pattern(
        "字段名大写", "字段名使用大写",
        "use upper-case field names"),
    "string_numbers": Pattern(
        "数值为字符串", "数量、价格以字符串上传",
        "send numbers as strings"),
    "tracinfo_object": Pattern(
        "追溯码节点为对象", "drugtracinfo 以对象而非列表上传",
        "send drugtracinfo as an object, not a list"),
    "tracinfo_string": Pattern(
        "追溯码节点为字符串", "drugtracinfo 以字符串上传",
        "send drugtracinfo as a string"),
    "code_alias": Pattern(
        "追溯码字段名不符", "追溯码使用 drug_trac_code 等别名字段",
        "name the code field drug_trac_code or another alias"),
    "top_level_code": Pattern(
        "追溯码在顶层字段", "追溯码放在顶层 drug_trac_codg 字段",
        "put codes in a top-level drug_trac_codg field"),
    "time_no_space": Pattern(
        "时间格式不规范", "时间日期与时分之间无空格",
        "write times without a space"),
    "time_slashes": Pattern(
        "时间格式不规范", "时间使用斜杠分隔",
        "write dates with slashes"),
    "time_epoch_ms": Pattern(
        "时间为毫秒时间戳", "时间以毫秒时间戳上传",
        "write times as epoch milliseconds"),
    "unusual_code": Pattern(
        "追溯码格式异常", "追溯码格式异常（非20位药品追溯码或含多余字符）",
        "carry codes of unusual shape (not 20 digits, or extra characters)"),
}

# Capture-compliance findings (compliance_findings, out/compliance.csv): an institution far
# below its peers in capturing codes. Scored like leads, never in leads.csv.
COMPLIANCE_CATEGORIES: dict[str, Category] = {
    "capture_gap": Category("应采未采 (追溯码采集率低)", "insured sales settled without codes"),
    "upload_silence": Category("停止上传", "stopped uploading"),
    "late_upload": Category("上传滞后", "uploads days late"),
}
