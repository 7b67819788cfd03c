-- Suppression digests keyed with a per-installation secret (HMAC-SHA256), issue #28: a plain
-- SHA-256 of an email is recovered by hashing a list of likely addresses. The secret is made
-- at the first start of this version (the store writes it, `store::privacy`), never leaves
-- the store, and is the same for every process on this file.
CREATE TABLE installation_secrets (
    name       TEXT PRIMARY KEY NOT NULL,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- People erased from now on: HMAC-SHA256(secret, normalized email), hex.
CREATE TABLE suppressions_keyed (
    email_hmac TEXT PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- `suppressions` keeps the unkeyed digests written before this migration: a digest cannot
-- be inverted, so they cannot be re-keyed here. Both lists are checked; an old row is
-- re-keyed (moved here) when the same address is erased again.

-- Bumped by every erasure, in its transaction: replicas that see it move drop the cached
-- enrichment answers they hold (a remote erasure names no one they could match).
CREATE TABLE erasures (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO erasures (id, generation) VALUES (1, 0);
