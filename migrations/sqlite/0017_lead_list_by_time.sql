-- The leads list is ordered by decision time, then id (workers insert in the order they
-- finish, not the order they decided): the filtered indexes follow that order, so a page is
-- still a backwards range scan.
DROP INDEX decisions_grade_id;
DROP INDEX decisions_route_id;
DROP INDEX decisions_status_id;
DROP INDEX decisions_owner_id;
DROP INDEX decisions_decided_at;
CREATE INDEX decisions_grade_at ON decisions(grade, decided_at, id);
CREATE INDEX decisions_route_at ON decisions(route_rule, decided_at, id);
CREATE INDEX decisions_status_at ON decisions(lead_status, decided_at, id);
CREATE INDEX decisions_owner_at ON decisions(route_owner, decided_at, id);
CREATE INDEX decisions_decided_at_id ON decisions(decided_at, id);
