-- The durable queue, stored in the order of its key. Each accept inserts one job, and every
-- index on `jobs` is one more B-tree insert inside the intake's single writer, the thread
-- every accept waits on. Two of the four were not needed:
--   * a rowid table with a TEXT primary key keeps the key in an index of its own; WITHOUT
--     ROWID stores the row in the key's B-tree (a UUIDv7: new jobs land at its end);
--   * the unique index on `idempotency_key` held a NULL for every accept sent without a key;
--     a partial index holds only the keys (`idempotency_key = ?` still uses it).
-- And no foreign key to `leads`: its check was one more read of the leads' key a job, for a
-- lead the same transaction has just found or inserted (the intake writer, `accept_record`);
-- erasure deletes a person's jobs with the person (store/privacy.rs, LEAD_TABLES), as it
-- does the routing and delivery tables, which have none either.
-- Nothing references `jobs`, so it is rebuilt in place.
CREATE TABLE jobs_clustered (
    id              TEXT PRIMARY KEY NOT NULL,
    lead_id         TEXT NOT NULL,
    idempotency_key TEXT,
    payload         TEXT NOT NULL,   -- the lead as received, JSON
    status          TEXT NOT NULL,   -- queued | processing | done | failed | review
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,         -- unix ms; a processing job past it is reclaimed
    error           TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO jobs_clustered
    (id, lead_id, idempotency_key, payload, status, attempts, lease_until, error, created_at,
     updated_at)
SELECT id, lead_id, idempotency_key, payload, status, attempts, lease_until, error, created_at,
       updated_at
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_clustered RENAME TO jobs;
CREATE UNIQUE INDEX jobs_idempotency ON jobs(idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_claim ON jobs(status, created_at);
CREATE INDEX jobs_lead ON jobs(lead_id, created_at);
