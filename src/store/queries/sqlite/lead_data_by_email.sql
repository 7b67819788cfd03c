-- The indexes `has_email!` in sqlite.rs describes (migration 0008).
SELECT l.data FROM leads l
 WHERE ((l.identity_key = 'email:' || ?1 AND l.email = ?1)
        OR (l.email = ?1 AND l.identity_key <> 'email:' || l.email))
