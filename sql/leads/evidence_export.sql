-- The evidence behind the exported leads, one row per record and code, for investigators.
-- Params: $unmask (true only when a user asked for ID numbers and names on purpose).
select
    e.lead_id,
    l.category,
    l.subject_id,
    e.event_time,
    e.fixmedins_code,
    i.fixmedins_name,
    r.infno,
    r.fixmedins_bchno,
    r.med_list_codg,
    e.code,
    r.psn_no,
    case when $unmask then r.certno else mask_certno(r.certno) end as certno,
    case when $unmask then r.psn_name else mask_name(r.psn_name) end as psn_name,
    r.trdn_flag,
    r.qty,
    r.price,
    e.amount,
    r.manu_lotnum,
    r.expy_end,
    r.setl_id,
    r.inf_time,
    r.src_file,
    r.line_no
from lead_evidence as e
join leads as l using (lead_id)
left join records as r using (rec_id)
left join institutions as i on i.fixmedins_code = e.fixmedins_code
where l.status <> 'dismissed'
order by l.score desc, e.lead_id, e.event_time, e.rec_id
