-- Re-scoring at rest (issue 25); see migrations/sqlite/0021_rescore.sql.
CREATE TABLE rescore_state (
    lead_id     TEXT PRIMARY KEY,
    decision_id BIGINT NOT NULL,
    due_at      BIGINT NOT NULL,
    pending     TEXT,
    claim       TEXT
);
CREATE INDEX rescore_state_due ON rescore_state(due_at);

INSERT INTO rescore_state (lead_id, decision_id, due_at)
    SELECT lead_id, MAX(id), 0 FROM decisions GROUP BY lead_id;

CREATE FUNCTION rescore_on_decision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rescore_state (lead_id, decision_id, due_at, pending)
    VALUES (NEW.lead_id, NEW.id, NEW.decided_at, NULL)
    ON CONFLICT (lead_id) DO UPDATE SET decision_id = excluded.decision_id,
        due_at = excluded.due_at, pending = NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER rescore_on_decision AFTER INSERT ON decisions
    FOR EACH ROW EXECUTE FUNCTION rescore_on_decision();

CREATE FUNCTION rescore_on_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rescore_state SET due_at = 0, pending = COALESCE(pending, 'event')
    WHERE lead_id = NEW.lead_id;
    RETURN NULL;
END $$;
CREATE TRIGGER rescore_on_event AFTER INSERT ON person_events
    FOR EACH ROW EXECUTE FUNCTION rescore_on_event();

CREATE FUNCTION rescore_on_erase() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM rescore_state WHERE lead_id = OLD.id;
    RETURN NULL;
END $$;
CREATE TRIGGER rescore_on_erase AFTER DELETE ON leads
    FOR EACH ROW EXECUTE FUNCTION rescore_on_erase();

CREATE TABLE rescore_rules (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    digest TEXT NOT NULL
);
