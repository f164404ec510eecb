-- An institution's month, day by day: net sales, packs and units, what the fund paid,
-- distinct persons and codes, and sales outside its opening hours.
-- Params: $fixmedins_code, $month (YYYY-MM, e.g. 2025-11).
-- tracecode sql --file sql/investigations/institution_month.sql \
--     --param fixmedins_code=P44010600123 --param month=2025-11
with month_sales as (
    select *
    from sales
    where fixmedins_code = $fixmedins_code
      and strftime(sel_time, '%Y-%m') = $month
),

by_day as (
    select
        cast(sel_time as date) as day,
        count(distinct rec_id) as sales,
        count(*) as code_lines,
        sum(units) as units,
        round(sum(amount), 2) as amount,
        round(sum(fund_amount), 2) as fund_amount,
        count(distinct psn_no) as persons,
        count(distinct drug_trac_codg) as codes
    from month_sales
    group by all
),

off_hours as (
    select
        cast(s.sel_time as date) as day,
        count(distinct s.rec_id) as sales_off_hours
    from month_sales as s
    join institutions as i using (fixmedins_code)
    where i.open_time is not null
      and i.close_time is not null
      and case
              when i.open_time < i.close_time
                  then not (cast(s.sel_time as time) >= i.open_time
                            and cast(s.sel_time as time) < i.close_time)
              -- hours that cross midnight (20:00-02:00): closed between close and open
              else cast(s.sel_time as time) >= i.close_time
                   and cast(s.sel_time as time) < i.open_time
          end
    group by all
)

select
    d.*,
    coalesce(o.sales_off_hours, 0) as sales_off_hours
from by_day as d
left join off_hours as o using (day)
order by d.day
