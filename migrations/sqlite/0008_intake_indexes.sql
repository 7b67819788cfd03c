-- Every secondary index on `leads` is written by each accept, inside the intake's commit, and
-- an email or a domain lands on a random page of its index: one more page to copy, write to
-- the WAL and fsync per lead. Intake now writes one such page (the identity key) instead of
-- three; the two lookups they served read elsewhere.

-- A person keyed by their email (`identity_key` = 'email:' || email, nearly every lead) is
-- found by email through the identity index; only the few keyed otherwise (a CRM id, a
-- domain) that learned an email later are indexed by email. Queries name both (sqlite.rs,
-- `HAS_EMAIL`).
DROP INDEX leads_email;
CREATE INDEX leads_email_other ON leads(email) WHERE identity_key <> 'email:' || email;

-- The account roll-up (the latest decision of every lead of a domain) reads decisions by
-- the domain they were made with; the worker writes that, after the 202.
ALTER TABLE decisions ADD COLUMN domain TEXT;
UPDATE decisions SET domain = (SELECT domain FROM leads WHERE leads.id = decisions.lead_id);
CREATE INDEX decisions_domain ON decisions(domain, lead_id);
DROP INDEX leads_domain;
