-- Replaces who may see a user's presence, live and in its cached records. Derives keys from a
-- prefix: the watch sets (see presence_lib.lua) and the records `P:a:<token>` of the tokens it
-- reads from `at:<uid>`.
-- KEYS: u:<uid>, at:<uid>. ARGV: prefix, uid, watchers json.
if redis.call('HGET', KEYS[1], 'on') == '1' then
  reindex(ARGV[1], ARGV[2], watchers(redis.call('HGET', KEYS[1], 'w')), watchers(ARGV[3]))
  redis.call('HSET', KEYS[1], 'w', ARGV[3])
end
for _, t in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  local k = ARGV[1] .. ':a:' .. t
  local v = redis.call('GET', k)
  if v then
    local r = cjson.decode(v)
    r.presenceUids = watchers(ARGV[3])
    redis.call('SET', k, cjson.encode(r), 'KEEPTTL')
  end
end
return 1
