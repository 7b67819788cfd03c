-- As SQLite's 0008 for the account roll-up, so both backends mean the same: decisions carry
-- the domain they were made with, and the roll-up reads each lead's latest decision by it (a
-- person who moves company moves when that arrival is decided). `leads_domain` served only
-- the roll-up. PostgreSQL keeps its email index: its intake is not SQLite's group-commit
-- writer, and the random page it costs there was not measured.
ALTER TABLE decisions ADD COLUMN domain TEXT;
UPDATE decisions d SET domain = l.domain FROM leads l WHERE l.id = d.lead_id;
CREATE INDEX decisions_domain ON decisions(domain, lead_id);
DROP INDEX IF EXISTS leads_domain;
