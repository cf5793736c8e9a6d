-- Sockets leave a content-token channel (a token left without sockets expires `ttl_ms` from
-- now).
-- KEYS: t:<ch>, tx:<ch>, tm:<ch>, tl:<ch>, twait, nt:<node>, tlgen, due.
-- ARGV: token, member key, the node's join record, forced (1/0), how many, now_ms, due_ms,
-- ttl_ms, the pending decision's entry without its generation.
-- Returns {'nothing'}, {'notify'} or {'grace', gen} (the notice is due at due_ms in `due`).
local t, tx, tm, tl, twait, nt = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, member, n = ARGV[1], ARGV[2], tonumber(ARGV[5])
if redis.call('HINCRBY', nt, ARGV[3], -n) <= 0 then redis.call('HDEL', nt, ARGV[3]) end
local raw = redis.call('HGET', t, token)
if not raw then return {'nothing'} end
local e = cjson.decode(raw)
if e.u <= 0 then return {'nothing'} end
e.u = math.max(e.u - n, 0)
if e.u == 0 then
  e.i = tonumber(ARGV[6])
  redis.call('INCR', twait)
  redis.call('ZADD', tx, e.i + tonumber(ARGV[8]), token)
end
redis.call('HSET', t, token, cjson.encode(e))
local left = redis.call('HINCRBY', tm, member, -n)
if left > 0 then return {'nothing'} end
redis.call('HDEL', tm, member)
if e.n ~= 1 then return {'nothing'} end
if ARGV[4] == '1' then return {'notify'} end
local g = redis.call('INCR', KEYS[7])
redis.call('HSET', tl, member, g)
redis.call('ZADD', KEYS[8], ARGV[7], ARGV[9] .. '\t' .. g)
return {'grace', g}
