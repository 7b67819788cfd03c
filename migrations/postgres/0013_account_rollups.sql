-- As SQLite's 0013: a running total per account and score for `account.score`, made by the
-- first read for an account and kept by every transaction that records a decision of it.
CREATE TABLE account_rollups (
    domain       TEXT NOT NULL,
    score        TEXT NOT NULL,
    half_life_ms BIGINT NOT NULL,
    total        DOUBLE PRECISION NOT NULL,
    as_of        BIGINT NOT NULL,
    leads        BIGINT NOT NULL,
    PRIMARY KEY (domain, score)
);
