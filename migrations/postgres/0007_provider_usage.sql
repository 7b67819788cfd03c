-- Credits each paid provider was charged per UTC day, added up across restarts and
-- replicas, so a restarted daemon (or a second replica) does not spend a daily budget again.
CREATE TABLE provider_usage (
    provider   TEXT NOT NULL,
    day        TEXT NOT NULL,      -- UTC date, YYYY-MM-DD
    credits    DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,    -- unix ms
    PRIMARY KEY (provider, day)
);
