-- Parse and validate one batch of raw message lines (docs/messages.md).
-- In:  batch_lines(txt varchar, bad_bytes varchar, line_no bigint, file_id bigint,
--      src_file varchar): lines of one or more files, newline included; txt is null and
--      bad_bytes the escaped bytes when not UTF-8; src_file is the path under
--      LANDING/messages and file_id its registry id.
-- Out: one row per line, with `reason` null when the line is a valid record, else the
--      first problem found; the caller stores the first kind and quarantines the second.
-- Params: $run_id.

with lines as (
    select
        line_no,
        file_id,
        src_file,
        bad_bytes,
        rtrim(txt, chr(10) || chr(13)) as line_text  -- null: not valid UTF-8
    from batch_lines
),

-- One parse per line: the envelope and every body node the contract knows, as text.
-- Costly checks (json_type) run only inside THEN branches, i.e. on failing lines.
envelope as (
    select
        line_no,
        file_id,
        src_file,
        bad_bytes,
        line_text,
        json_valid(line_text) as is_json,
        json_transform(
            case when json_valid(line_text) then line_text end,
            '{
                "infno": "VARCHAR", "msgid": "VARCHAR", "inf_time": "VARCHAR",
                "fixmedins_code": "VARCHAR", "fixmedins_name": "VARCHAR",
                "input": {"selinfo": {
            "med_list_codg": "VARCHAR", "fixmedins_bchno": "VARCHAR",
            "psn_no": "VARCHAR", "psn_cert_type": "VARCHAR", "certno": "VARCHAR",
            "psn_name": "VARCHAR", "manu_lotnum": "VARCHAR", "manu_date": "VARCHAR",
            "expy_end": "VARCHAR", "trdn_flag": "VARCHAR", "sel_retn_cnt": "VARCHAR",
            "sel_retn_time": "VARCHAR", "finl_trns_pric": "VARCHAR", "rtal_docno": "VARCHAR",
            "setl_id": "VARCHAR", "mdtrt_setl_type": "VARCHAR", "medins_prod_sel_no": "VARCHAR",
            "inv_cnt": "VARCHAR", "invdate": "VARCHAR", "inv_chg_type": "VARCHAR",
            "cnt": "VARCHAR", "pric": "VARCHAR", "inv_chg_time": "VARCHAR",
            "spler_name": "VARCHAR", "purc_retn_cnt": "VARCHAR",
            "purc_retn_stoin_time": "VARCHAR", "purc_invo_no": "VARCHAR",
            "inv_data_type": "VARCHAR",
            "drugtracinfo": [{"drug_trac_codg": "VARCHAR"}]
        }, "invinfo": {
            "med_list_codg": "VARCHAR", "fixmedins_bchno": "VARCHAR",
            "psn_no": "VARCHAR", "psn_cert_type": "VARCHAR", "certno": "VARCHAR",
            "psn_name": "VARCHAR", "manu_lotnum": "VARCHAR", "manu_date": "VARCHAR",
            "expy_end": "VARCHAR", "trdn_flag": "VARCHAR", "sel_retn_cnt": "VARCHAR",
            "sel_retn_time": "VARCHAR", "finl_trns_pric": "VARCHAR", "rtal_docno": "VARCHAR",
            "setl_id": "VARCHAR", "mdtrt_setl_type": "VARCHAR", "medins_prod_sel_no": "VARCHAR",
            "inv_cnt": "VARCHAR", "invdate": "VARCHAR", "inv_chg_type": "VARCHAR",
            "cnt": "VARCHAR", "pric": "VARCHAR", "inv_chg_time": "VARCHAR",
            "spler_name": "VARCHAR", "purc_retn_cnt": "VARCHAR",
            "purc_retn_stoin_time": "VARCHAR", "purc_invo_no": "VARCHAR",
            "inv_data_type": "VARCHAR",
            "drugtracinfo": [{"drug_trac_codg": "VARCHAR"}]
        }, "purcinfo": {
            "med_list_codg": "VARCHAR", "fixmedins_bchno": "VARCHAR",
            "psn_no": "VARCHAR", "psn_cert_type": "VARCHAR", "certno": "VARCHAR",
            "psn_name": "VARCHAR", "manu_lotnum": "VARCHAR", "manu_date": "VARCHAR",
            "expy_end": "VARCHAR", "trdn_flag": "VARCHAR", "sel_retn_cnt": "VARCHAR",
            "sel_retn_time": "VARCHAR", "finl_trns_pric": "VARCHAR", "rtal_docno": "VARCHAR",
            "setl_id": "VARCHAR", "mdtrt_setl_type": "VARCHAR", "medins_prod_sel_no": "VARCHAR",
            "inv_cnt": "VARCHAR", "invdate": "VARCHAR", "inv_chg_type": "VARCHAR",
            "cnt": "VARCHAR", "pric": "VARCHAR", "inv_chg_time": "VARCHAR",
            "spler_name": "VARCHAR", "purc_retn_cnt": "VARCHAR",
            "purc_retn_stoin_time": "VARCHAR", "purc_invo_no": "VARCHAR",
            "inv_data_type": "VARCHAR",
            "drugtracinfo": [{"drug_trac_codg": "VARCHAR"}]
        }, "data": {
            "med_list_codg": "VARCHAR", "fixmedins_bchno": "VARCHAR",
            "psn_no": "VARCHAR", "psn_cert_type": "VARCHAR", "certno": "VARCHAR",
            "psn_name": "VARCHAR", "manu_lotnum": "VARCHAR", "manu_date": "VARCHAR",
            "expy_end": "VARCHAR", "trdn_flag": "VARCHAR", "sel_retn_cnt": "VARCHAR",
            "sel_retn_time": "VARCHAR", "finl_trns_pric": "VARCHAR", "rtal_docno": "VARCHAR",
            "setl_id": "VARCHAR", "mdtrt_setl_type": "VARCHAR", "medins_prod_sel_no": "VARCHAR",
            "inv_cnt": "VARCHAR", "invdate": "VARCHAR", "inv_chg_type": "VARCHAR",
            "cnt": "VARCHAR", "pric": "VARCHAR", "inv_chg_time": "VARCHAR",
            "spler_name": "VARCHAR", "purc_retn_cnt": "VARCHAR",
            "purc_retn_stoin_time": "VARCHAR", "purc_invo_no": "VARCHAR",
            "inv_data_type": "VARCHAR",
            "drugtracinfo": [{"drug_trac_codg": "VARCHAR"}]
        }}
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
            when m.infno in ('3501', '3502') then m.input.invinfo
            when m.infno in ('3503', '3504') then m.input.purcinfo
            when m.infno = '3507' then m.input.data
        end as b
    from envelope
),

fields as (
    select
        line_no,
        file_id,
        src_file,
        bad_bytes,
        line_text,
        is_json,
        infno,
        node,
        m.msgid as msgid,
        m.inf_time as inf_time_txt,
        try_cast(m.inf_time as timestamp) as inf_time,
        m.fixmedins_code as fixmedins_code,
        m.fixmedins_name as fixmedins_name,
        b.fixmedins_bchno as fixmedins_bchno,
        case
            when infno in ('3505', '3506') then 'sel_retn_time'
            when infno = '3501' then 'invdate'
            when infno = '3502' then 'inv_chg_time'
            when infno in ('3503', '3504') then 'purc_retn_stoin_time'
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
        end as qty_txt,
        case
            when infno in ('3505', '3506', '3503', '3504') then b.finl_trns_pric
            when infno = '3502' then b.pric
        end as price_txt,
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
        b.drugtracinfo as tracinfo
    from body
),

checked as (
    select
        *,
        try_cast(event_txt as timestamp) as event_time,
        try_cast(qty_txt as double) as qty,
        try_cast(price_txt as double) as price,
        try_cast(manu_date_txt as date) as manu_date,
        try_cast(expy_end_txt as date) as expy_end,
        list_transform(tracinfo, lambda t: t.drug_trac_codg) as codes
    from fields
)

select
    line_no,
    -- what the quarantine shows: the text, or the bytes escaped when they are not UTF-8
    coalesce(line_text, bad_bytes) as raw_text,
    case
        when line_text is null then 'not valid UTF-8'
        when trim(line_text) = '' then 'empty line'
        when not is_json then 'not valid JSON'
        when left(ltrim(line_text), 1) <> '{' then 'not a JSON object'
        when infno is null or infno = '' then 'missing envelope field infno'
        when msgid is null or msgid = '' then 'missing envelope field msgid'
        when inf_time_txt is null then 'missing envelope field inf_time'
        when fixmedins_code is null or fixmedins_code = '' then 'missing envelope field fixmedins_code'
        when node is null then 'unsupported infno ' || infno
        when inf_time is null then 'inf_time ' || inf_time_txt || ' is not a time'
        when fixmedins_bchno is null or fixmedins_bchno = '' then
            case coalesce(json_type(line_text, '$.input.' || node), 'MISSING')
                when 'MISSING' then 'missing body node input.' || node
                when 'NULL' then 'missing body node input.' || node
                when 'OBJECT' then 'missing fixmedins_bchno'
                else 'input.' || node || ' is not an object'
            end
        when infno = '3507' and coalesce(inv_data_type, '') not in ('1', '2', '3', '4')
            then 'inv_data_type ' || coalesce(inv_data_type, '(missing)') || ' is not 1-4'
        when event_txt is null then 'missing ' || event_field
        when event_time is null then event_field || ' ' || event_txt || ' is not a time'
        when qty_txt is not null and qty is null then qty_field || ' ' || qty_txt || ' is not a number'
        when infno in ('3505', '3506') and qty is null then 'missing sel_retn_cnt'
        when price_txt is not null and price is null then 'price ' || price_txt || ' is not a number'
        when manu_date_txt is not null and manu_date_txt <> '' and manu_date is null
            then 'manu_date ' || manu_date_txt || ' is not a date'
        when expy_end_txt is not null and expy_end_txt <> '' and expy_end is null
            then 'expy_end ' || expy_end_txt || ' is not a date'
        when list_bool_or(list_transform(codes, lambda c: c is null or trim(c) = ''))
            then 'drugtracinfo has an element without drug_trac_codg'
        -- last: a null list is fine when absent (a sale without codes), not when mistyped
        when tracinfo is null and infno <> '3507' then
            case when coalesce(json_type(line_text, '$.input.' || node || '.drugtracinfo'), 'NULL')
                      not in ('NULL', 'ARRAY')
                 then 'drugtracinfo is not a list' end
    end as reason,
    -- the record, for valid lines
    (file_id::bigint << 32) + line_no as rec_id,
    src_file,
    infno,
    msgid,
    inf_time,
    fixmedins_code,
    fixmedins_name,
    fixmedins_bchno,
    case when infno = '3507' then inv_data_type else '' end as key_extra,
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
    false as event_date_only,
    []::varchar[] as habits,
    list_transform(codes, lambda c: trim(c)) as codes,
    $run_id as run_id
from checked
