-- One lead per rule and subject, from the evidence kept in lead_evidence.
-- Params: $amount_full_yuan, $events_full, $institutions_full (ScoreSettings).
--
-- score: the lead_score macro (sql/views/002_scoring.sql).
-- amount and metric_total are summed as exact decimals: a float sum depends on the order
-- of its rows (which differs between a full and an incremental screen), and its last bit
-- can move a rounded amount or a printed total ("1.13" or "1.14"; issue 10).

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
        round(coalesce(sum(h.amount::decimal(38, 6)), 0), 2)::double as amount,
        sum(h.metric::decimal(38, 6))::double as metric_total,
        max(h.metric) as metric_max,
        max(h.threshold) as threshold
    from lead_evidence as h
    join rule_catalog as c using (rule_id)
    group by all
)

select
    *,
    lead_score(severity, amount, n_events, n_institutions,
               $amount_full_yuan, $events_full, $institutions_full) as score
from grouped;
