-- Behaviour features of each insured person, month by month: one row per person and
-- calendar month with at least one net sale. The anomaly model scores each month; a
-- person's lead is their most anomalous month. The columns before the features are
-- evidence for that month.
--
-- A person's features are about how much they buy against what the drugs would need:
-- what a collector (buying dear drugs far beyond anyone's need, again and again)
-- changes. How often and where they buy are evidence, not features: busy patients and
-- travellers buy on many days and at many shops, and are not suspects for it. Shares of night or
-- out-of-town purchases are left to institutions: for one person they rest on a handful
-- of purchases and mostly tell who travels.

-- Four statements, not one: each big aggregate is a table of its own, so that DuckDB
-- frees an aggregate's memory before the next one starts (in one statement, a province's
-- history spilled more than 40 GB to disk at a 6 GB memory limit).

-- each drug a person bought in a month: how much, and the first day they bought it (a
-- course is bought once, a prescription for months at once too; buying the same drug
-- again days later is what stockpiling, or collecting for resale, looks like)
create or replace temp table person_drug_months as
select
    psn_no,
    sel_month,
    med_list_codg,
    sum(packs) as packs,
    min(sel_date) as first_date
from feature_sales
where nullif(psn_no, '') is not null
group by all;

create or replace temp table person_months as
select
    psn_no,
    sel_month,
    min(sel_time) as first_time,
    max(sel_time) as last_time,
    count(distinct rec_id) as n_lines,
    sum(packs) as packs,
    coalesce(sum(packs) filter (where is_expensive), 0) as expensive_packs,
    sum(fund_amount) as fund_amount,
    string_agg(distinct fixmedins_code, ';' order by fixmedins_code) as fixmedins_codes
from feature_sales
where nullif(psn_no, '') is not null
group by all;

-- fund paid for drugs bought again after the first day in the month
create or replace temp table person_rebuys as
select
    b.psn_no,
    b.sel_month,
    sum(b.fund_amount) as rebuy_fund
from feature_sales as b
join person_drug_months as f using (psn_no, sel_month, med_list_codg)
where nullif(b.psn_no, '') is not null
  and b.sel_date > f.first_date
group by all;

create or replace temp table person_features as
-- Medians by sorting, not median(): median() holds every group's values in memory and
-- cannot spill (at a province's 20M persons it ran out of memory at a 6 GB limit); a
-- window sorts and spills. The middle two values' midpoint is taken as median() takes it
-- on a decimal, cut to the decimal's scale (packs: 6 places, yuan: 4).

-- what one buyer of a drug usually takes in a month (median packs), per month; never
-- less than one box, the least a pharmacy sells (clinics' split doses would otherwise
-- make a single box look like twenty times the need)
with drug_ranks as (
    select
        sel_month,
        med_list_codg,
        packs,
        row_number() over (partition by sel_month, med_list_codg order by packs) as i,
        count(*) over (partition by sel_month, med_list_codg) as n
    from person_drug_months
),

drug_norms as (
    select
        sel_month,
        med_list_codg,
        greatest(min(packs) + ((max(packs) - min(packs)) * 1000000)::hugeint // 2
                              * 0.000001, 1) as typical_packs
    from drug_ranks
    where i in ((n + 1) // 2, (n + 2) // 2)
    group by all
),

need as (
    select
        m.psn_no,
        m.sel_month,
        max(m.packs / n.typical_packs) as need_ratio
    from person_drug_months as m
    join drug_norms as n using (sel_month, med_list_codg)
    group by all
),

-- the person's usual month (median fund money), over the months they bought anything
month_ranks as (
    select
        psn_no,
        fund_amount,
        row_number() over (partition by psn_no order by fund_amount) as i,
        count(*) over (partition by psn_no) as n
    from person_months
),

usual as (
    select
        psn_no,
        min(fund_amount) + ((max(fund_amount) - min(fund_amount)) * 10000)::hugeint // 2
                           * 0.0001 as usual_fund_amount
    from month_ranks
    where i in ((n + 1) // 2, (n + 2) // 2)
    group by psn_no
),

final as (
    select
        t.psn_no as subject_id,
        strftime(t.sel_month, '%Y-%m') as period,
        'person' as peer_group,
        t.first_time,
        t.last_time,
        t.n_lines as n_events,
        round(t.fund_amount, 2) as amount,
        t.fixmedins_codes,
        -- features --------------------------------------------------------------------
        -- fund yuan paid for the person's drugs in the month
        t.fund_amount,
        -- packs bought in the month (split sales count their fraction of a pack)
        t.packs,
        -- packs of expensive drugs (pack price >= the setting)
        t.expensive_packs,
        -- the most of any one drug, against what its usual buyer takes in a month (x times)
        n.need_ratio,
        -- fund yuan paid for drugs the person had already bought earlier in the month
        coalesce(r.rebuy_fund, 0) as rebuy_fund,
        -- the month's fund money against the person's usual month (x times); +100 yuan
        -- keeps small amounts from looking like jumps
        (t.fund_amount + 100) / (u.usual_fund_amount + 100) as amount_change
    from person_months as t
    join need as n using (psn_no, sel_month)
    join usual as u using (psn_no)
    left join person_rebuys as r using (psn_no, sel_month)
)

select *
from final
order by subject_id, period;

drop table person_drug_months;
drop table person_months;
drop table person_rebuys;
