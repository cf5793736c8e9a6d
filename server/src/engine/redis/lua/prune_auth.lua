-- The heartbeat's share of pruning `aexp`: up to `limit` expired members.
-- KEYS: aexp. ARGV: now_ms, limit. Returns how many went.
return prune(KEYS[1], ARGV[1], tonumber(ARGV[2]))
