-- The digest of the normalized lead an idempotency key was first used with: the same key
-- with a different lead is refused (409 idempotency_conflict) instead of silently answered
-- as a duplicate. NULL for jobs queued before this migration: those keep answering duplicate.
ALTER TABLE jobs ADD COLUMN intake_digest TEXT;
