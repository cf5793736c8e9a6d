-- A socket joins a content-token channel: the token is looked up alone (a wrong token costs
-- one lookup, plus at most 64 expired tokens taken out).
-- An unknown token also drops the channel when nothing is left of it (its last tokens expired),
-- as the memory engine does at once.
-- KEYS: t:<ch>, tx:<ch>, tm:<ch>, tl:<ch>, twait, nt:<node>, tcs.
-- ARGV: token, member key, session, now_ms, the node's join record, channel.
-- Returns {'unknown'}, {'other'}, {'ok'} or {'notice', record}.
local t, tx, tm, tl, twait, nt = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local token, member = ARGV[1], ARGV[2]
expire(t, tx, twait, tonumber(ARGV[4]), 64)
local raw = redis.call('HGET', t, token)
if not raw then
  drop_if_unused(t, tx, tm, tl, KEYS[7], ARGV[6])
  return {'unknown'}
end
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
