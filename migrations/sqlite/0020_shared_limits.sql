-- Limits every replica on this store shares when no Redis is configured (resilience::shared):
-- the requests and credits each connector spent per UTC day (claimed before each call, so
-- replicas together stay under the cap and a restart does not begin the day again), and the
-- pauses a vendor asked for (Retry-After, an empty quota window), so one replica's 429
-- pauses all of them.
CREATE TABLE provider_day_limits (
    provider TEXT NOT NULL,
    day      TEXT NOT NULL,            -- UTC date, YYYY-MM-DD
    requests INTEGER NOT NULL DEFAULT 0,
    credits  REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, day)
);
CREATE TABLE provider_holds (
    provider TEXT NOT NULL,
    kind     TEXT NOT NULL,            -- 'pause' (wait) or 'park' (skip)
    until_ms INTEGER NOT NULL,         -- unix ms
    reason   TEXT NOT NULL,
    PRIMARY KEY (provider, kind)
);
