-- Capture measures (应采尽采、依码结算) per institution and per day, over everything
-- uploaded and institutions.csv. Rebuilt by every screen, after the data-quality findings;
-- findings.sql and the headline figures read them. Parameters: $upload_lag_days ([rules]),
-- $silence_days ([compliance]).

-- One row per registered or uploading institution.
create or replace table capture_institutions as
with uploads as (
    select
        fixmedins_code,
        min(inf_time) as first_upload,
        max(inf_time) as last_upload,
        count(distinct inf_time::date) as active_days,
        count(*) as n_records
    from current_records
    group by fixmedins_code
),

-- net of deletions (3507); what the fund paid as in the rules (macro fund_paid)
sales as (
    select
        r.fixmedins_code,
        r.rec_id,
        r.n_codes,
        coalesce(r.trdn_flag, '0') = '1' as is_split,
        fund_paid(r.mdtrt_setl_type, r.setl_id) as is_insured,
        case
            when fund_paid(r.mdtrt_setl_type, r.setl_id)
            then coalesce(r.price, 0) * coalesce(r.qty, 0)
            else 0
        end as fund_amount,
        r.qty,
        c.pack_units,
        epoch(r.inf_time - r.event_time) / 86400.0 as lag_days
    from live_records as r
    left join catalog as c using (med_list_codg)
    where r.infno = '3505'
),

sale_measures as (
    select
        fixmedins_code,
        count(*) as sales,
        count(*) filter (where is_insured) as insured_sales,
        count(*) filter (where is_insured and n_codes > 0) as insured_with_codes,
        count(*) filter (where is_insured and not is_split) as insured_whole,
        count(*) filter (where is_insured and not is_split and n_codes > 0)
            as insured_whole_with_codes,
        count(*) filter (where is_insured and is_split) as insured_split,
        count(*) filter (where is_insured and is_split and n_codes > 0)
            as insured_split_with_codes,
        -- settled by the fund with no code at all: 依码结算 breached
        count(*) filter (where is_insured and n_codes = 0) as insured_without_codes,
        coalesce(sum(fund_amount) filter (where is_insured and n_codes = 0), 0)
            as fund_without_codes,
        -- a whole-pack sale lists one code per pack: units sold = codes x pack units
        count(*) filter (
            where not is_split
              and n_codes > 0
              and pack_units is not null
              and qty is not null
              and abs(qty - n_codes * pack_units) > 0.001
        ) as whole_count_mismatch,
        count(*) filter (where lag_days > $upload_lag_days) as late_sales,
        coalesce(sum(fund_amount) filter (where lag_days > $upload_lag_days), 0)
            as fund_late
    from sales
    group by fixmedins_code
),

-- the upload lag's median and 90th percentile, by sorting: median() and quantile_cont()
-- hold every institution's lags in memory and cannot spill (a province's history is
-- billions of sales); interpolated as they interpolate (the median equal, the 90th
-- percentile within 1e-13 days)
lag_ranks as (
    select
        fixmedins_code,
        lag_days,
        row_number() over (partition by fixmedins_code order by lag_days) - 1 as i,
        (count(*) over (partition by fixmedins_code) - 1)::double as last_i
    from sales
    where lag_days is not null
),

-- the lags on either side of the median's place and of the 90th percentile's
lag_sides as (
    select
        fixmedins_code,
        any_value(last_i) * 0.5::double as at_median,
        any_value(last_i) * 0.9::double as at_p90,
        min(lag_days) filter (where i = floor(last_i * 0.5::double)) as median_lo,
        min(lag_days) filter (where i = ceil(last_i * 0.5::double)) as median_hi,
        min(lag_days) filter (where i = floor(last_i * 0.9::double)) as p90_lo,
        min(lag_days) filter (where i = ceil(last_i * 0.9::double)) as p90_hi
    from lag_ranks
    group by fixmedins_code
),

lags as (
    select
        fixmedins_code,
        median_lo + (median_hi - median_lo) * (at_median - floor(at_median))
            as lag_median_days,
        p90_lo + (p90_hi - p90_lo) * (at_p90 - floor(at_p90)) as lag_p90_days
    from lag_sides
),

codes as (
    select
        r.fixmedins_code,
        count(*) as codes_collected
    from live_records as r
    join record_codes as c using (rec_id)
    group by r.fixmedins_code
),

-- stock coming in (3502 101/103/106/108/110) that lists no code
stock_ins as (
    select
        fixmedins_code,
        count(*) as stock_ins,
        count(*) filter (where n_codes = 0) as stock_ins_without_codes
    from live_records
    where infno = '3502'
      and inv_chg_type in ('101', '103', '106', '108', '110')
    group by fixmedins_code
),

-- its data-quality findings (sql/quality/findings.sql, built before this)
dq_counts as (
    select
        fixmedins_code,
        count(*) as dq_findings
    from dq_findings
    group by fixmedins_code
),

institution_list as (
    select
        fixmedins_code,
        fixmedins_name,
        fixmedins_type,
        admdvs,
        true as registered
    from institutions
    union all
    -- uploading without being registered: measured, and counted apart
    select
        fixmedins_code,
        null,
        null,
        null,
        false
    from uploads
    where fixmedins_code not in (select fixmedins_code from institutions)
)

select
    i.fixmedins_code,
    i.fixmedins_name,
    i.fixmedins_type,
    i.admdvs,
    left(i.admdvs, 4) as city,
    i.registered,
    u.fixmedins_code is not null as connected,
    u.first_upload,
    u.last_upload,
    coalesce(u.active_days, 0) as active_days,
    coalesce(u.n_records, 0) as n_records,
    coalesce(k.codes_collected, 0) as codes_collected,
    coalesce(s.sales, 0) as sales,
    coalesce(s.insured_sales, 0) as insured_sales,
    coalesce(s.insured_with_codes, 0) as insured_with_codes,
    coalesce(s.insured_whole, 0) as insured_whole,
    coalesce(s.insured_whole_with_codes, 0) as insured_whole_with_codes,
    coalesce(s.insured_split, 0) as insured_split,
    coalesce(s.insured_split_with_codes, 0) as insured_split_with_codes,
    coalesce(s.insured_without_codes, 0) as insured_without_codes,
    coalesce(s.fund_without_codes, 0) as fund_without_codes,
    s.insured_with_codes / nullif(s.insured_sales, 0) as capture_share,
    coalesce(s.whole_count_mismatch, 0) as whole_count_mismatch,
    coalesce(t.stock_ins, 0) as stock_ins,
    coalesce(t.stock_ins_without_codes, 0) as stock_ins_without_codes,
    g.lag_median_days,
    g.lag_p90_days,
    coalesce(s.late_sales, 0) as late_sales,
    s.late_sales / nullif(s.sales, 0) as late_share,
    coalesce(s.fund_late, 0) as fund_late,
    -- days since its last upload, on the data's clock
    epoch((select as_of from data_clock) - u.last_upload) / 86400.0 as days_silent,
    coalesce(q.dq_findings, 0) as dq_findings
from institution_list as i
left join uploads as u using (fixmedins_code)
left join sale_measures as s using (fixmedins_code)
left join lags as g using (fixmedins_code)
left join codes as k using (fixmedins_code)
left join stock_ins as t using (fixmedins_code)
left join dq_counts as q using (fixmedins_code);

-- The same by day of sale, for the headline's trend.
create or replace table capture_days as
select
    r.event_time::date as day,
    count(distinct r.fixmedins_code) as institutions_uploading,
    count(*) as sales,
    count(*) filter (where fund_paid(r.mdtrt_setl_type, r.setl_id)) as insured_sales,
    count(*) filter (where fund_paid(r.mdtrt_setl_type, r.setl_id) and r.n_codes > 0)
        as insured_with_codes,
    sum(r.n_codes) as codes_collected
from live_records as r
where r.infno = '3505'
group by r.event_time::date
order by day;

-- The same by region: each district (admdvs) and each city (its first 4 digits), over
-- the registered institutions.
create or replace table capture_regions as
with levels as (
    select 'district' as level, admdvs as region, * from capture_institutions where registered
    union all
    select 'city' as level, city as region, * from capture_institutions where registered
)

select
    level,
    region,
    count(*) as institutions_registered,
    count(*) filter (where connected) as institutions_connected,
    count(*) filter (where connected) / count(*) as connected_rate,
    count(*) filter (where days_silent >= $silence_days) as institutions_silent,
    sum(codes_collected)::bigint as codes_collected,
    sum(insured_sales)::bigint as insured_sales,
    sum(insured_with_codes)::bigint as insured_with_codes,
    sum(insured_with_codes) / nullif(sum(insured_sales), 0) as capture_rate,
    sum(insured_whole_with_codes) / nullif(sum(insured_whole), 0) as capture_rate_whole,
    sum(insured_split_with_codes) / nullif(sum(insured_split), 0) as capture_rate_split,
    sum(fund_without_codes) as fund_without_codes,
    sum(whole_count_mismatch)::bigint as whole_count_mismatch,
    sum(stock_ins_without_codes)::bigint as stock_ins_without_codes,
    sum(late_sales) / nullif(sum(sales), 0) as late_share,
    sum(dq_findings)::bigint as dq_findings
from levels
where region is not null
group by
    level,
    region
order by
    level,
    region;
