SELECT id, email FROM leads WHERE id = $1
UNION ALL SELECT l.id, l.email FROM jobs j JOIN leads l ON l.id = j.lead_id WHERE j.id = $1
LIMIT 1
