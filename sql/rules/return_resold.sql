-- id: return_resold
-- category: return_resold
-- subject: code
-- severity: 4
-- why: A pack returned (3506) at one institution stays there until it is transferred out (3502 102) or in elsewhere (101). When the same code is later sold (net) at another institution with no such transfer recorded between the return and that sale, the returned, already-settled box went round the books to be sold again (the Xining case: a clinic's returns re-sold by a pharmacy). A transfer counts when its time lies between the return and the resale, or up to the upload lag after the resale (a receipt entered after the sale). A return and re-sale at the same counter is not this, nor is a box re-sold where it was returned before it turned up elsewhere (that is a duplicate sale).
-- reason_zh: 追溯码 {subject_id} 于 {first_date} 退货后，未见调拨出入库记录，至 {last_date} 又在另一机构再次销售（涉及 {institutions_zh}），疑似退货药品被转卖，医保基金支付 {amount} 元。
-- reason_en: Code {subject_id} was returned on {first_date} and, with no transfer recorded, sold again at another institution by {last_date} ({institutions_en}), as if the returned box were passed on; the fund paid {amount} yuan.

with returns as (
    select *
    from sale_returns
    where code_format <> 'invalid'
),

resales as (
    select *
    from sales
    where code_format <> 'invalid'
),

-- each return paired with every later net sale of its code elsewhere
pairs as (
    select
        r.code_id,
        r.rec_id as return_rec_id,
        r.code_seq as return_code_seq,
        r.fixmedins_code as returned_at,
        r.sel_time as returned_time,
        s.rec_id as sale_rec_id,
        s.code_seq as sale_code_seq,
        s.fixmedins_code as sold_at,
        s.sel_time as sold_time
    from returns as r
    join resales as s
        on s.code_id = r.code_id
       and s.fixmedins_code <> r.fixmedins_code
       and s.sel_time > r.sel_time
),

transfers as (
    select
        code_id,
        fixmedins_code,
        inv_chg_type,
        move_time
    from stock_moves
    where inv_chg_type in ('101', '102')
),

-- a transfer out of the returning institution or into the selling one explains the move
transferred as (
    select
        p.return_rec_id,
        p.return_code_seq,
        p.sale_rec_id,
        p.sale_code_seq
    from pairs as p
    join transfers as t
        on t.code_id = p.code_id
       and t.move_time >= p.returned_time
       and t.move_time <= p.sold_time + to_seconds($upload_lag_days * 86400)
    where (t.inv_chg_type = '102' and t.fixmedins_code = p.returned_at)
       or (t.inv_chg_type = '101' and t.fixmedins_code = p.sold_at)
),

-- so does a re-sale where it was returned first: the box left again by that sale, and a
-- second sale elsewhere is a duplicate (the dup_* rules), not a return re-sold
resold_in_place as (
    select
        p.return_rec_id,
        p.return_code_seq,
        p.sale_rec_id,
        p.sale_code_seq
    from pairs as p
    join resales as s
        on s.code_id = p.code_id
       and s.fixmedins_code = p.returned_at
       and s.sel_time >= p.returned_time
       and s.sel_time <= p.sold_time
),

explained as (
    select * from transferred
    union
    select * from resold_in_place
),

unexplained as (
    select p.*
    from pairs as p
    anti join explained as e
        on e.return_rec_id = p.return_rec_id
       and e.return_code_seq = p.return_code_seq
       and e.sale_rec_id = p.sale_rec_id
       and e.sale_code_seq = p.sale_code_seq
),

-- the evidence: the returns and the re-sales of the unexplained pairs, each once
returned_rows as (
    select r.*
    from returns as r
    semi join unexplained as u
        on u.return_rec_id = r.rec_id
       and u.return_code_seq = r.code_seq
),

resold_rows as (
    select s.*
    from resales as s
    semi join unexplained as u
        on u.sale_rec_id = s.rec_id
       and u.sale_code_seq = s.code_seq
)

select
    code_id as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    drug_trac_codg as code,
    psn_no,
    null::double as amount,  -- a return pays nothing
    'returned' as note
from returned_rows

union all

select
    code_id as subject_id,
    rec_id,
    fixmedins_code,
    sel_time as event_time,
    drug_trac_codg as code,
    psn_no,
    fund_amount as amount,
    'sold again' as note
from resold_rows
