-- Data quality and capture compliance: how institutions upload, kept apart from the fraud
-- leads (shared/contract.md). Rebuilt by every screen (sql/quality, sql/compliance).

-- The 6-digit region codes a resident ID may start with (python-stdnum's cn.ric list of
-- administrative divisions, past and present), loaded by tracecode.quality.
create table if not exists resident_id_regions (
    region  varchar primary key,
    source  varchar not null   -- e.g. 'python-stdnum 2.2'
);

-- Habits that would fool a rule (sql/quality/exemptions.sql); the rules read them.
create table if not exists placeholder_identities (
    field          varchar not null,  -- 'certno', 'psn_no' or 'psn_name'
    value          varchar not null,  -- certno upper-cased and trimmed
    fixmedins_code varchar,           -- names: the institution; else null (everywhere)
    n_buyers       bigint not null
);

create table if not exists twelve_hour_clocks (
    fixmedins_code     varchar not null,
    n_sales            bigint not null,
    latest_time_of_day time,
    first_time         timestamp,
    last_time          timestamp
);

create table if not exists dispensing_as_inbound (
    fixmedins_code varchar not null,
    n_inbounds     bigint not null,   -- its 3502 101 transfers in
    n_mirrored     bigint not null,   -- of which naming a code it sold itself within hours
    mirror_hours   double not null,
    first_time     timestamp,
    last_time      timestamp
);

-- What the exemption tables held when the rules reading them last screened: when it
-- changes, those rules screen the whole history (tracecode.quality.prepare).
create table if not exists exemption_digests (
    table_name varchar primary key,
    digest     varchar not null
);

-- One row per institution and upload pattern the bureau should ask its vendor to fix.
create table if not exists dq_findings (
    fixmedins_code varchar not null,
    fixmedins_name varchar,
    pattern        varchar not null,
    pattern_zh     varchar not null,
    n_records      bigint not null,
    share          double,            -- of the institution's records of that kind
    examples       varchar,           -- a few record keys, codes or values (IDs masked)
    reason         varchar not null,  -- one Chinese sentence
    reason_en      varchar not null,
    first_time     timestamp,
    last_time      timestamp
);

-- Institutions far below their peers in capture (应采尽采、依码结算), scored like leads
-- but never in leads.csv.
create table if not exists compliance_findings (
    finding_id     varchar not null,  -- stable: hash of category and institution
    category       varchar not null,  -- capture_gap, upload_silence, late_upload
    category_zh    varchar not null,
    fixmedins_code varchar not null,
    fixmedins_name varchar,
    admdvs         varchar,
    metric         double,            -- the institution's measure
    peer_median    double,            -- the same measure's median over its peers
    amount         double,            -- yuan the fund paid for what the finding concerns
    score          double,            -- 0-100, higher first
    reason         varchar not null,
    reason_en      varchar not null
);
