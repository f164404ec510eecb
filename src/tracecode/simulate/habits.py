"""Real upload habits and capture gaps, planted at named institutions (``--habits``).

Off by default, so that the default simulation's bytes, frauds and leads stay as they
are. Each habit goes to ``PER_HABIT`` institutions that take part in no planted fraud;
``habits.csv`` lists them with the finding tracecode should report (``kind``
``data_quality``: a ``dq_findings`` pattern; ``compliance``: a ``compliance_findings``
category), which ``tracecode evaluate`` scores. Rates:

- ``placeholder_identity``: 40% of its sales carry certno ``320500199001010011`` and the
  name ``参保人`` (its system's default for buyers it does not know);
- ``twelve_hour_clock``: every sale from 13:00 on is written 12 hours early;
- ``dispensing_as_inbound``: every whole-pack sale is also sent as a 3502 ``101`` a minute
  later, with the same codes;
- ``capture_gap``: 60% of its insured sales are sent without their codes (not scanned);
- ``late_upload``: every record is uploaded 3 days after the event (at most at the end of
  the window);
- ``upload_silence``: nothing is uploaded about the last 4 days.

Date-only times and reused keys are not planted: they need the real-shapes ingest
(helper "shapes") to be stored as such.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tracecode.simulate.records import conform
from tracecode.simulate.world import DAY, World

PER_HABIT = 3
HABITS = {  # habit -> kind of finding
    "placeholder_identity": "data_quality",
    "twelve_hour_clock": "data_quality",
    "dispensing_as_inbound": "data_quality",
    "capture_gap": "compliance",
    "late_upload": "compliance",
    "upload_silence": "compliance",
}
PLACEHOLDER_CERTNO = "320500199001010011"
PLACEHOLDER_NAME = "参保人"
PLACEHOLDER_SHARE = 0.4
UNSCANNED_SHARE = 0.6
LATE_DAYS = 3
SILENT_DAYS = 4
HABIT_KEY_BASE = 1 << 38


def plan_habits(world: World, frauds: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Which institutions get which habit: ``inst``, ``habit``, ``kind``,
    ``fixmedins_code``, ``rate``."""
    inst = world.inst
    fraud_insts = set(frauds["inst"].unique().to_list())
    # pharmacies and clinics open past 14:00 (a 12-hour clock shows there), with no fraud
    close = world.i_close
    ok = np.array([
        i not in fraud_insts and world.i_has_hours[i] and close[i] > 14 * 3600
        and inst["fixmedins_type"][i] != "hospital"
        for i in range(inst.height)
    ])
    # among the busier half, so that a habit shows in a fortnight
    ok_at = np.flatnonzero(ok)
    weight = inst["weight"].to_numpy()[ok_at]
    candidates = rng.permutation(ok_at[weight >= np.median(weight)] if len(ok_at) else ok_at)
    # a small world gets fewer per habit; each habit's institutions stay a few among many
    per_habit = min(PER_HABIT, len(candidates) // len(HABITS))
    chosen = candidates[:per_habit * len(HABITS)]
    habits = np.repeat(list(HABITS), per_habit)
    rates = {"placeholder_identity": PLACEHOLDER_SHARE, "capture_gap": UNSCANNED_SHARE}
    return pl.DataFrame({
        "inst": chosen.astype(np.int64),
        "habit": habits,
        "kind": [HABITS[h] for h in habits],
        "fixmedins_code": inst["fixmedins_code"].gather(chosen),
        "rate": [rates.get(h, 1.0) for h in habits],
    })


def apply_habits(world: World, rows: pl.DataFrame, plan: pl.DataFrame,
                 rng: np.random.Generator) -> pl.DataFrame:
    """The chunk's records as the planned institutions' systems send them."""
    def at(habit: str) -> pl.Expr:
        return pl.col("inst").is_in(plan.filter(pl.col("habit") == habit)["inst"].to_list())

    sale = pl.col("infno") == "3505"
    end = world.days * DAY
    u = pl.Series(rng.random(rows.height))
    rows = rows.with_columns(
        certno=pl.when(at("placeholder_identity") & sale & (u < PLACEHOLDER_SHARE))
        .then(pl.lit(PLACEHOLDER_CERTNO)).otherwise("certno"),
        psn_name=pl.when(at("placeholder_identity") & sale & (u < PLACEHOLDER_SHARE))
        .then(pl.lit(PLACEHOLDER_NAME)).otherwise("psn_name"),
        t_ev=pl.when(at("twelve_hour_clock") & sale & (pl.col("t_ev") % DAY >= 13 * 3600))
        .then(pl.col("t_ev") - 12 * 3600).otherwise("t_ev"),
        codes=pl.when(at("capture_gap") & sale & (pl.col("role") == "normal")
                      & (pl.col("setl") == "1") & (u >= 1 - UNSCANNED_SHARE))
        .then(None).otherwise("codes"),
        t_up=pl.when(at("late_upload"))
        .then(pl.max_horizontal("t_up", pl.min_horizontal(pl.col("t_ev") + LATE_DAYS * DAY,
                                                           end - 60)))
        .otherwise("t_up"),
    )
    rows = rows.with_columns(
        n_codes=pl.when(pl.col("codes").is_null()).then(0).otherwise("n_codes"))
    rows = rows.filter(~(at("upload_silence") & (pl.col("t_ev") >= end - SILENT_DAYS * DAY)))
    mirrors = rows.filter(at("dispensing_as_inbound") & sale & (pl.col("trdn") == "0")
                          & (pl.col("n_codes") > 0) & (pl.col("role") != "fraud"))
    if mirrors.height:
        mirrors = conform(mirrors.with_columns(
            key=HABIT_KEY_BASE + pl.col("key"), infno=pl.lit("3502"),
            t_ev=pl.col("t_ev") + 60, t_up=pl.col("t_up") + 120, chg_type=pl.lit("101"),
            cnt=pl.col("n_codes").cast(pl.Int64), person=None, psn_no=None, certno=None,
            psn_name=None, setl=None, receipt=None, ref_key=None, ref_type=None,
            role=pl.lit("dispensing_as_inbound"),
        ))
        rows = pl.concat([rows, mirrors]).sort("key")
    return rows

