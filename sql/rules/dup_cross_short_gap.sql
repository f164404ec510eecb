-- id: dup_cross_short_gap
-- category: dup_cross_short_gap
-- subject: code
-- severity: 5
-- why: One pack sold (net) at two or more institutions, all within the gap: no real box travels that fast between dispensings, so the code was copied onto fake boxes (疑似假药).
-- reason_zh: 追溯码 {subject_id} 于 {first_date} 至 {last_date} 的 {span_days} 天内在 {institutions_zh} 共被销售 {n_events} 次（不超过 {threshold} 天），疑似被复制到假药包装上，医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} was sold {n_events} times at {institutions_en} within {span_days} days ({first_date} to {last_date}, at most {threshold}), as if copied onto fake boxes; the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): the span by date_diff('microsecond') (epoch() of an interval fails or drops sub-seconds on Spark).

with sold as (
    select *
    from sales
    where code_format <> 'invalid'
),

spread as (
    select
        code_id,
        date_diff('microsecond', min(sel_time), max(sel_time)) / 86400e6 as span_days
    from sold
    group by code_id
    having count(distinct fixmedins_code) >= 2
)

select
    s.code_id as subject_id,
    s.rec_id,
    s.fixmedins_code,
    s.sel_time as event_time,
    s.drug_trac_codg as code,
    s.psn_no,
    s.fund_amount as amount,
    p.span_days as metric,
    $cross_gap_days as threshold
from sold as s
join spread as p using (code_id)
where p.span_days <= $cross_gap_days
