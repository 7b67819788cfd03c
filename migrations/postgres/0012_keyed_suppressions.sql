-- As SQLite's 0012: suppression digests keyed with a per-installation secret (HMAC-SHA256),
-- the secret made by the first replica to start this version and shared by all of them.
CREATE TABLE installation_secrets (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE suppressions_keyed (
    email_hmac TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- `suppressions` keeps the unkeyed digests from before: both lists are checked, and an old
-- row moves here when the same address is erased again.

CREATE TABLE erasures (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO erasures (id, generation) VALUES (1, 0);
