-- Sales and returns code by code, and `sales`: the net sales the rules screen.

-- One row per code of a live sale (3505) or sale return (3506).
create or replace view sale_events as
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
        when r.mdtrt_setl_type = '1'
          or (r.mdtrt_setl_type is null and nullif(r.setl_id, '') is not null)
        then coalesce(r.price, 0) * coalesce(r.qty, 0) / r.n_codes
        else 0
    end as fund_amount
from live_records as r
join record_codes as c using (rec_id)
where r.infno in ('3505', '3506');

-- Net sales: a sale's code counts unless a sale return (3506) took it back, either a
-- return naming the sale (medins_prod_sel_no), for the codes it lists or, listing none,
-- the whole sale; or a return of the same code at the same institution naming no sale
-- of ours, which takes back that code's sales there in time order, one each.
create or replace view sales as
with sold as (
    select *
    from sale_events
    where infno = '3505'
),

returned as (
    select *
    from sale_events
    where infno = '3506'
),

codeless_returns as (
    select
        fixmedins_code,
        medins_prod_sel_no
    from live_records
    where infno = '3506'
      and n_codes = 0
      and medins_prod_sel_no is not null
),

named as (
    select
        s.rec_id,
        s.code_seq,
        r.rec_id as ret_rec_id,
        r.code_seq as ret_code_seq
    from sold as s
    join returned as r
        on r.fixmedins_code = s.fixmedins_code
       and r.medins_prod_sel_no = s.fixmedins_bchno
       and r.code_id = s.code_id
),

standing as (
    select s.*
    from sold as s
    anti join named as n
        on n.rec_id = s.rec_id
       and n.code_seq = s.code_seq
    anti join codeless_returns as w
        on w.fixmedins_code = s.fixmedins_code
       and w.medins_prod_sel_no = s.fixmedins_bchno
),

unnamed_returns as (
    select r.*
    from returned as r
    anti join named as n
        on n.ret_rec_id = r.rec_id
       and n.ret_code_seq = r.code_seq
),

standing_ranked as (
    select
        rec_id,
        code_seq,
        fixmedins_code,
        code_id,
        row_number() over (
            partition by fixmedins_code, code_id
            order by sel_time, fixmedins_bchno, code_seq
        ) as k
    from standing
),

unnamed_ranked as (
    select
        fixmedins_code,
        code_id,
        row_number() over (
            partition by fixmedins_code, code_id
            order by sel_time, fixmedins_bchno, code_seq
        ) as k
    from unnamed_returns
),

taken_back as (
    select
        s.rec_id,
        s.code_seq
    from standing_ranked as s
    join unnamed_ranked as u using (fixmedins_code, code_id, k)
)

select s.* exclude (infno, medins_prod_sel_no)
from standing as s
anti join taken_back as t
    on t.rec_id = s.rec_id
   and t.code_seq = s.code_seq;

-- Sale returns, code by code (for return_resold).
create or replace view sale_returns as
select *
from sale_events
where infno = '3506';
