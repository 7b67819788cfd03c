-- Events as a per-person history (issue 25): every event that arrived for a lead, inside a
-- lead payload or through POST /v1/events, kept so scoring reads the whole history instead
-- of only the latest arrival's. Keyed by the lead id, which is the person (identities map
-- every email / external id of one person to it); erasure deletes by lead_id like every
-- other lead table. `event_key` dedupes a replay: `id:<event id>` when the event has one,
-- else `digest:<sha256 of type, at and the other keys>`.
CREATE TABLE person_events (
    lead_id    TEXT NOT NULL,
    event_key  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    body       TEXT NOT NULL,   -- the event as JSON, as scoring reads it
    stored_at  INTEGER NOT NULL,
    PRIMARY KEY (lead_id, event_key)
) WITHOUT ROWID;
