-- This run's rule hits become evidence, each under its lead's stable id (macro lead_id).

insert into lead_evidence by name
select
    lead_id(h.rule_id, c.subject_type, h.subject_id) as lead_id,
    h.*
from rule_hits as h
join rule_catalog as c using (rule_id);
