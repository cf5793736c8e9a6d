-- Shared helpers of the presence scripts: sum of a user's sockets over nodes, the watch-set
-- index, going offline. `prefix` names the watch sets `P:watch:<w>`, derived here from the
-- watcher lists read from the user's hash (the one exception to "every key is a KEYS entry"
-- in these scripts: which watch sets a change touches is only known once the hash is read).
local function total(u)
  local t = 0
  local all = redis.call('HGETALL', u)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'n:' then t = t + tonumber(all[i + 1]) end
  end
  return t
end
local function watchers(json)
  if not json or json == '' then return {} end
  local ok, list = pcall(cjson.decode, json)
  if not ok or type(list) ~= 'table' then return {} end
  return list
end
local function reindex(prefix, uid, old, new)
  local keep = {}
  for _, w in ipairs(new) do keep[tostring(w)] = true end
  for _, w in ipairs(old) do
    if not keep[tostring(w)] then redis.call('SREM', prefix .. ':watch:' .. w, uid) end
  end
  for _, w in ipairs(new) do redis.call('SADD', prefix .. ':watch:' .. w, uid) end
end
local function offline(prefix, u, online, uid)
  if redis.call('HGET', u, 'on') ~= '1' then return false end
  local w = redis.call('HGET', u, 'w') or '[]'
  local owner = redis.call('HGET', u, 'o') or ''
  reindex(prefix, uid, watchers(w), {})
  redis.call('DECR', online)
  if total(u) == 0 then redis.call('DEL', u) else redis.call('HDEL', u, 'on', 'o') end
  return {'offline', w, owner}
end
