-- Macros shared by the views and rules. Applied first (file name order), at every open.

-- The check character of a resident ID's 17-character body (ISO 7064 MOD 11-2, GB 11643):
-- each digit times its weight, summed, mod 11, looked up in '10X98765432'. Spelled out
-- digit by digit so that it also runs on Spark (tracecode.spark inlines the macros).
create or replace macro resident_id_check_char(body17) as
    substr(
        '10X98765432',
        1 + ((
            try_cast(substr(body17, 1, 1) as integer) * 7
            + try_cast(substr(body17, 2, 1) as integer) * 9
            + try_cast(substr(body17, 3, 1) as integer) * 10
            + try_cast(substr(body17, 4, 1) as integer) * 5
            + try_cast(substr(body17, 5, 1) as integer) * 8
            + try_cast(substr(body17, 6, 1) as integer) * 4
            + try_cast(substr(body17, 7, 1) as integer) * 2
            + try_cast(substr(body17, 8, 1) as integer) * 1
            + try_cast(substr(body17, 9, 1) as integer) * 6
            + try_cast(substr(body17, 10, 1) as integer) * 3
            + try_cast(substr(body17, 11, 1) as integer) * 7
            + try_cast(substr(body17, 12, 1) as integer) * 9
            + try_cast(substr(body17, 13, 1) as integer) * 10
            + try_cast(substr(body17, 14, 1) as integer) * 5
            + try_cast(substr(body17, 15, 1) as integer) * 8
            + try_cast(substr(body17, 16, 1) as integer) * 4
            + try_cast(substr(body17, 17, 1) as integer) * 2
        ) % 11),
        1
    );

-- Whether a string is a valid 18-character resident ID (居民身份证号): 6-digit region,
-- 8-digit birth date that exists and is not in the future, 3-digit order, and the right
-- check character (an 'x' is read as 'X'). Never null: a missing ID is not a valid one.
-- Portable (Spark): an anchored regexp_matches, and the birth date by try_cast.
create or replace macro is_valid_resident_id(certno) as
    coalesce(
        regexp_matches(certno, '^[0-9]{17}[0-9Xx]$')
        and try_cast(
                substr(certno, 7, 4) || '-' || substr(certno, 11, 2) || '-'
                || substr(certno, 13, 2) as date
            ) between date '1900-01-01' and current_date
        and resident_id_check_char(left(certno, 17)) = upper(right(certno, 1)),
        false
    );

-- The 9-digit serial of a 20-digit code (characters 8-16), to look up in code_issuance;
-- null for anything else. Portable (Spark): an anchored regexp_matches.
create or replace macro trace_serial(code) as
    case
        when regexp_matches(code, '^8[0-9]{19}$') then substr(code, 8, 9)::bigint
    end;

-- Whether the fund paid for a sale line: an insured settlement (mdtrt_setl_type 1), or,
-- when the type is missing, a settlement id; self-pay (2) is not the fund's money.
create or replace macro fund_paid(mdtrt_setl_type, setl_id) as
    mdtrt_setl_type = '1'
    or (mdtrt_setl_type is null and nullif(setl_id, '') is not null);

-- The kind of record a 3507 deletion names by inv_data_type: 1 inventory (3501), 2 stock
-- change (3502), 3 purchase or purchase return (3503/3504), 4 sale or sale return.
create or replace macro deletion_kind(infno) as
    case infno
        when '3501' then '1'
        when '3502' then '2'
        when '3503' then '3'
        when '3504' then '3'
        else '4'
    end;

-- A lead's stable id: the same rule (or model) finding on the same subject keeps its id
-- across runs, so investigators' decisions (lead_status) stick.
create or replace macro lead_id(rule_id, subject_type, subject_id) as
    'L' || left(md5(rule_id || '|' || subject_type || '|' || subject_id), 16);
