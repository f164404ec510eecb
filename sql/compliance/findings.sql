-- Compliance findings: institutions far below their peers in capturing and uploading
-- codes, from capture_institutions (measures.sql). Scored like leads (macro lead_score,
-- [score] settings) and kept apart from them. Parameters: [compliance] settings,
-- $upload_lag_days, and the [score] caps. Look-alikes that are not findings: an
-- institution uploading for fewer than $min_active_days days (new), one with fewer than
-- $min_insured_sales insured sales (a small clinic), and a closure its peers share (a
-- holiday: silence is counted beyond the peers' median), and a gap an institution that
-- uploads only some days shows anyway (silence must exceed three of its usual gaps).

delete from compliance_findings;

insert into compliance_findings by name
with judged as (
    select *
    from capture_institutions
    where connected
      and active_days >= $min_active_days
),

-- peers: judged institutions of the same type (pharmacy, clinic, hospital), or all of
-- them where a type has fewer than three
measured as (
    select *
    from judged
    where insured_sales >= $min_insured_sales
),

type_peers as (
    select
        fixmedins_type,
        median(capture_share) as peer_median,
        count(*) as n_peers
    from measured
    group by fixmedins_type
),

capture_peers as (
    select
        m.fixmedins_code,
        case
            when t.n_peers >= 3 then t.peer_median
            else (select median(capture_share) from measured)
        end as peer_median
    from measured as m
    join type_peers as t using (fixmedins_type)
),

capture_gap as (
    select
        j.*,
        'capture_gap' as category,
        3 as severity,
        j.capture_share as metric,
        p.peer_median,
        j.fund_without_codes as amount,
        j.insured_without_codes as n_events,
        '医保结算销售中仅 ' || round(100 * j.capture_share, 1) || '% 上传了追溯码（同类机构中位数 '
            || round(100 * p.peer_median, 1) || '%），' || j.insured_without_codes
            || ' 笔无码结算，医保基金支付 ' || round(j.fund_without_codes, 2) || ' 元' as what_zh,
        'had codes on only ' || round(100 * j.capture_share, 1) || '% of its insured sales (peers '
            || round(100 * p.peer_median, 1) || '%); ' || j.insured_without_codes
            || ' were settled without a code, the fund paying '
            || round(j.fund_without_codes, 2) || ' yuan' as what_en
    from measured as j
    join capture_peers as p using (fixmedins_code)
    where j.capture_share < p.peer_median - $capture_gap_points
),

-- silence beyond what every institution shows at the end of the data (a shared closure)
silence_peers as (
    select median(days_silent) as peer_median
    from judged
),

upload_silence as (
    select
        j.*,
        'upload_silence' as category,
        2 as severity,
        j.days_silent as metric,
        p.peer_median,
        0.0 as amount,
        1 as n_events,
        '自 ' || strftime(j.last_upload, '%Y-%m-%d %H:%M') || ' 起已 ' || round(j.days_silent, 1)
            || ' 天未上传任何数据（此前上传 ' || j.active_days || ' 天）' as what_zh,
        'has uploaded nothing for ' || round(j.days_silent, 1) || ' days since '
            || strftime(j.last_upload, '%Y-%m-%d %H:%M') || ' (after uploading on '
            || j.active_days || ' days)' as what_en
    from judged as j
    cross join silence_peers as p
    where j.days_silent - coalesce(p.peer_median, 0) >= $silence_days
      -- and far longer than its usual gap between upload days (a clinic uploading twice a
      -- week is not silent after four days)
      and j.days_silent >= 3 * (epoch(j.last_upload - j.first_upload) / 86400.0 + 1)
                             / j.active_days
      -- and long enough to miss many sales at its usual pace (a quiet shop's quiet days)
      and j.days_silent * j.sales / (epoch(j.last_upload - j.first_upload) / 86400.0 + 1)
          >= $silence_min_expected_sales
),

late_peers as (
    select median(late_share) as peer_median
    from judged
    where sales >= $min_insured_sales
),

late_upload as (
    select
        j.*,
        'late_upload' as category,
        2 as severity,
        j.late_share as metric,
        p.peer_median,
        j.fund_late as amount,
        j.late_sales as n_events,
        '有 ' || round(100 * j.late_share, 1) || '% 的销售晚于 ' || $upload_lag_days || ' 天才上传（同类中位数 '
            || round(100 * coalesce(p.peer_median, 0), 1) || '%，滞后中位数 '
            || round(j.lag_median_days, 1) || ' 天）' as what_zh,
        'uploaded ' || round(100 * j.late_share, 1) || '% of its sales more than '
            || $upload_lag_days || ' days late (peers '
            || round(100 * coalesce(p.peer_median, 0), 1) || '%, median lag '
            || round(j.lag_median_days, 1) || ' days)' as what_en
    from judged as j
    cross join late_peers as p
    where j.sales >= $min_insured_sales
      and j.late_share >= $late_share
      and j.late_share > 2 * coalesce(p.peer_median, 0)
),

found as (
    select * from capture_gap
    union all by name select * from upload_silence
    union all by name select * from late_upload
)

select
    'C' || left(md5(f.category || '|' || f.fixmedins_code), 16) as finding_id,
    f.category,
    l.category_zh,
    f.fixmedins_code,
    f.fixmedins_name,
    f.admdvs,
    f.metric,
    f.peer_median,
    f.amount,
    lead_score(f.severity, f.amount, f.n_events, 1,
               $amount_full_yuan, $events_full, $institutions_full) as score,
    '机构 ' || coalesce(f.fixmedins_name, f.fixmedins_code) || '（' || f.fixmedins_code || '）'
        || f.what_zh || '。' as reason,
    'Institution ' || f.fixmedins_code || ' ' || f.what_en || '.' as reason_en
from found as f
join compliance_labels as l using (category)
order by
    score desc,
    finding_id;
