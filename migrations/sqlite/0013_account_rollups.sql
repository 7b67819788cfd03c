-- A running total per account and score for `account.score` (issue #28): the roll-up read
-- every stored decision of the domain for every lead, so 4,000 leads at one company made
-- the queue quadratic. A row holds the sum over the domain's leads' latest decisions of
-- `score · 0.5^((as_of − decided_at) / half_life)`; a read fades it from `as_of` to now.
--
-- The row is made by the first read for an account (from the decisions, in one write
-- transaction) and then kept by every transaction that records a decision of that domain or
-- moves a lead away from it, so a writer needs no scoring configuration. A read whose
-- half-life differs from the row's (the configuration changed) rebuilds it; an erasure
-- drops every row.
CREATE TABLE account_rollups (
    domain       TEXT NOT NULL,
    score        TEXT NOT NULL,      -- the score id summed (`scores.ID.score`)
    half_life_ms INTEGER NOT NULL,   -- 0: values do not fade
    total        REAL NOT NULL,      -- faded to `as_of`
    as_of        INTEGER NOT NULL,   -- unix ms: the newest counted decision's `decided_at`
    leads        INTEGER NOT NULL,   -- leads counted (their latest decision is here and has the score)
    PRIMARY KEY (domain, score)
) WITHOUT ROWID;
