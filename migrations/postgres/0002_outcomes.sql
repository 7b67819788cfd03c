-- PostgreSQL twin of migrations/sqlite/0002_outcomes.sql.
-- Outcomes: whether a lead converted, as reported by the CRM or a person through
-- POST /v1/outcomes. Kept as a history; the latest per lead is its outcome. They feed the
-- conversion-by-score-band report (`leadgate simulate --from-store`) and training.
CREATE TABLE outcomes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id     TEXT NOT NULL REFERENCES leads(id) ON DELETE CASCADE,
    converted   BOOLEAN NOT NULL,
    at          BIGINT NOT NULL,     -- unix ms: when it happened
    recorded_at BIGINT NOT NULL,     -- unix ms: when leadgate heard of it
    value       DOUBLE PRECISION,    -- the deal amount, when given
    source      TEXT                 -- who reported it (crm, api, import ...)
);
CREATE INDEX outcomes_lead ON outcomes(lead_id, id);

-- The account score rolls up the latest decision of every lead of a domain.
CREATE INDEX IF NOT EXISTS leads_domain ON leads(domain);
