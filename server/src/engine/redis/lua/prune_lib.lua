-- Removes up to `limit` members whose score (an expiry, ms) is not after `now` from the sorted
-- set `key` (they have the lowest ranks).
local function prune(key, now, limit)
  local n = math.min(redis.call('ZCOUNT', key, '-inf', now), limit)
  if n > 0 then redis.call('ZREMRANGEBYRANK', key, 0, n - 1) end
  return n
end
