-- A person's purchases: every net sale on their psn_no, with the institution, the drug and
-- what the fund paid; ID number and name masked in the output unless asked for.
-- Params: $psn_no.
-- tracecode sql --file sql/investigations/person_purchases.sql --param psn_no=44000012345678
select
    s.sel_time,
    s.fixmedins_code,
    i.fixmedins_name,
    left(i.admdvs, 4) || '00' as city,
    s.med_list_codg,
    s.drug_trac_codg,
    s.trdn_flag,
    s.units,
    s.price,
    round(s.amount, 2) as amount,
    round(s.fund_amount, 2) as fund_amount,
    s.certno,
    s.psn_name,
    s.setl_id,
    s.src_file,
    s.line_no
from sales as s
left join institutions as i using (fixmedins_code)
where s.psn_no = $psn_no
order by s.sel_time, s.rec_id
