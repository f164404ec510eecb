-- Store the rings tracecode.rings found (ring_rows, ring_member_rows): the `rings` and
-- `ring_members` tables and one `ring` lead per ring, on its hub institution, with its
-- member leads' evidence as its own. Replaces what an earlier run stored.
-- Params: $severity, $category_zh, $amount_full_yuan, $events_full, $institutions_full.

create or replace temp table ring_cases as
select
    'L' || left(md5('ring|institution|' || r.hub), 16) as ring_id,
    r.*
from ring_rows as r;

delete from rings;

insert into rings by name
select
    c.ring_id,
    c.n_institutions,
    c.n_persons,
    c.n_codes,
    c.amount,
    lead_score($severity, c.amount, c.n_codes, c.n_institutions,
               $amount_full_yuan, $events_full, $institutions_full) as score,
    c.members,
    c.reason,
    c.reason_en,
    c.lead_ids
from ring_cases as c;

delete from ring_members;

insert into ring_members by name
select
    c.ring_id,
    m.member_type,
    m.member_id,
    m.n_codes,
    m.amount
from ring_member_rows as m
join ring_cases as c using (hub);

delete from lead_evidence
where rule_id = 'ring';

insert into lead_evidence by name
select
    c.ring_id as lead_id,
    'ring' as rule_id,
    c.hub as subject_id,
    e.* exclude (lead_id, rule_id, subject_id, note),
    e.rule_id || ' ' || e.lead_id as note      -- the member lead it came from
from ring_cases as c,
    unnest(string_split(c.lead_ids, ';')) as u(member_lead)
join lead_evidence as e on e.lead_id = u.member_lead;

delete from leads
where category = 'ring';

insert into leads by name
with spans as (
    select
        c.ring_id,
        min(l.first_time) as first_time,
        max(l.last_time) as last_time
    from ring_cases as c,
        unnest(string_split(c.lead_ids, ';')) as u(member_lead)
    join leads as l on l.lead_id = u.member_lead
    group by c.ring_id
)

select
    c.ring_id as lead_id,
    'ring' as rule_id,
    'ring' as category,
    $category_zh as category_zh,
    'institution' as subject_type,
    c.hub as subject_id,
    c.institutions as fixmedins_codes,
    s.first_time,
    s.last_time,
    c.n_codes as n_events,
    c.n_institutions,
    round(c.amount, 2) as amount,
    r.score,
    $severity as severity,
    c.reason,
    c.reason_en,
    coalesce(st.status, 'open') as status
from ring_cases as c
join rings as r using (ring_id)
left join spans as s using (ring_id)
left join lead_status as st on st.lead_id = c.ring_id;
