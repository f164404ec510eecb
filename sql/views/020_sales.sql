-- Sales and returns code by code, and `sales`: the net sales the rules screen.

-- Each view here is a table macro over named relations (`live`: shaped like
-- live_records, `codes`: like record_codes, `events`: like sale_events), and the view of
-- the same name applies it to the whole history. The screen applies the macros to the
-- touched codes' records (sql/screen/refresh.sql); Spark applies the same text to its
-- tables (tracecode.spark.inputs), so the bodies keep to the portable subset: no
-- `* exclude`/`* replace`, no asof join (tests/test_portable.py).

-- One row per code of a live sale (3505) or sale return (3506).
create or replace macro sale_events_over(live, codes) as table
select
    r.rec_id,
    r.infno,
    r.src_file,
    r.line_no,
    r.fixmedins_code,
    r.fixmedins_bchno,
    r.event_time as sel_time,
    r.med_list_codg,
    r.psn_no,
    r.psn_cert_type,
    r.certno,
    r.psn_name,
    r.manu_lotnum,
    r.manu_date,
    r.expy_end,
    r.trdn_flag,
    r.qty,                      -- smallest billing units on the line
    r.price,                    -- yuan per smallest unit
    r.rtal_docno,
    r.setl_id,
    r.mdtrt_setl_type,
    r.medins_prod_sel_no,
    r.n_codes,
    c.code_seq,
    c.drug_trac_codg,
    c.code_id,                  -- what identifies the pack
    c.code_format,
    c.product_key,
    -- a whole-pack line lists one code per pack: each carries its share of the line
    case when r.trdn_flag = '1' then r.qty else r.qty / r.n_codes end as units,
    coalesce(r.price, 0) * coalesce(r.qty, 0) / r.n_codes as amount,
    -- what the fund paid: insured settlements only, not self-pay
    case
        when fund_paid(r.mdtrt_setl_type, r.setl_id)
        then coalesce(r.price, 0) * coalesce(r.qty, 0) / r.n_codes
        else 0
    end as fund_amount
from query_table(live) as r
join query_table(codes) as c using (rec_id)
where r.infno in ('3505', '3506');

create or replace view sale_events as
from sale_events_over('live_records', 'record_codes');

-- Codeless sale returns (3506 listing no code) that name their sale: they take back all of
-- it (`sales`, `codeless_sales`), and touch its codes (sql/screen/scope.sql).
create or replace macro codeless_returns_over(live) as table
select
    fixmedins_code,
    medins_prod_sel_no
from query_table(live)
where infno = '3506'
  and n_codes = 0
  and medins_prod_sel_no is not null;

-- Net sales. A sale return (3506) takes back:
-- * when it names its sale (medins_prod_sel_no): the codes it lists from that sale (all
--   of the sale when it lists none); from a split sale (拆零), only the units it returns;
-- * when it names no sale of ours: the latest sale of the same code at the same
--   institution still standing before it (a counter's cancel takes back the sale just
--   made); a return with no such sale takes back nothing.
create or replace macro sales_over(events, live) as table
with sold as (
    select *
    from query_table(events)
    where infno = '3505'
),

returned as (
    select *
    from query_table(events)
    where infno = '3506'
),

named_pairs as (
    select
        s.rec_id,
        s.code_seq,
        r.rec_id as ret_rec_id,
        r.code_seq as ret_code_seq,
        r.units as ret_units
    from sold as s
    join returned as r
        on r.fixmedins_code = s.fixmedins_code
       and r.medins_prod_sel_no = s.fixmedins_bchno
       and r.code_id = s.code_id
),

-- units each sale line got back from returns naming it
named as (
    select
        rec_id,
        code_seq,
        sum(ret_units) as units_back
    from named_pairs
    group by rec_id, code_seq
),

after_named as (
    select
        s.*,
        n.units_back,
        -- a split sale partly returned keeps the rest of its units and money
        case when s.trdn_flag = '1' then s.units - coalesce(n.units_back, 0)
             else s.units end as units_kept,
        case when s.trdn_flag = '1' and s.units > 0
             then s.amount * (s.units - coalesce(n.units_back, 0)) / s.units
             else s.amount end as amount_kept,
        case when s.trdn_flag = '1' and s.units > 0
             then s.fund_amount * (s.units - coalesce(n.units_back, 0)) / s.units
             else s.fund_amount end as fund_amount_kept
    from sold as s
    left join named as n using (rec_id, code_seq)
    anti join codeless_returns_over(live) as w
        on w.fixmedins_code = s.fixmedins_code
       and w.medins_prod_sel_no = s.fixmedins_bchno
),

standing as (
    select *
    from after_named
    where units_back is null
       or (trdn_flag = '1' and units_kept > 1e-9)
),

unnamed_returns as (
    select r.*
    from returned as r
    anti join named_pairs as n
        on n.ret_rec_id = r.rec_id
       and n.ret_code_seq = r.code_seq
),

-- Standing sales push, unnamed returns pop, per institution and code in time order; the
-- running balance, floored at zero, is the number of sales a return could take back.
events as (
    select
        fixmedins_code,
        code_id,
        rec_id,
        code_seq,
        sel_time,
        fixmedins_bchno,
        false as is_return
    from standing
    union all
    select
        fixmedins_code,
        code_id,
        rec_id,
        code_seq,
        sel_time,
        fixmedins_bchno,
        true as is_return
    from unnamed_returns
),

-- (rec_id last: two versions of one record kept side by side still walk in one order,
-- the same each time the walk is read; Spark reads a CTE afresh where it is used)
walked as (
    select
        *,
        row_number() over w as step,
        sum(case when is_return then -1 else 1 end) over w as balance
    from events
    window w as (
        partition by fixmedins_code, code_id
        order by sel_time, is_return, fixmedins_bchno, code_seq, rec_id
        rows unbounded preceding
    )
),

levelled as (
    select
        *,
        -- the balance floored at zero: returns with nothing to take back change nothing
        balance - least(0, min(balance) over w) as level
    from walked
    window w as (
        partition by fixmedins_code, code_id
        order by step
        rows unbounded preceding
    )
),

pops as (
    select
        fixmedins_code,
        code_id,
        step,
        level + 1 as level
    from (
        select
            *,
            lag(level, 1, 0) over (partition by fixmedins_code, code_id order by step)
                as level_before
        from levelled
    ) as l
    where is_return
      and level_before > 0
),

pushes as (
    select *
    from levelled
    where not is_return
),

-- each effective return takes back the latest sale before it that brought the stack to
-- its level: walking each level's pushes and pops in step order, the last push seen
-- (an as-of lookup, spelled as a running max so that Spark reads it alike)
marks as (
    select
        fixmedins_code,
        code_id,
        level,
        step,
        false as is_pop
    from pushes
    union all
    select
        fixmedins_code,
        code_id,
        level,
        step,
        true as is_pop
    from pops
),

latest_push as (
    select
        fixmedins_code,
        code_id,
        is_pop,
        max(case when not is_pop then step end) over (
            partition by fixmedins_code, code_id, level
            order by step
            rows unbounded preceding
        ) as push_step
    from marks
),

taken_back as (
    select
        s.rec_id,
        s.code_seq
    from latest_push as p
    join pushes as s
        on s.fixmedins_code = p.fixmedins_code
       and s.code_id = p.code_id
       and s.step = p.push_step
    where p.is_pop
)

-- the columns of sale_events less infno and medins_prod_sel_no, with what stands
select
    s.rec_id,
    s.src_file,
    s.line_no,
    s.fixmedins_code,
    s.fixmedins_bchno,
    s.sel_time,
    s.med_list_codg,
    s.psn_no,
    s.psn_cert_type,
    s.certno,
    s.psn_name,
    s.manu_lotnum,
    s.manu_date,
    s.expy_end,
    s.trdn_flag,
    s.qty,
    s.price,
    s.rtal_docno,
    s.setl_id,
    s.mdtrt_setl_type,
    s.n_codes,
    s.code_seq,
    s.drug_trac_codg,
    s.code_id,
    s.code_format,
    s.product_key,
    s.units_kept as units,
    s.amount_kept as amount,
    s.fund_amount_kept as fund_amount
from standing as s
anti join taken_back as t
    on t.rec_id = s.rec_id
   and t.code_seq = s.code_seq;

create or replace view sales as
from sales_over('sale_events', 'live_records');

-- Sale returns, code by code (for return_resold).
create or replace view sale_returns as
select *
from sale_events
where infno = '3506';
