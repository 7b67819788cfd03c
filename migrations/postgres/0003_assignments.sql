-- PostgreSQL twin of migrations/sqlite/0003_assignments.sql.
-- Routing state: assignments per owner per day, SLA-tracked assignments, owners' touches,
-- members paused at run time, and the routing audit trail. No foreign keys to leads: erasing
-- a person (DELETE /v1/leads) must not be blocked by routing history, which holds no
-- personal data (lead ids and CRM owner ids only).

-- How many leads each owner got on each of their local days (capacity, load balancing).
CREATE TABLE route_counts (
    owner    TEXT NOT NULL,
    day      TEXT NOT NULL,             -- the owner's local date, YYYY-MM-DD
    assigned BIGINT NOT NULL,
    PRIMARY KEY (owner, day)
);

-- Every assignment of a lead to an owner; open rows carry an SLA deadline.
CREATE TABLE route_assignments (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id         TEXT NOT NULL,
    rule            TEXT NOT NULL,
    pool            TEXT,
    owner           TEXT NOT NULL,
    assigned_at     BIGINT NOT NULL,    -- unix ms
    sla_ms          BIGINT,             -- the SLA, when the assignment carries one
    due_at          BIGINT,             -- unix ms; NULL without an SLA
    status          TEXT NOT NULL,      -- open | met | reassigned | escalated | superseded | untracked
    step            BIGINT NOT NULL DEFAULT 0,    -- SLA reassignments before this one
    previous_owners TEXT NOT NULL DEFAULT '[]',   -- JSON list of owners who had the lead
    closed_at       BIGINT,
    note            TEXT
);
CREATE INDEX route_assignments_due ON route_assignments(status, due_at);
CREATE INDEX route_assignments_lead ON route_assignments(lead_id, id);

-- An owner worked the lead (a call, an email, a status change), as reported.
CREATE TABLE route_touches (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id  TEXT NOT NULL,
    owner    TEXT,                      -- NULL: whoever owns the lead
    activity TEXT,
    at       BIGINT NOT NULL
);
CREATE INDEX route_touches_lead ON route_touches(lead_id, at);

-- Members paused at run time; pool '*' pauses the owner in every pool.
CREATE TABLE route_pauses (
    pool      TEXT NOT NULL,
    owner     TEXT NOT NULL,
    reason    TEXT,
    paused_at BIGINT NOT NULL,
    PRIMARY KEY (pool, owner)
);

-- The routing audit trail: assigned, touched, sla_met, reassigned, escalated, paused, resumed.
CREATE TABLE route_events (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id TEXT,
    at      BIGINT NOT NULL,
    event   TEXT NOT NULL,
    owner   TEXT,
    detail  TEXT
);
CREATE INDEX route_events_lead ON route_events(lead_id, id);
