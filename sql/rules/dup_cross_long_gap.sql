-- id: dup_cross_long_gap
-- category: dup_cross_long_gap
-- subject: code
-- severity: 4
-- why: One pack sold (net) at two or more institutions, the sales spread over more than the gap: the box came back into trade after it was dispensed (回流药), or was sold on someone else's card (盗刷).
-- reason_zh: 追溯码 {subject_id} 在 {institutions_zh} 共被销售 {n_events} 次，首次 {first_date}、末次 {last_date}，相隔 {span_days} 天（超过 {threshold} 天），医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} was sold {n_events} times at {institutions_en}, first on {first_date} and last on {last_date}, {span_days} days apart (more than {threshold}); the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): the span by date_diff('microsecond') (epoch() of an interval fails or drops sub-seconds on Spark).

with sold as (
    select *
    from sales
    where code_format <> 'invalid'
),

spread as (
    select
        code_id,
        -- days from the code's first net sale to its last
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
where p.span_days > $cross_gap_days
