-- id: expired_sale
-- category: expired_sale
-- subject: code
-- severity: 4
-- why: A pack cannot be sold after it expires or before it was made. A net sale dated (calendar day) after the code's expiry or before its manufacture date is either an expired drug dispensed or a record made up. The dates are the code's activation (the code_issuance range it falls in); a code without activation (GS1, or a 20-digit code in no range) is judged by the dates the sale itself states. Selling on the expiry day itself is still in date. Malformed codes are unknown_code's.
-- reason_zh: 追溯码 {subject_id} 于 {first_date} 至 {last_date} 在 {institutions_zh} 销售 {n_events} 次，销售日期已过有效期或早于生产日期（最多相差 {metric_max} 天），医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} was sold {n_events} times at {institutions_en} between {first_date} and {last_date}, after its expiry or before its manufacture date (by up to {metric_max} days); the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): days out of date by date_diff('day') (date - date is an interval on Spark).

with sold as (
    select *
    from sales
    where code_format in ('nmpa20', 'gs1')
),

dated as (
    select
        s.*,
        s.sel_time::date as sale_day,
        coalesce(a.manu_date, s.manu_date) as made_on,
        coalesce(a.expy_end, s.expy_end) as use_by
    from sold as s
    left join code_activations as a using (code_id)
),

out_of_date as (
    select
        *,
        -- days sold after expiry, or before manufacture
        case
            when sale_day > use_by then date_diff('day', use_by, sale_day)
            else date_diff('day', sale_day, made_on)
        end as days_out
    from dated
    where sale_day > use_by
       or sale_day < made_on
)

select
    code_id as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    drug_trac_codg as code,
    psn_no,
    fund_amount as amount,
    days_out as metric,
    case
        when sale_day > use_by then 'sold after expiry ' || use_by::varchar
        else 'sold before manufacture ' || made_on::varchar
    end as note
from out_of_date
