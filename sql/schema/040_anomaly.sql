-- The anomaly model's verdict on every subject it scored: rebuilt each run by
-- tracecode.anomaly.run_model. Rows with is_lead become anomaly leads.

create table if not exists anomaly_scores (
    subject_type    varchar not null,  -- 'institution' | 'person'
    subject_id      varchar not null,  -- fixmedins_code or psn_no
    period          varchar,           -- window scored (institution) or month 'YYYY-MM' (person)
    anomaly_score   double not null,   -- 0-100, higher = more suspicious; ~50 ordinary
    rank            bigint not null,   -- 1 = most anomalous within subject_type
    explanation_zh  varchar,           -- one sentence; only the top ranks are explained
    explanation_en  varchar,
    drivers         json,              -- [{feature, value, typical, share (%)}], top first
    first_time      timestamp,         -- span of the sales behind the score
    last_time       timestamp,
    n_events        bigint,            -- net sale records behind the score
    amount          double,            -- yuan the fund paid for them
    fixmedins_codes varchar            -- ';'-joined: the institution, or where the person bought
);

alter table anomaly_scores add column if not exists n_peers bigint;     -- subjects of the type
alter table anomaly_scores add column if not exists robust_z double;    -- (score - median) / (1.4826 MAD)
alter table anomaly_scores add column if not exists is_lead boolean;    -- calibrate(): becomes a lead
alter table anomaly_scores add column if not exists standing_zh varchar; -- 排在 N 名参保人的前 x%
alter table anomaly_scores add column if not exists standing_en varchar;
alter table anomaly_scores add column if not exists fit_id varchar;     -- model_fits.fit_id
alter table anomaly_scores add column if not exists model_fit varchar;  -- version and fit date

-- Every fit of the kept model; the latest with kept = true scores until it is refitted.
create table if not exists model_fits (
    fit_id       varchar primary key,
    subject_type varchar not null,
    fitted_at    timestamp not null,
    data_until   date not null,       -- last day of the data it was fitted on
    n_rows       bigint not null,     -- feature rows it was fitted on (sampled from)
    version      integer not null,    -- tracecode.forest.MODEL_VERSION
    settings     json not null,       -- the hyperparameters it was fitted with
    path         varchar not null,    -- the joblib file (models/kept/<fit_id>.joblib)
    reason       varchar,             -- why it was fitted: no kept model, age, drift...
    kept         boolean not null
);

-- Each feature row's score under the fit that scored it, with a hash of its features:
-- a row whose hash is unchanged under the same fit keeps its score instead of being
-- scored again.
create table if not exists anomaly_rows (
    subject_type  varchar not null,
    subject_id    varchar not null,
    period        varchar,
    fit_id        varchar not null,
    row_hash      ubigint not null,
    anomaly_score double not null
);

-- the fit behind a model lead (null on rule leads)
alter table leads add column if not exists model_fit varchar;

-- Collusion rings (tracecode.rings): institutions and persons linked by codes that moved
-- against the rules, one row per ring; rebuilt each run. Each ring is also a `ring` lead.
create table if not exists rings (
    ring_id        varchar primary key,  -- the ring lead's lead_id
    n_institutions bigint not null,
    n_persons      bigint not null,      -- collectors: buyers of two or more moved codes
    n_codes        bigint not null,      -- codes that moved against the rules
    amount         double not null,      -- yuan the fund paid on those codes' evidence
    score          double not null,      -- 0-100, as the ring lead's
    members        varchar not null,     -- ';'-joined institutions, then persons
    reason         varchar not null,
    reason_en      varchar not null,
    lead_ids       varchar not null      -- ';'-joined: the rule leads behind the ring
);

create table if not exists ring_members (
    ring_id     varchar not null,
    member_type varchar not null,        -- 'institution' | 'person'
    member_id   varchar not null,        -- fixmedins_code or psn_no
    n_codes     bigint not null,         -- moved codes this member touched
    amount      double not null
);
alter table anomaly_scores add column if not exists tail double;        -- (score - q99) / (q99 - median)
