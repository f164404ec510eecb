-- Merge the model's verdicts (anomaly_scores) into the lead list.
-- * A person or institution already led by a rule keeps its lead(s) and gains the model's
--   score and explanation.
-- * The subjects calibrate() marked as leads (is_lead: far above their population's bulk)
--   that no rule led become anomaly_* leads, with the records behind the score as their
--   evidence. The reason says how unusual the subject is among how many peers.
-- * The model suggests, it does not prove: severity 2, below every rule (3-5) of the same
--   money, unless corroborated: the subject appears in some rule lead's evidence (a
--   person who bought a flagged code, an institution where one was sold): severity 3.
-- Params: $amount_full_yuan, $events_full, $institutions_full.

update leads
set
    anomaly_score = a.anomaly_score,
    anomaly_reason = a.explanation_zh
from anomaly_scores as a
where a.subject_type = leads.subject_type
  and a.subject_id = leads.subject_id;

create or replace temp table anomaly_leads as
with corroborated as (
    select distinct
        'person' as subject_type,
        psn_no as subject_id
    from lead_evidence
    where rule_id not like 'anomaly_%'
      and psn_no is not null
    union
    select distinct
        'institution' as subject_type,
        fixmedins_code as subject_id
    from lead_evidence
    where rule_id not like 'anomaly_%'
      and fixmedins_code is not null
),

candidates as (
    select
        a.*,
        c.subject_id is not null as is_corroborated
    from anomaly_scores as a
    left join corroborated as c using (subject_type, subject_id)
    where a.is_lead
)

select
    lead_id('anomaly_' || a.subject_type, a.subject_type, a.subject_id) as lead_id,
    'anomaly_' || a.subject_type as rule_id,
    'anomaly_' || a.subject_type as category,
    a.subject_type,
    a.subject_id,
    a.fixmedins_codes,
    a.first_time,
    a.last_time,
    coalesce(a.n_events, 0) as n_events,
    len(string_split(coalesce(a.fixmedins_codes, ''), ';')) as n_institutions,
    round(coalesce(a.amount, 0), 2) as amount,
    lead_score(case when a.is_corroborated then 3 else 2 end,
               coalesce(a.amount, 0), coalesce(a.n_events, 0),
               len(string_split(coalesce(a.fixmedins_codes, ''), ';')),
               $amount_full_yuan, $events_full, $institutions_full) as score,
    case when a.is_corroborated then 3 else 2 end as severity,
    a.standing_zh || '；' || coalesce(a.explanation_zh, '模型判定该主体行为异常') as reason,
    a.standing_en || '; '
        || coalesce(a.explanation_en, 'the model ranks this subject''s behaviour abnormal.')
        as reason_en,
    a.anomaly_score,
    a.explanation_zh as anomaly_reason,
    a.model_fit
from candidates as a
where not exists (
      select 1
      from leads as l
      where l.subject_type = a.subject_type
        and l.subject_id = a.subject_id
  );

insert into leads by name
select
    a.* exclude (reason, reason_en),
    a.reason,
    a.reason_en,
    c.category_zh,
    coalesce(s.status, 'open') as status
from anomaly_leads as a
join anomaly_categories as c using (category)
left join lead_status as s using (lead_id);

-- evidence: the subject's net sales over the span the model scored
delete from lead_evidence
where rule_id like 'anomaly_%';

insert into lead_evidence by name
with evidence as (
    select
        a.lead_id,
        a.rule_id,
        a.subject_id,
        a.first_time,
        a.last_time,
        s.*
    from anomaly_leads as a
    join sales as s on s.fixmedins_code = a.subject_id
    where a.subject_type = 'institution'
    union all by name
    select
        a.lead_id,
        a.rule_id,
        a.subject_id,
        a.first_time,
        a.last_time,
        s.*
    from anomaly_leads as a
    join sales as s on s.psn_no = a.subject_id
    where a.subject_type = 'person'
)

select
    lead_id,
    rule_id,
    subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    drug_trac_codg as code,
    psn_no,
    fund_amount as amount
from evidence
where sel_time between first_time and last_time;
