-- The institution case list: one row per institution that the open leads involve, the list
-- an inspection visit starts from. Money, persons and codes count each evidence record
-- once, however many leads name it.
with shown as (
    select *
    from leads
    where status <> 'dismissed'
),

involved as (
    select distinct
        lead_id,
        unnest(string_split(fixmedins_codes, ';')) as fixmedins_code
    from shown
    where coalesce(fixmedins_codes, '') <> ''
),

by_category as (
    select
        v.fixmedins_code,
        l.category_zh,
        count(*) as n
    from involved as v
    join shown as l using (lead_id)
    group by all
),

lead_stats as (
    select
        v.fixmedins_code,
        count(*) as n_leads,
        max(l.score) as top_score,
        array_to_string(list_slice(list(l.reason order by l.score desc, l.lead_id), 1, 3),
                        chr(10)) as top_reasons
    from involved as v
    join shown as l using (lead_id)
    group by v.fixmedins_code
),

evidence as (
    select distinct
        e.fixmedins_code,
        e.rec_id,
        e.code,
        e.psn_no,
        e.amount
    from lead_evidence as e
    join shown as l using (lead_id)
),

evidence_stats as (
    select
        fixmedins_code,
        round(sum(coalesce(amount, 0)::decimal(38, 6)), 2)::double as amount_at_risk,  -- exact
        count(distinct psn_no) as n_persons,
        count(distinct code) as n_codes,
        array_to_string(list_slice(list_sort(list(distinct psn_no)), 1, 5), '、') as persons,
        array_to_string(list_slice(list_sort(list(distinct code)), 1, 5), '、') as codes
    from evidence
    group by fixmedins_code
),

final as (
    select
        s.fixmedins_code,
        i.fixmedins_name,
        i.fixmedins_type,
        left(i.admdvs, 4) || '00' as city,
        i.admdvs,
        s.n_leads,
        (select string_agg(c.category_zh || ' ' || c.n, '；' order by c.n desc, c.category_zh)
         from by_category as c
         where c.fixmedins_code = s.fixmedins_code) as leads_by_category,
        coalesce(m.amount_at_risk, 0) as amount_at_risk,
        s.top_score,
        s.top_reasons,
        coalesce(m.n_persons, 0) as n_persons,
        m.persons,
        coalesce(m.n_codes, 0) as n_codes,
        m.codes
    from lead_stats as s
    left join institutions as i using (fixmedins_code)
    left join evidence_stats as m using (fixmedins_code)
)

select *
from final
order by top_score desc, amount_at_risk desc, fixmedins_code
