-- Twin of sqlite/0009_jobs_clustered.sql, which rebuilds SQLite's `jobs` as a WITHOUT ROWID
-- table in its key's order and drops an index the single SQLite writer paid for on every
-- accept. Both are SQLite storage layouts: PostgreSQL's heap tables and btree indexes have
-- no such choice, and PostgreSQL's accepts run in parallel transactions, so an index entry
-- an accept (`jobs.idempotency_key UNIQUE`, 0001) is not on one writer's path that every
-- other accept waits on. Nothing to change; kept so that both folders
-- hold the same file names and a reader finds the reason here.
SELECT 1;
