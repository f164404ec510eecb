-- id: identity_mismatch
-- category: identity_mismatch
-- subject: person
-- severity: 4
-- why: A sale names the insured person twice, by psn_no and by the ID document (psn_cert_type, certno). Whenever the certno has the shape of an 18-character resident ID, whatever psn_cert_type says (01, 90 social-security card, which carries the citizen ID number, or another code set), and whenever the type is 01, the two must be one person of persons.csv: the psn_no's registered certno differs, or the certno is registered to another psn_no, or the certno is not a valid resident ID (check character, birth date, a region code that exists: python-stdnum's cn.ric list, table resident_id_regions): someone else's card or a made-up identity (冒名). Other documents (a passport, a 9-character card number) and sales without a certno are not compared. A psn_no missing from persons.csv is not a lead by itself (the register lags new enrolments and does not hold people insured elsewhere who settle here), but its sale is still checked: its certno must be valid and must not belong to another psn_no. One certno with two psn_no in the register (re-enrolled elsewhere) is consistent with either. Placeholders stay out: a certno or psn_no that the institution's system puts on many different buyers (placeholder_identities, [quality] placeholder_min_buyers) says nothing about any of them and is a data-quality finding instead. Certnos are compared in upper case ('x' = 'X'), without surrounding blanks.
-- reason_zh: 参保人 {subject_id} 有 {n_events} 笔购药所报身份证号与参保登记不符或校验无效（{first_date} 至 {last_date}，{institutions_zh}），疑似冒名，医保基金支付 {amount} 元。
-- reason_en: {n_events} purchases on person {subject_id} carried a resident ID that does not match the insurance register or is invalid ({first_date} to {last_date}, {institutions_en}), suggesting someone else's identity; the fund paid {amount} yuan.
-- portable (runs on Spark, tracecode.spark): register lookups by joins, not lists; ID shape by an anchored regexp_matches (Spark has no list_contains of the same meaning, no regexp_full_match).

with stated as (
    select
        *,
        upper(trim(certno)) as stated_certno
    from sale_records
    where psn_no is not null
      and nullif(trim(certno), '') is not null
),

-- a placeholder the system fills in for unknown buyers is not anyone's identity
purchases as (
    select s.*
    from stated as s
    anti join placeholder_identities as c
        on c.field = 'certno'
       and c.value = s.stated_certno
    anti join placeholder_identities as p
        on p.field = 'psn_no'
       and p.value = s.psn_no
),

-- sales whose document is a resident ID (居民身份证): declared so, or of its shape
-- whatever the declared type (the social-security number is the ID number)
resident_id_purchases as (
    select *
    from purchases
    where psn_cert_type = '01'
       or regexp_matches(stated_certno, '^[0-9]{17}[0-9X]$')
),

-- each (psn_no, certno) pair once: what the register says of it does not depend on the
-- sale
pairs as (
    select distinct
        psn_no,
        stated_certno
    from resident_id_purchases
),

register as (
    select
        psn_no,
        upper(trim(certno)) as certno
    from persons
    where nullif(trim(certno), '') is not null
),

-- what the register says of each pair, one lookup per branch (joins rather than lists:
-- the same on Spark). Three lookups in one join pipeline cannot spill their hash tables
-- together: on a province's five days they ran out of a 6 GB memory limit.
facts as (
    select psn_no, stated_certno, 1 as psn_registered, 0 as certno_registered,
           0 as pair_registered
    from pairs
    where psn_no in (select psn_no from register)
    union all
    select psn_no, stated_certno, 0, 1, 0
    from pairs
    where stated_certno in (select certno from register)
    union all
    select p.psn_no, p.stated_certno, 0, 0, 1
    from pairs as p
    join (
        select distinct psn_no, certno
        from register
        where psn_no in (select psn_no from pairs)
    ) as r
        on r.psn_no = p.psn_no
       and r.certno = p.stated_certno
),

register_says as (
    select
        psn_no,
        stated_certno,
        max(psn_registered) = 1 as psn_registered,
        max(certno_registered) = 1 as certno_registered,
        max(pair_registered) = 1 as pair_registered
    from facts
    group by psn_no, stated_certno
),

flagged_pairs as (
    select
        p.psn_no,
        p.stated_certno,
        -- the psn_no is registered, but not with this certno
        coalesce(f.psn_registered and not f.pair_registered, false) as differs_from_register,
        -- the certno is registered, but not to this psn_no
        coalesce(f.certno_registered and not f.pair_registered, false) as registered_to_other,
        not (is_valid_resident_id(p.stated_certno)
             and left(p.stated_certno, 6) in (select region from resident_id_regions))
            as invalid_id
    from pairs as p
    left join register_says as f
        on f.psn_no = p.psn_no
       and f.stated_certno = p.stated_certno
),

checked as (
    select
        s.*,
        f.differs_from_register,
        f.registered_to_other,
        f.invalid_id
    from resident_id_purchases as s
    join flagged_pairs as f
        on f.psn_no = s.psn_no
       and f.stated_certno = s.stated_certno
    where f.differs_from_register
       or f.registered_to_other
       or f.invalid_id
)

select
    psn_no as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    codes as code,
    psn_no,
    fund_amount as amount,
    -- which check failed (no ID number here: evidence exports mask those from records)
    concat_ws(
        '; ',
        case when differs_from_register then 'certno is not the one registered for this psn_no' end,
        case when registered_to_other then 'certno is registered to another psn_no' end,
        case when invalid_id then 'certno is not a valid resident ID' end
    ) as note
from checked
where differs_from_register
   or registered_to_other
   or invalid_id
