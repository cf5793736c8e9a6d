//! What the client remembers across reconnects (PROTOCOL.md, "Recovery"): the position of the
//! last message handled in each stream ([`Positions`]), and the presence picture the page was
//! given ([`Presence`]).
//!
//! - Positions come from every recorded `message` (its `stream`, else its `channel`, with
//!   `offset` and `epoch`), from `authenticated.streams` and from `joined`. After a reconnect
//!   they go back to the server in `authenticate.positions`; its `authenticated.recovered` says,
//!   per stream, whether every missed message follows ([`Positions::settle`]).
//! - A recorded message whose offset is not above the position held for its stream (same epoch)
//!   is a duplicate and is dropped; a message of another epoch starts the stream anew
//!   ([`Positions::accept`]). The server already merges replayed and live messages by offset,
//!   so this only guards against the unexpected.
//! - Presence notifications are not recorded by the server: after a reconnect it sends the
//!   watched users online now, and [`Presence::replace`] turns the difference with what the page
//!   was told into notifications (online for new ones, offline for those gone).

use alloc::string::String;
use alloc::vec::Vec;

/// The broadcast stream's key.
pub const BROADCAST: &str = "*";
/// The prefix of a content-token channel's stream key.
pub const TOKEN_PREFIX: &str = "token:";

/// A place in a stream: the offset of a message and the epoch it counts in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub epoch: String,
}

/// The channel name the page knows a stream by: a content-token channel by its name, the
/// broadcast stream as `*`, a channel by its name.
pub fn channel_of(key: &str) -> &str {
    key.strip_prefix(TOKEN_PREFIX).unwrap_or(key)
}

/// Stream key -> last position handled, in the order the streams were first seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(Vec<(String, Position)>);

/// What an authentication after a reconnect says: the streams recovered in full, and those
/// that were not (as channel names, see [`channel_of`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub recovered: Vec<String>,
    pub failed: Vec<String>,
}

impl Positions {
    /// A recorded message at `offset` in `key`'s stream: `true` when it is new (and now the
    /// stream's position), `false` for a duplicate.
    pub fn accept(&mut self, key: &str, offset: u64, epoch: &str) -> bool {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, p)) if p.epoch == epoch && offset <= p.offset => false,
            Some((_, p)) => {
                *p = Position { offset, epoch: epoch.into() };
                true
            }
            None => {
                self.0.push((key.into(), Position { offset, epoch: epoch.into() }));
                true
            }
        }
    }

    /// The position to start from in `key`'s stream (`joined`, `authenticated.streams`).
    pub fn start(&mut self, key: String, position: Position) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, p)) => *p = position,
            None => self.0.push((key, position)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Position> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, Position)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes in an `authenticated` frame: the positions of recovered streams stay (their missed
    /// messages follow), the other streams start at `streams`, and streams the server named in
    /// neither (the socket is no longer in them) are forgotten. Returns the outcome for the
    /// positions the server answered.
    pub fn settle(&mut self, streams: Vec<(String, Position)>, recovered: &[(String, bool)]) -> Outcome {
        let mut outcome = Outcome::default();
        for (key, ok) in recovered {
            let list = if *ok { &mut outcome.recovered } else { &mut outcome.failed };
            list.push(channel_of(key).into());
        }
        self.0.retain(|(k, _)| recovered.iter().any(|(r, ok)| *ok && r == k));
        for (key, position) in streams {
            self.start(key, position);
        }
        outcome
    }
}

/// The users the page was told are online.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence(Vec<u64>);

impl Presence {
    /// A presence notification the page received.
    pub fn note(&mut self, uid: u64, online: bool) {
        self.0.retain(|u| *u != uid);
        if online {
            self.0.push(uid);
        }
    }

    /// The users online now (`authenticated.online`): the notifications that bring the page's
    /// picture up to date, `(uid, online)`, first the users gone, then the new ones.
    pub fn replace(&mut self, online: &[u64]) -> Vec<(u64, bool)> {
        let mut changes: Vec<(u64, bool)> =
            self.0.iter().filter(|u| !online.contains(u)).map(|u| (*u, false)).collect();
        for uid in online {
            if !self.0.contains(uid) && !changes.iter().any(|(u, _)| u == uid) {
                changes.push((*uid, true));
            }
        }
        self.0.clear();
        for uid in online {
            if !self.0.contains(uid) {
                self.0.push(*uid);
            }
        }
        changes
    }

    pub fn online(&self) -> &[u64] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn pos(offset: u64, epoch: &str) -> Position {
        Position { offset, epoch: epoch.into() }
    }

    #[test]
    fn offsets_advance_and_duplicates_are_dropped() {
        let mut p = Positions::default();
        assert!(p.accept("chat", 4, "e1"), "first message of a stream");
        assert!(p.accept("chat", 5, "e1"));
        assert!(!p.accept("chat", 5, "e1"), "the same offset again");
        assert!(!p.accept("chat", 3, "e1"), "an older one");
        assert!(p.accept("chat", 9, "e1"), "a gap is not a duplicate");
        assert_eq!(p.get("chat"), Some(&pos(9, "e1")));
        assert!(p.accept("*", 1, "b"), "streams are independent");
        assert_eq!(p.get("chat"), Some(&pos(9, "e1")));
    }

    #[test]
    fn another_epoch_starts_the_stream_anew() {
        let mut p = Positions::default();
        p.start("chat".into(), pos(40, "old"));
        assert!(p.accept("chat", 1, "new"), "offsets of another epoch do not compare");
        assert_eq!(p.get("chat"), Some(&pos(1, "new")));
        assert!(!p.accept("chat", 1, "new"));
        assert!(p.accept("chat", 2, "new"));
    }

    #[test]
    fn start_positions_come_from_joined_and_authenticated() {
        let mut p = Positions::default();
        p.start("token:room".into(), pos(3, "a"));
        assert!(!p.accept("token:room", 3, "a"), "the start position itself was seen before joining");
        assert!(p.accept("token:room", 4, "a"));
        p.start("token:room".into(), pos(10, "a"));
        assert_eq!(p.get("token:room"), Some(&pos(10, "a")), "a start position replaces the old one");
    }

    #[test]
    fn which_streams_failed_and_what_is_kept() {
        let mut p = Positions::default();
        for (k, o) in [("chat", 12), ("token:room", 5), ("*", 3), ("gone", 7), ("nodejs_user_5", 2)] {
            p.start(k.into(), pos(o, "e"));
        }
        let recovered = [
            ("chat".to_string(), true),
            ("token:room".to_string(), false),
            ("*".to_string(), false),
            ("nodejs_user_5".to_string(), true),
        ];
        let streams = vec![("token:room".to_string(), pos(40, "n")), ("*".to_string(), pos(0, "m"))];
        let outcome = p.settle(streams, &recovered);
        assert_eq!(outcome.recovered, ["chat", "nodejs_user_5"]);
        assert_eq!(outcome.failed, ["room", "*"], "token channels by name, the broadcast as *");
        assert_eq!(p.get("chat"), Some(&pos(12, "e")), "recovered: kept, the replay follows");
        assert_eq!(p.get("token:room"), Some(&pos(40, "n")), "failed: the new start position");
        assert_eq!(p.get("*"), Some(&pos(0, "m")));
        assert_eq!(p.get("gone"), None, "not named by the server: the socket left that stream");
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn a_first_authentication_takes_the_start_positions() {
        let mut p = Positions::default();
        let outcome = p.settle(vec![("nodejs_user_5".to_string(), pos(8, "e"))], &[]);
        assert_eq!(outcome, Outcome::default());
        assert_eq!(p.get("nodejs_user_5"), Some(&pos(8, "e")));
        let outcome = p.settle(Vec::new(), &[]);
        assert!(p.is_empty(), "history off: nothing to keep");
        assert_eq!(outcome, Outcome::default());
    }

    #[test]
    fn channel_names_of_stream_keys() {
        assert_eq!(channel_of("token:room"), "room");
        assert_eq!(channel_of(BROADCAST), "*");
        assert_eq!(channel_of("nodejs_user_5"), "nodejs_user_5");
    }

    #[test]
    fn presence_diff_against_what_the_page_was_told() {
        let mut p = Presence::default();
        p.note(7, true);
        p.note(8, true);
        p.note(9, true);
        p.note(9, false);
        assert_eq!(p.online(), [7, 8]);
        let changes = p.replace(&[8, 10, 10, 11]);
        assert_eq!(changes, [(7, false), (10, true), (11, true)], "gone first, then new; no repeats");
        assert_eq!(p.online(), [8, 10, 11]);
        assert!(p.replace(&[8, 10, 11]).is_empty(), "nothing changed");
        assert_eq!(p.replace(&[]), [(8, false), (10, false), (11, false)]);
        p.note(3, false);
        assert!(p.online().is_empty(), "offline for a user not known online is harmless");
    }
}
