-- id: impossible_travel
-- category: impossible_travel
-- subject: person
-- severity: 4
-- why: One person cannot buy in person in two cities (first 4 digits of the institution's admdvs) within hours of each other. Two net purchases on one person at institutions in different cities less than the travel time apart mean one of them was made without the person (a borrowed card, or an e-insurance code scanned remotely: 盗刷/空刷). Purchases in two districts of one city, and journeys of at least the travel time (a traveller), are not leads. Each purchase that has a purchase in another city too close to it is evidence, with the shortest such gap. A sale whose time came as a date alone (records.event_date_only) has no time of day to compare and is not judged; nor is a placeholder psn_no that an institution's system puts on many different buyers (placeholder_identities: a data-quality finding, not a person).
-- reason_zh: 参保人 {subject_id} 在不同城市的购药间隔不足 {threshold} 小时（{first_time} 至 {last_time}，{institutions_zh}，共 {n_events} 笔），本人不可能同时到场，医保基金支付 {amount} 元。
-- reason_en: Person {subject_id} bought in different cities less than {threshold} hours apart ({first_time} to {last_time}, {institutions_en}, {n_events} purchases), which no one can do in person; the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): the gap by date_diff('microsecond') (epoch() of an interval fails on Spark).

with purchases as (
    select
        s.*,
        left(i.admdvs, 4) as city  -- 6-digit region code: province, city, district
    from sale_records as s
    join institutions as i using (fixmedins_code)
    anti join (
        select rec_id
        from records
        where event_date_only
    ) as d using (rec_id)
    anti join placeholder_identities as p
        on p.field = 'psn_no'
       and p.value = s.psn_no
    where s.psn_no is not null
      and i.admdvs is not null
),

-- each purchase with its nearest purchase in another city, when that is too near
too_close as (
    select
        a.rec_id,
        min(abs(date_diff('microsecond', a.sel_time, b.sel_time))) / 3600e6 as gap_hours
    from purchases as a
    join purchases as b
        on b.psn_no = a.psn_no
       and b.city <> a.city
       and b.sel_time > a.sel_time - to_seconds($travel_hours * 3600)
       and b.sel_time < a.sel_time + to_seconds($travel_hours * 3600)
    group by a.rec_id
)

select
    s.psn_no as subject_id,
    s.rec_id,
    s.fixmedins_code,
    s.sel_time as event_time,
    s.codes as code,
    s.psn_no,
    s.fund_amount as amount,
    t.gap_hours as metric,
    $travel_hours as threshold,
    'city ' || s.city as note
from purchases as s
join too_close as t using (rec_id)
