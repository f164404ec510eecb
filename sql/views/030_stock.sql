-- Stock movements code by code: inventory snapshots (3501) and stock changes (3502).
-- A table macro over named relations (as in 020_sales.sql); the view is over everything.
create or replace macro stock_moves_over(live, codes) as table
select
    r.rec_id,
    r.infno,
    r.src_file,
    r.line_no,
    r.fixmedins_code,
    r.fixmedins_bchno,
    r.event_time as move_time,
    r.inv_chg_type,
    case
        when r.infno = '3501' then 'snapshot'
        when r.inv_chg_type in ('101', '103', '106', '108', '110') then 'in'
        when r.inv_chg_type in ('102', '104', '105', '107', '109', '111') then 'out'
        else 'other'
    end as direction,
    r.med_list_codg,
    r.manu_lotnum,
    r.qty,
    c.code_seq,
    c.drug_trac_codg,
    c.code_id,
    c.code_format,
    c.product_key
from query_table(live) as r
join query_table(codes) as c using (rec_id)
where r.infno in ('3501', '3502');

create or replace view stock_moves as
from stock_moves_over('live_records', 'record_codes');

-- Purchases and purchase returns (3503/3504): they carry no codes.
create or replace view purchases as
select
    rec_id,
    infno,
    fixmedins_code,
    fixmedins_bchno,
    event_time as purchase_time,
    med_list_codg,
    spler_name,
    manu_lotnum,
    qty,
    price,
    purc_invo_no
from live_records
where infno in ('3503', '3504');
