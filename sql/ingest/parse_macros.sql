-- Macros that parse_lines.sql uses to read values as real systems write them
-- (docs/messages.md, "Shapes tracecode reads"). Created per connection before a parse.

-- A time as sent that is not the spec's `yyyy-MM-dd HH:mm:ss` (parse_lines.sql casts
-- that directly) goes through one regular expression: `yyyy-MM-ddHH:mm:ss`, `yyyy/M/d H:mm:ss`,
-- a date alone, fractions of a second, a time-zone offset (`Z`, `+08:00`, `+0800`:
-- converted to local time at $local_offset_minutes), or epoch milliseconds (UTC, also
-- converted). Out: {ts, date_only, habit}; ts is null when the text is no time at all.
create or replace temp macro tc_time_parts(t) as regexp_extract(
    t,
    '^\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:([ T]?)(\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$',
    ['y', 'mo', 'd', 'sep', 'h', 'mi', 's', 'frac', 'tz']
);

create or replace temp macro tc_offset_minutes(tz) as
    case when tz = 'Z' then 0
         else (case when left(tz, 1) = '-' then -1 else 1 end)
              * (substr(tz, 2, 2)::integer * 60 + right(tz, 2)::integer)
    end;

-- p: tc_time_parts(t), computed by the caller only where tc_time_fast gave nothing
create or replace temp macro tc_time_slow(t, p, local_offset) as
    case
        when regexp_full_match(trim(t), '\d{12,13}') then {
            'ts': try(make_timestamp(trim(t)::bigint * 1000) + to_minutes(local_offset)),
            'date_only': false,
            'habit': 'time_epoch_ms'
        }
        -- no match, or an offset no zone has (beyond +-14:00)
        when p.y = '' or (p.tz not in ('', 'Z') and (abs(tc_offset_minutes(p.tz)) > 14 * 60
                                                     or right(p.tz, 2)::integer > 59))
            then {'ts': null::timestamp, 'date_only': false, 'habit': null::varchar}
        else {
            'ts': try(
                make_timestamp(
                    p.y::bigint, p.mo::bigint, p.d::bigint,
                    coalesce(nullif(p.h, '')::bigint, 0), coalesce(nullif(p.mi, '')::bigint, 0),
                    coalesce(nullif(p.s, '')::double, 0) + coalesce(nullif(p.frac, '')::double, 0)
                )
                + to_minutes(case when p.tz = '' then 0
                                  else local_offset - tc_offset_minutes(p.tz) end)
            ),
            'date_only': p.h = '',
            'habit': case
                when p.h = '' then 'date_only'
                when p.tz <> '' then 'time_offset'
                when contains(t, '/') then 'time_slashes'
                when p.sep = '' then 'time_no_space'
                when p.frac <> '' then 'time_fraction'
                else 'time_unpadded'
            end
        }
    end;

-- A number sent as a JSON number (`28`, `24.0`) or a string (`"28"`, `""` = none): the
-- body's count and price fields are read as raw JSON so that the string habit shows.
create or replace temp macro tc_num_text(raw) as
    case when left(raw::varchar, 1) = '"' then trim(json_extract_string(raw, '$'))
         else raw::varchar end;

create or replace temp macro tc_num(raw) as
    try_cast(nullif(tc_num_text(raw), '') as double);

-- An object or array where a string belongs: json_transform gives its JSON text.
create or replace temp macro tc_composite(line_text, path, v) as
    case when left(v, 1) in ('[', '{') then json_type(line_text, path) in ('ARRAY', 'OBJECT')
         else false end;

-- The fields of a body node (input.selinfo, invinfo, purcinfo or data) as parse_lines.sql
-- reads them: one type for every node, as a json_transform type.
create or replace temp macro tc_body_type() as
    'STRUCT(med_list_codg VARCHAR, fixmedins_bchno VARCHAR, psn_no VARCHAR, '
    || 'psn_cert_type VARCHAR, certno VARCHAR, psn_name VARCHAR, manu_lotnum VARCHAR, '
    || 'manu_date VARCHAR, expy_end VARCHAR, trdn_flag VARCHAR, sel_retn_time VARCHAR, '
    || 'rtal_docno VARCHAR, setl_id VARCHAR, mdtrt_setl_type VARCHAR, '
    || 'medins_prod_sel_no VARCHAR, invdate VARCHAR, inv_chg_type VARCHAR, '
    || 'inv_chg_time VARCHAR, spler_name VARCHAR, purc_retn_stoin_time VARCHAR, '
    || 'purc_invo_no VARCHAR, inv_data_type VARCHAR, sel_retn_cnt JSON, '
    || 'finl_trns_pric JSON, inv_cnt JSON, cnt JSON, pric JSON, purc_retn_cnt JSON, '
    || 'drugtracinfo STRUCT(drug_trac_codg VARCHAR)[])';

-- How often s occurs in t (at memchr speed).
create or replace temp macro tc_occurrences(t, s) as (strlen(t) - strlen(replace(t, s, ''))) // strlen(s);

-- 1 when a field was sent (json_transform gives null for a key not sent, or sent null).
create or replace temp macro tc_sent(v) as (v is not null)::integer;
