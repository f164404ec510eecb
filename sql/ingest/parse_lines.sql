-- Parse and validate one batch of raw message lines (docs/messages.md).
-- In:  batch_lines(txt varchar, bad_bytes varchar, line_no bigint, file_id bigint,
--      src_file varchar): lines of one or more files, newline included; txt is null and
--      bad_bytes the escaped bytes when not UTF-8; src_file is the path under
--      LANDING/messages and file_id its registry id.
--      ingest_bounds (one row: the [ingest] settings) and the macros of parse_macros.sql.
-- Out: one row per line, with `reason` null when the line is a valid record, else the
--      first problem found; the caller stores the first kind and quarantines the second.
--      `needs_shape`: the line is not spec-shaped (batch, upper-case keys, codes outside
--      drugtracinfo...); the caller rewrites it (tracecode.shapes) and parses the result
--      again with file_id -1, each line carrying its habits and batch element in the key
--      `_tracecode`.
-- Params: $run_id.

with raw_lines as (
    select
        *,
        -- the line without CR and LF: what rtrim(txt, CR LF) gives when its line break is
        -- the only CR or LF in it (every line the reader cuts), found at memchr speed
        -- (rtrim decodes the whole line)
        case when contains(txt, chr(13)) then replace(replace(txt, chr(13), ''), chr(10), '')
             else replace(txt, chr(10), '') end as unbroken
    from batch_lines
),

lines as (
    select
        line_no,
        file_id,
        src_file,
        bad_bytes,
        -- a UTF-8 byte-order mark before a file's first line is no part of the message
        line_no = 1 and starts_with(txt, chr(65279)) as had_bom,
        case when line_no = 1 and starts_with(txt, chr(65279))
             then substr(rtrim(txt, chr(10) || chr(13)), 2)
             when strlen(txt) = strlen(unbroken) then txt
             when strlen(txt) - strlen(unbroken) = 1
                  and (ends_with(txt, chr(10)) or ends_with(txt, chr(13))) then unbroken
             when strlen(txt) - strlen(unbroken) = 2 and ends_with(txt, chr(13) || chr(10))
                 then unbroken
             else rtrim(txt, chr(10) || chr(13)) end as line_text  -- null: not valid UTF-8
    from raw_lines
),

-- One parse per line: the envelope and the body. Text fields come as text; counts and
-- prices as raw JSON, so that a number sent as a string shows. A sale's node (selinfo, most
-- lines) is read in this parse; the other nodes come as JSON and are read only on their
-- lines (a node read here costs every line its fields, present or not).
-- Costly checks (json_type) run only inside THEN branches, i.e. on failing lines.
envelope as (
    select
        line_no,
        file_id,
        src_file,
        bad_bytes,
        had_bom,
        line_text,
        json_valid(line_text) as is_json,
        -- its first character that is not a space is {
        case when starts_with(line_text, '{') then true else left(ltrim(line_text), 1) = '{' end
            as opens_object,
        json_transform(
            case when json_valid(line_text) then line_text end,
            '{
                "infno": "VARCHAR", "msgid": "VARCHAR", "inf_time": "VARCHAR",
                "fixmedins_code": "VARCHAR", "fixmedins_name": "VARCHAR",
                "_tracecode": {"habits": ["VARCHAR"], "elem": "INTEGER"},
                "input": {"selinfo": "' || tc_body_type() || '",
                          "invinfo": "JSON", "purcinfo": "JSON", "data": "JSON"}
            }'
        ) as m
    from lines
),

body as (
    select
        *,
        m.infno as infno,
        case
            when m.infno in ('3505', '3506') then 'selinfo'
            when m.infno in ('3501', '3502') then 'invinfo'
            when m.infno in ('3503', '3504') then 'purcinfo'
            when m.infno = '3507' then 'data'
        end as node,
        case
            when m.infno in ('3505', '3506') then m.input.selinfo
            when m.infno in ('3501', '3502')
                then json_transform(m.input.invinfo, '"' || tc_body_type() || '"')
            when m.infno in ('3503', '3504')
                then json_transform(m.input.purcinfo, '"' || tc_body_type() || '"')
            when m.infno = '3507' then json_transform(m.input.data, '"' || tc_body_type() || '"')
        end as b
    from envelope
),

fields as (
    select
        line_no,
        file_id,
        src_file,
        bad_bytes,
        had_bom,
        line_text,
        is_json,
        opens_object,
        -- only the rewritten lines of the second parse (file_id -1) carry habits
        case when file_id < 0 then m._tracecode end as meta,
        infno,
        node,
        '$.input.' || node || '.' as body_path,
        m.msgid as msgid,
        m.inf_time as inf_time_txt,
        m.fixmedins_code as fixmedins_code,
        m.fixmedins_name as fixmedins_name,
        b.fixmedins_bchno as fixmedins_bchno,
        case
            when infno in ('3505', '3506') then 'sel_retn_time'
            when infno = '3501' then 'invdate'
            when infno = '3502' then 'inv_chg_time'
            when infno in ('3503', '3504') then 'purc_retn_stoin_time'
            when infno = '3507' then 'inf_time'
        end as event_field,
        case
            when infno in ('3505', '3506') then b.sel_retn_time
            when infno = '3501' then b.invdate
            when infno = '3502' then b.inv_chg_time
            when infno in ('3503', '3504') then b.purc_retn_stoin_time
            when infno = '3507' then m.inf_time
        end as event_txt,
        case
            when infno in ('3505', '3506') then 'sel_retn_cnt'
            when infno = '3501' then 'inv_cnt'
            when infno = '3502' then 'cnt'
            when infno in ('3503', '3504') then 'purc_retn_cnt'
        end as qty_field,
        case
            when infno in ('3505', '3506') then b.sel_retn_cnt
            when infno = '3501' then b.inv_cnt
            when infno = '3502' then b.cnt
            when infno in ('3503', '3504') then b.purc_retn_cnt
        end as qty_raw,
        case when infno = '3502' then 'pric' else 'finl_trns_pric' end as price_field,
        case
            when infno in ('3505', '3506', '3503', '3504') then b.finl_trns_pric
            when infno = '3502' then b.pric
        end as price_raw,
        b.manu_date as manu_date_txt,
        b.expy_end as expy_end_txt,
        b.med_list_codg,
        b.psn_no,
        b.psn_cert_type,
        b.certno,
        b.psn_name,
        b.manu_lotnum,
        b.trdn_flag,
        b.rtal_docno,
        b.setl_id,
        b.mdtrt_setl_type,
        b.medins_prod_sel_no,
        b.inv_chg_type,
        b.spler_name,
        b.purc_invo_no,
        b.inv_data_type,
        m._tracecode is not null as meta_sent,
        b.drugtracinfo as tracinfo,
        list_transform(b.drugtracinfo, lambda t: t.drug_trac_codg) as codes,
        -- the keys sent that tracecode reads, but the codes' (a field is not null only when
        -- its key is sent); a sum, as a list of them costs more
        tc_sent(m.infno) + tc_sent(m.msgid) + tc_sent(m.inf_time)
            + tc_sent(m.fixmedins_code) + tc_sent(m.fixmedins_name) + tc_sent(m._tracecode)
            + tc_sent(m._tracecode.habits) + tc_sent(m._tracecode.elem) + tc_sent(m.input)
            + tc_sent(m.input.selinfo) + tc_sent(m.input.invinfo)
            + tc_sent(m.input.purcinfo) + tc_sent(m.input.data) + tc_sent(b.med_list_codg)
            + tc_sent(b.fixmedins_bchno) + tc_sent(b.psn_no) + tc_sent(b.psn_cert_type)
            + tc_sent(b.certno) + tc_sent(b.psn_name) + tc_sent(b.manu_lotnum)
            + tc_sent(b.manu_date) + tc_sent(b.expy_end) + tc_sent(b.trdn_flag)
            + tc_sent(b.sel_retn_time) + tc_sent(b.rtal_docno) + tc_sent(b.setl_id)
            + tc_sent(b.mdtrt_setl_type) + tc_sent(b.medins_prod_sel_no)
            + tc_sent(b.invdate) + tc_sent(b.inv_chg_type) + tc_sent(b.inv_chg_time)
            + tc_sent(b.spler_name) + tc_sent(b.purc_retn_stoin_time)
            + tc_sent(b.purc_invo_no) + tc_sent(b.inv_data_type) + tc_sent(b.sel_retn_cnt)
            + tc_sent(b.finl_trns_pric) + tc_sent(b.inv_cnt) + tc_sent(b.cnt)
            + tc_sent(b.pric) + tc_sent(b.purc_retn_cnt) + tc_sent(b.drugtracinfo)
            as known_keys
    from body
),

typed as (
    select
        fields.*,
        ingest_bounds.*,
        -- the spec's form is cast directly; only the rest goes through tc_time_slow
        case when length(inf_time_txt) = 19 and substr(inf_time_txt, 17, 1) = ':'
             then try_cast(inf_time_txt as timestamp) end
            as inf_fast,
        case when length(event_txt) = 19 and substr(event_txt, 17, 1) = ':'
             then try_cast(event_txt as timestamp) end
            as event_fast,
        try_cast(manu_date_txt as date) as manu_date_fast,
        try_cast(expy_end_txt as date) as expy_end_fast,
        tc_num_text(qty_raw) as qty_txt,
        tc_num(qty_raw) as qty,
        tc_num_text(price_raw) as price_txt,
        tc_num(price_raw) as price,
        left(qty_raw::varchar, 1) = '"' or left(price_raw::varchar, 1) = '"' as string_numbers,
        -- an object or array where text belongs adds brackets beyond the spec's: only then
        -- are the text fields checked one by one (json_type)
        strlen(line_text) - strlen(replace(replace(line_text, '[', ''), '{', ''))
            > 4 + coalesce(len(codes), 0) as extra_brackets
    from fields
    cross join ingest_bounds
),

-- Does the line send a key that known_keys does not count? Its colons are its keys and
-- the colons inside its strings; without a backslash (an escape) the colons of the times
-- it was read with are those of their strings. When they add up, every key is one
-- tracecode reads: none ends in an upper-case letter and the body has no extra key, and
-- the regular expression and the second parse (json_keys) that find those are skipped.
keyed as (
    select
        *,
        not contains(line_text, '\') and tc_occurrences(line_text, ':')
            <= known_keys + coalesce(list_count(codes), 0)
            + case when inf_fast is not null then tc_occurrences(inf_time_txt, ':') else 0 end
            + case when event_fast is not null and infno <> '3507'
                   then tc_occurrences(event_txt, ':') else 0 end
            as only_known_keys
    from typed
),

gated as (
    select
        *,
        -- a rare shape: let tracecode.shapes rewrite it (not its own output: file_id -1;
        -- a raw line that sends the key _tracecode itself is rewritten, dropping it)
        is_json and opens_object and file_id >= 0 and (
            meta_sent
            or infno is null
            or node is null
            or coalesce(fixmedins_bchno, '') = ''
            -- every code key in the text must be a code read from drugtracinfo
            or tc_occurrences(line_text, 'drug_trac_codg') <> coalesce(len(codes), 0)
            or contains(line_text, 'drug_trac_code')
            or (tracinfo is null and contains(line_text, '"drugtracinfo"'))
            -- a key that ends in an upper-case letter (MDTRT_SETL_TYPE, SELINFO)
            or case when only_known_keys then false
                    else regexp_matches(line_text, '[A-Z]"\s*:') end
        ) as needs_shape,
        -- body keys tracecode does not read: kept with the record (records.extra_fields);
        -- json_keys gives [] for a body that is no object
        case when node is not null and not only_known_keys
             then list_filter(json_keys(line_text, '$.input.' || node), lambda k: not list_contains(
                 [
                    'med_list_codg', 'fixmedins_bchno', 'psn_no', 'psn_cert_type',
                    'certno', 'psn_name', 'manu_lotnum', 'manu_date', 'expy_end',
                    'trdn_flag', 'sel_retn_time', 'rtal_docno', 'setl_id',
                    'mdtrt_setl_type', 'medins_prod_sel_no', 'invdate',
                    'inv_chg_type', 'inv_chg_time', 'spler_name',
                    'purc_retn_stoin_time', 'purc_invo_no', 'inv_data_type',
                    'sel_retn_cnt', 'finl_trns_pric', 'inv_cnt', 'cnt', 'pric',
                    'purc_retn_cnt', 'drugtracinfo'
                 ], k))
        end as extra_keys
    from keyed
),

slow_times as (
    select
        *,
        case when inf_fast is null and trim(inf_time_txt) <> ''
             then tc_time_slow(inf_time_txt, tc_time_parts(inf_time_txt), local_offset_minutes)
        end as inf_slow,
        case when event_fast is null and trim(event_txt) <> ''
             then tc_time_slow(event_txt, tc_time_parts(event_txt), local_offset_minutes)
        end as event_slow,
        case when manu_date_fast is null and trim(manu_date_txt) <> ''
             then tc_time_slow(manu_date_txt, tc_time_parts(manu_date_txt), 0).ts::date
        end as manu_date_slow,
        case when expy_end_fast is null and trim(expy_end_txt) <> ''
             then tc_time_slow(expy_end_txt, tc_time_parts(expy_end_txt), 0).ts::date
        end as expy_end_slow
    from gated
),

checked as (
    select
        *,
        coalesce(inf_fast, inf_slow.ts) as inf_time,
        coalesce(event_fast, event_slow.ts) as event_time,
        coalesce(manu_date_fast, manu_date_slow) as manu_date,
        coalesce(expy_end_fast, expy_end_slow) as expy_end
    from slow_times
)

select
    line_no,
    -- what the quarantine shows: the text, or the bytes escaped when they are not UTF-8
    coalesce(line_text, bad_bytes) as raw_text,
    needs_shape,
    case
        when line_text is null then 'not valid UTF-8'
        -- all spaces (trim(line_text) = '', which decodes the whole line)
        when not opens_object and ltrim(line_text) = '' then 'empty line'
        when not is_json then 'not valid JSON'
        when not opens_object then 'not a JSON object'
        when infno is null or infno = '' then 'missing envelope field infno'
        when msgid is null or msgid = '' then 'missing envelope field msgid'
        when inf_time_txt is null then 'missing envelope field inf_time'
        when fixmedins_code is null or fixmedins_code = '' then 'missing envelope field fixmedins_code'
        when extra_brackets and tc_composite(line_text, '$.fixmedins_code', fixmedins_code)
            then 'fixmedins_code ' || fixmedins_code || ' is not a text'
        when extra_brackets and tc_composite(line_text, '$.msgid', msgid) then 'msgid ' || msgid || ' is not a text'
        when node is null then 'unsupported infno ' || infno
        when inf_time is null then 'inf_time ' || inf_time_txt || ' is not a time'
        when inf_time < earliest_time or inf_time > latest_inf_time
            then 'inf_time ' || inf_time_txt || ' is outside ' || strftime(earliest_time, '%Y-%m-%d')
                 || ' .. ' || strftime(latest_inf_time, '%Y-%m-%d %H:%M') || ' (the ingest time + '
                 || future_tolerance_hours || ' h)'
        when fixmedins_bchno is null or fixmedins_bchno = '' then
            case coalesce(json_type(line_text, '$.input.' || node), 'MISSING')
                when 'MISSING' then 'missing body node input.' || node
                when 'NULL' then 'missing body node input.' || node
                when 'OBJECT' then 'missing fixmedins_bchno'
                else 'input.' || node || ' is not an object'
            end
        when extra_brackets and tc_composite(line_text, body_path || 'fixmedins_bchno', fixmedins_bchno)
            then 'fixmedins_bchno ' || fixmedins_bchno || ' is not a text'
        when infno = '3507' and coalesce(inv_data_type, '') not in ('1', '2', '3', '4')
            then 'inv_data_type ' || coalesce(inv_data_type, '(missing)') || ' is not 1-4'
        when event_txt is null or trim(event_txt) = '' then 'missing ' || event_field
        when event_time is null then event_field || ' ' || event_txt || ' is not a time'
        when event_time < earliest_time
            then event_field || ' ' || event_txt || ' is before ' || strftime(earliest_time, '%Y-%m-%d')
        when event_time > inf_time + to_hours(event_after_upload_hours)
            then event_field || ' ' || event_txt || ' is more than ' || event_after_upload_hours
                 || ' h after its upload (inf_time ' || inf_time_txt || ')'
        when qty_txt <> '' and qty is null then qty_field || ' ' || qty_txt || ' is not a number'
        when infno in ('3505', '3506') and qty is null then 'missing sel_retn_cnt'
        when qty is not null and not isfinite(qty)
            then qty_field || ' ' || qty_txt || ' is not a finite number'
        when qty < 0 or (qty = 0 and infno <> '3501')
            then qty_field || ' ' || qty_txt || ' is not a positive count'
        when qty > max_count
            then qty_field || ' ' || qty_txt || ' is above the ceiling ' || max_count
        when price_txt <> '' and price is null
            then price_field || ' ' || price_txt || ' is not a number'
        when price is not null and not isfinite(price)
            then price_field || ' ' || price_txt || ' is not a finite number'
        when price < 0 then price_field || ' ' || price_txt || ' is negative'
        when price > max_price
            then price_field || ' ' || price_txt || ' is above the ceiling ' || max_price
        when manu_date_txt is not null and manu_date_txt <> '' and manu_date is null
            then 'manu_date ' || manu_date_txt || ' is not a date'
        when expy_end_txt is not null and expy_end_txt <> '' and expy_end is null
            then 'expy_end ' || expy_end_txt || ' is not a date'
        when manu_date not between earliest_date and latest_date
            then 'manu_date ' || manu_date_txt || ' is outside ' || earliest_date || ' .. ' || latest_date
        when expy_end not between earliest_date and latest_date
            then 'expy_end ' || expy_end_txt || ' is outside ' || earliest_date || ' .. ' || latest_date
        -- objects and arrays where the body has text (json_transform gives their JSON)
        when extra_brackets and tc_composite(line_text, body_path || 'med_list_codg', med_list_codg)
            then 'med_list_codg ' || med_list_codg || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'psn_no', psn_no)
            then 'psn_no ' || psn_no || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'certno', certno)
            then 'certno ' || certno || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'psn_cert_type', psn_cert_type)
            then 'psn_cert_type ' || psn_cert_type || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'psn_name', psn_name)
            then 'psn_name ' || psn_name || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'manu_lotnum', manu_lotnum)
            then 'manu_lotnum ' || manu_lotnum || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'trdn_flag', trdn_flag)
            then 'trdn_flag ' || trdn_flag || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'setl_id', setl_id)
            then 'setl_id ' || setl_id || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'mdtrt_setl_type', mdtrt_setl_type)
            then 'mdtrt_setl_type ' || mdtrt_setl_type || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'medins_prod_sel_no', medins_prod_sel_no)
            then 'medins_prod_sel_no ' || medins_prod_sel_no || ' is not a text'
        when extra_brackets and tc_composite(line_text, body_path || 'inv_chg_type', inv_chg_type)
            then 'inv_chg_type ' || inv_chg_type || ' is not a text'
        when list_bool_or(list_transform(codes, lambda c: c is null or trim(c) = ''))
            then 'drugtracinfo has an element without drug_trac_codg'
        when list_bool_or(list_transform(codes, lambda c: left(trim(c), 1) in ('[', '{')))
            then 'drug_trac_codg ' || list_filter(codes, lambda c: left(trim(c), 1) in ('[', '{'))[1]
                 || ' is not a text'
        -- last: a null list is fine when absent (a sale without codes), not when mistyped
        when tracinfo is null and infno <> '3507' then
            case when coalesce(json_type(line_text, '$.input.' || node || '.drugtracinfo'), 'NULL')
                      not in ('NULL', 'ARRAY')
                 then 'drugtracinfo is not a list' end
    end as reason,
    0::bigint as rec_id,  -- numbered when staged (ingest._split_stage)
    src_file,
    coalesce(meta.elem, 0) as elem_no,
    infno,
    msgid,
    inf_time,
    fixmedins_code,
    fixmedins_name,
    fixmedins_bchno,
    case when infno = '3507' then inv_data_type else '' end as key_extra,
    -- what tells two records under one key apart (docs/messages.md, "Record identity"):
    -- not the codes, quantities or prices, which a re-sent correction may change
    case when infno = '3507' then 0::ubigint
         else md5_number_lower(concat_ws('|',
             infno, strftime(event_time, '%Y-%m-%d %H:%M:%S.%f'), coalesce(med_list_codg, ''),
             coalesce(psn_no, ''), coalesce(inv_chg_type, '')))
    end as rec_ident,
    event_time,
    med_list_codg,
    psn_no,
    psn_cert_type,
    certno,
    psn_name,
    manu_lotnum,
    manu_date,
    expy_end,
    trdn_flag,
    qty,
    price,
    rtal_docno,
    setl_id,
    mdtrt_setl_type,
    medins_prod_sel_no,
    inv_chg_type,
    spler_name,
    purc_invo_no,
    inv_data_type,
    coalesce(len(codes), 0)::integer as n_codes,
    -- a 3501 snapshot's invdate is a date by the spec: a date-only time is a habit elsewhere
    infno <> '3501' and coalesce(event_slow.date_only, false) as event_date_only,
    case
        when meta is null and event_slow.habit is null and inf_slow.habit is null
             and not coalesce(string_numbers, false) and not had_bom
            then []::varchar[]
        else list_sort(list_distinct(list_concat(
            coalesce(meta.habits, []::varchar[]),
            list_filter(
                [case when infno = '3501' and event_slow.habit = 'date_only' then null
                      else event_slow.habit end,
                 inf_slow.habit,
                 case when string_numbers then 'string_numbers' end,
                 case when had_bom then 'bom' end],
                lambda h: h is not null
            )
        )))
    end as habits,
    list_transform(codes, lambda c: trim(c)) as codes,
    case when len(extra_keys) > 0 then to_json(map_from_entries(list_transform(
        extra_keys, lambda k: {'k': k, 'v': json_extract(
            line_text, body_path || '"' || replace(k, '"', '\"') || '"')})))::varchar
    end as extra_fields,
    $run_id as run_id
from checked
