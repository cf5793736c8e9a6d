//! The client's address behind reverse proxies (`trustedProxies`).
//!
//! Behind nginx or Apache every connection comes from the proxy, so per-address limits would
//! treat the whole site as one client. When the connecting peer is a trusted proxy, the client
//! is the rightmost address of `X-Forwarded-For` that is not itself a trusted proxy (each proxy
//! appends the address it saw, so entries left of an untrusted hop may be forged and are
//! ignored). From any other peer the header is ignored: a browser cannot choose its address.

use http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// The parsed `trustedProxies`: addresses and CIDR ranges.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    ranges: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `192.168.1.5`, `::1`, `fd00::/8`; an error names the entry.
    pub fn parse(list: &[String]) -> Result<TrustedProxies, String> {
        let ranges = list
            .iter()
            .enumerate()
            .map(|(i, item)| {
                parse_range(item.trim()).ok_or_else(|| {
                    format!(
                        "trustedProxies[{i}]: {item:?} is not an IP address or a CIDR range like 10.0.0.0/8"
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
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else { return peer };
            for item in text.split(',') {
                match parse_hop(item.trim()) {
                    Some(ip) => hops.push(ip),
                    None => return peer,
                }
            }
        }
        hops.iter().rev().copied().find(|ip| !self.contains(*ip)).or(hops.first().copied()).unwrap_or(peer)
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
            assert!(e.starts_with("trustedProxies[1]: "), "{e}");
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
}
