//! Random identifiers: socket ids (which Drupal validates against `^[0-9a-z_-]+$`) and demo
//! secrets.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `len` random characters from `[0-9a-z]`.
pub fn random_id(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// The first characters of a secret, enough to correlate log lines.
pub fn redact(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    format!("{head}…")
}

/// A URL as it may be logged: the password of its user part (`scheme://user:password@host`,
/// `redis://:password@host`) replaced by `***`; the rest (scheme, user, host, port, path) kept,
/// so a log line still says which server it is about. A text that is not a URL with a user part
/// comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The last '@' ends the user part (a password may itself contain '@').
    let Some(at) = authority.rfind('@') else { return url.to_owned() };
    let (user_info, host) = (&authority[..at], &authority[at + 1..]);
    let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
    if user_info.contains(':') {
        format!("{scheme}://{user}:***@{host}{tail}")
    } else {
        // `redis://password@host`: redis-rs reads a lone user part as the password.
        format!("{scheme}://***@{host}{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review (issue 24, finding 7): the Redis URL was logged with its password.
    #[test]
    fn urls_lose_their_password_and_keep_the_host() {
        assert_eq!(redact_url("redis://:s3cret@10.0.0.5:6379/0"), "redis://:***@10.0.0.5:6379/0");
        assert_eq!(
            redact_url("rediss://app:p@ss@word@redis.example:6380"),
            "rediss://app:***@redis.example:6380"
        );
        assert_eq!(redact_url("redis://s3cret@host/2"), "redis://***@host/2");
        assert_eq!(redact_url("redis://127.0.0.1:6379/0"), "redis://127.0.0.1:6379/0");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url("redis://host/path@x"), "redis://host/path@x");
    }

    #[test]
    fn ids_are_valid_socket_ids_and_differ() {
        let a = random_id(16);
        assert_eq!(a.len(), 16);
        assert!(drupal_push_protocol::SocketId::is_valid(&a));
        assert_ne!(a, random_id(16));
    }
}
