-- The number of messages in all histories: takes the lists that expired out of the count (at
-- most 1000 a call; the rest next time: stats reads and every heartbeat call it), then reads
-- it.
-- KEYS: hn, hl, hx. ARGV: now_ms.
forget_lists(KEYS[1], KEYS[2], KEYS[3], ARGV[1], 1000)
return math.max(0, tonumber(redis.call('GET', KEYS[1]) or '0'))
