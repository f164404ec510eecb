-- Runs, what each rule found, the leads, and the investigators' decisions on them.

create table if not exists runs (
    run_id      varchar primary key,
    started_at  timestamp not null,
    finished_at timestamp,
    landing     varchar,
    screened_at timestamp,  -- when its data had been through the rules: later runs need not
    summary     json
);

-- The exact SQL each rule ran and what it returned, per run.
create table if not exists rule_runs (
    run_id   varchar not null,
    rule_id  varchar not null,
    category varchar not null,
    rows     bigint not null,
    leads    bigint not null,
    seconds  double not null,
    sql_text varchar not null,
    params   json
);

-- Every row a rule selected: the evidence behind the leads. Rebuilt each run.
create table if not exists lead_evidence (
    lead_id        varchar not null,
    rule_id        varchar not null,
    subject_id     varchar not null,
    rec_id         bigint,      -- the record (join records / sales on rec_id)
    fixmedins_code varchar,
    event_time     timestamp,
    code           varchar,
    psn_no         varchar,
    amount         double,      -- yuan the fund paid on this record's line for this code
    metric         double,      -- rule-specific quantity, e.g. units taken from a pack
    threshold      double,      -- the limit that metric is judged against
    note           varchar
);

create table if not exists leads (
    lead_id         varchar primary key,
    rule_id         varchar not null,
    category        varchar not null,
    category_zh     varchar not null,
    subject_type    varchar not null,
    subject_id      varchar not null,
    fixmedins_codes varchar,
    first_time      timestamp,
    last_time       timestamp,
    n_events        bigint not null,
    n_institutions  bigint not null,
    amount          double not null,
    score           double not null,
    severity        integer not null,
    reason          varchar not null,  -- Chinese, one sentence
    reason_en       varchar not null,
    status          varchar not null,  -- open | confirmed | dismissed | reopened (lead_reviews)
    anomaly_score   double,            -- the model's 0-100 view of the subject, when scored
    anomaly_reason  varchar            -- and why, in Chinese (English in anomaly_scores)
);

-- Investigators' decisions before lead_reviews; read once into it (below), no longer written.
create table if not exists lead_status (
    lead_id    varchar primary key,
    status     varchar not null,  -- confirmed | dismissed | open
    note       varchar,
    decided_by varchar,
    decided_at timestamp not null
);

-- Every review decision ever recorded, append-only (tracecode mark, tracecode review
-- import): a lead's status is its latest decision (sql/review/apply.sql). The evidence
-- records the lead had when it was decided are kept with it: a dismissed lead comes back
-- as 'reopened' when a record outside them arrives for it.
create sequence if not exists lead_review_seq;

create table if not exists lead_reviews (
    review_id            bigint primary key default nextval('lead_review_seq'),
    lead_id              varchar not null,
    status               varchar not null,  -- confirmed | dismissed | open
    note                 varchar,
    decided_by           varchar not null,
    decided_at           timestamp not null,
    source               varchar not null,  -- 'mark', or the imported file's name
    evidence_rec_ids     bigint[],          -- null: not known (decisions from lead_status)
    evidence_fingerprint varchar            -- md5 of those rec_ids, to compare by eye
);

insert into lead_reviews (lead_id, status, note, decided_by, decided_at, source)
select s.lead_id, s.status, s.note, coalesce(s.decided_by, ''), s.decided_at, 'lead_status'
from lead_status as s
where not exists (
    select 1 from lead_reviews as r where r.lead_id = s.lead_id and r.source = 'lead_status'
);

-- The kept rule inputs (screened_sales, screened_stock_moves: see src/tracecode/inputs.py)
-- were built by the schema and views with this digest; any other digest rebuilds them.
create table if not exists screen_state (
    inputs_digest varchar not null,
    refreshed_at  timestamp not null,
    clock_as_of   timestamp   -- the data clock (view data_clock) when they were refreshed
);
