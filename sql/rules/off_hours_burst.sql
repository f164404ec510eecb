-- id: off_hours_burst
-- category: off_hours_burst
-- subject: institution
-- severity: 4
-- why: Insured sales need the buyer at the counter. Many net sales to different persons while an institution is closed (institutions.csv open_time/close_time) in one night mean cards or e-insurance codes swiped with nobody there (Wuhan: remote scanning of buyers' codes). A night runs from closing time to the next opening, so hours that cross midnight (open 20:00, close 02:00) work too; the sales of one night are counted together whichever side of midnight they fall. Institutions without hours, or with opening equal to closing, are open around the clock (hospitals) and exempt. Sales in the first half hour after closing and the last before opening are not counted (a busy shop closing late, or opening early); a busy day inside opening hours is not a lead; one person's several sales count once. Two upload habits stay out: a sale whose time came as a date alone (records.event_date_only, stored at midnight) is not judged, and an institution whose clock looks 12-hour (twelve_hour_clocks: many timed sales, none after 12:59, though open past 13:00, so its afternoon reads as the small hours) is exempt; both are data-quality findings instead.
-- reason_zh: 机构 {subject_id} 在非营业时间集中发生销售：{first_time} 至 {last_time} 共 {n_events} 笔，涉及 {n_persons} 名参保人，单晚最多 {metric_max} 人（阈值 {threshold} 人），医保基金支付 {amount} 元。
-- reason_en: Institution {subject_id} recorded {n_events} sales to {n_persons} persons outside its opening hours ({first_time} to {last_time}), up to {metric_max} persons in one night (threshold {threshold}); the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): times of day by hour(), minute(), second() and date_diff('microsecond') (Spark has no time type; epoch() differs).

with opening_hours as (
    select
        fixmedins_code,
        -- seconds after midnight (hour(), minute(), second(): the same on Spark)
        hour(open_time) * 3600 + minute(open_time) * 60 + second(open_time) as opens_s,
        hour(close_time) * 3600 + minute(close_time) * 60 + second(close_time) as closes_s
    from institutions
    where open_time is not null
      and close_time is not null
      and open_time <> close_time
),

placed as (
    select
        s.*,
        -- the sale's time on a clock that reads 00:00 at closing time: its date names the
        -- night, its time is how long after closing the sale was made
        s.sel_time - to_seconds(h.closes_s) as since_closing,
        -- how long the institution stays closed, from closing to the next opening
        (h.opens_s - h.closes_s + 86400) % 86400 as closed_s
    from sale_records as s
    join opening_hours as h using (fixmedins_code)
    anti join (
        select rec_id
        from records
        where event_date_only
    ) as d using (rec_id)
    anti join twelve_hour_clocks as c using (fixmedins_code)
    where s.psn_no is not null
),

nights as (
    select
        *,
        since_closing::date as night,
        -- seconds after closing: from midnight on the clock that reads 00:00 at closing
        date_diff('microsecond', since_closing::date::timestamp, since_closing) / 1e6
            as after_closing_s
    from placed
),

-- closed, less a grace at either end for a shop that closes late or opens early
off_hours as (
    select *
    from nights
    where after_closing_s > $off_hours_grace_minutes * 60
      and after_closing_s < closed_s - $off_hours_grace_minutes * 60
),

bursts as (
    select
        fixmedins_code,
        night,
        count(distinct psn_no) as n_persons
    from off_hours
    group by
        fixmedins_code,
        night
    having count(distinct psn_no) >= $off_hours_min_sales
)

select
    o.fixmedins_code as subject_id,
    o.rec_id,
    o.fixmedins_code,
    o.sel_time as event_time,
    o.codes as code,
    o.psn_no,
    o.fund_amount as amount,
    b.n_persons as metric,
    $off_hours_min_sales as threshold,
    'night of ' || o.night::varchar as note
from off_hours as o
join bursts as b using (fixmedins_code, night)
