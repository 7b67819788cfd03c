-- Who is who, apart from what is known about them. An accept used to upsert the person's
-- `leads` row: a row with the normalized lead in a table with two indexes, three B-trees
-- written inside the intake's single writer for every new person. Measured, skipping them
-- was worth +15-19% accepted leads a second (docs/performance.md, thirteenth round).
--
-- Now an accept writes two things: the person's identity (this narrow table, one B-tree,
-- which also makes two arrivals of one person one lead before either is decided) and the
-- job (the arrival, as received). The `leads` row is written by the worker that decides the
-- arrival, in the transaction that records the decision and already updated that row
-- (sqlite.rs, `complete` and `fail`), so the work moves off the accept's path instead of
-- being done twice. Until then the lead is *pending*: every read by id, email or external id
-- finds it through this table and its jobs (`GET /v1/leads/{id}`, erasure, outcomes).
-- `leads.arrivals` now counts the arrivals decided (nothing reads it; `GET` lists the jobs).
CREATE TABLE identities (
    identity_key TEXT PRIMARY KEY NOT NULL,  -- `email:…`, `external:…`, `domain:…`, or a CRM record's
    lead_id      TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO identities (identity_key, lead_id) SELECT identity_key, id FROM leads;

-- The identity of the person an arrival belongs to, so the worker can write the lead's row
-- (`leads.identity_key` is NOT NULL and unique) without normalizing anything. NULL on jobs
-- made before this migration: their leads' rows exist already.
ALTER TABLE jobs ADD COLUMN identity_key TEXT;
