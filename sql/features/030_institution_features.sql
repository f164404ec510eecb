-- Behaviour features of each institution over the screened window: one row per
-- institution with at least one net sale. Shares are 0-1, rates per day of the window.
-- The anomaly model reads the feature columns; the columns before them are evidence.

create or replace temp table institution_features as
with bounds as (
    select
        min(sel_date) as first_day,
        date_diff('day', min(sel_date), max(sel_date)) + 1 as window_days,
        strftime(min(sel_date), '%Y-%m-%d') || '~' || strftime(max(sel_date), '%Y-%m-%d')
            as window_text
    from feature_sales
),

totals as (
    select
        fixmedins_code,
        any_value(fixmedins_type) as fixmedins_type,
        min(sel_time) as first_time,
        max(sel_time) as last_time,
        count(distinct rec_id) as n_lines,
        count(*) as n_codes,
        sum(packs) as packs,
        sum(packs) filter (where is_expensive) as expensive_packs,
        sum(fund_amount) as fund_amount,
        count(distinct psn_no) as n_buyers,
        count(distinct psn_no) filter (where is_nonlocal) as n_nonlocal_buyers,
        -- a buyer-day: one person buying at the institution on one day, however many lines
        count(distinct (psn_no, sel_date)) as buyer_days,
        count(distinct rec_id) filter (where is_night) as night_lines,
        count(distinct rec_id) filter (where is_split) as split_lines,
        count(*) filter (where not is_split) as whole_codes,
        count(*) filter (where is_repeat_code) as repeat_codes,
        count(*) filter (where is_unstocked) as unstocked_codes
    from feature_sales
    group by fixmedins_code
),

-- each institution's sales per drug
drug_sales as (
    select
        fixmedins_code,
        any_value(fixmedins_type) as fixmedins_type,
        med_list_codg,
        sum(packs) as packs,
        sum(fund_amount) as fund_amount
    from feature_sales
    group by fixmedins_code, med_list_codg
),

-- what share of all packs each drug takes at institutions of one type
type_mix as (
    select
        fixmedins_type,
        med_list_codg,
        sum(packs) / sum(sum(packs)) over (partition by fixmedins_type) as mix_share
    from drug_sales
    group by fixmedins_type, med_list_codg
),

-- per drug of an institution: packs against what an institution of its type and size
-- would sell (the type's mix applied to its own total; +1 pack each side against chance)
drug_lift as (
    select
        d.fixmedins_code,
        d.fund_amount,
        (d.packs + 1)
            / (m.mix_share * sum(d.packs) over (partition by d.fixmedins_code) + 1) as lift
    from drug_sales as d
    join type_mix as m using (fixmedins_type, med_list_codg)
),

-- the drug taking most of the institution's fund money, and the drug it sells most
-- beyond its peers' mix
top_drug as (
    select
        fixmedins_code,
        max(fund_amount) as top_drug_amount,
        max(lift) as top_drug_lift
    from drug_lift
    group by fixmedins_code
),

-- the busiest week against the institution's usual (median) week: packs of all drugs,
-- and distinct buyers of expensive drugs (a collector's or a long prescription's many
-- boxes are one buyer; a shop swiping many cards is many); +1 pack a day or +1 buyer a
-- week keeps small shops' noise from looking like a jump
jumps as (
    select
        fixmedins_code,
        (max(packs_per_day) + 1) / (median(packs_per_day) + 1) as volume_jump,
        (max(expensive_buyers_per_day) + 1.0 / 7)
            / (median(expensive_buyers_per_day) + 1.0 / 7) as expensive_jump
    from institution_weeks
    group by fixmedins_code
),

-- the drug taking most of each institution's fund money: its packs a day in the window's
-- later half against its earlier half. A jump or a ramp in one drug rises; a specialty
-- pharmacy's steady trade in dear drugs does not. +1 pack a day each side keeps a
-- shop's few sales of a drug from looking like a rise.
top_money_drug as (
    select
        fixmedins_code,
        arg_max(med_list_codg, fund_amount) as med_list_codg
    from drug_sales
    group by fixmedins_code
),

halves as (
    select
        f.fixmedins_code,
        (coalesce(sum(f.packs) filter (
            where f.sel_date >= b.first_day + cast(b.window_days // 2 as integer)), 0)
            / (b.window_days - b.window_days // 2) + 1)
        / (coalesce(sum(f.packs) filter (
            where f.sel_date < b.first_day + cast(b.window_days // 2 as integer)), 0)
            / greatest(b.window_days // 2, 1) + 1) as top_drug_rise
    from feature_sales as f
    join top_money_drug as t using (fixmedins_code, med_list_codg)
    cross join bounds as b
    group by f.fixmedins_code, b.first_day, b.window_days
),

final as (
    select
        t.fixmedins_code as subject_id,
        b.window_text as period,
        t.fixmedins_type as peer_group,
        t.first_time,
        t.last_time,
        t.n_lines as n_events,
        round(t.fund_amount, 2) as amount,
        t.fixmedins_code as fixmedins_codes,
        -- features --------------------------------------------------------------------
        -- volume: persons served per day (a person buying twice a day counts once)
        t.buyer_days / b.window_days as buyers_per_day,
        -- basket: packs per buyer-day
        coalesce(t.packs / nullif(t.buyer_days, 0), 0) as packs_per_buyer_day,
        -- money: fund yuan per distinct buyer over the window
        coalesce(t.fund_amount / nullif(t.n_buyers, 0), 0) as amount_per_buyer,
        -- share of packs sold that are expensive drugs (pack price >= the setting)
        coalesce(t.expensive_packs / nullif(t.packs, 0), 0) as expensive_share,
        -- share of fund money spent on the institution's single biggest drug
        coalesce(d.top_drug_amount / nullif(t.fund_amount, 0), 0) as top_drug_share,
        -- the drug sold most beyond the type's mix: its packs against a peer's of the same
        -- size (x times)
        d.top_drug_lift,
        -- share of buyers insured in another city
        coalesce(t.n_nonlocal_buyers / nullif(t.n_buyers, 0), 0) as nonlocal_share,
        -- share of sale records made at night
        t.night_lines / t.n_lines as night_share,
        -- share of sale records that are split-pack (拆零)
        t.split_lines / t.n_lines as split_share,
        -- share of whole-pack codes that were sold (net) more than once, anywhere
        coalesce(t.repeat_codes / nullif(t.whole_codes, 0), 0) as repeat_code_rate,
        -- share of codes sold that never were in this institution's stock
        t.unstocked_codes / t.n_codes as unstocked_share,
        -- busiest week's packs per day against the usual week's (x times)
        j.volume_jump,
        -- busiest week's buyers of expensive drugs per day against the usual week's
        j.expensive_jump,
        -- the top drug's packs a day, later half of the window against the earlier (x times)
        coalesce(h.top_drug_rise, 1) as top_drug_rise
    from totals as t
    cross join bounds as b
    left join top_drug as d using (fixmedins_code)
    left join jumps as j using (fixmedins_code)
    left join halves as h using (fixmedins_code)
)

select *
from final
order by subject_id;
