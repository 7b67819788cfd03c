INSERT INTO provider_day_limits (provider, day, credits) VALUES ($1, $2, $3)
ON CONFLICT(provider, day) DO UPDATE SET credits = provider_day_limits.credits + $3
  WHERE provider_day_limits.credits + $3 <= $4 + 1e-9::float8
RETURNING credits
