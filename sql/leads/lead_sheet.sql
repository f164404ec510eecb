-- The lead list as the workbook and the HTML report show it: every lead not dismissed,
-- highest score first, with its institutions' names and city (the first four digits of
-- the region code) and the latest review decision (lead_reviews).
with latest as (
    select
        lead_id,
        status as decision,
        note as decision_note,
        decided_by,
        decided_at
    from lead_reviews
    qualify row_number() over (partition by lead_id order by review_id desc) = 1
),

shown as (
    select *
    from leads
    where status <> 'dismissed'
),

involved as (
    select
        lead_id,
        unnest(string_split(fixmedins_codes, ';')) as fixmedins_code,
        generate_subscripts(string_split(fixmedins_codes, ';'), 1) as pos
    from shown
    where coalesce(fixmedins_codes, '') <> ''
),

names as (
    select
        v.lead_id,
        string_agg(coalesce(i.fixmedins_name, v.fixmedins_code), '；' order by v.pos)
            as fixmedins_names,
        -- the first institution named is where the lead's story starts
        arg_min(i.admdvs, v.pos) as admdvs,
        arg_min(i.fixmedins_type, v.pos) as fixmedins_type
    from involved as v
    left join institutions as i using (fixmedins_code)
    group by v.lead_id
),

final as (
    select
        l.lead_id,
        l.score,
        l.category_zh,
        l.subject_type,
        l.subject_id,
        n.fixmedins_names,
        l.fixmedins_codes,
        n.fixmedins_type,
        left(n.admdvs, 4) || '00' as city,
        n.admdvs,
        l.first_time,
        l.last_time,
        l.n_events,
        l.n_institutions,
        l.amount,
        l.reason,
        l.status,
        r.decision,
        r.decision_note,
        r.decided_by,
        r.decided_at,
        l.rule_id,
        l.category,
        l.severity,
        l.anomaly_score,
        l.anomaly_reason,
        l.reason_en
    from shown as l
    left join names as n using (lead_id)
    left join latest as r using (lead_id)
)

select *
from final
order by score desc, lead_id
