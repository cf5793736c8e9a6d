//! Validated names: channel names, Drupal user ids and socket ids.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest channel name accepted (the original accepted any length; spec 9.6).
pub const MAX_CHANNEL_NAME_LEN: usize = 255;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong { len: usize, max: usize },
    BadCharacter(char),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "the name is empty"),
            NameError::TooLong { len, max } => {
                write!(f, "the name is {len} characters long, at most {max} are allowed")
            }
            NameError::BadCharacter(c) => {
                write!(f, "the name contains {c:?}; only letters a-z, digits and '_' are allowed")
            }
        }
    }
}

impl std::error::Error for NameError {}

/// A channel name as the REST routes accept it: `^[a-z0-9_]+$` (case-insensitive), at most
/// [`MAX_CHANNEL_NAME_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ChannelName(String);

impl ChannelName {
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_CHANNEL_NAME_LEN {
            return Err(NameError::TooLong { len: name.len(), max: MAX_CHANNEL_NAME_LEN });
        }
        if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
            return Err(NameError::BadCharacter(c));
        }
        Ok(ChannelName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChannelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChannelName::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A Drupal user id. `0` is the anonymous user. Drupal sends uids as numbers or as numeric
/// strings (Drupal 7 user objects); both compare equal here (spec 7.15 fixes the loose `==`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uid(pub u64);

impl Uid {
    pub const ANONYMOUS: Uid = Uid(0);

    /// Parses the REST form: `^\d+$`.
    pub fn parse(s: &str) -> Option<Uid> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok().map(Uid)
    }

    pub fn is_anonymous(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Uid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Uid {
    /// Accepts a non-negative integer, a string of digits, or null/false (anonymous).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        match Value::deserialize(d)? {
            Value::Null | Value::Bool(false) => Ok(Uid::ANONYMOUS),
            Value::Number(n) => n
                .as_u64()
                .map(Uid)
                .ok_or_else(|| serde::de::Error::custom(format!("uid {n} is not a non-negative integer"))),
            Value::String(s) => {
                Uid::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("uid {s:?} is not a number")))
            }
            other => Err(serde::de::Error::custom(format!("uid {other} is not a number"))),
        }
    }
}

/// A socket id: what the browser sends back to Drupal as `nodejs_client_socket_id` and what
/// Drupal echoes as `clientSocketId`. Drupal accepts `^[0-9a-z_-]+$` only (spec 3.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SocketId(pub String);

impl SocketId {
    /// Whether `s` is a socket id Drupal would accept.
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_the_rest_regex() {
        assert!(ChannelName::parse("nodejs_user_5").is_ok());
        assert!(ChannelName::parse("MixedCase_9").is_ok());
        assert_eq!(ChannelName::parse(""), Err(NameError::Empty));
        assert_eq!(ChannelName::parse("a-b"), Err(NameError::BadCharacter('-')));
        assert_eq!(ChannelName::parse("é"), Err(NameError::BadCharacter('é')));
        assert!(ChannelName::parse(&"a".repeat(255)).is_ok());
        assert_eq!(ChannelName::parse(&"a".repeat(256)), Err(NameError::TooLong { len: 256, max: 255 }));
    }

    #[test]
    fn uids_accept_numbers_and_numeric_strings() {
        let u: Uid = serde_json::from_str("5").unwrap();
        let s: Uid = serde_json::from_str("\"5\"").unwrap();
        assert_eq!(u, s);
        assert_eq!(serde_json::from_str::<Uid>("null").unwrap(), Uid::ANONYMOUS);
        assert!(serde_json::from_str::<Uid>("\"5a\"").is_err());
        assert!(serde_json::from_str::<Uid>("-1").is_err());
        assert_eq!(serde_json::to_string(&Uid(7)).unwrap(), "7");
        assert_eq!(Uid::parse("12"), Some(Uid(12)));
        assert_eq!(Uid::parse("1 2"), None);
        assert_eq!(Uid::parse(""), None);
    }

    #[test]
    fn socket_ids_match_drupals_regex() {
        assert!(SocketId::is_valid("k3j-9_a"));
        assert!(!SocketId::is_valid("ABC"));
        assert!(!SocketId::is_valid(""));
        assert!(!SocketId::is_valid("a b"));
    }
}
