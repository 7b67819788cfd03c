-- The leads list (GET /v1/leads) filters on the decision's status and owner, which live in
-- its JSON record: virtual columns make them indexable without touching the writers. Each
-- index ends in `id` so a filtered page is a backwards range scan (newest first, keyset).
ALTER TABLE decisions ADD COLUMN lead_status TEXT GENERATED ALWAYS AS (json_extract(record, '$.status')) VIRTUAL;
ALTER TABLE decisions ADD COLUMN route_owner TEXT GENERATED ALWAYS AS (json_extract(record, '$.route.owner')) VIRTUAL;
CREATE INDEX decisions_grade_id ON decisions(grade, id);
CREATE INDEX decisions_route_id ON decisions(route_rule, id);
CREATE INDEX decisions_status_id ON decisions(lead_status, id);
CREATE INDEX decisions_owner_id ON decisions(route_owner, id);
CREATE INDEX decisions_decided_at ON decisions(decided_at);
