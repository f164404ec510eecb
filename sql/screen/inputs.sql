-- What each group of scoped rules reads, after refresh.sql: the runner binds a rule's
-- `sales`, `stock_moves`, ... to these (tracecode.inputs.Scope.inputs). Rules screening
-- everything read the kept tables (screened_*) themselves.

-- code rules: the touched codes' freshly computed rows
create or replace temp view code_sale_returns as
select *
from touched_sale_events
where infno = '3506';

-- a table: three rules look the touched codes up in the register
create or replace temp table code_activations_touched as
from code_activations_over('scoped_record_codes');

-- person rules: all the kept rows of the touched persons
create or replace temp view person_sales as
select *
from screened_sales
where psn_no in (select subject_id from scope_person);

create or replace temp view person_sale_records as
select *
from screened_sale_records
where psn_no in (select subject_id from scope_person);

-- institution rules: all the kept rows of the touched institutions
create or replace temp view institution_sales as
select *
from screened_sales
where fixmedins_code in (select subject_id from scope_institution);

create or replace temp view institution_sale_records as
select *
from screened_sale_records
where fixmedins_code in (select subject_id from scope_institution);

create or replace temp view institution_stock_moves as
select *
from screened_stock_moves
where fixmedins_code in (select subject_id from scope_institution);
