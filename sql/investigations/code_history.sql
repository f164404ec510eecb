-- A traceability code's whole history: every record that names it, at every institution,
-- oldest first, including replaced and retracted records (is_current tells which count).
-- Params: $code (the drug_trac_codg as uploaded, or its normalised code_id).
-- tracecode sql --file sql/investigations/code_history.sql --param code=8123456...
select
    r.event_time,
    r.infno,
    case r.infno
        when '3501' then '盘点'
        when '3502' then '库存变动'
        when '3503' then '采购'
        when '3504' then '采购退货'
        when '3505' then '销售'
        when '3506' then '销售退货'
        when '3507' then '撤销'
    end as kind_zh,
    r.inv_chg_type,
    r.fixmedins_code,
    i.fixmedins_name,
    r.fixmedins_bchno,
    r.med_list_codg,
    r.psn_no,
    r.trdn_flag,
    r.qty,
    r.price,
    r.manu_lotnum,
    r.expy_end,
    r.is_current,
    r.inf_time,
    r.src_file,
    r.line_no
from record_codes as c
join records as r using (rec_id)
left join institutions as i on i.fixmedins_code = r.fixmedins_code
where c.drug_trac_codg = $code
   or c.code_id = $code
order by r.event_time, r.inf_time, r.rec_id
