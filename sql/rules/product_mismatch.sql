-- id: product_mismatch
-- category: product_mismatch
-- subject: code
-- severity: 4
-- why: The 7-digit prefix of a 20-digit code names the product (drug, maker, strength, pack size). A net sale whose code's prefix is none of the catalog trace_prefix values of the drug it billed (med_list_codg) settled one drug while another left the shelf: swapped goods (串换), typically a cheap or non-insured product billed as an insured one. Judged only when both are known: GS1 codes (a GTIN, not a prefix), malformed codes, drugs missing from the catalog or without a trace_prefix are left alone.
-- reason_zh: 追溯码 {subject_id} 的产品标识与所结算药品目录编码的追溯码前缀不符（疑似串换），于 {first_date} 至 {last_date} 在 {institutions_zh} 销售 {n_events} 次，医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} belongs to a different product than the drug billed (suspected swap); sold {n_events} times at {institutions_en} between {first_date} and {last_date}; the fund paid {amount} yuan.

with sold as (
    select *
    from sales
    where code_format = 'nmpa20'
),

-- the product prefixes a billed drug may carry (one per pack size or maker, if several)
drug_prefixes as (
    select distinct
        med_list_codg,
        trace_prefix
    from catalog
    where trace_prefix is not null
),

billed_known as (
    select s.*
    from sold as s
    semi join drug_prefixes as d using (med_list_codg)
),

mismatched as (
    select b.*
    from billed_known as b
    anti join drug_prefixes as d
        on d.med_list_codg = b.med_list_codg
       and d.trace_prefix = b.product_key
)

select
    code_id as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    drug_trac_codg as code,
    psn_no,
    fund_amount as amount,
    'billed ' || med_list_codg || ', code prefix ' || product_key as note
from mismatched
