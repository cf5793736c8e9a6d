//! The names of the Redis engine's keys and pub/sub channels: every one is built here, from the
//! configured prefix `P`, so the layout documented in [`super::scripts`] is written down once.
//! Scripts get the keys they touch as `KEYS` built by these methods; the few that derive keys
//! from data they read get [`Keys::prefix`] and build the same names in Lua (see `scripts`).

use drupal_push_protocol::Uid;

/// The key names under one prefix; one method per kind of key.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_owned() }
    }

    /// The prefix itself, for the scripts that derive keys from what they read.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn of(&self, part: &str) -> String {
        format!("{}:{part}", self.prefix)
    }

    fn with(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}:{kind}:{id}", self.prefix)
    }

    // Pub/sub channels.

    /// `P:pub`: publications, in the order the PUBLISH script ran.
    pub fn publications(&self) -> String {
        self.of("pub")
    }

    /// `P:ctl`: commands between nodes.
    pub fn commands(&self) -> String {
        self.of("ctl")
    }

    // Streams and the history count.

    /// `P:s:<key>`: a stream's {epoch, top}.
    pub fn stream_meta(&self, stream_key: &str) -> String {
        self.with("s", stream_key)
    }

    /// `P:h:<key>`: a stream's history list.
    pub fn history(&self, stream_key: &str) -> String {
        self.with("h", stream_key)
    }

    /// `P:hn`, `P:hl`, `P:hx`: the count of messages in all histories and its two indexes.
    pub fn history_count(&self) -> [String; 3] {
        [self.of("hn"), self.of("hl"), self.of("hx")]
    }

    // Nodes.

    /// `P:nodes`: the nodes not yet reaped.
    pub fn nodes(&self) -> String {
        self.of("nodes")
    }

    /// `P:node:<id>`: a node's heartbeat (its figures).
    pub fn node(&self, node: &str) -> String {
        self.with("node", node)
    }

    /// `P:reap:<id>`: the lock of the node reaping `node`.
    pub fn reap_lock(&self, node: &str) -> String {
        self.with("reap", node)
    }

    /// `P:boot`: written once; gone when Redis lost its data.
    pub fn boot(&self) -> String {
        self.of("boot")
    }

    // Sessions.

    /// `P:a:<token>`: a cached auth record.
    pub fn auth(&self, token: &str) -> String {
        self.with("a", token)
    }

    /// `P:aexp`: cached tokens by when their record expires.
    pub fn auth_expiry(&self) -> String {
        self.of("aexp")
    }

    /// `P:as:<token>`: a session's sockets per node.
    pub fn session(&self, token: &str) -> String {
        self.with("as", token)
    }

    /// `P:at:<uid>`: a user's cached tokens by expiry.
    pub fn user_tokens(&self, uid: Uid) -> String {
        self.with("at", uid)
    }

    /// `P:ns:<node>`: the tokens with sockets on a node.
    pub fn node_sessions(&self, node: &str) -> String {
        self.with("ns", node)
    }

    /// `P:sessions`: the count of sessions with sockets.
    pub fn session_count(&self) -> String {
        self.of("sessions")
    }

    // Presence.

    /// `P:u:<uid>`: a user's presence.
    pub fn user(&self, uid: Uid) -> String {
        self.with("u", uid)
    }

    /// `P:nu:<node>`: the uids with sockets on a node.
    pub fn node_users(&self, node: &str) -> String {
        self.with("nu", node)
    }

    /// `P:online`: the count of online users.
    pub fn online(&self) -> String {
        self.of("online")
    }

    /// `P:watch:<w>`: the online users `w` watches.
    pub fn watched(&self, watcher: Uid) -> String {
        self.with("watch", watcher)
    }

    /// `P:due`: pending decisions by due time.
    pub fn due(&self) -> String {
        self.of("due")
    }

    // Content tokens.

    /// `P:t:<ch>`: a content-token channel's tokens.
    pub fn tokens(&self, channel: &str) -> String {
        self.with("t", channel)
    }

    /// `P:tx:<ch>`: a channel's unused tokens by expiry.
    pub fn token_expiry(&self, channel: &str) -> String {
        self.with("tx", channel)
    }

    /// `P:tm:<ch>`: a channel's members and their sockets.
    pub fn token_members(&self, channel: &str) -> String {
        self.with("tm", channel)
    }

    /// `P:tl:<ch>`: a channel's members with a pending leave.
    pub fn token_leaves(&self, channel: &str) -> String {
        self.with("tl", channel)
    }

    /// `P:tcs`: the content-token channels.
    pub fn token_channels(&self) -> String {
        self.of("tcs")
    }

    /// `P:twait`: the count of unused tokens.
    pub fn waiting_tokens(&self) -> String {
        self.of("twait")
    }

    /// `P:tlgen`: the counter of leave generations.
    pub fn leave_generation(&self) -> String {
        self.of("tlgen")
    }

    /// `P:nt:<node>`: a node's content-token joins.
    pub fn node_tokens(&self, node: &str) -> String {
        self.with("nt", node)
    }

    // Channels.

    /// `P:cx`: the channels made by `channel/add`.
    pub fn made_channels(&self) -> String {
        self.of("cx")
    }

    /// `P:cn`: channels with members -> how many nodes have them.
    pub fn channel_nodes(&self) -> String {
        self.of("cn")
    }

    /// `P:nc:<node>`: the channels with members on a node.
    pub fn node_channels(&self, node: &str) -> String {
        self.with("nc", node)
    }

    /// `P:chn`: the count of channels.
    pub fn channel_count(&self) -> String {
        self.of("chn")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_layout() {
        let k = Keys::new("dp");
        assert_eq!(k.user(Uid(7)), "dp:u:7");
        assert_eq!(k.user_tokens(Uid(7)), "dp:at:7");
        assert_eq!(k.watched(Uid(3)), "dp:watch:3");
        assert_eq!(k.stream_meta("token:c"), "dp:s:token:c");
        assert_eq!(k.history("*"), "dp:h:*");
        assert_eq!(k.history_count(), ["dp:hn", "dp:hl", "dp:hx"]);
        assert_eq!(k.auth("a b"), "dp:a:a b");
        assert_eq!(k.tokens("ch"), "dp:t:ch");
        assert_eq!(k.token_expiry("ch"), "dp:tx:ch");
        assert_eq!(k.token_members("ch"), "dp:tm:ch");
        assert_eq!(k.token_leaves("ch"), "dp:tl:ch");
        assert_eq!(k.node_tokens("n1"), "dp:nt:n1");
        assert_eq!(k.node_channels("n1"), "dp:nc:n1");
        assert_eq!(k.node("n1"), "dp:node:n1");
        assert_eq!(k.reap_lock("n1"), "dp:reap:n1");
        assert_eq!(
            [k.publications(), k.commands(), k.made_channels(), k.channel_nodes(), k.channel_count()],
            ["dp:pub", "dp:ctl", "dp:cx", "dp:cn", "dp:chn"]
        );
        assert_eq!(
            [k.token_channels(), k.waiting_tokens(), k.leave_generation(), k.due(), k.online()],
            ["dp:tcs", "dp:twait", "dp:tlgen", "dp:due", "dp:online"]
        );
        assert_eq!([k.session_count(), k.auth_expiry(), k.boot()], ["dp:sessions", "dp:aexp", "dp:boot"]);
    }
}
