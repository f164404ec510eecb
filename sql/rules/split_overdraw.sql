-- id: split_overdraw
-- category: split_overdraw
-- subject: code
-- severity: 3
-- why: A split pack (拆零) is dispensed a few units at a time from one box; its net split sales cannot add up to more units than the box holds (catalog pack_units).
-- reason_zh: 追溯码 {subject_id} 拆零销售 {n_events} 次，合计 {metric_total} 个最小单位，超过整盒 {threshold} 个（{first_date} 至 {last_date}，{institutions_zh}），医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} was split-sold {n_events} times for {metric_total} units in all, more than the {threshold} a pack holds ({first_date} to {last_date}, {institutions_en}); the fund paid {amount} yuan.

with split_sales as (
    select *
    from sales
    where trdn_flag = '1'
      and code_format <> 'invalid'
),

-- units per pack: by the code's own product, else by the drug billed
pack_by_prefix as (
    select
        trace_prefix,
        min(pack_units) as pack_units
    from catalog
    group by trace_prefix
),

pack_by_drug as (
    select
        med_list_codg,
        min(pack_units) as pack_units
    from catalog
    group by med_list_codg
),

sized as (
    select
        s.*,
        coalesce(p.pack_units, d.pack_units) as pack_units
    from split_sales as s
    left join pack_by_prefix as p on p.trace_prefix = s.product_key
    left join pack_by_drug as d on d.med_list_codg = s.med_list_codg
),

overdrawn as (
    select code_id
    from sized
    group by code_id
    -- a little slack for fractional units (e.g. 0.5 tablet) summed in floating point
    having sum(units) > max(pack_units) + 1e-6
)

select
    s.code_id as subject_id,
    s.rec_id,
    s.fixmedins_code,
    s.sel_time as event_time,
    s.drug_trac_codg as code,
    s.psn_no,
    s.fund_amount as amount,
    s.units as metric,
    s.pack_units as threshold
from sized as s
semi join overdrawn as o using (code_id)
