-- Events as a per-person history (issue 25); see migrations/sqlite/0016_person_events.sql.
CREATE TABLE person_events (
    lead_id    TEXT NOT NULL,
    event_key  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    at_ms      BIGINT NOT NULL,
    body       TEXT NOT NULL,
    stored_at  BIGINT NOT NULL,
    PRIMARY KEY (lead_id, event_key)
);
