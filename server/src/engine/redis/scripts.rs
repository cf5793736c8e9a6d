//! The Lua scripts of the Redis engine: each operation that must be atomic across nodes is one
//! script, so that two nodes never see half of a change (the append of a message and its
//! publication, a presence transition, a content-token join).
//!
//! Keys (all under the configured prefix `P`; one Redis, not Redis Cluster), each with what
//! bounds it: an expiry, deletion with its owner (a node, a session, a user, a channel), or
//! the size of what it counts. Nothing is left for a stats read to clean up.
//! * streams: `P:s:<key>` hash {epoch, top} (expires a day after its last use, so positions
//!   stay comparable), `P:h:<key>` list of `offset|at_ms|message` (the history: trimmed to
//!   `historySize`, expires `historyTtlSecs` after the last message); publications go out on
//!   `P:pub`, commands between nodes on `P:ctl` (pub/sub channels, not keys);
//! * history size: `P:hn` count of messages in all `P:h:<key>` lists, `P:hl` hash list key ->
//!   its length as last counted, `P:hx` sorted set list key -> when it expires (ms), so the
//!   count follows appends, trims and expiries without scanning the lists. `P:hl`/`P:hx` hold
//!   one entry per list alive, plus expired ones waiting to be forgotten: each publish (which
//!   adds at most one) forgets up to 2, each heartbeat and stats read up to 1000;
//! * nodes: `P:nodes` set (a node leaves it when reaped), `P:node:<id>` heartbeat (expires
//!   unless refreshed), `P:reap:<id>` lock of the node reaping it (expires after 60 s),
//!   `P:boot` (one random id written once: when it is gone, Redis lost its data);
//! * sessions: `P:a:<token>` cached auth record (JSON, expires after `authCacheTtlSecs`),
//!   `P:aexp` sorted set token -> when its record expires (ms) (for the count of cached
//!   records; each caching takes up to 64 expired tokens out, each heartbeat up to 1000, a
//!   logout its own), `P:as:<token>` hash node -> sockets (gone with the session's last
//!   socket), `P:at:<uid>` sorted set of the user's tokens by when their record expires (each
//!   caching takes up to 64 expired out, and the set expires with its newest record; it
//!   replaces the `P:au:<uid>` set of earlier versions, which never expired), `P:ns:<node>`
//!   set of tokens with sockets on a node (members leave with their sockets, the set with
//!   its node);
//! * presence: `P:u:<uid>` hash {n:<node> -> sockets, on, o (the node that announced it
//!   online), w (watchers, JSON), g (generation of the pending offline)} (deleted when the
//!   user goes offline), `P:nu:<node>` set of uids with sockets on a node (deleted with its
//!   node), `P:online` count, `P:watch:<w>` set of online uids `w` watches (they leave it
//!   when they go offline), `P:sessions` count of sessions with sockets;
//! * pending decisions: `P:due` sorted set (by due time) of `u \t uid \t gen` (an offline after
//!   the grace period) and `t \t ch \t member \t uid \t gen` (a content-token leave notice):
//!   the node that scheduled one fires it on time, any node fires it when overdue (its node
//!   died), and removing the member first makes sure only one does; each is removed when it
//!   fires;
//! * content tokens: `P:t:<ch>` hash token -> entry JSON {r record, n notify, b bound session,
//!   u sockets, i idle since ms} (tokens in use, bounded by sockets, and unused ones, which
//!   expire), `P:tx:<ch>` sorted set of exactly the unused tokens by when they expire (ms):
//!   a join or `content/token` takes up to 64 expired ones out, the heartbeat's sweep the
//!   rest, so no operation reads the whole channel; `P:tm:<ch>` hash member -> sockets
//!   (members leave with their last socket), `P:tl:<ch>` hash member -> pending leave
//!   generation (until its decision fires); the four are deleted when the channel has neither
//!   tokens nor pending leaves; `P:tcs` set of those channels, `P:twait` count of unused
//!   tokens, `P:tlgen` counter of leave generations, `P:nt:<node>` hash
//!   `ch \t token \t member \t uid` -> sockets on a node (fields leave with their sockets, the
//!   hash with its node);
//! * channels: `P:cx` set made by `channel/add` (Drupal's, with the service key: a channel
//!   leaves it by `channel/remove`), `P:cn` hash channel -> nodes with members (a channel
//!   leaves it with its last node), `P:nc:<node>` set of channels with members on a node
//!   (deleted with its node), `P:chn` count of channels.

use redis::Script;

/// The history count's helper: takes up to `limit` lists that expired out of `hn`, `hl` and
/// `hx` (a list still there, its expiry seen early by a node whose clock runs ahead, is
/// given its real expiry again).
const HISTORY_LIB: &str = r#"
local function forget_lists(hn, hl, hx, now, limit)
  for _, list in ipairs(redis.call('ZRANGEBYSCORE', hx, '-inf', now, 'LIMIT', 0, limit)) do
    local left = redis.call('PTTL', list)
    if left == -2 then
      redis.call('DECRBY', hn, tonumber(redis.call('HGET', hl, list) or '0'))
      redis.call('HDEL', hl, list)
      redis.call('ZREM', hx, list)
    else
      redis.call('ZADD', hx, tonumber(now) + math.max(left, 1000), list)
    end
  end
end
"#;

/// Appends a message to its stream's history (when recording) and publishes it, atomically, so
/// the offset a node delivers and the history a reconnecting client reads always agree; keeps
/// the history count (`hn`, `hl`, `hx`: a list that expired since its last count is counted
/// from 0 again, having been dropped from the total by [`HISTORY_COUNT`] or here). Forgets
/// up to 2 expired lists (a publish adds at most one to `hx`, so `hx` and `hl` hold the lists
/// alive plus a shrinking backlog; the heartbeat takes the rest).
/// KEYS: meta, list, pubsub channel, hn, hl, hx. ARGV: size, ttl, now_ms, new epoch, header,
/// message, meta ttl. Returns {offset, epoch} ({0, ""} when not recording).
const PUBLISH: &str = r#"
local size = tonumber(ARGV[1])
local offset, epoch = 0, ''
if size > 0 then
  forget_lists(KEYS[4], KEYS[5], KEYS[6], ARGV[3], 2)
  epoch = redis.call('HGET', KEYS[1], 'epoch')
  if not epoch then
    epoch = ARGV[4]
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
  end
  offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
  redis.call('RPUSH', KEYS[2], offset .. '|' .. ARGV[3] .. '|' .. ARGV[6])
  local extra = redis.call('LLEN', KEYS[2]) - size
  if extra > 0 then redis.call('LTRIM', KEYS[2], extra, -1) end
  redis.call('EXPIRE', KEYS[1], ARGV[7])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  local len = redis.call('LLEN', KEYS[2])
  local counted = tonumber(redis.call('HGET', KEYS[5], KEYS[2]) or '0')
  redis.call('HSET', KEYS[5], KEYS[2], len)
  redis.call('INCRBY', KEYS[4], len - counted)
  redis.call('ZADD', KEYS[6], tonumber(ARGV[3]) + tonumber(ARGV[2]) * 1000, KEYS[2])
end
redis.call('PUBLISH', KEYS[3], ARGV[5] .. '\n' .. offset .. '\n' .. epoch .. '\n' .. ARGV[6])
return {offset, epoch}
"#;

/// The number of messages in all histories: takes the lists that expired out of the count
/// (at most 1000 a call; the rest next time: stats reads and every heartbeat call it), then
/// reads it. KEYS: hn, hl, hx. ARGV: now_ms.
const HISTORY_COUNT: &str = r#"
forget_lists(KEYS[1], KEYS[2], KEYS[3], ARGV[1], 1000)
return math.max(0, tonumber(redis.call('GET', KEYS[1]) or '0'))
"#;

/// Where a stream is and what came after a position. KEYS: meta, list. ARGV: ttl, now_ms,
/// new epoch, since offset (-1: none), since epoch, meta ttl. Returns {top, epoch, recovered,
/// messages...}; the messages follow `since` without a gap when recovered is 1.
const RECOVER: &str = r#"
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
"#;

/// Shared helpers of the presence scripts: sum of a user's sockets over nodes, the watch-set
/// index, going offline.
const PRESENCE_LIB: &str = r#"
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
local function offline(prefix, u, uid)
  if redis.call('HGET', u, 'on') ~= '1' then return false end
  local w = redis.call('HGET', u, 'w') or '[]'
  local owner = redis.call('HGET', u, 'o') or ''
  reindex(prefix, uid, watchers(w), {})
  redis.call('DECR', prefix .. ':online')
  if total(u) == 0 then redis.call('DEL', u) else redis.call('HDEL', u, 'on', 'o') end
  return {'offline', w, owner}
end
"#;

/// A socket authenticated on a node. KEYS: u:<uid>, nu:<node>, as:<token>, ns:<node>,
/// online. ARGV: prefix, node, uid, watchers json, token, anonymous. Returns 1 when
/// the user just came online.
const ARRIVED: &str = r#"
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('INCR', ARGV[1] .. ':sessions') end
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
"#;

/// Sockets of a node left (one, or all of a dead node's). KEYS: u:<uid>, nu:<node>,
/// as:<token>, ns:<node>. ARGV: prefix, node, uid, token, anonymous, forced, how many (0: all
/// of this node's), due_ms. Returns {'stay'}, {'grace', generation} (the offline decision is
/// due at due_ms in `P:due`) or {'offline', watchers, owner}.
const DEPARTED: &str = r#"
local n = tonumber(ARGV[7])
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then
  local left = 0
  if n > 0 then left = redis.call('HINCRBY', KEYS[3], ARGV[2], -n) end
  if left <= 0 then
    redis.call('HDEL', KEYS[3], ARGV[2])
    redis.call('SREM', KEYS[4], ARGV[4])
    if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('DECR', ARGV[1] .. ':sessions') end
  end
end
local field = 'n:' .. ARGV[2]
if ARGV[5] == '1' or redis.call('HEXISTS', KEYS[1], field) == 0 then return {'stay'} end
local c = 0
if n > 0 then c = redis.call('HINCRBY', KEYS[1], field, -n) end
if c <= 0 then
  redis.call('HDEL', KEYS[1], field)
  redis.call('SREM', KEYS[2], ARGV[3])
end
if total(KEYS[1]) > 0 then return {'stay'} end
if ARGV[6] == '1' then return offline(ARGV[1], KEYS[1], ARGV[3]) or {'stay'} end
local g = redis.call('HINCRBY', KEYS[1], 'g', 1)
redis.call('ZADD', ARGV[1] .. ':due', ARGV[8], 'u\t' .. ARGV[3] .. '\t' .. g)
return {'grace', g}
"#;

/// The grace period of a user's last departure ran out. KEYS: u:<uid>. ARGV: prefix, uid,
/// generation. Returns {'offline', watchers, owner} or {'stay'}.
const GRACE_OVER: &str = r#"
if redis.call('HGET', KEYS[1], 'g') ~= ARGV[3] or total(KEYS[1]) > 0 then return {'stay'} end
return offline(ARGV[1], KEYS[1], ARGV[2]) or {'stay'}
"#;

/// Replaces who may see a user's presence, live and in its cached records. KEYS: u:<uid>,
/// at:<uid>. ARGV: prefix, uid, watchers json.
const PRESENCE_LIST: &str = r#"
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
"#;

/// Adds or removes a channel in cached auth records: of every session of a user (KEYS[1] =
/// at:<uid>) or of one session (KEYS[1] = "" and ARGV[4] the token). ARGV: prefix, channel,
/// 1 to add / 0 to remove, token.
const EDIT_CHANNELS: &str = r#"
local tokens = {ARGV[4]}
if KEYS[1] ~= '' then tokens = redis.call('ZRANGE', KEYS[1], 0, -1) end
for _, t in ipairs(tokens) do
  local k = ARGV[1] .. ':a:' .. t
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
"#;

/// Removes up to `limit` members whose score (an expiry, ms) is not after `now` from the
/// sorted set `key` (they have the lowest ranks).
const PRUNE_LIB: &str = r#"
local function prune(key, now, limit)
  local n = math.min(redis.call('ZCOUNT', key, '-inf', now), limit)
  if n > 0 then redis.call('ZREMRANGEBYRANK', key, 0, n - 1) end
  return n
end
"#;

/// Caches an auth record: `a:<token>` expiring after the TTL, its expiry in `aexp` and (for a
/// user) in `at:<uid>`, which then expires with its newest record; up to 64 expired members
/// leave each set on the way (one is added, so neither grows beyond the live records and a
/// shrinking backlog). KEYS: a:<token>, aexp, at:<uid> ("" when anonymous). ARGV: record,
/// ttl secs, token, now_ms.
const CACHE_AUTH: &str = r#"
local ttl, now = tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], now + ttl * 1000, ARGV[3])
prune(KEYS[2], now, 64)
if KEYS[3] ~= '' then
  redis.call('ZADD', KEYS[3], now + ttl * 1000, ARGV[3])
  prune(KEYS[3], now, 64)
  redis.call('EXPIRE', KEYS[3], ttl)
end
return 1
"#;

/// The heartbeat's share of pruning `aexp`: up to `limit` expired members. KEYS: aexp. ARGV:
/// now_ms, limit. Returns how many went.
const PRUNE_AUTH: &str = r#"
return prune(KEYS[1], ARGV[1], tonumber(ARGV[2]))
"#;

/// Content-token helpers: expiring unused tokens (at most `limit`, the first to expire, from
/// `tx:<ch>`, which holds exactly the channel's tokens without sockets, scored by expiry), and
/// dropping an unused channel. Nothing here reads more of a channel than the tokens it expires.
const TOKENS_LIB: &str = r#"
local function expire(prefix, ch, now, limit)
  local t, x = prefix .. ':t:' .. ch, prefix .. ':tx:' .. ch
  local due = redis.call('ZRANGEBYSCORE', x, '-inf', now, 'LIMIT', 0, limit)
  for _, token in ipairs(due) do
    redis.call('ZREM', x, token)
    local raw = redis.call('HGET', t, token)
    if raw and cjson.decode(raw).u == 0 then
      redis.call('HDEL', t, token)
      redis.call('DECR', prefix .. ':twait')
    end
  end
  return #due
end
local function drop_if_unused(prefix, ch)
  if redis.call('HLEN', prefix .. ':t:' .. ch) == 0 and redis.call('HLEN', prefix .. ':tl:' .. ch) == 0 then
    redis.call('DEL', prefix .. ':t:' .. ch, prefix .. ':tm:' .. ch, prefix .. ':tx:' .. ch)
    redis.call('SREM', prefix .. ':tcs', ch)
  end
end
"#;

/// `content/token` (a token without sockets expires `ttl_ms` from now; up to 64 expired tokens
/// of the channel go first). ARGV: prefix, channel, token, record json, notify (1/0), now_ms,
/// ttl_ms.
const SET_TOKEN: &str = r#"
local now = tonumber(ARGV[6])
expire(ARGV[1], ARGV[2], now, 64)
local t = ARGV[1] .. ':t:' .. ARGV[2]
local old = redis.call('HGET', t, ARGV[3])
local b, u = '', 0
if old then
  local e = cjson.decode(old)
  b, u = e.b, e.u
else
  redis.call('INCR', ARGV[1] .. ':twait')
end
local entry = cjson.encode({r = ARGV[4], n = tonumber(ARGV[5]), b = b, u = u, i = tonumber(ARGV[6])})
redis.call('HSET', t, ARGV[3], entry)
if u == 0 then redis.call('ZADD', ARGV[1] .. ':tx:' .. ARGV[2], now + tonumber(ARGV[7]), ARGV[3]) end
redis.call('SADD', ARGV[1] .. ':tcs', ARGV[2])
return 1
"#;

/// A socket joins a content-token channel: the token is looked up alone (a wrong token costs
/// one lookup, plus at most 64 expired tokens taken out). ARGV: prefix, channel, token, member
/// key, session, node, uid, now_ms. Returns {'unknown'}, {'other'}, {'ok'} or
/// {'notice', record}.
const JOIN_TOKEN: &str = r#"
expire(ARGV[1], ARGV[2], tonumber(ARGV[8]), 64)
local t = ARGV[1] .. ':t:' .. ARGV[2]
local raw = redis.call('HGET', t, ARGV[3])
if not raw then
  drop_if_unused(ARGV[1], ARGV[2])
  return {'unknown'}
end
local e = cjson.decode(raw)
if e.b ~= '' and e.b ~= ARGV[5] then return {'other'} end
e.b = ARGV[5]
e.u = e.u + 1
if e.u == 1 then
  redis.call('DECR', ARGV[1] .. ':twait')
  redis.call('ZREM', ARGV[1] .. ':tx:' .. ARGV[2], ARGV[3])
end
redis.call('HSET', t, ARGV[3], cjson.encode(e))
local count = redis.call('HINCRBY', ARGV[1] .. ':tm:' .. ARGV[2], ARGV[4], 1)
local returning = redis.call('HDEL', ARGV[1] .. ':tl:' .. ARGV[2], ARGV[4])
local member = ARGV[2] .. '\t' .. ARGV[3] .. '\t' .. ARGV[4] .. '\t' .. ARGV[7]
redis.call('HINCRBY', ARGV[1] .. ':nt:' .. ARGV[6], member, 1)
if count == 1 and returning == 0 then return {'notice', e.r} end
return {'ok'}
"#;

/// Sockets leave a content-token channel (a token left without sockets expires `ttl_ms` from
/// now). ARGV: prefix, channel, token, member key, node, uid, forced (1/0), how many, now_ms,
/// due_ms, ttl_ms. Returns {'nothing'}, {'notify'} or
/// {'grace', gen} (the notice is due at due_ms in `P:due`).
const LEAVE_TOKEN: &str = r#"
local n = tonumber(ARGV[8])
local nt = ARGV[1] .. ':nt:' .. ARGV[5]
local member = ARGV[2] .. '\t' .. ARGV[3] .. '\t' .. ARGV[4] .. '\t' .. ARGV[6]
if redis.call('HINCRBY', nt, member, -n) <= 0 then redis.call('HDEL', nt, member) end
local t = ARGV[1] .. ':t:' .. ARGV[2]
local raw = redis.call('HGET', t, ARGV[3])
if not raw then return {'nothing'} end
local e = cjson.decode(raw)
if e.u <= 0 then return {'nothing'} end
e.u = math.max(e.u - n, 0)
if e.u == 0 then
  e.i = tonumber(ARGV[9])
  redis.call('INCR', ARGV[1] .. ':twait')
  redis.call('ZADD', ARGV[1] .. ':tx:' .. ARGV[2], e.i + tonumber(ARGV[11]), ARGV[3])
end
redis.call('HSET', t, ARGV[3], cjson.encode(e))
local tm = ARGV[1] .. ':tm:' .. ARGV[2]
local left = redis.call('HINCRBY', tm, ARGV[4], -n)
if left > 0 then return {'nothing'} end
redis.call('HDEL', tm, ARGV[4])
if e.n ~= 1 then return {'nothing'} end
if ARGV[7] == '1' then return {'notify'} end
local g = redis.call('INCR', ARGV[1] .. ':tlgen')
redis.call('HSET', ARGV[1] .. ':tl:' .. ARGV[2], ARGV[4], g)
redis.call('ZADD', ARGV[1] .. ':due', ARGV[10], 't\t' .. ARGV[2] .. '\t' .. ARGV[4] .. '\t' .. ARGV[6] .. '\t' .. g)
return {'grace', g}
"#;

/// Sweeps one content-token channel: drops up to `limit` of its expired unused tokens, and the
/// channel when nothing is left (a channel nobody touches again still expires). ARGV: prefix,
/// channel, now_ms, limit. Returns how many tokens it looked at (`limit`: call again).
const SWEEP_TOKENS: &str = r#"
local n = expire(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
drop_if_unused(ARGV[1], ARGV[2])
return n
"#;

/// Whether a content-token channel exists for `content/token/message`, after taking out up to
/// 64 of its expired unused tokens (as a join does), so a channel whose tokens all expired is
/// gone at once, not only after the heartbeat's sweep. ARGV: prefix, channel, now_ms. Returns
/// 1 when it exists.
const TOKEN_CHANNEL_LIVE: &str = r#"
expire(ARGV[1], ARGV[2], tonumber(ARGV[3]), 64)
drop_if_unused(ARGV[1], ARGV[2])
return redis.call('SISMEMBER', ARGV[1] .. ':tcs', ARGV[2])
"#;

/// A member's leave grace ran out. ARGV: prefix, channel, member key, generation. Returns 1
/// when the members must be told.
const TOKEN_GRACE_OVER: &str = r#"
local tl = ARGV[1] .. ':tl:' .. ARGV[2]
if redis.call('HGET', tl, ARGV[3]) ~= ARGV[4] then return 0 end
redis.call('HDEL', tl, ARGV[3])
local gone = redis.call('HEXISTS', ARGV[1] .. ':tm:' .. ARGV[2], ARGV[3]) == 0
drop_if_unused(ARGV[1], ARGV[2])
if gone then return 1 end
return 0
"#;

/// A channel got its first member on a node (ARGV[3] = 1) or lost its last (0). ARGV: prefix,
/// node, open, channel.
const CHANNEL_OPEN: &str = r#"
local p, ch = ARGV[1], ARGV[4]
if ARGV[3] == '1' then
  if redis.call('SADD', p .. ':nc:' .. ARGV[2], ch) == 1 then
    local nodes = redis.call('HINCRBY', p .. ':cn', ch, 1)
    if nodes == 1 and redis.call('SISMEMBER', p .. ':cx', ch) == 0 then redis.call('INCR', p .. ':chn') end
  end
elseif redis.call('SREM', p .. ':nc:' .. ARGV[2], ch) == 1 then
  local nodes = redis.call('HINCRBY', p .. ':cn', ch, -1)
  if nodes <= 0 then
    redis.call('HDEL', p .. ':cn', ch)
    if redis.call('SISMEMBER', p .. ':cx', ch) == 0 then redis.call('DECR', p .. ':chn') end
  end
end
return 1
"#;

/// `channel/add` (ARGV[3] = 1) or `channel/remove` (0). ARGV: prefix, channel, add. Returns 1
/// when done, 0 when the channel exists (add) or does not (remove).
const CHANNEL_ADMIN: &str = r#"
local p, ch = ARGV[1], ARGV[2]
local exists = redis.call('SISMEMBER', p .. ':cx', ch) == 1 or redis.call('HEXISTS', p .. ':cn', ch) == 1
if ARGV[3] == '1' then
  if exists then return 0 end
  redis.call('SADD', p .. ':cx', ch)
  redis.call('INCR', p .. ':chn')
  return 1
end
if not exists then return 0 end
redis.call('SREM', p .. ':cx', ch)
redis.call('HDEL', p .. ':cn', ch)
for _, node in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do redis.call('SREM', p .. ':nc:' .. node, ch) end
redis.call('DECR', p .. ':chn')
return 1
"#;

/// The compiled scripts (their SHA1s are computed once; Redis loads them on first use).
pub struct Scripts {
    pub publish: Script,
    pub history_count: Script,
    pub recover: Script,
    pub arrived: Script,
    pub departed: Script,
    pub grace_over: Script,
    pub presence_list: Script,
    pub edit_channels: Script,
    pub cache_auth: Script,
    pub prune_auth: Script,
    pub set_token: Script,
    pub join_token: Script,
    pub leave_token: Script,
    pub token_grace_over: Script,
    pub sweep_tokens: Script,
    pub token_channel_live: Script,
    pub channel_open: Script,
    pub channel_admin: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        let presence = |body: &str| Script::new(&format!("{PRESENCE_LIB}\n{body}"));
        let tokens = |body: &str| Script::new(&format!("{TOKENS_LIB}\n{body}"));
        let history = |body: &str| Script::new(&format!("{HISTORY_LIB}\n{body}"));
        let prune = |body: &str| Script::new(&format!("{PRUNE_LIB}\n{body}"));
        Scripts {
            publish: history(PUBLISH),
            history_count: history(HISTORY_COUNT),
            recover: Script::new(RECOVER),
            arrived: presence(ARRIVED),
            departed: presence(DEPARTED),
            grace_over: presence(GRACE_OVER),
            presence_list: presence(PRESENCE_LIST),
            edit_channels: Script::new(EDIT_CHANNELS),
            cache_auth: prune(CACHE_AUTH),
            prune_auth: prune(PRUNE_AUTH),
            set_token: tokens(SET_TOKEN),
            join_token: tokens(JOIN_TOKEN),
            leave_token: tokens(LEAVE_TOKEN),
            token_grace_over: tokens(TOKEN_GRACE_OVER),
            sweep_tokens: tokens(SWEEP_TOKENS),
            token_channel_live: tokens(TOKEN_CHANNEL_LIVE),
            channel_open: Script::new(CHANNEL_OPEN),
            channel_admin: Script::new(CHANNEL_ADMIN),
        }
    }
}
