-- Refresh tokens an OAuth token endpoint rotated (issue #29): kept so the next refresh, and
-- the next process, use the newest one. `issued_from` is a SHA-256 of the refresh token in
-- the config the chain started from: changing the configured token starts a new chain.
CREATE TABLE oauth_refresh_tokens (
    connector     TEXT PRIMARY KEY,
    issued_from   TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);
