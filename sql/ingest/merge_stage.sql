-- Merge the staged lines of a group of files into `records` and `record_codes`.
-- A record is (fixmedins_code, infno, fixmedins_bchno; for 3507 also inv_data_type) AND
-- its rec_ident, the hash of what identifies the event (docs/messages.md, "Record
-- identity"): systems reuse fixmedins_bchno for lot, receipt or batch numbers, so two
-- records under one key that describe different events are both kept (a key collision),
-- while a re-send or a correction of the same event replaces it.
-- Of all versions of a record, staged and stored, the latest inf_time is current (ties:
-- the later file path, then the later line, then the later batch element), so re-sent
-- records are stored exactly once whatever order the files arrive in. Losing versions are
-- kept, not current, for the audit trail.

create or replace temp table stage_keys as
select distinct
    fixmedins_code,
    infno,
    fixmedins_bchno,
    key_extra
from stage_records;

-- every current stored record under a staged key, whatever its ident
create or replace temp table stored_rivals as
select
    r.rec_id as rival_rec_id,
    r.fixmedins_code,
    r.infno,
    r.fixmedins_bchno,
    r.key_extra,
    r.rec_ident,
    r.inf_time as rival_inf_time,
    r.src_file as rival_src_file,
    r.line_no as rival_line_no,
    r.elem_no as rival_elem_no
from records as r
semi join stage_keys as k using (fixmedins_code, infno, fixmedins_bchno, key_extra)
where r.is_current;

-- the latest staged version of each record: ranked on the key columns alone (rec_id is
-- unique in the stage), since a window over the whole wide rows costs twice as much
create or replace temp table stage_decided as
with top_in_stage as (
    select rec_id
    from stage_records
    qualify row_number() over (
        partition by fixmedins_code, infno, fixmedins_bchno, key_extra, rec_ident
        order by inf_time desc, src_file desc, line_no desc, elem_no desc
    ) = 1
),

ranked as (
    select
        s.*,
        t.rec_id is not null as top_in_stage
    from stage_records as s
    left join top_in_stage as t using (rec_id)
)

select
    ranked.*,
    rival.rival_rec_id,
    ranked.top_in_stage
    and (
        rival.rival_rec_id is null
        or (ranked.inf_time, ranked.src_file, ranked.line_no, ranked.elem_no)
           > (rival.rival_inf_time, rival.rival_src_file, rival.rival_line_no,
              rival.rival_elem_no)
    ) as wins
from ranked
left join stored_rivals as rival
    using (fixmedins_code, infno, fixmedins_bchno, key_extra, rec_ident);

-- Key collisions this merge adds: per key, the distinct events current after it less
-- those current before (at least one: the first record of a key is no collision).
create or replace temp table stage_collisions as
with before as (
    select fixmedins_code, infno, fixmedins_bchno, key_extra, count(distinct rec_ident) as n
    from stored_rivals
    group by all
),

after as (
    select fixmedins_code, infno, fixmedins_bchno, key_extra, count(distinct rec_ident) as n
    from (
        select fixmedins_code, infno, fixmedins_bchno, key_extra, rec_ident from stored_rivals
        union all
        select fixmedins_code, infno, fixmedins_bchno, key_extra, rec_ident
        from stage_decided
        where wins
    )
    group by all
)

select coalesce(sum(after.n - greatest(coalesce(before.n, 0), 1)), 0)::bigint as key_collisions
from after
left join before using (fixmedins_code, infno, fixmedins_bchno, key_extra);

update records
set
    is_current = false,
    superseded_run_id = $run_id
where rec_id in (
    select rival_rec_id
    from stage_decided
    where wins
      and rival_rec_id is not null
);

insert into records by name
select
    * exclude (codes, top_in_stage, rival_rec_id, wins),
    wins as is_current,
    null as superseded_run_id
from stage_decided;

insert into record_codes by name
with listed as (
    select
        rec_id,
        unnest(codes) as drug_trac_codg,
        generate_subscripts(codes, 1) as code_seq
    from stage_decided
    where n_codes > 0
)

select
    l.rec_id,
    l.code_seq,
    l.drug_trac_codg,
    -- the 20-digit form identifies the pack itself; GS1 packs by GTIN + serial
    case when regexp_full_match(l.drug_trac_codg, '8[0-9]{19}') then l.drug_trac_codg
         else coalesce(m.code_id, l.drug_trac_codg) end as code_id,
    case when regexp_full_match(l.drug_trac_codg, '8[0-9]{19}') then 'nmpa20'
         else coalesce(m.code_format, 'invalid') end as code_format,
    case when regexp_full_match(l.drug_trac_codg, '8[0-9]{19}') then left(l.drug_trac_codg, 7)
         else m.product_key end as product_key
from listed as l
left join code_map as m using (drug_trac_codg);
