-- id: demographic_mismatch
-- category: demographic_mismatch
-- subject: person
-- severity: 3
-- why: Some drugs are for one sex or an age band only (catalog gender_limit, min_age, max_age, by the billed med_list_codg). A net purchase on a person outside it (persons.csv gender; age in whole years on the sale day, from birth_date) was made for someone else on this person's insurance (冒用/借卡), or never dispensed. Limits are inclusive: an 18-year-old may buy a drug with min_age 18, a 55-year-old one with max_age 55. A limit is only applied when the person's gender or birth date is known; a psn_no missing from persons.csv cannot be judged.
-- reason_zh: 参保人 {subject_id} 的性别或年龄不符合所购药品的使用限定，共 {n_events} 笔（{first_date} 至 {last_date}，{institutions_zh}），疑似冒用医保购药，医保基金支付 {amount} 元。
-- reason_en: Person {subject_id} bought {n_events} times a drug whose gender or age limit excludes them ({first_date} to {last_date}, {institutions_en}), as if for someone else; the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): age from year(), month(), day() (date_sub('year') subtracts days on Spark).

with purchases as (
    select *
    from sale_records
    where psn_no is not null
),

limited_drugs as (
    select
        med_list_codg,
        gender_limit,
        min_age,
        max_age
    from catalog
    where gender_limit is not null
       or min_age is not null
       or max_age is not null
),

judged as (
    select
        s.*,
        p.gender,
        -- whole years of age on the day of the sale: a birthday not yet reached this
        -- year does not count (year(), month() and day() mean the same on Spark)
        year(s.sel_time) - year(p.birth_date)
            - case
                  when month(s.sel_time) * 100 + day(s.sel_time)
                       < month(p.birth_date) * 100 + day(p.birth_date)
                  then 1
                  else 0
              end as age,
        d.gender_limit,
        d.min_age,
        d.max_age
    from purchases as s
    join persons as p using (psn_no)
    join limited_drugs as d using (med_list_codg)
),

excluded as (
    select
        *,
        coalesce(gender <> gender_limit, false) as wrong_gender,
        coalesce(age < min_age, false) as too_young,
        coalesce(age > max_age, false) as too_old
    from judged
)

select
    psn_no as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    codes as code,
    psn_no,
    fund_amount as amount,
    age as metric,
    case
        when too_young then min_age
        when too_old then max_age
    end as threshold,
    concat_ws(
        '; ',
        case when wrong_gender then med_list_codg || ' is for ' || gender_limit || ' only, buyer is ' || gender end,
        case when too_young then med_list_codg || ' is from age ' || min_age || ', buyer is ' || age end,
        case when too_old then med_list_codg || ' is up to age ' || max_age || ', buyer is ' || age end
    ) as note
from excluded
where wrong_gender
   or too_young
   or too_old
