-- The history count's helper: takes up to `limit` lists that expired out of `hn`, `hl` and
-- `hx` (a list still there, its expiry seen early by a node whose clock runs ahead, is given
-- its real expiry again).
local function forget_lists(hn, hl, hx, now, limit)
  for _, list in ipairs(redis.call('ZRANGEBYSCORE', hx, '-inf', now, 'LIMIT', 0, limit)) do
    local left = redis.call('PTTL', list)
    if left == -2 then
      redis.call('DECRBY', hn, tonumber(redis.call('HGET', hl, list) or '0'))
      redis.call('HDEL', hl, list)
      redis.call('ZREM', hx, list)
    else
      redis.call('ZADD', hx, tonumber(now) + math.max(left, 1000), list)
    end
  end
end
