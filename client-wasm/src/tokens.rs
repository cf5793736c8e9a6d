//! Content-token bookkeeping.
//!
//! The page starts with the tokens Drupal rendered into `contentTokens`, and gains more with
//! `Drupal.Nodejs.joinTokenChannel(channel, token)`. Every `authenticate` frame carries **all**
//! of them, so a reconnect rejoins every content-token channel (PROTOCOL.md). A join that
//! happens while an `authenticate` is in flight (sent without that token) is held back and sent
//! as `join-token-channel` once the server confirms authentication.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

/// Channel -> token, in insertion order. A vector rather than a `BTreeMap`: a page holds a
/// handful of tokens, and the tree's code would cost the wasm several KiB. (The protocol crate's
/// map sorts; the server reads either order.)
#[derive(Debug, Clone, Default, Eq)]
pub struct TokenMap(Vec<(String, String)>);

impl PartialEq for TokenMap {
    /// The same channels with the same tokens, in any order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(c, t)| other.get(c) == Some(t.as_str()))
    }
}

impl TokenMap {
    /// Sets `channel`'s token; returns the one it replaces.
    pub fn insert(&mut self, channel: String, token: String) -> Option<String> {
        match self.0.iter_mut().find(|(c, _)| *c == channel) {
            Some((_, old)) => Some(core::mem::replace(old, token)),
            None => {
                self.0.push((channel, token));
                None
            }
        }
    }

    pub fn get(&self, channel: &str) -> Option<&str> {
        self.0.iter().find(|(c, _)| c == channel).map(|(_, t)| t.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(c, t)| (c, t))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for TokenMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(items: I) -> Self {
        let mut map = TokenMap::default();
        for (channel, token) in items {
            map.insert(channel, token);
        }
        map
    }
}

impl IntoIterator for TokenMap {
    type Item = (String, String);
    type IntoIter = alloc::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    all: TokenMap,
    deferred: Vec<(String, String)>,
}

impl Tokens {
    pub fn new(initial: TokenMap) -> Self {
        Tokens { all: initial, deferred: Vec::new() }
    }

    /// Adds the tokens currently in the page settings (Drupal AJAX responses may add some).
    pub fn merge(&mut self, from_settings: TokenMap) {
        for (channel, token) in from_settings {
            self.all.insert(channel, token);
        }
    }

    /// Records a token joined by page code. Returns whether it is new or changed.
    pub fn join(&mut self, channel: &str, token: &str) -> bool {
        self.all.insert(channel.to_owned(), token.to_owned()).as_deref() != Some(token)
    }

    /// The tokens for an `authenticate` frame. Everything held back is included in it.
    pub fn for_authenticate(&mut self) -> TokenMap {
        self.deferred.clear();
        self.all.clone()
    }

    /// Holds a join back until authentication completes.
    pub fn defer(&mut self, channel: &str, token: &str) {
        self.deferred.retain(|(c, _)| c != channel);
        self.deferred.push((channel.to_owned(), token.to_owned()));
    }

    /// The joins held back, to be sent now that the socket is authenticated.
    pub fn take_deferred(&mut self) -> Vec<(String, String)> {
        core::mem::take(&mut self.deferred)
    }

    pub fn get(&self, channel: &str) -> Option<&str> {
        self.all.get(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> TokenMap {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn authenticate_carries_initial_merged_and_joined_tokens() {
        let mut t = Tokens::new(map(&[("a", "1")]));
        t.merge(map(&[("b", "2")]));
        assert!(t.join("c", "3"));
        assert!(!t.join("c", "3"), "the same token again is not new");
        assert!(t.join("c", "4"), "a new token for a channel replaces the old one");
        assert_eq!(t.for_authenticate(), map(&[("a", "1"), ("b", "2"), ("c", "4")]));
        assert_eq!(t.get("c"), Some("4"));
    }

    #[test]
    fn deferred_joins_are_sent_once_unless_an_authenticate_included_them() {
        let mut t = Tokens::default();
        t.join("a", "1");
        t.defer("a", "1");
        t.defer("b", "2");
        t.defer("a", "1");
        assert_eq!(t.take_deferred(), vec![("b".into(), "2".into()), ("a".into(), "1".into())]);
        assert!(t.take_deferred().is_empty());
        t.defer("c", "3");
        let _ = t.for_authenticate();
        assert!(t.take_deferred().is_empty(), "the authenticate frame already carried it");
    }
}
