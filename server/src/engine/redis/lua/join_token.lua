-- A socket joins a content-token channel: the token is looked up alone (a wrong token costs
-- one lookup, plus at most 64 expired tokens taken out).
-- KEYS: t:<ch>, tx:<ch>, tm:<ch>, tl:<ch>, twait, nt:<node>.
-- ARGV: token, member key, session, now_ms, the node's join record.
-- Returns {'unknown'}, {'other'}, {'ok'} or {'notice', record}.
local t, tx, tm, tl, twait, nt = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, member = ARGV[1], ARGV[2]
expire(t, tx, twait, tonumber(ARGV[4]), 64)
local raw = redis.call('HGET', t, token)
if not raw then return {'unknown'} end
local e = cjson.decode(raw)
if e.b ~= '' and e.b ~= ARGV[3] then return {'other'} end
e.b = ARGV[3]
e.u = e.u + 1
if e.u == 1 then
  redis.call('DECR', twait)
  redis.call('ZREM', tx, token)
end
redis.call('HSET', t, token, cjson.encode(e))
local count = redis.call('HINCRBY', tm, member, 1)
local returning = redis.call('HDEL', tl, member)
redis.call('HINCRBY', nt, ARGV[5], 1)
if count == 1 and returning == 0 then return {'notice', e.r} end
return {'ok'}
