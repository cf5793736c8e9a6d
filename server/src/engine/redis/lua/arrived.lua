-- A socket authenticated on a node. Derives the watch sets from a prefix (see
-- presence_lib.lua).
-- KEYS: u:<uid>, nu:<node>, as:<token>, ns:<node>, online, sessions.
-- ARGV: prefix, node, uid, watchers json, token, anonymous.
-- Returns 1 when the user just came online.
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('INCR', KEYS[6]) end
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('SADD', KEYS[4], ARGV[5])
if ARGV[6] == '1' then return 0 end
redis.call('HINCRBY', KEYS[1], 'n:' .. ARGV[2], 1)
redis.call('HINCRBY', KEYS[1], 'g', 1)
redis.call('SADD', KEYS[2], ARGV[3])
local old = watchers(redis.call('HGET', KEYS[1], 'w'))
redis.call('HSET', KEYS[1], 'w', ARGV[4])
if redis.call('HGET', KEYS[1], 'on') == '1' then
  reindex(ARGV[1], ARGV[3], old, watchers(ARGV[4]))
  return 0
end
reindex(ARGV[1], ARGV[3], {}, watchers(ARGV[4]))
redis.call('HSET', KEYS[1], 'on', '1', 'o', ARGV[2])
redis.call('INCR', KEYS[5])
return 1
