SELECT j.payload FROM jobs j JOIN leads l ON l.id = j.lead_id
 WHERE l.email = $1 ORDER BY j.created_at DESC LIMIT 1
