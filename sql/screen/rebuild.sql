-- Rebuild the kept inputs from the whole history (a full screen, or a change of the
-- schema or views that define them). Param: $digest (tracecode.db.schema_digest).

create or replace table screened_sales as
from sales;

create or replace table screened_stock_moves as
from stock_moves;

-- from the kept net sales just built, not the view again
create or replace table screened_sale_records as
from sale_records_over('screened_sales', 'live_records');

-- for this screen only: three rules look every code up in the register
create or replace temp table all_code_activations as
from code_activations;

delete from screen_state;

insert into screen_state
select
    $digest,
    now(),
    as_of
from data_clock;
