-- Twin of sqlite/0010_identities.sql, which moves SQLite's `leads` row write off the accept
-- path (a narrow `identities` table written at accept, the lead's row at decision) because
-- SQLite admits one writer and every accept waits on it. PostgreSQL accepts in parallel
-- transactions and keeps writing the person's `leads` row at accept (postgres.rs,
-- `accept`), so a pending lead is found through `leads` as before. Nothing to change; kept
-- so that both folders hold the same file names and a reader finds the reason here.
SELECT 1;
