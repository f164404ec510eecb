-- Reference data from LANDING/reference. Each file is a snapshot: a changed file replaces
-- its table whole. Column meanings as in shared/contract.md.

create table if not exists reference_files (
    name      varchar primary key,  -- e.g. 'persons'
    sha256    varchar not null,
    encoding  varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    run_id    varchar not null,
    loaded_at timestamp not null
);

create table if not exists institutions (
    fixmedins_code varchar,
    fixmedins_name varchar,
    fixmedins_type varchar,   -- pharmacy | clinic | hospital
    admdvs         varchar,   -- 6-digit region code; its first 4 digits name the city
    open_time      time,      -- empty: open around the clock, or hours unknown
    close_time     time
);

create table if not exists catalog (
    med_list_codg varchar,
    drug_name     varchar,
    trace_prefix  varchar,    -- the 7-digit product part of the drug's codes
    pack_units    double,     -- smallest billing units in one pack
    pack_price    double,     -- yuan per pack
    gender_limit  varchar,    -- empty, 'F' or 'M'
    min_age       integer,
    max_age       integer
);

create table if not exists persons (
    psn_no      varchar,
    certno      varchar,
    psn_name    varchar,
    gender      varchar,
    birth_date  date,
    insu_admdvs varchar,
    death_date  date
);

create table if not exists code_issuance (
    trace_prefix varchar,
    serial_from  bigint,   -- inclusive 9-digit serial range
    serial_to    bigint,
    manu_lotnum  varchar,
    manu_date    date,
    expy_end     date
);
