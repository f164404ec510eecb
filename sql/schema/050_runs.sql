-- The run record: what every run did, so an investigator can tell which run raised a lead
-- and an operator which run failed. `runs` itself is in 030_leads.sql.

-- running | succeeded | failed | crashed (found still running by the next run: killed)
alter table runs add column if not exists outcome varchar;
alter table runs add column if not exists error varchar;         -- a failed run's message
alter table runs add column if not exists pid integer;
alter table runs add column if not exists host varchar;
alter table runs add column if not exists flow_run_id varchar;   -- Prefect's, when a flow ran it
alter table runs add column if not exists files_ingested integer;
alter table runs add column if not exists lines_read bigint;
alter table runs add column if not exists records_stored bigint;
alter table runs add column if not exists records_replaced bigint;
alter table runs add column if not exists lines_quarantined bigint;
alter table runs add column if not exists leads bigint;
-- digest of every rule's SQL and the rule settings it ran with; the anomaly model's version
alter table runs add column if not exists rules_version varchar;
alter table runs add column if not exists model_version varchar;
alter table runs add column if not exists settings json;
-- a run that did not finish: the later run whose summary counts what it ingested
alter table runs add column if not exists reported_by varchar;
