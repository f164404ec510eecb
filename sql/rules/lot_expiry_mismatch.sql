-- id: lot_expiry_mismatch
-- category: lot_expiry_mismatch
-- subject: code
-- severity: 3
-- why: A manufacturer activates codes lot by lot: a serial range with its lot number and expiry (code_issuance). A net sale whose stated lot (manu_lotnum) or expiry (expy_end) differs from the activation its 20-digit code falls in describes a different box than the code: a code copied onto other goods, or a relabelled box (EU alerts A68/A52). Only what both sides state is compared (an empty lot or expiry is not a mismatch), lot numbers without regard to case and surrounding blanks. Codes in no range are unknown_code's, GS1 codes have no issuance data.
-- reason_zh: 追溯码 {subject_id} 销售时申报的批号或有效期与该码赋码激活的批次不符，于 {first_date} 至 {last_date} 在 {institutions_zh} 销售 {n_events} 次，医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} was sold {n_events} times at {institutions_en} between {first_date} and {last_date} with a lot number or expiry that differs from the lot it was activated in; the fund paid {amount} yuan.

with sold as (
    -- what the sale states; a blank states nothing
    select
        *,
        nullif(upper(trim(manu_lotnum)), '') as stated_lotnum
    from sales
    where code_format = 'nmpa20'
),

-- compared where both sides state a value
compared as (
    select
        s.*,
        nullif(upper(trim(a.manu_lotnum)), '') as activated_lotnum,
        a.expy_end as activated_expy_end,
        coalesce(s.stated_lotnum <> nullif(upper(trim(a.manu_lotnum)), ''), false) as other_lot,
        coalesce(s.expy_end <> a.expy_end, false) as other_expiry
    from sold as s
    join code_activations as a using (code_id)
)

select
    code_id as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    drug_trac_codg as code,
    psn_no,
    fund_amount as amount,
    concat_ws(
        '; ',
        case when other_lot then 'lot ' || stated_lotnum || ', activated ' || activated_lotnum end,
        case when other_expiry then 'expiry ' || expy_end || ', activated ' || activated_expy_end end
    ) as note
from compared
where other_lot
   or other_expiry
