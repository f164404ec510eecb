-- Append this batch of decisions (temp table review_batch, in the order given) to
-- lead_reviews, each with the evidence records its lead has now. A decision equal to the
-- lead's latest one (same status, note and reviewer) is not recorded twice, so
-- re-importing the same workbook adds nothing.
insert into lead_reviews (
    lead_id, status, note, decided_by, decided_at, source,
    evidence_rec_ids, evidence_fingerprint
)
with latest as (
    select lead_id, status, note, decided_by
    from lead_reviews
    qualify row_number() over (partition by lead_id order by review_id desc) = 1
),

evidence as (
    select
        lead_id,
        list_sort(list(distinct rec_id) filter (where rec_id is not null)) as rec_ids
    from lead_evidence
    group by lead_id
),

final as (
    select
        b.ord,
        b.lead_id,
        b.status,
        b.note,
        b.decided_by,
        b.decided_at,
        b.source,
        coalesce(e.rec_ids, []::bigint[]) as evidence_rec_ids,
        md5(array_to_string(coalesce(e.rec_ids, []::bigint[]), ',')) as evidence_fingerprint
    from review_batch as b
    left join evidence as e using (lead_id)
    left join latest as l using (lead_id)
    where l.lead_id is null
       or l.status is distinct from b.status
       or coalesce(l.note, '') is distinct from coalesce(b.note, '')
       or l.decided_by is distinct from b.decided_by
)

select
    lead_id, status, note, decided_by, decided_at, source,
    evidence_rec_ids, evidence_fingerprint
from final
order by ord;
