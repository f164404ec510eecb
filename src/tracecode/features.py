"""Behaviour features for the anomaly model, computed in DuckDB by ``sql/features/*.sql``.

The files run in name order: ``010`` gathers net sales code by code with the facts the
features need (expensive drug, buyer insured elsewhere, night, split, code sold twice,
code never in stock), then one file per matrix builds a temp table with one row per
subject: ``institution_features`` (one row per institution over the window, with jumps
measured against its own weeks in ``institution_weeks``) and ``person_features`` (one row
per person and calendar month). :data:`FEATURES` names, labels and units every feature
column; a test checks that it and the SQL agree.

>>> matrices = compute_features(db, Settings())                # doctest: +SKIP
>>> matrices["institution"].names[:3]                          # doctest: +SKIP
('buyers_per_day', 'packs_per_buyer_day', 'amount_per_buyer')
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from tracecode.db import Database, sql_dir
from tracecode.settings import Settings

log = logging.getLogger(__name__)

SubjectType = Literal["institution", "person"]
Kind = Literal["share", "count", "yuan", "ratio"]

# "night" for the night-share features, by the clock: 22:00 to 06:00.
NIGHT_FROM_HOUR = 22
NIGHT_TO_HOUR = 6

# Yuan a person's month may differ from the usual by without it counting for much: the
# model compares money on log(1 + 200 + yuan).
FLOOR_YUAN = 200.0

# The temp table each subject's features land in, and the evidence columns before them.
TABLES: dict[SubjectType, str] = {
    "institution": "institution_features",
    "person": "person_features",
}
EVIDENCE_COLUMNS = (
    "subject_id", "period", "peer_group", "first_time", "last_time", "n_events", "amount",
    "fixmedins_codes",
)


@dataclass(frozen=True)
class Feature:
    """One model input: what the column means, in words an inspector reads."""

    name: str
    zh: str
    en: str
    kind: Kind          # how its value is written: share as %, yuan, x times, a count
    unit_zh: str = ""   # for counts: 盒, 人, 家...
    unit_en: str = ""
    log: bool = False   # the model sees log1p(value): volumes and ratios span decades
    # False: computed and kept in the feature table for the inspector, but not given to
    # the forest (it describes what kind of shop this is, not whether it cheats: a
    # specialty pharmacy sells dear drugs to every buyer)
    modelled: bool = True
    # for log features: the model compares log(1 + floor + value), so that differences
    # well below the floor (a patient's few hundred yuan) barely count
    floor: float = 0.0


FEATURES: dict[SubjectType, tuple[Feature, ...]] = {
    "institution": (
        Feature("buyers_per_day", "日均购药人数", "buyers per day", "count", "人", "", log=True),
        Feature("packs_per_buyer_day", "每人次购药盒数", "packs per buyer-day", "count", "盒",
                "packs", log=True),
        Feature("amount_per_buyer", "人均基金支付", "fund paid per buyer", "yuan", log=True,
                modelled=False),
        Feature("expensive_share", "贵重药销量占比", "expensive drugs' share of packs",
                "share", modelled=False),
        Feature("top_drug_share", "单一药品金额占比", "top drug's share of fund money",
                "share", modelled=False),
        Feature("top_drug_lift", "单一药品超同类销量倍数", "top drug's packs vs a same-size peer's",
                "ratio", log=True),
        Feature("nonlocal_share", "外地参保购药人占比", "share of buyers insured elsewhere",
                "share"),
        Feature("night_share", "夜间销售占比", "share of sales at night", "share"),
        Feature("split_share", "拆零销售占比", "share of split-pack sales", "share"),
        Feature("repeat_code_rate", "重复销售追溯码占比", "share of codes sold twice or more",
                "share", modelled=False),
        Feature("unstocked_share", "无入库记录追溯码占比", "share of codes never in stock",
                "share", modelled=False),
        Feature("volume_jump", "峰值周销量/常态周倍数", "busiest week vs usual week (packs)",
                "ratio", log=True),
        Feature("expensive_jump", "贵重药购药人数峰值周/常态周倍数",
                "busiest week vs usual week (buyers of expensive drugs)", "ratio", log=True),
        Feature("top_drug_rise", "主要药品后半期/前半期日销倍数",
                "top drug's packs a day, later half vs earlier half", "ratio", log=True),
    ),
    "person": (
        Feature("fund_amount", "当月基金支付", "fund paid in the month", "yuan", log=True,
                floor=FLOOR_YUAN),
        Feature("packs", "当月购药盒数", "packs bought in the month", "count", "盒", "packs",
                log=True, floor=5.0),
        Feature("expensive_packs", "当月贵重药盒数", "expensive packs in the month", "count",
                "盒", "packs", log=True),
        Feature("need_ratio", "单药用量/常见用量倍数", "most of one drug vs its usual buyer",
                "ratio", log=True),
        Feature("rebuy_fund", "同药重复购买金额",
                "fund paid for drugs bought again later in the month", "yuan", log=True,
                floor=FLOOR_YUAN),
        Feature("amount_change", "当月金额/常态月倍数", "month's fund money vs usual month",
                "ratio", log=True),
    ),
}

PEER_LABELS: dict[str, tuple[str, str]] = {
    "pharmacy": ("同类药店", "pharmacies"),
    "clinic": ("同类诊所", "clinics"),
    "hospital": ("同类医院", "hospitals"),
    "unknown": ("类型不明机构", "institutions of unknown type"),
    "person": ("参保人", "persons"),
}


@dataclass(frozen=True)
class FeatureMatrix:
    """The model's input for one subject type, with the evidence behind each row.

    ``values`` holds the features as computed (shares 0-1, yuan, counts), one row per
    subject (an institution, or a person's month), in the order of ``rows``.
    """

    subject_type: SubjectType
    names: tuple[str, ...]
    values: np.ndarray      # float64, shape (len(rows), len(names))
    rows: pl.DataFrame      # EVIDENCE_COLUMNS, one per row of values

    def __post_init__(self) -> None:
        if self.values.shape != (self.rows.height, len(self.names)):
            raise ValueError(f"values {self.values.shape} do not match "
                             f"{self.rows.height} rows x {len(self.names)} features")

    def __len__(self) -> int:
        return self.rows.height

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]

    def take(self, index: np.ndarray) -> FeatureMatrix:
        """The rows at ``index``, as a matrix of their own."""
        return FeatureMatrix(self.subject_type, self.names, self.values[index],
                             self.rows[np.asarray(index, dtype=np.int64)])


def feature_params(settings: Settings) -> dict[str, float | int]:
    """Named parameters of the feature SQL."""
    return {
        "expensive_pack_price": settings.model.expensive_pack_price,
        "night_from_hour": NIGHT_FROM_HOUR,
        "night_to_hour": NIGHT_TO_HOUR,
    }


def compute_features(db: Database, settings: Settings) -> dict[SubjectType, FeatureMatrix]:
    """Run ``sql/features/*.sql`` and fetch one matrix per subject type.

    Institutions and persons without any net sale have no row. The temp tables stay on
    the connection for inspection (``select * from institution_features``).
    """
    started = time.perf_counter()
    params = feature_params(settings)
    for path in sorted((sql_dir() / "features").glob("*.sql")):
        db.run_file(f"features/{path.name}", params)
    matrices = {subject: fetch_matrix(db, subject) for subject in TABLES}
    log.info("features: %d institutions, %d person-months in %.1fs",
             len(matrices["institution"]), len(matrices["person"]),
             time.perf_counter() - started)
    return matrices


def modelled(subject: SubjectType) -> tuple[Feature, ...]:
    """The features the forest sees, in table order."""
    return tuple(f for f in FEATURES[subject] if f.modelled)


def fetch_matrix(db: Database, subject: SubjectType) -> FeatureMatrix:
    """One subject's feature table as a :class:`FeatureMatrix` of its modelled features."""
    names = tuple(f.name for f in modelled(subject))
    table = db.fetch_arrow(f"{subject} features", f"select * from {TABLES[subject]}")
    frame: pl.DataFrame = pl.from_arrow(table)  # type: ignore[assignment]
    values = (
        frame.select([pl.col(n).cast(pl.Float64).fill_null(0.0).fill_nan(0.0) for n in names])
        .to_numpy()
        .astype(np.float64, copy=False)
        .reshape(frame.height, len(names))
    )
    return FeatureMatrix(subject, names, values, frame.select(EVIDENCE_COLUMNS))
