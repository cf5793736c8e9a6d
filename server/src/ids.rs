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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_socket_ids_and_differ() {
        let a = random_id(16);
        assert_eq!(a.len(), 16);
        assert!(drupal_push_protocol::SocketId::is_valid(&a));
        assert_ne!(a, random_id(16));
    }
}
