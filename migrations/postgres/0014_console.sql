-- The console (issue 24): human overrides of a lead's grade or route, and the review queue's
-- claims and resolutions. No foreign keys to leads: erasing a person must not be blocked by
-- them (an erasure deletes the person's rows here too).

-- A human override: an entry in the lead's history that wins over later automatic
-- decisions until it is cleared; `replaced` keeps what it replaced (grade, route) as JSON.
-- Overrides are also training labels (`Store::override_labels`).
CREATE TABLE overrides (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id    TEXT NOT NULL,
    grade      TEXT,
    route      TEXT,
    reason     TEXT NOT NULL,
    by_whom    TEXT NOT NULL,
    replaced   TEXT NOT NULL,
    created_at BIGINT NOT NULL,          -- unix ms
    cleared_at BIGINT,
    cleared_by TEXT
);
CREATE INDEX overrides_lead ON overrides(lead_id, id);

-- One row per review item (a job routed to `review`) someone claimed or resolved; an item
-- nobody touched has no row. `resolution_job` is the arrival that delivers the resolution.
CREATE TABLE review_items (
    job_id         TEXT PRIMARY KEY,
    lead_id        TEXT NOT NULL,
    claimed_by     TEXT,
    claimed_at     BIGINT,
    resolved_by    TEXT,
    resolved_at    BIGINT,
    action         TEXT,
    reason         TEXT,
    resolution_job TEXT
);
CREATE INDEX review_items_lead ON review_items(lead_id);
