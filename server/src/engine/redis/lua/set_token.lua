-- `content/token` (a token without sockets expires `ttl_ms` from now; up to 64 expired tokens
-- of the channel go first).
-- KEYS: t:<ch>, tx:<ch>, twait, tcs. ARGV: channel, token, record json, notify (1/0), now_ms,
-- ttl_ms.
local t, tx, twait, tcs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[5])
expire(t, tx, twait, now, 64)
local old = redis.call('HGET', t, ARGV[2])
local b, u = '', 0
if old then
  local e = cjson.decode(old)
  b, u = e.b, e.u
else
  redis.call('INCR', twait)
end
local entry = cjson.encode({r = ARGV[3], n = tonumber(ARGV[4]), b = b, u = u, i = now})
redis.call('HSET', t, ARGV[2], entry)
if u == 0 then redis.call('ZADD', tx, now + tonumber(ARGV[6]), ARGV[2]) end
redis.call('SADD', tcs, ARGV[1])
return 1
