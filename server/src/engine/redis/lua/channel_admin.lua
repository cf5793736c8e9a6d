-- `channel/add` (add = 1) or `channel/remove` (0). A removal derives the sets `P:nc:<node>` of
-- the nodes it reads from `nodes` from the prefix.
-- KEYS: cx, cn, chn, nodes. ARGV: prefix, channel, add.
-- Returns 1 when done, 0 when the channel exists (add) or does not (remove).
local cx, cn, chn = KEYS[1], KEYS[2], KEYS[3]
local ch = ARGV[2]
local exists = redis.call('SISMEMBER', cx, ch) == 1 or redis.call('HEXISTS', cn, ch) == 1
if ARGV[3] == '1' then
  if exists then return 0 end
  redis.call('SADD', cx, ch)
  redis.call('INCR', chn)
  return 1
end
if not exists then return 0 end
redis.call('SREM', cx, ch)
redis.call('HDEL', cn, ch)
for _, node in ipairs(redis.call('SMEMBERS', KEYS[4])) do redis.call('SREM', ARGV[1] .. ':nc:' .. node, ch) end
redis.call('DECR', chn)
return 1
