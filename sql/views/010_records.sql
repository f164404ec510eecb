-- Records as the screening sees them: the current version of each record, less the
-- ones a 3507 deleted.

create or replace view current_records as
select *
from records
where is_current;

-- A 3507 deletes the record it names (same institution, same fixmedins_bchno, and the
-- kind given by inv_data_type) when it was sent at or after that record's version:
-- a version sent after the delete is a correction and stands.
-- `live_records_over(recs)` computes them from any relation shaped like `records` (the
-- screen passes the touched codes' records); `live_records` is over all of them.
create or replace macro live_records_over(recs) as table
with deletes as (
    select
        fixmedins_code,
        fixmedins_bchno,
        inv_data_type,
        inf_time as deleted_at
    from query_table(recs)
    where is_current
      and infno = '3507'
),

kept as (
    select *
    from query_table(recs)
    where is_current
      and infno <> '3507'
)

select kept.*
from kept
anti join deletes as d
    on d.fixmedins_code = kept.fixmedins_code
   and d.fixmedins_bchno = kept.fixmedins_bchno
   and d.inv_data_type = deletion_kind(kept.infno)
   and d.deleted_at >= kept.inf_time;

create or replace view live_records as
from live_records_over('records');
