-- The quick check that tells a registered file unchanged without reading it: size and
-- mtime as in ingested_files, plus ctime (which a user cannot set back, so an edit that
-- keeps the mtime still shows) and inode (a file replaced by another). Null on files
-- registered before: they are hashed once and their stat recorded.
alter table ingested_files add column if not exists ctime_ns bigint;

alter table ingested_files add column if not exists inode bigint;

-- What happened to a file rather than to a line, each noticed once: 'refused' (a
-- symlink out of the landing directory, a dangling link, a FIFO, socket or device: never
-- opened; also one quarantine row with line_no 0), 'changed' (registered, now with other
-- content: not read again) or 'disappeared' (registered, gone; its records stay).
create table if not exists file_notices (
    path       varchar not null,  -- relative to LANDING/messages
    kind       varchar not null,
    detail     varchar not null,
    run_id     varchar not null,
    noticed_at timestamp not null
);
