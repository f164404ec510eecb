-- id: no_inbound
-- category: no_inbound
-- subject: institution
-- severity: 3
-- waits: upload_lag_days
-- why: A code is in an institution's stock once it appears there in a 3501 inventory or a 3502 inbound (101, 103, 106, 108, 110). An institution that sells (net) many distinct codes that never were in its stock sells goods with no source: phantom sales, or boxes bought off the books (reflux, fakes). A stock-in entered up to the upload lag after the sale still counts (sold off the delivery, booked afterwards); and since a stock-in may be uploaded up to the lag late, a sale is judged only once the data clock (latest upload time stored) is the lag past it (a receipt both booked after the sale and uploaded late can still raise a lead that the next run withdraws). Distinct codes are counted, so one split pack sold many times is one code. Malformed codes are unknown_code's.
-- reason_zh: 机构 {subject_id} 销售的 {metric_max} 个追溯码从未出现在其盘存或入库记录中（阈值 {threshold} 个，已允许上传延迟），销售明细 {n_events} 条（{first_date} 至 {last_date}），医保基金支付 {amount} 元。
-- reason_en: Institution {subject_id} sold {metric_max} codes that never appeared in its inventory or inbound records (threshold {threshold}, upload lag allowed), in {n_events} sale lines between {first_date} and {last_date}; the fund paid {amount} yuan.

with clock as (
    select as_of
    from data_clock
),

-- sales old enough that a stock-in made before them, uploaded late, has arrived
judged_sales as (
    select s.*
    from sales as s
    cross join clock as c
    where s.code_format <> 'invalid'
      and s.sel_time + to_seconds($upload_lag_days * 86400) <= c.as_of
),

-- no snapshot or stock-in of the code at the institution by the upload lag after the
-- sale (an anti join: cheaper than each code's first stock-in aggregated, then compared)
unstocked as (
    select s.*
    from judged_sales as s
    anti join stock_moves as m
        on m.fixmedins_code = s.fixmedins_code
       and m.code_id = s.code_id
       and m.direction in ('snapshot', 'in')
       and m.move_time <= s.sel_time + to_seconds($upload_lag_days * 86400)
),

flagged as (
    select
        fixmedins_code,
        count(distinct code_id) as n_codes
    from unstocked
    group by fixmedins_code
    having count(distinct code_id) >= $no_inbound_min_codes
)

select
    u.fixmedins_code as subject_id,
    u.rec_id,
    u.fixmedins_code,
    u.sel_time as event_time,
    u.drug_trac_codg as code,
    u.psn_no,
    u.fund_amount as amount,
    f.n_codes as metric,
    $no_inbound_min_codes as threshold
from unstocked as u
join flagged as f using (fixmedins_code)
