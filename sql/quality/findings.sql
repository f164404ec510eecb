-- Data-quality findings per institution: the upload patterns its system shows, with how
-- many records, their share, and a few examples, so that the bureau can tell the vendor
-- what to fix. Reads the exemption tables (exemptions.sql) and `dq_pattern_labels`
-- (tracecode.categories.DQ_PATTERNS). Parameters: [quality] settings.

delete from dq_findings;

insert into dq_findings by name
with institution_records as (
    select
        fixmedins_code,
        count(*) as n_records,
        count(*) filter (where infno = '3505') as n_sales
    from current_records
    where infno <> '3507'
    group by fixmedins_code
),

-- one key on records that differ in what they say (time, buyer, drug): not a re-send
reused_keys as (
    select
        fixmedins_code,
        infno,
        fixmedins_bchno,
        count(*) as n_versions,
        min(event_time) as first_time,
        max(event_time) as last_time
    from records
    where infno <> '3507'
    group by
        fixmedins_code,
        infno,
        fixmedins_bchno
    having count(distinct (event_time, coalesce(psn_no, ''), coalesce(med_list_codg, ''))) > 1
),

key_reuse as (
    select
        fixmedins_code,
        'key_reuse' as pattern,
        sum(n_versions) as n_records,
        string_agg(distinct fixmedins_bchno, '; ') as examples,
        min(first_time) as first_time,
        max(last_time) as last_time
    from reused_keys
    group by fixmedins_code
),

date_only as (
    select
        fixmedins_code,
        'date_only' as pattern,
        count(*) as n_records,
        string_agg(distinct fixmedins_bchno, '; ') as examples,
        min(event_time) as first_time,
        max(event_time) as last_time
    from current_records
    where event_date_only
    group by fixmedins_code
),

-- the tags of the non-spec shapes a line used (date_only has its own flag, above)
habits as (
    select
        fixmedins_code,
        habit as pattern,
        count(*) as n_records,
        string_agg(distinct fixmedins_bchno, '; ') as examples,
        min(event_time) as first_time,
        max(event_time) as last_time
    from (
        select
            fixmedins_code,
            fixmedins_bchno,
            event_time,
            unnest(habits) as habit
        from current_records
    )
    where habit <> 'date_only'
    group by
        fixmedins_code,
        habit
),

twelve_hour as (
    select
        fixmedins_code,
        'twelve_hour_clock' as pattern,
        n_sales as n_records,
        'latest sale ' || left(latest_time_of_day::varchar, 5) as examples,
        first_time,
        last_time
    from twelve_hour_clocks
),

mirrors as (
    select
        fixmedins_code,
        'dispensing_as_inbound' as pattern,
        n_mirrored as n_records,
        n_mirrored || ' of ' || n_inbounds || ' 3502 101s' as examples,
        n_inbounds as of_records,
        first_time,
        last_time
    from dispensing_as_inbound
),

-- sales carrying a placeholder; ID numbers shown masked
placeholder_sales as (
    select
        s.fixmedins_code,
        s.rec_id,
        s.sel_time,
        case when p.field = 'certno' then mask_certno(p.value) else p.value end as example
    from sale_records as s
    join placeholder_identities as p
        on (p.field = 'certno' and p.value = upper(trim(s.certno)))
        or (p.field = 'psn_no' and p.value = s.psn_no)
        or (p.field = 'psn_name' and p.value = trim(s.psn_name)
            and p.fixmedins_code = s.fixmedins_code)
),

placeholders as (
    select
        fixmedins_code,
        'placeholder_identity' as pattern,
        count(distinct rec_id) as n_records,
        string_agg(distinct example, '; ') as examples,
        min(sel_time) as first_time,
        max(sel_time) as last_time
    from placeholder_sales
    group by fixmedins_code
),

-- codes not in the form the rules read them (a malformed code, or a code written with
-- extra characters that tracecode had to strip)
unusual_codes as (
    select
        r.fixmedins_code,
        'unusual_code' as pattern,
        count(*) as n_records,
        string_agg(distinct c.drug_trac_codg, '; ') as examples,
        min(r.event_time) as first_time,
        max(r.event_time) as last_time
    from record_codes as c
    join current_records as r using (rec_id)
    where c.code_format = 'invalid'
       or c.drug_trac_codg <> c.code_id
    group by r.fixmedins_code
),

found as (
    select * from key_reuse
    union all by name select * from date_only
    union all by name select * from habits
    union all by name select * from twelve_hour
    union all by name select * from mirrors
    union all by name select * from placeholders
    union all by name select * from unusual_codes
),

measured as (
    select
        f.* exclude (of_records),
        i.fixmedins_name,
        l.pattern_zh,
        l.what_zh,
        l.what_en,
        -- of the records of that kind: its 101s, its sales for the sale patterns, else
        -- all its records
        least(1.0, f.n_records / greatest(coalesce(
            f.of_records,
            case
                when f.pattern in ('twelve_hour_clock', 'placeholder_identity') then r.n_sales
                else r.n_records
            end), 1)) as share
    from found as f
    join dq_pattern_labels as l using (pattern)
    left join institutions as i using (fixmedins_code)
    left join institution_records as r using (fixmedins_code)
    where f.n_records >= $finding_min_records
)

select
    fixmedins_code,
    fixmedins_name,
    pattern,
    pattern_zh,
    n_records,
    share,
    -- a few examples, not all of them
    array_to_string(list_slice(string_split(examples, '; '), 1, 5), '; ') as examples,
    '机构 ' || coalesce(fixmedins_name, fixmedins_code) || '（' || fixmedins_code || '）有 '
        || n_records || ' 条记录' || what_zh || '，请通知其系统厂商按接口规范修正。' as reason,
    'Institution ' || fixmedins_code || ' has ' || n_records || ' records that ' || what_en
        || '; ask its system vendor to follow the interface spec.' as reason_en,
    first_time,
    last_time
from measured
order by
    fixmedins_code,
    pattern;
