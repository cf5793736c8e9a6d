-- A member's leave grace ran out.
-- KEYS: t:<ch>, tx:<ch>, tm:<ch>, tl:<ch>, tcs. ARGV: channel, member key, generation.
-- Returns 1 when the members must be told.
local t, tx, tm, tl, tcs = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if redis.call('HGET', tl, ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HDEL', tl, ARGV[2])
local gone = redis.call('HEXISTS', tm, ARGV[2]) == 0
drop_if_unused(t, tx, tm, tl, tcs, ARGV[1])
if gone then return 1 end
return 0
