-- Caches an auth record: `a:<token>` expiring after the TTL, its expiry in `aexp` and (for a
-- user) in `at:<uid>`, which then expires with its newest record; up to 64 expired members
-- leave each set on the way (one is added, so neither grows beyond the live records and a
-- shrinking backlog).
-- KEYS: a:<token>, aexp, at:<uid> ("" when anonymous). ARGV: record, ttl secs, token, now_ms.
local ttl, now = tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], now + ttl * 1000, ARGV[3])
prune(KEYS[2], now, 64)
if KEYS[3] ~= '' then
  redis.call('ZADD', KEYS[3], now + ttl * 1000, ARGV[3])
  prune(KEYS[3], now, 64)
  redis.call('EXPIRE', KEYS[3], ttl)
end
return 1
