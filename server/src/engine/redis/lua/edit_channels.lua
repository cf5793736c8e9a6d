-- Adds or removes a channel in cached auth records: of every session of a user (KEYS[1] =
-- at:<uid>, KEYS[2] = "": derives the records `P:a:<token>` of the tokens it reads there from
-- the prefix) or of one session (KEYS[1] = "", KEYS[2] = a:<token>).
-- KEYS: at:<uid> or "", a:<token> or "". ARGV: prefix, channel, 1 to add / 0 to remove.
local records = {KEYS[2]}
if KEYS[1] ~= '' then
  records = {}
  for _, t in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do table.insert(records, ARGV[1] .. ':a:' .. t) end
end
for _, k in ipairs(records) do
  local v = redis.call('GET', k)
  if v then
    local r = cjson.decode(v)
    local kept, found = {}, false
    if type(r.channels) == 'table' then
      for _, c in pairs(r.channels) do
        if c == ARGV[2] then found = true end
        if c ~= ARGV[2] or ARGV[3] == '1' then table.insert(kept, c) end
      end
    end
    if ARGV[3] == '1' and not found then table.insert(kept, ARGV[2]) end
    r.channels = kept
    redis.call('SET', k, cjson.encode(r), 'KEEPTTL')
  end
end
return 1
