"""Why the model finds a subject unusual: its drivers and one sentence in Chinese and English.

A row's drivers are the features above their peers' median whose splits shortened its
paths through the forest (:meth:`~tracecode.forest.AnomalyModel.contributions`), each
with its share of that shortening in percent; the sentence names the top ones with the
subject's value against the median of its peers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracecode.features import FEATURES, PEER_LABELS, Feature, FeatureMatrix, SubjectType
from tracecode.forest import AnomalyModel

# Drivers named in a sentence, and the least share of the anomaly a driver must carry.
SENTENCE_DRIVERS = 3
MIN_DRIVER_SHARE = 5.0
# Below this score a subject is ordinary (the isolation forest's own boundary, 0.5): its
# sentence says so rather than naming drivers.
ORDINARY_BELOW = 50.0


@dataclass(frozen=True)
class Driver:
    feature: str
    value: float
    typical: float    # median among the subject's peers
    share: float      # percent of the anomaly (path shortening) this feature carried


def drivers(model: AnomalyModel, features: FeatureMatrix) -> list[list[Driver]]:
    """The features that drove each row's anomaly, largest share first: those above
    their peers' median whose splits shortened the row's paths, each with its share of
    that shortening in percent."""
    if len(features) == 0:
        return []
    phi = model.contributions(features)
    above = model.excess(features) > 0
    push = np.where(above, np.maximum(-phi, 0.0), 0.0)
    total = push.sum(axis=1, keepdims=True)
    shares = np.divide(100.0 * push, total, out=np.zeros_like(push), where=total > 0)
    typical = model.typical(features)
    out = []
    for i in range(len(features)):
        order = np.argsort(-shares[i], kind="stable")
        out.append([
            Driver(features.names[j], float(features.values[i, j]), float(typical[i, j]),
                   round(float(shares[i, j]), 1))
            for j in order if shares[i, j] > 0
        ])
    return out


def explain(subject_type: SubjectType, peer: str, period: str | None, score: float,
            found: list[Driver]) -> tuple[str, str]:
    """One sentence in Chinese and one in English naming the top drivers."""
    meta = {f.name: f for f in FEATURES[subject_type]}
    named = [d for d in found if d.share >= MIN_DRIVER_SHARE][:SENTENCE_DRIVERS] or found[:1]
    peer_zh, peer_en = PEER_LABELS.get(peer, (peer, peer))
    parts_zh, parts_en = [], []
    for i, d in enumerate(named):
        f = meta[d.feature]
        median_zh = f"{peer_zh}中位数" if i == 0 else "中位数"
        parts_zh.append(f"{f.zh} {_value_zh(f, d.value)}，{median_zh} "
                        f"{_value_zh(f, d.typical)}（占异常度 {d.share:.0f}%）")
        parts_en.append(f"{f.en} {_value_en(f, d.value)} vs {_value_en(f, d.typical)}"
                        f"{' median for ' + peer_en if i == 0 else ''} "
                        f"({d.share:.0f}% of the anomaly)")
    when_zh = (f"{period[:4]}年{int(period[5:7])}月" if subject_type == "person" and period
               else "")
    when_en = f" in {period}" if subject_type == "person" and period else ""
    if score < ORDINARY_BELOW:
        return (f"{when_zh}行为异常分 {score:.0f}，在常见范围内。",
                f"Anomaly score {score:.0f}{when_en}: within the usual range.")
    if not parts_zh:
        return (f"{when_zh}行为异常分 {score:.0f}，未见突出的单项特征。",
                f"Anomaly score {score:.0f}{when_en}; no single feature stands out.")
    return (f"{when_zh}行为异常分 {score:.0f}：" + "；".join(parts_zh) + "。",
            f"Anomaly score {score:.0f}{when_en}: " + "; ".join(parts_en) + ".")


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _percent(value: float) -> str:
    pct = 100.0 * value
    if pct == 0 or pct >= 10:
        return f"{pct:.0f}%"
    return f"{_number(pct)}%"


def _value_zh(f: Feature, value: float) -> str:
    if f.kind == "share":
        return _percent(value)
    if f.kind == "yuan":
        return f"{value:,.0f} 元"
    if f.kind == "ratio":
        return f"{_number(value)} 倍"
    return f"{_number(value)}{' ' + f.unit_zh if f.unit_zh else ''}"


def _value_en(f: Feature, value: float) -> str:
    if f.kind == "share":
        return _percent(value)
    if f.kind == "yuan":
        return f"{value:,.0f} yuan"
    if f.kind == "ratio":
        return f"x{_number(value)}"
    unit = f.unit_en[:-1] if value == 1 and f.unit_en.endswith("s") else f.unit_en
    return f"{_number(value)}{' ' + unit if unit else ''}"
