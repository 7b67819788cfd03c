-- Backfills (`leadgate backfill --crm ID`): how far each pass over a CRM's existing records
-- has gone. One row per connector and parameters (since, filter); `cursor` is the next page
-- to read, committed only after that page's writes are closed in the outbox, so a process
-- killed mid-page reads the page again and the outbox keeps it from writing anything twice.
-- A finished pass (status 'done') is begun again with the next generation, whose outbox
-- effect keys are new.
CREATE TABLE backfill_runs (
    connector  TEXT NOT NULL,
    params     TEXT NOT NULL,          -- digest of --since and --filter
    generation BIGINT NOT NULL,
    cursor     TEXT,                   -- the next page's cursor; NULL: the first page
    pages      BIGINT NOT NULL DEFAULT 0,
    counts     TEXT NOT NULL,          -- JSON: read, changed, unchanged, written, failed by reason
    status     TEXT NOT NULL,          -- running | done
    started_at BIGINT NOT NULL,          -- unix ms
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (connector, params)
);
