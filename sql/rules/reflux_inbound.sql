-- id: reflux_inbound
-- category: reflux_inbound
-- subject: code
-- severity: 4
-- why: A whole pack sold to a patient has left the supply chain. When its code later enters an institution's stock by a 3502 inbound (101 transfer in, 103 stock-take gain, 106 other in, 108 purchase, 110 donation), the dispensed box was bought back and fed into trade again (回流药: collectors buying insured drugs from patients): a box that may be sold and settled again. The sale judged is the code's latest net sale: a sale returned (3506) or deleted (3507) puts the box back legitimately and does not count; once the re-entered box is sold again the code has two net sales and the duplicate rules (dup_*) own the lead, so this one is the early warning for a sold box sitting in stock. Split sales (拆零) leave the opened pack in the pharmacy and are not counted. At the selling institution itself an inbound after the sale counts only when the box was already in its stock before the sale (a box cannot come in twice without leaving); else it is the receipt for that very sale booked late (a sale without stock is no_inbound's business). An institution whose system sends its dispensing as 3502 101 transfers in (dispensing_as_inbound: most of its 101s name a code it sold itself up to [quality] mirror_hours before) is a data-quality finding: its own 101s that follow its own sale of the code within that window are not counted; an inbound elsewhere, or of another type, still is. At an institution whose clock looks 12-hour (twelve_hour_clocks), a morning sale time may be the afternoon's, so the sale is judged at the later reading (12 hours on): an inbound between the two readings is not counted.
-- reason_zh: 追溯码 {subject_id} 已整盒销售给参保人后又被入库（{institutions_zh}，{first_date} 至 {last_date}），疑似回流药，医保基金已支付 {amount} 元。
-- reason_en: Code {subject_id} was sold to a patient as a whole pack and later taken into stock again ({institutions_en}, {first_date} to {last_date}), as if bought back (reflux); the fund paid {amount} yuan.

with sold as (
    select *
    from sales
    where code_format <> 'invalid'
),

-- the latest net sale of each code, when it took the whole pack
last_sales as (
    select *
    from sold
    qualify row_number() over (
        partition by code_id
        order by sel_time desc, rec_id desc, code_seq desc
    ) = 1
),

last_whole_pack_sales as (
    select
        s.*,
        case
            when c.fixmedins_code is not null and hour(s.sel_time) < 12
                then s.sel_time + interval 12 hour
            else s.sel_time
        end as judged_time
    from last_sales as s
    left join twelve_hour_clocks as c using (fixmedins_code)
    where coalesce(s.trdn_flag, '0') <> '1'
),

inbounds as (
    select *
    from stock_moves
    where infno = '3502'
      and direction = 'in'
),

-- the 101s of an institution that sends dispensing as a transfer in, mirroring its sales
mirrored_dispensing as (
    select
        i.rec_id,
        i.code_id
    from inbounds as i
    join dispensing_as_inbound as d using (fixmedins_code)
    join last_whole_pack_sales as s
        on s.code_id = i.code_id
       and s.fixmedins_code = i.fixmedins_code
       and i.move_time >= s.sel_time
       and i.move_time <= s.sel_time + to_seconds(d.mirror_hours * 3600)
    where i.inv_chg_type = '101'
),

-- sales of boxes the seller had in stock (inventory or inbound) by the time of the sale
sold_from_stock as (
    select
        s.rec_id,
        s.code_seq
    from last_whole_pack_sales as s
    semi join stock_moves as m
        on m.code_id = s.code_id
       and m.fixmedins_code = s.fixmedins_code
       and m.direction in ('snapshot', 'in')
       and m.move_time <= s.judged_time
),

-- inbounds after that sale; at the seller itself only when the box was in its stock
-- before the sale (a box cannot come in twice without leaving), since otherwise the
-- inbound is the receipt for that very sale, booked late (and the sale no_inbound's case)
reentries as (
    select i.*
    from inbounds as i
    join last_whole_pack_sales as s
        on s.code_id = i.code_id
       and i.move_time > s.judged_time
    left join sold_from_stock as f
        on f.rec_id = s.rec_id
       and f.code_seq = s.code_seq
    anti join mirrored_dispensing as m
        on m.rec_id = i.rec_id
       and m.code_id = i.code_id
    where i.fixmedins_code <> s.fixmedins_code
       or f.rec_id is not null
)

select
    s.code_id as subject_id,
    s.rec_id,
    s.fixmedins_code,
    s.sel_time as event_time,
    s.drug_trac_codg as code,
    s.psn_no,
    s.fund_amount as amount,
    'sold' as note
from last_whole_pack_sales as s
semi join reentries as r using (code_id)

union all

select
    code_id as subject_id,
    rec_id,
    fixmedins_code,
    move_time as event_time,
    drug_trac_codg as code,
    null as psn_no,
    null::double as amount,
    'taken into stock (' || inv_chg_type || ')' as note
from reentries
