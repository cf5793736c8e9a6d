-- Sockets of a node left (one, or all of a dead node's). Derives the watch sets from a prefix
-- (see presence_lib.lua).
-- KEYS: u:<uid>, nu:<node>, as:<token>, ns:<node>, online, sessions, due.
-- ARGV: prefix, node, uid, token, anonymous, forced, how many (0: all of this node's), due_ms,
-- the pending decision's entry without its generation.
-- Returns {'stay'}, {'grace', generation} (the offline decision is due at due_ms in `due`) or
-- {'offline', watchers, owner}.
local n = tonumber(ARGV[7])
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then
  local left = 0
  if n > 0 then left = redis.call('HINCRBY', KEYS[3], ARGV[2], -n) end
  if left <= 0 then
    redis.call('HDEL', KEYS[3], ARGV[2])
    redis.call('SREM', KEYS[4], ARGV[4])
    if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('DECR', KEYS[6]) end
  end
end
local field = 'n:' .. ARGV[2]
if ARGV[5] == '1' or redis.call('HEXISTS', KEYS[1], field) == 0 then return {'stay'} end
local c = 0
if n > 0 then c = redis.call('HINCRBY', KEYS[1], field, -n) end
if c <= 0 then
  redis.call('HDEL', KEYS[1], field)
  redis.call('SREM', KEYS[2], ARGV[3])
end
if total(KEYS[1]) > 0 then return {'stay'} end
if ARGV[6] == '1' then return offline(ARGV[1], KEYS[1], KEYS[5], ARGV[3]) or {'stay'} end
local g = redis.call('HINCRBY', KEYS[1], 'g', 1)
redis.call('ZADD', KEYS[7], ARGV[8], ARGV[9] .. '\t' .. g)
return {'grace', g}
