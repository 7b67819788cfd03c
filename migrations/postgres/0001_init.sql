-- PostgreSQL twin of migrations/sqlite/0001_init.sql: same tables, same columns, same
-- meaning. Times stay unix milliseconds (BIGINT) so both backends read them the same way.

-- One row per person (or company-level lead): arrivals of the same person update it.
CREATE TABLE leads (
    id           TEXT PRIMARY KEY,
    identity_key TEXT NOT NULL UNIQUE,
    email        TEXT,
    domain       TEXT,
    data         TEXT NOT NULL,      -- the latest normalized lead, JSON
    arrivals     BIGINT NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,    -- unix ms
    updated_at   BIGINT NOT NULL
);
CREATE INDEX leads_email ON leads(email);

-- The durable queue: one row per arrival. Accepted means a row here.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    lead_id         TEXT NOT NULL REFERENCES leads(id),
    idempotency_key TEXT UNIQUE,
    payload         TEXT NOT NULL,   -- the lead as received, JSON
    status          TEXT NOT NULL,   -- queued | processing | done | failed | review
    attempts        BIGINT NOT NULL DEFAULT 0,
    lease_until     BIGINT,          -- unix ms by the database clock; past it the job is reclaimed
    error           TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- Claims look only at open jobs; a partial index keeps that scan small as history grows.
CREATE INDEX jobs_claim ON jobs(created_at) WHERE status IN ('queued', 'processing');
CREATE INDEX jobs_lead ON jobs(lead_id, created_at);

-- Decision history: every arrival's decision is kept.
CREATE TABLE decisions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id    TEXT NOT NULL REFERENCES leads(id),
    job_id     TEXT UNIQUE,
    score      BIGINT NOT NULL,
    grade      TEXT NOT NULL,
    route_rule TEXT NOT NULL,
    record     TEXT NOT NULL,        -- the decision, JSON
    decided_at BIGINT NOT NULL
);
CREATE INDEX decisions_lead ON decisions(lead_id, id);

-- Round-robin positions, shared by every replica, so a restart continues the rotation.
CREATE TABLE rotation (
    pool     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
