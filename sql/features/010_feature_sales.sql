-- Net sales code by code, with the facts the behaviour features are built from.
-- One row per code of a net sale (view `sales`); read by every later file in this folder.
-- Params: $expensive_pack_price (yuan per pack), $night_from_hour and $night_to_hour
-- (the clock hours that bound "night", e.g. 22 and 6).

create or replace temp table feature_sales as
with sold as (
    select
        rec_id,
        fixmedins_code,
        psn_no,
        med_list_codg,
        code_id,
        sel_time,
        trdn_flag,
        units,          -- smallest billing units this code's share of the line took
        fund_amount     -- yuan the fund paid for this code's share of the line
    from sales
),

-- one row per drug even if the catalog lists one twice
drugs as (
    select
        med_list_codg,
        max(pack_units) as pack_units,
        max(pack_price) as pack_price
    from catalog
    group by med_list_codg
),

places as (
    select
        fixmedins_code,
        any_value(fixmedins_type) as fixmedins_type,
        any_value(admdvs) as admdvs
    from institutions
    group by fixmedins_code
),

people as (
    select
        psn_no,
        any_value(insu_admdvs) as insu_admdvs
    from persons
    group by psn_no
),

-- net whole-pack sales of each code, anywhere: a box sells once
whole_pack_sales as (
    select
        code_id,
        count(*) as n_sales
    from sold
    where trdn_flag = '0'
    group by code_id
),

-- codes that were ever in an institution's stock (inventory, or an inbound change)
stocked as (
    select distinct
        fixmedins_code,
        code_id
    from stock_moves
    where direction in ('snapshot', 'in')
),

final as (
    select
        s.rec_id,
        s.fixmedins_code,
        coalesce(pl.fixmedins_type, 'unknown') as fixmedins_type,
        s.psn_no,
        s.med_list_codg,
        s.sel_time,
        cast(s.sel_time as date) as sel_date,
        cast(date_trunc('week', s.sel_time) as date) as sel_week,        -- Monday
        cast(date_trunc('month', s.sel_time) as date) as sel_month,      -- first day
        s.trdn_flag = '1' as is_split,
        -- packs: a whole-pack code is one box; a split sale takes a fraction of one
        -- both as exact decimals, so that every sum of them is the same whatever the order
        -- of the rows (a float sum's last bit moved a printed "3.7 盒" to "3.8 盒", issue 10)
        case
            when s.trdn_flag = '1' then coalesce(s.units / nullif(d.pack_units, 0), 0)
            else 1.0
        end::decimal(18, 6) as packs,
        coalesce(s.fund_amount, 0)::decimal(18, 4) as fund_amount,
        coalesce(d.pack_price >= $expensive_pack_price, false) as is_expensive,
        -- the buyer is insured in another city (first four digits of the region code)
        coalesce(left(pe.insu_admdvs, 4) <> left(pl.admdvs, 4), false) as is_nonlocal,
        hour(s.sel_time) >= $night_from_hour
            or hour(s.sel_time) < $night_to_hour as is_night,
        coalesce(s.trdn_flag = '0' and w.n_sales > 1, false) as is_repeat_code,
        st.code_id is null as is_unstocked
    from sold as s
    left join drugs as d using (med_list_codg)
    left join places as pl using (fixmedins_code)
    left join people as pe using (psn_no)
    left join whole_pack_sales as w using (code_id)
    left join stocked as st
        on st.fixmedins_code = s.fixmedins_code
       and st.code_id = s.code_id
)

select *
from final;
