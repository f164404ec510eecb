-- Inputs the person and institution rules share.

-- Net sales that list no trace code (a pack not scanned, or a drug sold without one): no
-- code rule can judge them, but a purchase on a dead person's card is one whether or not
-- its box was scanned. A 3507 deletes one; a codeless return naming it
-- (medins_prod_sel_no) takes it back, as it takes back a sale with codes. (A return that
-- lists codes pairs by code, as in `sales`, so it cannot take back a sale listing none.)
create or replace macro codeless_sales_over(live) as table
select
    r.rec_id,
    r.fixmedins_code,
    r.fixmedins_bchno,
    r.event_time as sel_time,
    r.med_list_codg,
    r.psn_no,
    r.psn_cert_type,
    r.certno,
    r.psn_name,
    null::varchar as codes,
    0::bigint as n_codes,
    -- what the fund paid, as in sale_events
    case
        when fund_paid(r.mdtrt_setl_type, r.setl_id)
        then coalesce(r.price, 0) * coalesce(r.qty, 0)
        else 0
    end as fund_amount
from query_table(live) as r
anti join codeless_returns_over(live) as t
    on t.fixmedins_code = r.fixmedins_code
   and t.medins_prod_sel_no = r.fixmedins_bchno
where r.infno = '3505'
  and r.n_codes = 0;

create or replace view codeless_sales as
from codeless_sales_over('live_records');

-- Net sales record by record, for the rules that count purchases rather than packs: one
-- row per sale (3505) with at least one code still standing, and one per codeless sale
-- standing (`codes` null, `n_codes` 0). `fund_amount` is what the fund paid for what
-- stands (a partly returned sale keeps the rest).
create or replace macro sale_records_over(sales, live) as table
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
from query_table(sales)
group by
    rec_id,
    fixmedins_code,
    fixmedins_bchno,
    sel_time,
    med_list_codg,
    psn_no,
    psn_cert_type,
    certno,
    psn_name
union all
select *
from codeless_sales_over(live);

create or replace view sale_records as
from sale_records_over('sales', 'live_records');

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
-- serial is the one starting nearest below it, if it reaches that far: an as-of lookup,
-- which stays fast with thousands of lots per product where a range join would not. It
-- is spelled as a running max over each prefix's serials, starts before codes, so that
-- Spark reads it alike (no asof join there).
create or replace macro code_activations_over(codes) as table
with issued as (
    select distinct
        code_id,
        product_key,
        trace_serial(code_id) as serial
    from query_table(codes)
    where code_format = 'nmpa20'
),

marks as (
    select
        product_key as trace_prefix,
        serial,
        code_id,
        true as is_code
    from issued
    union all
    select
        trace_prefix,
        serial_from as serial,
        null::varchar as code_id,
        false as is_code
    from code_issuance
    where trace_prefix in (select product_key from issued)
),

nearest_start as (
    select
        trace_prefix,
        serial,
        code_id,
        is_code,
        max(case when not is_code then serial end) over (
            partition by trace_prefix
            order by serial, is_code
            rows unbounded preceding
        ) as serial_from
    from marks
),

-- two ranges of a prefix that start at one serial (a register that breaks its own
-- disjointness) give one activation: the widest range that holds the code, then by lot
activations as (
    select
        c.code_id,
        i.manu_lotnum,
        i.manu_date,
        i.expy_end,
        row_number() over (
            partition by c.code_id
            order by i.serial_to desc, i.manu_lotnum, i.manu_date, i.expy_end
        ) as pick
    from nearest_start as c
    join code_issuance as i
        on i.trace_prefix = c.trace_prefix
       and i.serial_from = c.serial_from
    where c.is_code
      and c.serial <= i.serial_to
)

select
    code_id,
    manu_lotnum,
    manu_date,
    expy_end
from activations
where pick = 1;

create or replace view code_activations as
from code_activations_over('record_codes');
