-- Each institution's sales week by week (Monday to Sunday), over every week of the
-- screened window, weeks without sales included: the baseline that a jump is measured
-- against. Rates are per day of the window within the week, so that a partial first or
-- last week compares fairly with full ones.

create or replace temp table institution_weeks as
with bounds as (
    select
        min(sel_date) as first_day,
        max(sel_date) as last_day
    from feature_sales
),

weeks as (
    select
        cast(w.sel_week as date) as sel_week,
        -- days of the window that fall in this week (1 to 7)
        date_diff(
            'day',
            greatest(cast(w.sel_week as date), b.first_day),
            least(cast(w.sel_week as date) + 6, b.last_day)
        ) + 1 as days
    from bounds as b,
        (
            select unnest(generate_series(
                date_trunc('week', first_day), last_day, interval 7 day
            )) as sel_week
            from bounds
        ) as w
),

active as (
    select distinct fixmedins_code
    from feature_sales
),

sold as (
    select
        fixmedins_code,
        sel_week,
        count(distinct rec_id) as n_lines,
        sum(packs) as packs,
        sum(packs) filter (where is_expensive) as expensive_packs,
        -- distinct buyers of expensive drugs: many cards, not one heavy buyer's boxes
        count(distinct psn_no) filter (where is_expensive) as expensive_buyers,
        sum(fund_amount) as fund_amount
    from feature_sales
    group by all
),

final as (
    select
        a.fixmedins_code,
        w.sel_week,
        w.days,
        coalesce(s.n_lines, 0) as n_lines,
        coalesce(s.packs, 0) / w.days as packs_per_day,
        coalesce(s.expensive_packs, 0) / w.days as expensive_packs_per_day,
        coalesce(s.expensive_buyers, 0) / w.days as expensive_buyers_per_day,
        coalesce(s.fund_amount, 0) / w.days as fund_per_day            -- yuan
    from active as a
    cross join weeks as w
    left join sold as s
        on s.fixmedins_code = a.fixmedins_code
       and s.sel_week = w.sel_week
)

select *
from final;
