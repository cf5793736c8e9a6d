-- Sweeps one content-token channel: drops up to `limit` of its expired unused tokens, and the
-- channel when nothing is left (a channel nobody touches again still expires).
-- KEYS: t:<ch>, tx:<ch>, tm:<ch>, tl:<ch>, twait, tcs. ARGV: channel, now_ms, limit.
-- Returns how many tokens it looked at (`limit`: call again).
local n = expire(KEYS[1], KEYS[2], KEYS[5], tonumber(ARGV[2]), tonumber(ARGV[3]))
drop_if_unused(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], ARGV[1])
return n
