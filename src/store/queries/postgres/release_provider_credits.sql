UPDATE provider_day_limits SET credits = GREATEST(credits - $3, 0)
WHERE provider = $1 AND day = $2
