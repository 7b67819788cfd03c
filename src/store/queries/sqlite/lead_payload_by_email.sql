-- The person keyed by their email through the identity index, one keyed otherwise through
-- `leads_email_other` (migration 0008); a pending lead's arrivals by its identity (0010).
SELECT payload FROM (
  SELECT j.payload, j.created_at FROM jobs j JOIN leads l ON l.id = j.lead_id
   WHERE ((l.identity_key = 'email:' || ?1 AND l.email = ?1)
          OR (l.email = ?1 AND l.identity_key <> 'email:' || l.email))
  UNION ALL SELECT j.payload, j.created_at FROM identities i JOIN jobs j ON j.lead_id = i.lead_id
   WHERE i.identity_key = 'email:' || ?1)
ORDER BY created_at DESC LIMIT 1
