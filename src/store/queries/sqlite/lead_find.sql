-- A pending lead (no worker has decided an arrival yet, migration 0010) is found through
-- its jobs, by its id or one of theirs, with the email its identity names.
SELECT id, email FROM leads WHERE id = ?1
UNION ALL SELECT l.id, l.email FROM jobs j JOIN leads l ON l.id = j.lead_id WHERE j.id = ?1
UNION ALL SELECT lead_id AS id, CASE WHEN substr(identity_key, 1, 6) = 'email:' THEN substr(identity_key, 7) END AS email
  FROM jobs WHERE lead_id = ?1 AND identity_key IS NOT NULL
UNION ALL SELECT lead_id AS id, CASE WHEN substr(identity_key, 1, 6) = 'email:' THEN substr(identity_key, 7) END AS email
  FROM jobs WHERE id = ?1 AND identity_key IS NOT NULL
LIMIT 1
