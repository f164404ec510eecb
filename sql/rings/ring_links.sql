-- What links institutions and persons into a ring: every code whose movement a rule
-- flagged as against the rules (sold at A and re-sold at B, returned at A and sold at B,
-- taken into B's stock after a sale at A), with the institutions and buyers its
-- evidence names. One row per (lead, member); tracecode.rings groups them.
-- A chain's own transfers (3502 102 out / 101 in) raise none of these rules, so they link
-- nothing here.
-- Params: $ring_rules (the rule ids whose leads can link a ring, ';'-joined).

create or replace temp table ring_links as
with moved as (
    select
        e.lead_id,
        e.subject_id as code,
        e.fixmedins_code,
        e.psn_no,
        coalesce(e.amount, 0) as amount
    from lead_evidence as e
    where list_contains(string_split($ring_rules, ';'), e.rule_id)
),

institutions as (
    select
        lead_id,
        any_value(code) as code,
        'institution' as member_type,
        fixmedins_code as member_id,
        sum(amount::decimal(38, 6))::double as amount  -- exact: order-free
    from moved
    where fixmedins_code is not null
    group by lead_id, fixmedins_code
),

-- a buyer links codes only when they bought two or more moved codes: a patient whose
-- one box was later bought back is a leaf, a collector passing codes is a member
collectors as (
    select psn_no
    from moved
    where nullif(psn_no, '') is not null
    group by psn_no
    having count(distinct code) >= 2
),

persons as (
    select
        m.lead_id,
        any_value(m.code) as code,
        'person' as member_type,
        m.psn_no as member_id,
        sum(m.amount::decimal(38, 6))::double as amount
    from moved as m
    join collectors as c using (psn_no)
    group by m.lead_id, m.psn_no
)

select *
from institutions
union all
select *
from persons
order by lead_id, member_type, member_id;
