-- The anomaly model's verdict on every subject it scored: rebuilt each run by
-- tracecode.anomaly.run_model. The top of each subject type becomes anomaly leads.

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
