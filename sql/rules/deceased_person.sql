-- id: deceased_person
-- category: deceased_person
-- subject: person
-- severity: 5
-- why: Nobody buys drugs after their death. A net sale on a person dated (calendar day) after the death_date in persons.csv, the day after death onward, used a dead person's insurance (冒用死亡人员医保). A sale on the day of death may be genuine (a patient dispensed that morning) and is not a lead; a sale made before the death but uploaded after it is judged by its sale time; returned or deleted sales count for nothing. A psn_no missing from persons.csv cannot be judged.
-- reason_zh: 参保人 {subject_id} 已登记死亡，死亡后仍有 {n_events} 笔以其身份的购药（{first_date} 至 {last_date}，最晚为死亡后第 {metric_max} 天，{institutions_zh}），医保基金支付 {amount} 元。
-- reason_en: Person {subject_id} is registered as deceased, yet {n_events} purchases were made in their name after death ({first_date} to {last_date}, up to {metric_max} days after death, at {institutions_en}); the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): days after death by date_diff('day') (date - date is an interval on Spark).

with purchases as (
    select *
    from sale_records
    where psn_no is not null
),

deaths as (
    select
        psn_no,
        death_date
    from persons
    where death_date is not null
),

after_death as (
    select
        s.*,
        d.death_date,
        date_diff('day', d.death_date, s.sel_time::date) as days_after_death
    from purchases as s
    join deaths as d using (psn_no)
    where s.sel_time::date > d.death_date
)

select
    psn_no as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    codes as code,
    psn_no,
    fund_amount as amount,
    days_after_death as metric,
    'died ' || death_date::varchar as note
from after_death
