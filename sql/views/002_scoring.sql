-- A lead's priority, 0-100 (README, "Scoring"): severity of the category, money the fund
-- paid, repetition and spread. The caps come from ScoreSettings.
create or replace macro lead_score(
    severity, amount, n_events, n_institutions, amount_full, events_full, institutions_full
) as round(
    severity * 10
    + 20 * least(1, ln(1 + greatest(amount, 0)) / ln(1 + amount_full))
    + 15 * least(1, ln(greatest(n_events, 1)) / ln(greatest(events_full, 2)))
    + 15 * least(1, (greatest(n_institutions, 1) - 1) / greatest(institutions_full - 1, 1)),
    1
);
