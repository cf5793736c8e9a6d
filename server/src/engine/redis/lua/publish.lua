-- Appends a message to its stream's history (when recording) and publishes it, atomically, so
-- the offset a node delivers and the history a reconnecting client reads always agree; keeps
-- the history count (`hn`, `hl`, `hx`: a list that expired since its last count is counted
-- from 0 again, having been dropped from the total by history_count.lua or here). Forgets up
-- to 2 expired lists (a publish adds at most one to `hx`, so `hx` and `hl` hold the lists
-- alive plus a shrinking backlog; the heartbeat takes the rest).
-- KEYS: s:<key>, h:<key>, pub, hn, hl, hx.
-- ARGV: size, ttl, now_ms, new epoch, header, message, meta ttl.
-- Returns {offset, epoch} ({0, ""} when not recording).
local size = tonumber(ARGV[1])
local offset, epoch = 0, ''
if size > 0 then
  forget_lists(KEYS[4], KEYS[5], KEYS[6], ARGV[3], 2)
  epoch = redis.call('HGET', KEYS[1], 'epoch')
  if not epoch then
    epoch = ARGV[4]
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
  end
  offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
  redis.call('RPUSH', KEYS[2], offset .. '|' .. ARGV[3] .. '|' .. ARGV[6])
  local extra = redis.call('LLEN', KEYS[2]) - size
  if extra > 0 then redis.call('LTRIM', KEYS[2], extra, -1) end
  redis.call('EXPIRE', KEYS[1], ARGV[7])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  local len = redis.call('LLEN', KEYS[2])
  local counted = tonumber(redis.call('HGET', KEYS[5], KEYS[2]) or '0')
  redis.call('HSET', KEYS[5], KEYS[2], len)
  redis.call('INCRBY', KEYS[4], len - counted)
  redis.call('ZADD', KEYS[6], tonumber(ARGV[3]) + tonumber(ARGV[2]) * 1000, KEYS[2])
end
redis.call('PUBLISH', KEYS[3], ARGV[5] .. '\n' .. offset .. '\n' .. epoch .. '\n' .. ARGV[6])
return {offset, epoch}
