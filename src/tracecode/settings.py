"""Every threshold and hyperparameter, with the contract's defaults.

Settings come from an optional TOML file whose sections mirror the dataclasses::

    [rules]
    cross_gap_days = 10

    [model]
    lead_z_persons = 3.5

Unknown keys and wrong types are reported all at once, not one per run.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tracecode.errors import SettingsError


@dataclass(frozen=True)
class RuleSettings:
    """Thresholds of the SQL rules; each is bound by name (``$cross_gap_days``) in sql/rules."""

    # dup_same_institution: net whole-pack sales of one code at one institution
    dup_min_sales: int = 2
    # dup_cross_long_gap / dup_cross_short_gap: days between first and last institution's sale
    cross_gap_days: float = 7.0
    # impossible_travel: hours between purchases in different cities
    travel_hours: float = 3.0
    # card_hopping: institutions for one person and one product within the window
    hopping_min_institutions: int = 4
    hopping_window_days: float = 7.0
    # no_inbound: codes sold that never were in stock, after allowing for upload lag
    no_inbound_min_codes: int = 5
    upload_lag_days: float = 2.0
    # off_hours_burst: sales to distinct persons outside opening hours in one night
    off_hours_min_sales: int = 10
    # sales this close to closing or opening time do not count (a busy shop closing late)
    off_hours_grace_minutes: int = 30


@dataclass(frozen=True)
class ModelSettings:
    """Isolation-forest hyperparameters and how many anomaly leads to raise."""

    n_estimators: int = 200
    max_samples: int = 256
    random_state: int = 0
    fit_sample_rows: int = 200_000
    # How many model leads (README, "How many model leads"): a subject is a lead when its
    # score stands this many robust deviations (1.4826 x MAD) above the median of its
    # subject type ...
    lead_z_institutions: float = 4.0
    lead_z_persons: float = 3.0
    # ... and (score - q99) / (q99 - median) at least this: beyond the population's own
    # top percent by this share of the distance from the bulk to it ...
    lead_tail_persons: float = 0.25
    lead_tail_institutions: float = 0.25
    # ... (the tail is measured only for a population of at least this many subjects:
    # a few hundred institutions have no top percent to speak of; 3,000 have thirty) ...
    tail_min_subjects: int = 1000
    # ... scores at least this (0-100; below 50 the model calls a subject usual) ...
    min_anomaly_score: float = 55.0
    # ... and ranks within this share of its subjects (at least one)
    max_lead_share_institutions: float = 0.02
    max_lead_share_persons: float = 0.001
    # the kept model is refitted after this many days of new data, or when the rows it
    # scores differ in number by more than this share from those it was fitted on
    refit_days: int = 7
    refit_drift: float = 0.25
    # a drug is "expensive" (a feature of the model) from this price per pack, in yuan
    expensive_pack_price: float = 500.0
    # the fitted models of this many latest runs are kept beside the database (0: all)
    keep_model_runs: int = 90


@dataclass(frozen=True)
class RingSettings:
    """When institutions and persons linked by moved codes make a ring (tracecode.rings)."""

    # a ring has at least this many institutions ...
    min_institutions: int = 3
    # ... linked by at least this many codes that moved against the rules
    min_codes: int = 3


@dataclass(frozen=True)
class ScoreSettings:
    """How a lead's 0-100 priority is composed (see README, "Scoring")."""

    # yuan at which the money part of the score saturates
    amount_full_yuan: float = 10_000.0
    # evidence records at which the repetition part saturates
    events_full: int = 20
    # institutions at which the spread part saturates
    institutions_full: int = 5


@dataclass(frozen=True)
class IngestSettings:
    """What a message value may be before it is quarantined (docs/messages.md)."""

    # no time (sale, stock change, upload) before this date
    earliest_time: str = "2019-01-01"
    # inf_time may be at most this far after the ingest's own clock
    future_tolerance_hours: int = 24
    # an event may be at most this far after its own inf_time
    event_after_upload_hours: int = 24
    # local time of the uploads (China Standard Time) for epoch times and offsets
    local_offset_minutes: int = 480
    # counts and unit prices above these are taken as garbage
    max_count: float = 1_000_000.0
    max_price: float = 1_000_000.0
    # manu_date and expy_end outside these dates are quarantined
    earliest_date: str = "1970-01-01"
    latest_date: str = "2199-12-31"


@dataclass(frozen=True)
class QualitySettings:
    """When an upload habit is a data-quality finding (README, "Data quality"), and the
    exemptions it earns from the rules it would fool."""

    # one certno, psn_no or (at one institution) name on this many different buyers is a
    # placeholder the vendor fills in, not a person
    placeholder_min_buyers: int = 8
    # a clock that looks 12-hour: this many timed sales, none after 12:59, at an
    # institution open past 13:00 (or giving no hours)
    twelve_hour_min_sales: int = 20
    # dispensing sent as 3502 101: a 101 inbound of a code the institution itself sold
    # within this many hours mirrors the sale; so many mirrors, and this share of its 101s
    mirror_hours: float = 24.0
    mirror_min_inbounds: int = 5
    mirror_min_share: float = 0.5
    # a pattern is reported for an institution from this many records
    finding_min_records: int = 3


@dataclass(frozen=True)
class ComplianceSettings:
    """Capture compliance (README, "Capture compliance"): when an institution is far below
    its peers."""

    # silent: no upload in the last this many days, after uploading before
    silence_days: int = 3
    # and long enough to have missed this many sales at its usual pace
    silence_min_expected_sales: int = 20
    # judged only with this many insured sales (a clinic with few sales is not measured)
    min_insured_sales: int = 30
    # and only after uploading for this many days (a new institution is not measured)
    min_active_days: int = 5
    # capture_gap: share of insured sales with codes this far below the peers' median
    capture_gap_points: float = 0.2
    # late_upload: share of sales uploaded later than rules.upload_lag_days at least this
    late_share: float = 0.3
    # headline: institutions proposed for inspection have a confirmed lead or one scoring
    # at least this
    propose_min_score: float = 80.0


@dataclass(frozen=True)
class EngineSettings:
    """How DuckDB may use the machine (``[engine]``); see docs/performance.md."""

    # DuckDB's memory_limit, e.g. "6GB"; "" gives 60% of the machine's memory, so that a
    # large screen spills to temp_directory instead of growing until the OS kills it
    memory_limit: str = ""
    # where DuckDB spills; "" gives a folder beside the database (<db>.tmp)
    temp_directory: str = ""
    # worker threads; 0 gives DuckDB's default (one per core)
    threads: int = 0


@dataclass(frozen=True)
class Settings:
    rules: RuleSettings = field(default_factory=RuleSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    score: ScoreSettings = field(default_factory=ScoreSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    rings: RingSettings = field(default_factory=RingSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    compliance: ComplianceSettings = field(default_factory=ComplianceSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)

    def rule_params(self) -> dict[str, Any]:
        """Named parameters for rule SQL: every rule threshold, by field name."""
        return asdict(self.rules)


def load_settings(path: Path | None) -> Settings:
    """Read a TOML settings file; ``None`` gives the defaults."""
    if path is None:
        return Settings()
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise SettingsError(f"settings file {path} does not exist") from e
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"settings file {path} is not valid TOML: {e}") from e
    return settings_from_dict(raw, source=str(path))


def settings_from_dict(raw: dict[str, Any], source: str = "settings") -> Settings:
    problems: list[str] = []
    sections: dict[str, Any] = {}
    defaults = Settings()
    for name, value in raw.items():
        if name not in {f.name for f in fields(Settings)}:
            problems.append(f"unknown section [{name}]")
            continue
        if not isinstance(value, dict):
            problems.append(f"[{name}] must be a table")
            continue
        section_default = getattr(defaults, name)
        known = {f.name: f for f in fields(section_default)}
        updates: dict[str, Any] = {}
        for key, v in value.items():
            if key not in known:
                problems.append(f"unknown key {name}.{key}")
                continue
            expected = type(getattr(section_default, key))
            if expected is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if not isinstance(v, expected) or isinstance(v, bool):
                problems.append(f"{name}.{key} must be {expected.__name__}, got {v!r}")
                continue
            if not isinstance(v, str) and v < 0:
                problems.append(f"{name}.{key} must not be negative, got {v!r}")
                continue
            updates[key] = v
        sections[name] = replace(section_default, **updates)
    if problems:
        raise SettingsError(f"{source}: " + "; ".join(problems))
    return replace(defaults, **sections)
