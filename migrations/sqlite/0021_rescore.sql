-- Re-scoring at rest (issue 25): which people the sweep (src/rescore) should score again,
-- and when. One row per person with a decision. Triggers keep it without touching the
-- writers: a decision makes its person due at once (the sweep's first look), a new event
-- makes them due now with cause `event`, erasing the lead drops the row.
--   due_at   unix ms; the sweep claims rows with due_at <= now (index) and moves due_at to
--            its next pass in the same statement, so two replicas never claim one person
--            in one pass. 9223372036854775807 = only an event or a rules change wakes it.
--   pending  why it is due besides decay: 'event' | 'rules_change'; NULL = decay.
--   claim    the claiming sweep's token (diagnostics).
CREATE TABLE rescore_state (
    lead_id     TEXT PRIMARY KEY,
    decision_id INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    pending     TEXT,
    claim       TEXT
) WITHOUT ROWID;
CREATE INDEX rescore_state_due ON rescore_state(due_at);

INSERT INTO rescore_state (lead_id, decision_id, due_at)
    SELECT lead_id, MAX(id), 0 FROM decisions GROUP BY lead_id;

CREATE TRIGGER rescore_on_decision AFTER INSERT ON decisions BEGIN
    INSERT INTO rescore_state (lead_id, decision_id, due_at, pending)
    VALUES (NEW.lead_id, NEW.id, NEW.decided_at, NULL)
    ON CONFLICT(lead_id) DO UPDATE SET decision_id = excluded.decision_id,
        due_at = excluded.due_at, pending = NULL;
END;

CREATE TRIGGER rescore_on_event AFTER INSERT ON person_events BEGIN
    UPDATE rescore_state SET due_at = 0, pending = COALESCE(pending, 'event')
    WHERE lead_id = NEW.lead_id;
END;

CREATE TRIGGER rescore_on_erase AFTER DELETE ON leads BEGIN
    DELETE FROM rescore_state WHERE lead_id = OLD.id;
END;

-- The digest of the scoring rules the last sweep ran with: a sweep that finds another one
-- marks everybody (cause `rules_change`), as `leadgate rescore --all` does.
CREATE TABLE rescore_rules (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    digest TEXT NOT NULL
);
