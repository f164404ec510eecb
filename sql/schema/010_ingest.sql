-- What has been ingested: files, the records they carried, their codes, and what was
-- quarantined. Messages are stored append-only; `is_current` marks the version of each
-- record (fixmedins_code, infno, fixmedins_bchno, rec_ident) that wins (latest inf_time).

create sequence if not exists file_id_seq start 1;

create table if not exists ingested_files (
    file_id           integer primary key,
    path              varchar not null unique,  -- relative to LANDING/messages
    sha256            varchar not null,
    size_bytes        bigint not null,
    mtime_ns          bigint not null,
    lines_read        bigint not null,
    records_stored    bigint not null,  -- lines that became the current version of a record
    records_replaced  bigint not null,  -- valid lines that lost to a later version
    lines_quarantined bigint not null,
    batch_records     bigint not null,  -- records stored from this file's batch lines
    run_id            varchar not null,
    ingested_at       timestamp not null
);

create table if not exists records (
    rec_id             bigint not null,   -- unique, numbered in ingest order
    src_file           varchar not null,  -- path relative to LANDING/messages
    line_no            integer not null,
    elem_no            integer not null,  -- element of a batch line (1..), 0: not a batch
    -- envelope
    infno              varchar not null,
    msgid              varchar,
    inf_time           timestamp not null,  -- when the institution sent it
    fixmedins_code     varchar not null,
    fixmedins_name     varchar,
    fixmedins_bchno    varchar not null,  -- the institution's own record serial
    key_extra          varchar not null,  -- 3507 only: inv_data_type, so deletes of two kinds differ
    -- hash of what identifies the event (time, product, person, change type): two
    -- records under one key with different idents are both kept (docs/messages.md)
    rec_ident          ubigint not null,
    -- body: the union of the fields tracecode reads (docs/messages.md)
    event_time         timestamp not null,  -- sale, stock change, purchase or snapshot time
    med_list_codg      varchar,
    psn_no             varchar,
    psn_cert_type      varchar,
    certno             varchar,
    psn_name           varchar,
    manu_lotnum        varchar,
    manu_date          date,
    expy_end           date,
    trdn_flag          varchar,           -- '0' whole pack, '1' split pack (拆零)
    qty                double,            -- sel_retn_cnt / cnt / inv_cnt / purc_retn_cnt
    price              double,            -- yuan per smallest billing unit
    rtal_docno         varchar,
    setl_id            varchar,
    mdtrt_setl_type    varchar,           -- '1' settled by insurance, '2' self-pay
    medins_prod_sel_no varchar,           -- 3506: the sale returned
    inv_chg_type       varchar,           -- 3502: 101..111
    spler_name         varchar,
    purc_invo_no       varchar,
    inv_data_type      varchar,           -- 3507: 1 inventory, 2 stock change, 3 purchase, 4 sale
    n_codes            integer not null,
    -- how the line was written (docs/messages.md): the sale/event time had no time of day
    -- (a date alone), and the tags of the non-spec shapes it used ('batch', 'node_string',
    -- 'upper_keys', 'string_numbers', 'code_alias', 'top_level_code', ...); empty: the spec
    event_date_only    boolean not null,
    habits             varchar[] not null,
    -- body fields tracecode does not read, as a JSON object (null: none); never fatal
    extra_fields       varchar,
    run_id             varchar not null,
    is_current         boolean not null,
    superseded_run_id  varchar            -- the run whose later version replaced this one
);

alter table records add column if not exists extra_fields varchar;

-- One row per code of a record's drugtracinfo.
create table if not exists record_codes (
    rec_id         bigint not null,
    code_seq       integer not null,
    drug_trac_codg varchar not null,  -- as uploaded
    code_id        varchar not null,  -- identity of the pack: the 20-digit code, or GS1 01+GTIN+21+serial
    code_format    varchar not null,  -- 'nmpa20', 'gs1' or 'invalid'
    product_key    varchar            -- 7-digit trace prefix, or the GTIN-14
);

create table if not exists quarantine (
    src_file varchar not null,  -- relative to LANDING
    line_no  bigint not null,
    reason   varchar not null,
    raw      varchar,           -- the line as read (invalid UTF-8 replaced)
    run_id   varchar not null
);
