-- id: unknown_code
-- category: unknown_code
-- subject: code
-- severity: 3
-- why: Every real pack carries a code the manufacturer activated. A net sale whose code is malformed (neither the 20-digit 8… form nor GS1 GTIN + serial) or is a 20-digit code whose serial (characters 8-16) lies in no activated range of its 7-digit product prefix (code_issuance) was settled on a code no pack carries: a made-up or copied code (EU alert A3). GS1 codes are not looked up (no issuance data for them). Only net sales count: a mistyped code that was returned, deleted (3507) or re-sent corrected is not a lead; stock records alone are not either (the sale is what the fund pays for).
-- reason_zh: 追溯码 {subject_id} 格式无效或不在任何已赋码（激活）序列号范围内，却于 {first_date} 至 {last_date} 在 {institutions_zh} 销售 {n_events} 次，医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} is malformed or outside every activated serial range, yet was sold {n_events} times at {institutions_en} between {first_date} and {last_date}; the fund paid {amount} yuan.

with sold as (
    select *
    from sales
    where code_format in ('nmpa20', 'invalid')  -- GS1 codes have no issuance data
),

unknown as (
    select s.*
    from sold as s
    anti join code_activations as a using (code_id)
)

select
    -- a malformed code has no pack identity: it is named as uploaded
    case when code_format = 'invalid' then drug_trac_codg else code_id end as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    drug_trac_codg as code,
    psn_no,
    fund_amount as amount,
    case when code_format = 'invalid' then 'malformed' else 'not activated' end as note
from unknown
