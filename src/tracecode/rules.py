"""Rules are ``.sql`` files in ``sql/rules/``, each selecting the rows that offend it.

A rule file starts with a header of ``-- key: value`` lines::

    -- id: dup_same_institution
    -- category: dup_same_institution
    -- subject: code
    -- severity: 4
    -- why: a whole pack has one code and is sold once; ...
    -- reason_zh: 追溯码 {subject_id} 在 ... 被整盒销售 {n_events} 次 ...
    -- reason_en: Code {subject_id} was sold as a whole pack {n_events} times ...

and optionally ``-- waits: upload_lag_days`` (see :attr:`Rule.waits`). Its query
returns one row per piece of evidence, with ``subject_id`` and any of
``rec_id, fixmedins_code, event_time, code, psn_no, amount, metric, threshold, note``
(see ``EVIDENCE_COLUMNS``). Thresholds are named parameters (``$cross_gap_days``) bound
from :class:`tracecode.settings.RuleSettings`. Rules are found by listing the folder;
a malformed header, an unknown category or a duplicate id fails at load.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tracecode.categories import CATEGORIES
from tracecode.db import Database, named_params, sql_dir
from tracecode.errors import RuleError
from tracecode.inputs import Scope
from tracecode.settings import Settings

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("id", "category", "subject", "severity", "why", "reason_zh", "reason_en")
OPTIONAL_KEYS = ("waits",)
SUBJECTS = ("code", "person", "institution")
EVIDENCE_COLUMNS = (
    "subject_id", "rec_id", "fixmedins_code", "event_time", "code", "psn_no",
    "amount", "metric", "threshold", "note",
)


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    subject_type: str
    severity: int
    why: str
    reason_zh: str
    reason_en: str
    sql: str
    source: str  # path relative to sql/
    # a rule reading `data_clock` that judges a sale only once the clock is this setting
    # (in days) past the sale's time, and uses the clock for nothing else
    waits: str | None = None

    @property
    def params(self) -> tuple[str, ...]:
        """The settings this rule reads, in the order they appear."""
        return tuple(sorted(named_params(self.sql)))

    @property
    def scopable(self) -> bool:
        """Whether it can screen only the subjects whose inputs changed.

        A rule reading ``data_clock`` (the latest upload time) can change its mind about a
        subject whose data did not change, because the clock moved. When it declares how
        it waits on the clock (``waits``), the screen also gives it the subjects with
        sales the clock's move brought into judgement; otherwise it screens everything.
        """
        return "data_clock" not in self.sql or self.waits is not None


@dataclass(frozen=True)
class RuleRun:
    rule_id: str
    category: str
    rows: int
    seconds: float


def parse_rule(text: str, source: str) -> Rule:
    """A :class:`Rule` from a rule file's text; ``source`` names it in errors."""
    header: dict[str, str] = {}
    body_lines: list[str] = []
    in_header = True
    for line in text.splitlines():
        stripped = line.strip()
        if in_header and stripped.startswith("--"):
            key, sep, value = stripped[2:].partition(":")
            if sep and key.strip() in REQUIRED_KEYS + OPTIONAL_KEYS:
                header[key.strip()] = value.strip()
            continue
        if in_header and not stripped:
            continue
        in_header = False
        body_lines.append(line)
    missing = [k for k in REQUIRED_KEYS if k not in header]
    if missing:
        raise RuleError(f"{source}: header lacks {', '.join(missing)}")
    if header["category"] not in CATEGORIES:
        raise RuleError(f"{source}: unknown category {header['category']!r}")
    if header["subject"] not in SUBJECTS:
        raise RuleError(f"{source}: subject must be one of {SUBJECTS}, got {header['subject']!r}")
    try:
        severity = int(header["severity"])
    except ValueError:
        severity = 0
    if not 1 <= severity <= 5:
        raise RuleError(f"{source}: severity must be 1-5, got {header['severity']!r}")
    sql = "\n".join(body_lines).strip().rstrip(";")
    if not sql:
        raise RuleError(f"{source}: no query after the header")
    waits = header.get("waits")
    if waits is not None and (waits not in named_params(sql) or "data_clock" not in sql):
        raise RuleError(f"{source}: waits on {waits!r}, but its query does not compare "
                        f"data_clock with ${waits}")
    return Rule(
        id=header["id"], category=header["category"], subject_type=header["subject"],
        severity=severity, why=header["why"], reason_zh=header["reason_zh"],
        reason_en=header["reason_en"], sql=sql, source=source, waits=waits,
    )


def load_rules(folder: Path | None = None, settings: Settings | None = None) -> list[Rule]:
    """Every rule in ``folder`` (default ``sql/rules``), sorted by id.

    With ``settings``, a rule reading a parameter that is not a setting fails here.
    """
    folder = folder or sql_dir() / "rules"
    rules: dict[str, Rule] = {}
    for path in sorted(folder.glob("*.sql")):
        rule = parse_rule(path.read_text(encoding="utf-8"), f"rules/{path.name}")
        if rule.id in rules:
            raise RuleError(f"duplicate rule id {rule.id!r} in {rule.source} and "
                            f"{rules[rule.id].source}")
        rules[rule.id] = rule
    if settings is not None:
        known = set(settings.rule_params())
        for rule in rules.values():
            unknown = set(rule.params) - known
            if unknown:
                raise RuleError(f"{rule.source} reads unknown setting(s) {sorted(unknown)}")
    return [rules[k] for k in sorted(rules)]


def catalogue_markdown(rules: list[Rule]) -> str:
    """The README's rule table, from the rules' own headers (a test keeps them equal)."""
    from tracecode.settings import RuleSettings

    defaults = RuleSettings()
    lines = [
        "| id | 中文 | subject | severity | what it means | settings (default) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rules:
        settings = ", ".join(f"`{p}` ({getattr(defaults, p)})" for p in r.params) or "-"
        why = r.why.replace("|", "\\|")
        lines.append(f"| `{r.id}` | {CATEGORIES[r.category].zh} | {r.subject_type} | "
                     f"{r.severity} | {why} | {settings} |")
    return "\n".join(lines)


def run_rules(
    db: Database, rules: list[Rule], settings: Settings, run_id: str,
    *, scope: Scope, scoped: frozenset[str] = frozenset(),
) -> list[RuleRun]:
    """Run rules into the temp table ``rule_hits``; record each in ``rule_runs``.

    Rules named in ``scoped`` screen only the subjects of their type in ``scope``: their
    inputs are bound to those subjects' rows (:meth:`Scope.inputs`) and their hits are
    kept for those subjects only. The others screen the whole history.
    """
    db.execute(
        "rule hits table",
        """create or replace temp table rule_hits (
               rule_id varchar, subject_id varchar, rec_id bigint, fixmedins_code varchar,
               event_time timestamp, code varchar, psn_no varchar, amount double,
               metric double, threshold double, note varchar)""",
    )
    params = settings.rule_params()
    runs = []
    for rule in rules:
        subjects = scope.subject_table(rule.subject_type) if rule.id in scoped else None
        inputs = scope.inputs(rule.subject_type if subjects else None)
        runs.append(_run_one(db, rule, params, run_id, inputs, subjects))
    return runs


def bind_inputs(sql: str, inputs: Mapping[str, str]) -> str:
    """The rule's query with each input it names (``sales``...) bound to a relation.

    The runner's ``@this_model``: the rule reads ``from sales``, and a CTE of that name
    in front of it says which rows that is (the kept table, or a scope's cut of it).
    """
    used = [(name, rel) for name, rel in inputs.items()
            if re.search(rf"\b{name}\b", sql) and name != rel]
    if not used:
        return sql
    ctes = ",\n".join(f"{name} as (select * from {rel})" for name, rel in used)
    return f"with {ctes}\nselect * from (\n{sql}\n)"


def _run_one(
    db: Database, rule: Rule, params: dict[str, object], run_id: str,
    inputs: Mapping[str, str], subjects: str | None,
) -> RuleRun:
    started = time.perf_counter()
    db.execute(
        f"rule {rule.id}",
        "insert into rule_hits by name select $rule_id as rule_id, * from (\n"
        f"{bind_inputs(rule.sql, inputs)}\n)",
        {**params, "rule_id": rule.id},
        source=rule.source,
    )
    if subjects:
        # the scoped inputs may hold other subjects' partial histories: keep only ours
        db.execute(
            "keep scoped hits",
            f"""delete from rule_hits where rule_id = $rule_id
                and subject_id not in (select subject_id from {subjects})""",
            {"rule_id": rule.id},
        )
    seconds = time.perf_counter() - started
    (rows,) = db.fetch_one(
        f"count {rule.id}", "select count(*) from rule_hits where rule_id = $rule_id",
        {"rule_id": rule.id},
    )
    used = {k: params[k] for k in rule.params}
    db.execute(
        "record rule run",
        """insert into rule_runs values ($run_id, $rule_id, $category, $rows,
           (select count(distinct subject_id) from rule_hits where rule_id = $rule_id),
           $seconds, $sql, $params)""",
        {"run_id": run_id, "rule_id": rule.id, "category": rule.category, "rows": rows,
         "seconds": seconds, "sql": rule.sql, "params": json.dumps(used, sort_keys=True)},
    )
    log.info("rule %s%s: %d evidence rows in %.2fs", rule.id,
             " (touched subjects)" if subjects else "", rows, seconds)
    return RuleRun(rule.id, rule.category, int(rows), seconds)
