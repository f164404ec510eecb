-- id: card_hopping
-- category: card_hopping
-- subject: person
-- severity: 3
-- why: A patient refills a drug at one or two usual places. One person buying one drug (billed med_list_codg) at many institutions within days draws more than a course of treatment on one card, to resell or to stockpile (Hangzhou: one man, his own and his mother's credentials, many institutions). Counted over net purchases: from each purchase, the distinct institutions selling that drug to that person within the window that starts there (ends included); every purchase inside a window that reaches the threshold is evidence. Repeat purchases at the same place, and one drug bought monthly at changing places, are not leads; nor is a placeholder psn_no that an institution's system puts on many different buyers (placeholder_identities: a data-quality finding, not a person).
-- reason_zh: 参保人 {subject_id} 于 {first_date} 至 {last_date} 在 {institutions_zh} 购买同一药品 {n_events} 次，短期内最多在 {metric_max} 家机构购买（阈值 {threshold} 家），疑似多店套药，医保基金支付 {amount} 元。
-- reason_en: Person {subject_id} bought one drug {n_events} times at {institutions_en} between {first_date} and {last_date}, at up to {metric_max} institutions within the window (threshold {threshold}); the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): the window's distinct institutions by a self-join (Spark refuses count(distinct) over a window).

with purchases as (
    select s.*
    from sale_records as s
    anti join placeholder_identities as p
        on p.field = 'psn_no'
       and p.value = s.psn_no
    where s.psn_no is not null
      and s.med_list_codg is not null
),

-- from each purchase, the institutions that sold the same drug to the same person within
-- the window that starts there (a self-join: Spark has no count(distinct) over a window)
windows as (
    select
        a.psn_no,
        a.med_list_codg,
        a.sel_time as window_start,
        a.sel_time + to_seconds($hopping_window_days * 86400) as window_end,
        count(distinct b.fixmedins_code) as n_institutions
    from purchases as a
    join purchases as b
        on b.psn_no = a.psn_no
       and b.med_list_codg = a.med_list_codg
       and b.sel_time >= a.sel_time
       and b.sel_time <= a.sel_time + to_seconds($hopping_window_days * 86400)
    group by
        a.rec_id,
        a.psn_no,
        a.med_list_codg,
        a.sel_time
),

hopping_windows as (
    select *
    from windows
    where n_institutions >= $hopping_min_institutions
),

in_hopping_window as (
    select
        s.rec_id,
        max(w.n_institutions) as n_institutions
    from purchases as s
    join hopping_windows as w
        on w.psn_no = s.psn_no
       and w.med_list_codg = s.med_list_codg
       and s.sel_time >= w.window_start
       and s.sel_time <= w.window_end
    group by s.rec_id
)

select
    s.psn_no as subject_id,
    s.rec_id,
    s.fixmedins_code,
    s.sel_time as event_time,
    s.codes as code,
    s.psn_no,
    s.fund_amount as amount,
    h.n_institutions as metric,
    $hopping_min_institutions as threshold,
    'drug ' || s.med_list_codg as note
from purchases as s
join in_hopping_window as h using (rec_id)
