-- PostgreSQL twin of migrations/sqlite/0004_outbox.sql: same tables, same columns, same
-- meaning; times are unix milliseconds (BIGINT).

-- Delivery: every side effect leadgate performs in a CRM or sequencing tool, recorded with
-- the CRM's answer. A row is written (`pending`) before the call and closed (`ok` or
-- `failed`) after it, so a retry after a crash or a 5xx checks here first and never creates
-- a second record or enrollment; a crash between the call and the close is made harmless
-- by natural keys (upsert by email / external id, search before create, enrollment checks).
-- No foreign keys to leads: erasing a person must not be blocked by delivery history.
CREATE TABLE outbox (
    effect_key TEXT PRIMARY KEY,     -- job:JOB:decision | job:JOB:CONNECTOR:write | lead:LEAD:CONNECTOR:enroll:SEQUENCE ...
    lead_id    TEXT NOT NULL,
    job_id     TEXT,
    connector  TEXT NOT NULL,
    op         TEXT NOT NULL,        -- decide | write | enroll | find ...
    status     TEXT NOT NULL,        -- pending | ok | failed
    decision   TEXT,                 -- on the decide row: the decision being delivered, JSON
    record_id  TEXT,                 -- the CRM record written or enrolled
    result_id  TEXT,                 -- e.g. the enrollment id
    answer     TEXT,                 -- the CRM's answer, JSON (no secrets)
    error      TEXT,
    attempts   BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,      -- unix ms
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_lead ON outbox(lead_id, created_at);
CREATE INDEX outbox_record ON outbox(connector, record_id, updated_at);

-- Polling intake: how far each polled CRM has been read (its own modification timestamp),
-- so a restart neither misses nor repeats leads.
CREATE TABLE poll_cursors (
    connector  TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
