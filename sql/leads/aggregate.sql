-- One lead per rule and subject, from the evidence kept in lead_evidence.
-- Params: $amount_full_yuan, $events_full, $institutions_full (ScoreSettings).
--
-- score (0-100) = severity (1-5) x 10          -- what kind of fraud it suggests
--               + 20 x money at risk            -- log scale, full at $amount_full_yuan
--               + 15 x repetition               -- log scale, full at $events_full records
--               + 15 x spread                   -- full at $institutions_full institutions

create or replace temp table lead_agg as
with grouped as (
    select
        h.lead_id,
        h.rule_id,
        c.category,
        c.category_zh,
        c.subject_type,
        h.subject_id,
        c.severity,
        string_agg(distinct h.fixmedins_code, ';' order by h.fixmedins_code) as fixmedins_codes,
        min(h.event_time) as first_time,
        max(h.event_time) as last_time,
        count(*) as n_events,
        count(distinct h.fixmedins_code) as n_institutions,
        count(distinct h.psn_no) as n_persons,
        round(coalesce(sum(h.amount), 0), 2) as amount,
        sum(h.metric) as metric_total,
        max(h.metric) as metric_max,
        max(h.threshold) as threshold
    from lead_evidence as h
    join rule_catalog as c using (rule_id)
    group by all
)

select
    *,
    round(
        severity * 10
        + 20 * least(1, ln(1 + amount) / ln(1 + $amount_full_yuan))
        + 15 * least(1, ln(n_events) / ln(greatest($events_full, 2)))
        + 15 * least(1, (n_institutions - 1) / greatest($institutions_full - 1, 1)),
        1
    ) as score
from grouped;
