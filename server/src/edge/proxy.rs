//! The client's address behind reverse proxies (`trustedProxies`).
//!
//! Behind nginx or Apache every connection comes from the proxy, so per-address limits would
//! treat the whole site as one client. When the connecting peer is a trusted proxy, the client
//! is the rightmost address of `X-Forwarded-For` that is not itself a trusted proxy (each proxy
//! appends the address it saw, so entries left of an untrusted hop may be forged and are
//! never read; an unreadable entry ends the walk at the hop right of it, see
//! [`TrustedProxies::client_ip`]). From any other peer the header is ignored: a browser cannot
//! choose its address.
//!
//! A peer that is *not* trusted but sends `X-Forwarded-For` or `Forwarded` is most likely a
//! reverse proxy missing from `trustedProxies`: then every browser behind it counts as that one
//! address, and the per-address limits throttle the whole site. [`UntrustedForwarders`]
//! remembers such peers (bounded) so that each is named once in the log, with the setting to
//! fix, and in the rate-limit refusals of that address.

use crate::error::ConfigError;
use http::HeaderMap;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// The parsed `trustedProxies`: addresses and CIDR ranges.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    ranges: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.168.1.5`, `::1`, `fd00::/8`; an error names the entry.
    pub fn parse(list: &[String]) -> Result<TrustedProxies, ConfigError> {
        let ranges = list
            .iter()
            .enumerate()
            .map(|(i, item)| {
                parse_range(item.trim()).ok_or_else(|| {
                    ConfigError::new(
                        format!("trustedProxies[{i}]"),
                        format!("{item:?} is not an IP address or a CIDR range like 10.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { ranges })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ranges.iter().any(|(net, bits)| in_range(ip, *net, *bits))
    }

    /// The address of the client behind `peer`, from `X-Forwarded-For` when `peer` is trusted.
    ///
    /// The walk goes from the right (the hop the nearest proxy appended) to the left and stops
    /// at the first address that is not a trusted proxy: that is the client, and whatever lies
    /// left of it is never read (the client may have written it). When every hop is a trusted
    /// proxy, the leftmost one is the client. An entry that is not an address (`unknown`, a
    /// hostname, garbage) also ends the walk, and the last good hop to its right counts as the
    /// client (the peer itself when there is none): only a trusted proxy can have written that
    /// entry, and nothing left of it can be vouched for, so the client's address is the nearest
    /// one we can name; a client never gets to pick it. Empty list elements are skipped (HTTP
    /// lists allow them).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let values: Vec<&http::HeaderValue> = headers.get_all("x-forwarded-for").iter().collect();
        let mut client = peer;
        for value in values.into_iter().rev() {
            let Ok(text) = value.to_str() else { return client };
            for item in text.rsplit(',').map(str::trim).filter(|item| !item.is_empty()) {
                let Some(ip) = parse_hop(item) else { return client };
                client = ip;
                if !self.contains(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// The forwarding header a request carries, if any: `X-Forwarded-For` or `Forwarded`.
pub fn forwarding_header(headers: &HeaderMap) -> Option<&'static str> {
    if headers.contains_key("x-forwarded-for") {
        Some("X-Forwarded-For")
    } else if headers.contains_key(http::header::FORWARDED) {
        Some("Forwarded")
    } else {
        None
    }
}

/// Most untrusted forwarding peers remembered (each logged once); past it, one more line says
/// that further ones are not logged.
pub const MAX_UNTRUSTED_FORWARDERS: usize = 1024;

/// Peers not in `trustedProxies` seen sending a forwarding header. Clones share one table
/// (the admission checks note peers; the backend queue's refusal line asks for the hint too).
#[derive(Debug, Default, Clone)]
pub struct UntrustedForwarders {
    seen: Arc<Mutex<Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    peers: HashSet<IpAddr>,
    /// The line saying that further peers are not logged was written.
    full: bool,
}

/// What [`UntrustedForwarders::note`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// The first handshake with a forwarding header from this peer: log it.
    First,
    /// Seen before (or past the bound, after the line that said so).
    Again,
    /// The bound was just reached: log that further peers are not logged.
    Full,
}

impl UntrustedForwarders {
    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a handshake from `peer` that carried a forwarding header.
    pub fn note(&self, peer: IpAddr) -> Noted {
        let peer = peer.to_canonical();
        let mut seen = self.lock();
        if seen.peers.contains(&peer) {
            Noted::Again
        } else if seen.peers.len() < MAX_UNTRUSTED_FORWARDERS {
            seen.peers.insert(peer);
            Noted::First
        } else if !seen.full {
            seen.full = true;
            Noted::Full
        } else {
            Noted::Again
        }
    }

    /// Whether `peer` has sent a forwarding header without being trusted.
    pub fn contains(&self, peer: IpAddr) -> bool {
        self.lock().peers.contains(&peer.to_canonical())
    }

    /// What a rate-limit refusal of `client` adds when it is such a peer: what to do about it.
    pub fn hint(&self, client: IpAddr) -> String {
        if self.contains(client) {
            format!(
                "; {client} sends X-Forwarded-For/Forwarded but is not in trustedProxies: if it is your \
                 reverse proxy, add \"{client}\" to trustedProxies, or every browser behind it counts as this \
                 one address"
            )
        } else {
            String::new()
        }
    }
}

fn parse_range(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip.to_canonical(), bits))
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_forwarders_are_noted_once_and_bounded() {
        let mut h = HeaderMap::new();
        assert_eq!(forwarding_header(&h), None);
        h.insert("forwarded", "for=203.0.113.9".parse().unwrap());
        assert_eq!(forwarding_header(&h), Some("Forwarded"));
        h.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(forwarding_header(&h), Some("X-Forwarded-For"));
        let u = UntrustedForwarders::default();
        assert_eq!(u.hint(ip("10.1.1.1")), "");
        assert_eq!(u.note(ip("10.1.1.1")), Noted::First);
        assert_eq!(u.note(ip("::ffff:10.1.1.1")), Noted::Again, "the same peer");
        assert!(u.hint(ip("10.1.1.1")).contains("add \"10.1.1.1\" to trustedProxies"));
        for n in 1..MAX_UNTRUSTED_FORWARDERS as u32 {
            assert_eq!(u.note(IpAddr::from((0x0b00_0000 + n).to_be_bytes())), Noted::First);
        }
        assert_eq!(u.note(ip("12.0.0.1")), Noted::Full);
        assert_eq!(u.note(ip("12.0.0.2")), Noted::Again, "said once");
        assert_eq!(u.lock().peers.len(), MAX_UNTRUSTED_FORWARDERS, "bounded");
    }

    #[test]
    fn ranges() {
        let p = proxies(&["10.0.0.0/8", "192.168.1.5", "::1", "fd00::/8"]);
        assert!(p.contains(ip("10.200.3.4")));
        assert!(!p.contains(ip("11.0.0.1")));
        assert!(p.contains(ip("192.168.1.5")));
        assert!(!p.contains(ip("192.168.1.6")));
        assert!(p.contains(ip("::1")));
        assert!(p.contains(ip("fd12::1")));
        assert!(p.contains(ip("::ffff:10.1.1.1")), "IPv4-mapped peers count as IPv4");
        assert!(proxies(&["0.0.0.0/0"]).contains(ip("8.8.8.8")));
    }

    #[test]
    fn bad_entries_name_the_key() {
        for bad in ["localhost", "10.0.0.0/33", "1.2.3", "::1/129", "10.0.0.0/"] {
            let e = TrustedProxies::parse(&["127.0.0.1".into(), bad.into()]).unwrap_err();
            assert_eq!(e.key, "trustedProxies[1]", "{e}");
            assert!(e.to_string().starts_with("trustedProxies[1]: "), "{e}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let h = xff(&["203.0.113.9"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        assert_eq!(p.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"), "a browser cannot pick");
        assert_eq!(p.client_ip(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        // A forged first entry, the real client, then an inner proxy.
        let h = xff(&["1.1.1.1, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        let h = xff(&["10.0.0.8, 10.0.0.7"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("10.0.0.8"), "all trusted: the first");
        let h = xff(&["[2001:db8::1]:4711, 203.0.113.9:80"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        let h = xff(&["unknown"]);
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"), "unreadable: the peer");
    }

    /// Security review finding 10: one unparsable `X-Forwarded-For` entry anywhere made the
    /// whole header count for nothing, so a client that sent `X-Forwarded-For: junk` (which
    /// nginx keeps, appending the real address) counted as the proxy itself.
    #[test]
    fn the_walk_stops_at_the_first_untrusted_hop_and_never_reads_what_lies_left_of_it() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        for (values, client, why) in [
            (&["junk, 203.0.113.9"][..], "203.0.113.9", "junk the client wrote is left of its hop"),
            (&["unknown, not an address, 203.0.113.9, 10.0.0.7"], "203.0.113.9", "through an inner proxy"),
            (&["junk", "203.0.113.9"], "203.0.113.9", "over two header lines"),
            (&["198.51.100.1, unknown, 10.0.0.7"], "10.0.0.7", "junk at a trusted hop: the hop right of it"),
            (&["203.0.113.9, unknown"], "127.0.0.1", "junk as the last entry: the peer"),
            (&["203.0.113.9, 10.0.0.8, 10.0.0.7"], "203.0.113.9", "past two trusted hops"),
            (&["203.0.113.9, , 10.0.0.7,"], "203.0.113.9", "empty elements are skipped"),
            (&[" , "], "127.0.0.1", "only empty elements: the peer"),
            (&["10.0.0.9, 2001:db8::5"], "2001:db8::5", "IPv6"),
            (&["::ffff:203.0.113.9"], "203.0.113.9", "IPv4-mapped"),
        ] {
            assert_eq!(p.client_ip(peer, &xff(values)), ip(client), "{values:?}: {why}");
        }
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        h.append("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(p.client_ip(peer, &h), peer, "a header line that is not text ends the walk");
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff").unwrap());
        h.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(p.client_ip(peer, &h), ip("203.0.113.9"), "one left of the client is never read");
    }
}
