-- id: dup_same_institution
-- category: dup_same_institution
-- subject: code
-- severity: 4
-- why: A whole pack carries one code and leaves the shelf once. The same code sold whole two or more times at one institution, after returns, deletions and re-sent records are netted out, means swapped boxes or phantom sales (串换/空刷).
-- reason_zh: 追溯码 {subject_id} 于 {first_date} 至 {last_date} 在 {institutions_zh} 被整盒销售 {n_events} 次（每盒只应销售一次），医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} was sold as a whole pack {n_events} times at {institutions_en} between {first_date} and {last_date} (a pack sells once); the fund paid {amount} yuan.

with whole_pack_sales as (
    select *
    from sales
    where coalesce(trdn_flag, '0') <> '1'
      and code_format <> 'invalid'  -- malformed codes are unknown_code's business
),

repeated as (
    select
        code_id,
        fixmedins_code
    from whole_pack_sales
    group by code_id, fixmedins_code
    having count(*) >= $dup_min_sales
)

select
    s.code_id as subject_id,
    s.rec_id,
    s.fixmedins_code,
    s.sel_time as event_time,
    s.drug_trac_codg as code,
    s.psn_no,
    s.fund_amount as amount
from whole_pack_sales as s
semi join repeated as r using (code_id, fixmedins_code)
