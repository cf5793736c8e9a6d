-- Whether a content-token channel exists for `content/token/message`, after taking out up to
-- 64 of its expired unused tokens (as a join does) and dropping it when nothing is left: a
-- channel whose tokens all expired is gone at once, as in the memory engine, not only after the
-- heartbeat's sweep.
-- KEYS: t:<ch>, tx:<ch>, tm:<ch>, tl:<ch>, twait, tcs. ARGV: channel, now_ms.
-- Returns 1 when the channel exists.
expire(KEYS[1], KEYS[2], KEYS[5], tonumber(ARGV[2]), 64)
drop_if_unused(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], ARGV[1])
return redis.call('SISMEMBER', KEYS[6], ARGV[1])
