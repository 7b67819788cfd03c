-- One row per person (or company-level lead): arrivals of the same person update it.
CREATE TABLE leads (
    id           TEXT PRIMARY KEY,
    identity_key TEXT NOT NULL UNIQUE,
    email        TEXT,
    domain       TEXT,
    data         TEXT NOT NULL,      -- the latest normalized lead, JSON
    arrivals     INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,   -- unix ms
    updated_at   INTEGER NOT NULL
);
CREATE INDEX leads_email ON leads(email);

-- The durable queue: one row per arrival. Accepted means a row here.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    lead_id         TEXT NOT NULL REFERENCES leads(id),
    idempotency_key TEXT UNIQUE,
    payload         TEXT NOT NULL,   -- the lead as received, JSON
    status          TEXT NOT NULL,   -- queued | processing | done | failed | review
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,         -- unix ms; a processing job past it is reclaimed
    error           TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX jobs_claim ON jobs(status, created_at);
CREATE INDEX jobs_lead ON jobs(lead_id, created_at);

-- Decision history: every arrival's decision is kept.
CREATE TABLE decisions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id    TEXT NOT NULL REFERENCES leads(id),
    job_id     TEXT UNIQUE,
    score      INTEGER NOT NULL,
    grade      TEXT NOT NULL,
    route_rule TEXT NOT NULL,
    record     TEXT NOT NULL,        -- the decision, JSON
    decided_at INTEGER NOT NULL
);
CREATE INDEX decisions_lead ON decisions(lead_id, id);

-- Round-robin positions, so a restart continues the rotation.
CREATE TABLE rotation (
    pool     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
