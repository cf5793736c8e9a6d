-- A channel got its first member on a node (open = 1) or lost its last (0).
-- KEYS: nc:<node>, cn, cx, chn. ARGV: open, channel.
local nc, cn, cx, chn = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ch = ARGV[2]
if ARGV[1] == '1' then
  if redis.call('SADD', nc, ch) == 1 then
    local nodes = redis.call('HINCRBY', cn, ch, 1)
    if nodes == 1 and redis.call('SISMEMBER', cx, ch) == 0 then redis.call('INCR', chn) end
  end
elseif redis.call('SREM', nc, ch) == 1 then
  local nodes = redis.call('HINCRBY', cn, ch, -1)
  if nodes <= 0 then
    redis.call('HDEL', cn, ch)
    if redis.call('SISMEMBER', cx, ch) == 0 then redis.call('DECR', chn) end
  end
end
return 1
