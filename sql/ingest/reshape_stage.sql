-- Put the second parse of rewritten lines (tracecode.shapes) in place of their first.
-- In: stage_reshaped (parse_lines.sql output, one row per record of a rewritten line),
--     reshape_originals (src_file, line_no, raw: the lines as sent) and reshape_refused
--     (src_file, line_no, reason, raw: lines that cannot be read without loss).

delete from stage_parsed as p
using (
    select src_file, line_no from reshape_originals
    union all
    select src_file, line_no from reshape_refused
) as k
where p.src_file = k.src_file
  and p.line_no = k.line_no;

-- A batch line stands or falls whole: its first failing element names the reason.
create or replace temp table reshape_failed as
select
    src_file,
    line_no,
    arg_min(
        case when elem_no > 0 then 'element ' || elem_no || ' of the batch: ' else '' end
        || reason,
        elem_no
    ) as reason
from stage_reshaped
where reason is not null
group by src_file, line_no;

insert into stage_parsed by name
select r.* exclude (raw_text, needs_shape), o.raw as raw_text, false as needs_shape
from stage_reshaped as r
join reshape_originals as o using (src_file, line_no)
anti join reshape_failed as f using (src_file, line_no);

insert into stage_parsed (src_file, line_no, reason, raw_text, needs_shape)
select f.src_file, f.line_no, f.reason, o.raw, false
from reshape_failed as f
join reshape_originals as o using (src_file, line_no);

insert into stage_parsed (src_file, line_no, reason, raw_text, needs_shape)
select src_file, line_no, reason, raw, false
from reshape_refused;

drop table reshape_failed;
drop table stage_reshaped;
