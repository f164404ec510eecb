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
