-- Where a stream is and what came after a position.
-- KEYS: s:<key>, h:<key>.
-- ARGV: ttl, now_ms, new epoch, since offset (-1: none), since epoch, meta ttl.
-- Returns {top, epoch, recovered, messages...}; the messages follow `since` without a gap when
-- recovered is 1.
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
local top = tonumber(redis.call('HGET', KEYS[1], 'top'))
local since = tonumber(ARGV[4])
local out = {top, epoch, 0}
if since < 0 or ARGV[5] ~= epoch or since > top then return out end
local oldest = tonumber(ARGV[2]) - tonumber(ARGV[1]) * 1000
local expected = since + 1
for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local a = string.find(e, '|', 1, true)
  local b = string.find(e, '|', a + 1, true)
  local off = tonumber(string.sub(e, 1, a - 1))
  if off > since then
    if off ~= expected or tonumber(string.sub(e, a + 1, b - 1)) < oldest then return {top, epoch, 0} end
    table.insert(out, string.sub(e, b + 1))
    expected = expected + 1
  end
end
if expected ~= top + 1 then return {top, epoch, 0} end
out[3] = 1
return out
