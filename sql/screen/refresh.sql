-- Refresh the kept inputs (screened_sales, screened_stock_moves, screened_sale_records)
-- for the codes new data touched, after scope.sql. Exact: a code's net sales and stock
-- moves depend only on the records listing it, on 3507 deletions and on codeless returns;
-- a sale record is the sum of its codes' net sales, or, for a sale listing no code, the
-- sale itself while no deletion or return took it back. The touched_* tables stay for the
-- code rules (sql/screen/inputs.sql). The views' own macros compute everything here, over
-- the touched codes' records instead of all of them.

-- the records listing a touched code
create or replace temp table scope_rec_ids as
select distinct rec_id
from record_codes
where code_id in (select subject_id from scope_code);

-- those records, the touched sales that list no code, and every deletion and codeless
-- return (they list no code but act on records that do)
create or replace temp view scoped_records as
select *
from records
where rec_id in (select rec_id from scope_rec_ids)
   or (rec_id in (select rec_id from touched_records) and infno = '3505' and n_codes = 0)
   or infno = '3507'
   or (infno = '3506' and n_codes = 0);

create or replace temp table touched_live_records as
from live_records_over('scoped_records');

-- the touched codes of those records (a record may list untouched codes too)
create or replace temp view scoped_record_codes as
select *
from record_codes
where rec_id in (select rec_id from scope_rec_ids)
  and code_id in (select subject_id from scope_code);

create or replace temp table touched_sale_events as
from sale_events_over('touched_live_records', 'scoped_record_codes');

create or replace temp table touched_sales as
from sales_over('touched_sale_events', 'touched_live_records');

create or replace temp table touched_stock_moves as
from stock_moves_over('touched_live_records', 'scoped_record_codes');

-- the touched codes' kept sales before the refresh: whose they were, and where
create or replace temp table touched_kept_sales as
select
    rec_id,
    psn_no,
    fixmedins_code
from screened_sales
where code_id in (select subject_id from scope_code);

-- a return on one card can take back a sale on another: every person whose kept sales
-- change is touched, before and after
insert into scope_person
select distinct psn_no
from (
    select psn_no from touched_kept_sales
    union all
    select psn_no from touched_sales
)
where psn_no is not null
  and psn_no not in (select subject_id from scope_person);

insert into scope_institution
select distinct fixmedins_code
from (
    select fixmedins_code from touched_kept_sales
    union all
    select fixmedins_code from touched_sales
    union all
    select fixmedins_code
    from screened_stock_moves
    where code_id in (select subject_id from scope_code)
    union all
    select fixmedins_code from touched_stock_moves
)
where fixmedins_code not in (select subject_id from scope_institution);

-- the sale records holding a touched code, before and after, and the touched sales that
-- list no code (new, replaced, deleted, or named by a new codeless return)
create or replace temp table touched_sale_rec_ids as
select rec_id from touched_kept_sales
union
select rec_id from touched_sales
union
select rec_id
from records
where rec_id in (select rec_id from touched_records)
  and infno = '3505'
  and n_codes = 0;

delete from screened_sales
where code_id in (select subject_id from scope_code);

insert into screened_sales
from touched_sales;

delete from screened_stock_moves
where code_id in (select subject_id from scope_code);

insert into screened_stock_moves
from touched_stock_moves;

delete from screened_sale_records
where rec_id in (select rec_id from touched_sale_rec_ids);

create or replace temp view touched_record_sales as
select *
from screened_sales
where rec_id in (select rec_id from touched_sale_rec_ids);

insert into screened_sale_records
select *
from sale_records_over('touched_record_sales', 'touched_live_records')
where rec_id in (select rec_id from touched_sale_rec_ids);

update screen_state set
    refreshed_at = now(),
    clock_as_of = (select as_of from data_clock);
