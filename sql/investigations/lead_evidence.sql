-- A lead's evidence: every record behind it, oldest first, with what the record said.
-- Params: $lead_id (from leads.csv, e.g. L0123456789abcdef).
-- tracecode sql --file sql/investigations/lead_evidence.sql --param lead_id=L...
select
    e.event_time,
    e.fixmedins_code,
    i.fixmedins_name,
    r.infno,
    r.fixmedins_bchno,
    r.med_list_codg,
    e.code,
    r.psn_no,
    r.certno,
    r.psn_name,
    r.qty,
    r.price,
    e.amount,
    e.metric,
    e.threshold,
    e.note,
    r.manu_lotnum,
    r.expy_end,
    r.is_current,
    r.src_file,
    r.line_no,
    e.rec_id
from lead_evidence as e
left join records as r using (rec_id)
left join institutions as i on i.fixmedins_code = e.fixmedins_code
where e.lead_id = $lead_id
order by e.event_time, e.rec_id, e.code
