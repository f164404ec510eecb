-- Each lead's status from its latest decision in lead_reviews:
-- * no decision: open;
-- * dismissed, and every evidence record was known when it was dismissed: dismissed
--   (not raised again for the same evidence);
-- * dismissed, and a record outside those has arrived since: reopened;
-- * otherwise the decision itself (confirmed stays confirmed, whatever arrives).
update leads
set status = s.status
from (
    with latest as (
        select lead_id, status, evidence_rec_ids
        from lead_reviews
        qualify row_number() over (partition by lead_id order by review_id desc) = 1
    ),

    new_evidence as (
        select distinct e.lead_id
        from lead_evidence as e
        join latest as r using (lead_id)
        where r.status = 'dismissed'
          and r.evidence_rec_ids is not null
          and e.rec_id is not null
          and not list_contains(r.evidence_rec_ids, e.rec_id)
    )

    select
        l.lead_id,
        case
            when r.status is null then 'open'
            when r.status = 'dismissed' and n.lead_id is not null then 'reopened'
            else r.status
        end as status
    from leads as l
    left join latest as r using (lead_id)
    left join new_evidence as n using (lead_id)
) as s
where s.lead_id = leads.lead_id
  and s.status is distinct from leads.status;
