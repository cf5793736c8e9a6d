-- Content-token helpers: expiring unused tokens (at most `limit`, the first to expire, from
-- `tx` = tx:<ch>, which holds exactly the channel's tokens without sockets, scored by expiry),
-- and dropping an unused channel. Nothing here reads more of a channel than the tokens it
-- expires. `t`, `tx`, `tm`, `tl` are the channel's t:, tx:, tm:, tl: keys.
local function expire(t, tx, twait, now, limit)
  local due = redis.call('ZRANGEBYSCORE', tx, '-inf', now, 'LIMIT', 0, limit)
  for _, token in ipairs(due) do
    redis.call('ZREM', tx, token)
    local raw = redis.call('HGET', t, token)
    if raw and cjson.decode(raw).u == 0 then
      redis.call('HDEL', t, token)
      redis.call('DECR', twait)
    end
  end
  return #due
end
local function drop_if_unused(t, tx, tm, tl, tcs, ch)
  if redis.call('HLEN', t) == 0 and redis.call('HLEN', tl) == 0 then
    redis.call('DEL', t, tm, tx)
    redis.call('SREM', tcs, ch)
  end
end
