-- A rule that waits on the data clock (header `-- waits:`) judges a sale only once the
-- clock is $lag_days past it. Its subjects with a sale that the clock's move since the
-- last screening brought into judgement are touched too: sold at most $lag_days before
-- the clock now ($after), and more than that before the clock then ($before, null on
-- the first screening). Param $subject_type: 'person' or 'institution'.

insert into scope_person
select distinct psn_no
from screened_sales
where $subject_type = 'person'
  and psn_no is not null
  and sel_time + to_seconds($lag_days * 86400) <= $after
  and ($before is null or sel_time + to_seconds($lag_days * 86400) > $before)
  and psn_no not in (select subject_id from scope_person);

insert into scope_institution
select distinct fixmedins_code
from screened_sales
where $subject_type = 'institution'
  and sel_time + to_seconds($lag_days * 86400) <= $after
  and ($before is null or sel_time + to_seconds($lag_days * 86400) > $before)
  and fixmedins_code not in (select subject_id from scope_institution);
