-- The grace period of a user's last departure ran out. Derives the watch sets from a prefix
-- (see presence_lib.lua).
-- KEYS: u:<uid>, online. ARGV: prefix, uid, generation.
-- Returns {'offline', watchers, owner} or {'stay'}.
if redis.call('HGET', KEYS[1], 'g') ~= ARGV[3] or total(KEYS[1]) > 0 then return {'stay'} end
return offline(ARGV[1], KEYS[1], KEYS[2], ARGV[2]) or {'stay'}
