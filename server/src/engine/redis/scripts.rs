//! The Lua scripts of the Redis engine: each operation that must be atomic across nodes is one
//! script, so that two nodes never see half of a change (the append of a message and its
//! publication, a presence transition, a content-token join). The Lua is in `lua/*.lua` (each
//! file says its KEYS, ARGV and reply); a script that needs shared helpers gets its library
//! (`*_lib.lua`) put before it. Replies are decoded in [`super::replies`].
//!
//! Every key a script touches is passed as `KEYS`, built by [`super::keys::Keys`] (Redis
//! Cluster needs that), except where a script derives keys from data it reads; those get the
//! prefix as `ARGV[1]` and say so in their header:
//! * `arrived`, `departed`, `grace_over` and `presence_list`: the watch sets `P:watch:<w>` of
//!   the watchers read from the user's hash (`presence_lib.lua`);
//! * `presence_list` and `edit_channels` (for a user): the cached records `P:a:<token>` of the
//!   tokens read from `P:at:<uid>`;
//! * `channel_admin` (a removal): `P:nc:<node>` of the nodes read from `P:nodes`.
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
//! * presence: `P:u:<uid>` hash {`n:<node>` -> sockets, on, o (the node that announced it
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

/// Shared helpers, put before the scripts that use them.
const HISTORY_LIB: &str = include_str!("lua/history_lib.lua");
const PRESENCE_LIB: &str = include_str!("lua/presence_lib.lua");
const PRUNE_LIB: &str = include_str!("lua/prune_lib.lua");
const TOKENS_LIB: &str = include_str!("lua/tokens_lib.lua");

/// The compiled scripts (their SHA1s are computed once; Redis loads them on first use). Each
/// is the file of its name in `lua/`.
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
        let with = |lib: &str, body: &str| Script::new(&format!("{lib}\n{body}"));
        let presence = |body: &str| with(PRESENCE_LIB, body);
        let tokens = |body: &str| with(TOKENS_LIB, body);
        let history = |body: &str| with(HISTORY_LIB, body);
        let prune = |body: &str| with(PRUNE_LIB, body);
        Scripts {
            publish: history(include_str!("lua/publish.lua")),
            history_count: history(include_str!("lua/history_count.lua")),
            recover: Script::new(include_str!("lua/recover.lua")),
            arrived: presence(include_str!("lua/arrived.lua")),
            departed: presence(include_str!("lua/departed.lua")),
            grace_over: presence(include_str!("lua/grace_over.lua")),
            presence_list: presence(include_str!("lua/presence_list.lua")),
            edit_channels: Script::new(include_str!("lua/edit_channels.lua")),
            cache_auth: prune(include_str!("lua/cache_auth.lua")),
            prune_auth: prune(include_str!("lua/prune_auth.lua")),
            set_token: tokens(include_str!("lua/set_token.lua")),
            join_token: tokens(include_str!("lua/join_token.lua")),
            leave_token: tokens(include_str!("lua/leave_token.lua")),
            token_grace_over: tokens(include_str!("lua/token_grace_over.lua")),
            sweep_tokens: tokens(include_str!("lua/sweep_tokens.lua")),
            token_channel_live: tokens(include_str!("lua/token_channel_live.lua")),
            channel_open: Script::new(include_str!("lua/channel_open.lua")),
            channel_admin: Script::new(include_str!("lua/channel_admin.lua")),
        }
    }
}
