-- Personal data in exports: ID numbers and names are masked unless a user asks otherwise.

-- 440106199001011234 -> 440106********1234: region and last four stay checkable
create or replace macro mask_certno(certno) as
    case
        when certno is null or certno = '' then certno
        when length(certno) <= 8 then repeat('*', length(certno))
        else left(certno, 6) || repeat('*', length(certno) - 10) || right(certno, 4)
    end;

-- 张三丰 -> 张**
create or replace macro mask_name(psn_name) as
    case
        when psn_name is null or psn_name = '' then psn_name
        else left(psn_name, 1) || repeat('*', length(psn_name) - 1)
    end;
