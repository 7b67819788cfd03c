SELECT data FROM leads WHERE email = $1 LIMIT 1
