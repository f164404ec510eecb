-- What the new data touched: the subjects whose leads may have changed since the rules
-- last ran. New data is that of every run not yet screened (a run that crashed after
-- ingest leaves its data to the next). A record touches its codes, its person and its
-- institution when it is new, was replaced, or was deleted by a new 3507; a new codeless
-- sale return touches the codes of the sale it names.

create or replace temp table touched_records as
with unscreened as (
    select run_id
    from runs
    where screened_at is null
),

new_records as (
    select *
    from records
    where run_id in (select run_id from unscreened)
),

deletes as (
    select
        fixmedins_code,
        fixmedins_bchno,
        inv_data_type
    from new_records
    where infno = '3507'
),

codeless_returns as (
    select *
    from codeless_returns_over('new_records')
)

select
    rec_id,
    fixmedins_code,
    psn_no
from records
where run_id in (select run_id from unscreened)
   or superseded_run_id in (select run_id from unscreened)
union
select
    r.rec_id,
    r.fixmedins_code,
    r.psn_no
from records as r
semi join deletes as d
    on d.fixmedins_code = r.fixmedins_code
   and d.fixmedins_bchno = r.fixmedins_bchno
   and d.inv_data_type = deletion_kind(r.infno)
union
select
    r.rec_id,
    r.fixmedins_code,
    r.psn_no
from records as r
semi join codeless_returns as c
    on c.fixmedins_code = r.fixmedins_code
   and c.medins_prod_sel_no = r.fixmedins_bchno
where r.infno = '3505';

create or replace temp table scope_code as
select distinct c.code_id as subject_id
from record_codes as c
semi join touched_records as t using (rec_id);

create or replace temp table scope_person as
select distinct psn_no as subject_id
from touched_records
where psn_no is not null;

create or replace temp table scope_institution as
select distinct fixmedins_code as subject_id
from touched_records;
