-- The pick each job made, per pool: a job routed again (its worker died after the pick but
-- before recording the decision, and the lease brought it back) gets the same member, and
-- the rotation and the owner's daily count move once per job, not once per attempt.
-- `pool` is `(owner)` for an assignment made without a pool (a named or account owner).
CREATE TABLE job_picks (
    job_id         TEXT NOT NULL,
    pool           TEXT NOT NULL,
    owner          TEXT NOT NULL,
    position       BIGINT NOT NULL,
    assigned_today BIGINT NOT NULL,
    skipped        TEXT NOT NULL,   -- the members passed over, JSON [[index, kind, reason]]
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (job_id, pool)
);
