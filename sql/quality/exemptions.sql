-- Upload habits that would fool a rule, found over the whole history before the rules run
-- (inside the screen, `sale_records`, `sales` and `stock_moves` read the kept tables).
-- The rules named below read these tables to stay out of them; the data-quality findings
-- (findings.sql) report them to the bureau. Parameters: [quality] settings.

-- A value that the institution's system fills in for every buyer it does not know: one
-- certno or one psn_no on many different buyers, or one name on many insured numbers at
-- one institution. It says nothing about any of those buyers: identity_mismatch,
-- card_hopping and impossible_travel do not judge the sales carrying one.
delete from placeholder_identities;

insert into placeholder_identities by name
with buyers as (
    select
        fixmedins_code,
        psn_no,
        upper(trim(certno)) as certno,
        trim(psn_name) as psn_name
    from sale_records
),

certnos as (
    select
        'certno' as field,
        certno as value,
        null::varchar as fixmedins_code,
        count(distinct psn_no) as n_buyers
    from buyers
    where nullif(certno, '') is not null
    group by certno
    having count(distinct psn_no) >= $placeholder_min_buyers
),

-- an insured number carried with many ID numbers, or many names
psn_nos as (
    select
        'psn_no' as field,
        psn_no as value,
        null::varchar as fixmedins_code,
        greatest(count(distinct certno), count(distinct psn_name)) as n_buyers
    from buyers
    where nullif(psn_no, '') is not null
    group by psn_no
    having greatest(count(distinct certno), count(distinct psn_name)) >= $placeholder_min_buyers
),

-- names repeat in a city (张伟); on many insured numbers at one shop they are a default
names as (
    select
        'psn_name' as field,
        psn_name as value,
        fixmedins_code,
        count(distinct psn_no) as n_buyers
    from buyers
    where nullif(psn_name, '') is not null
    group by
        psn_name,
        fixmedins_code
    having count(distinct psn_no) >= $placeholder_min_buyers
)

select * from certnos
union all
select * from psn_nos
union all
select * from names;

-- A clock that looks 12-hour: an institution open past 13:00 (or giving no hours) whose
-- many timed sales all fall before 13:00. Its afternoon sales then read as night sales
-- (08:30 pm -> 08:30), so off_hours_burst does not judge it.
delete from twelve_hour_clocks;

insert into twelve_hour_clocks by name
with timed_sales as (
    select
        s.fixmedins_code,
        s.sel_time
    from sale_records as s
    anti join (
        select rec_id
        from records
        where event_date_only
    ) as d using (rec_id)
)

select
    t.fixmedins_code,
    count(*) as n_sales,
    max(t.sel_time::time) as latest_time_of_day,
    min(t.sel_time) as first_time,
    max(t.sel_time) as last_time
from timed_sales as t
left join institutions as i using (fixmedins_code)
where i.close_time is null
   or i.close_time > time '13:00'
   or i.close_time <= i.open_time
group by t.fixmedins_code
having count(*) >= $twelve_hour_min_sales
   and max(t.sel_time::time) < time '13:00';

-- Dispensing sent as an inbound: an institution whose 3502 101 (transfer in) records
-- mostly name codes it had sold itself hours before, as if its system mirrored every sale
-- as a stock movement in the wrong direction. reflux_inbound does not count those 101s
-- at the seller itself (the window is kept with the institution, `mirror_hours`).
delete from dispensing_as_inbound;

insert into dispensing_as_inbound by name
with transfers_in as (
    select
        rec_id,
        fixmedins_code,
        code_id,
        move_time
    from stock_moves
    where infno = '3502'
      and inv_chg_type = '101'
      and direction = 'in'
),

mirrored as (
    select distinct t.rec_id, t.code_id
    from transfers_in as t
    join sales as s
        on s.code_id = t.code_id
       and s.fixmedins_code = t.fixmedins_code
       -- after the sale: a transfer in before it is how the box got there
       and t.move_time >= s.sel_time
       and t.move_time <= s.sel_time + to_seconds($mirror_hours * 3600)
)

select
    t.fixmedins_code,
    count(*) as n_inbounds,
    count(m.rec_id) as n_mirrored,
    $mirror_hours::double as mirror_hours,
    min(t.move_time) as first_time,
    max(t.move_time) as last_time
from transfers_in as t
left join mirrored as m using (rec_id, code_id)
group by t.fixmedins_code
having count(m.rec_id) >= $mirror_min_inbounds
   and count(m.rec_id) >= $mirror_min_share * count(*);
