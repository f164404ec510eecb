-- Inputs the person and institution rules share.

-- Net sales record by record: one row per sale (3505) with at least one code still
-- standing, for the rules that count purchases rather than packs. `fund_amount` is what
-- the fund paid for the codes that stand (a partly returned sale keeps the rest).
create or replace view sale_records as
select
    rec_id,
    fixmedins_code,
    fixmedins_bchno,
    sel_time,
    med_list_codg,
    psn_no,
    psn_cert_type,
    certno,
    psn_name,
    string_agg(drug_trac_codg, ';' order by code_seq) as codes,
    count(*) as n_codes,
    sum(fund_amount) as fund_amount
from sales
group by
    rec_id,
    fixmedins_code,
    fixmedins_bchno,
    sel_time,
    med_list_codg,
    psn_no,
    psn_cert_type,
    certno,
    psn_name;

-- The data's clock: the latest upload time stored. A finding that depends on a record
-- not having arrived yet (no_inbound) waits until the clock is far enough past it.
-- Deliberately read from `records`, not from the screened views: it is the same for
-- every subject, also when a run screens only some of them.
create or replace view data_clock as
select max(inf_time) as as_of
from records;

-- The activation each 20-digit code falls in (code_issuance: a serial range of its product
-- prefix, with lot, manufacture date and expiry); codes in no range have no row. Ranges of
-- one prefix are taken as disjoint (a serial is activated once), so the range holding a
-- serial is the one starting nearest below it, if it reaches that far: an as-of join,
-- which stays fast with thousands of lots per product where a range join would not.
create or replace view code_activations as
with codes as (
    select distinct
        code_id,
        product_key,
        trace_serial(code_id) as serial
    from record_codes
    where code_format = 'nmpa20'
)

select
    c.code_id,
    i.manu_lotnum,
    i.manu_date,
    i.expy_end
from codes as c
asof join code_issuance as i
    on i.trace_prefix = c.product_key
   and c.serial >= i.serial_from
where c.serial <= i.serial_to;
