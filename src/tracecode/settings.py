"""Every threshold and hyperparameter, with the contract's defaults.

Settings come from an optional TOML file whose sections mirror the dataclasses::

    [rules]
    cross_gap_days = 10

    [model]
    top_k_institutions = 30

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
    top_k_institutions: int = 30
    top_k_persons: int = 60
    # and only those scoring at least this (0-100; below 50 the model calls a subject usual)
    min_anomaly_score: float = 50.0
    # a drug is "expensive" (a feature of the model) from this price per pack, in yuan
    expensive_pack_price: float = 500.0
    # the fitted models of this many latest runs are kept beside the database (0: all)
    keep_model_runs: int = 90


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
