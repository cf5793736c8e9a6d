//! Per-address keys and rate limits. [`address_key`] is what "one address" means for every
//! per-address limit (connection and authentication rates, `maxConnectionsPerAddress`, the
//! share of the backend queue, the status page's address counts): an IPv4 address, or the /64
//! network of an IPv6 address, since one IPv6 host usually holds a whole /64 and can pick a new
//! address in it for every connection.
//!
//! Rate limits: the token bucket ([`TokenBucket`], also one per socket for its requests and its
//! content-token channel joins, [`take_per_socket`]), and
//! per-address buckets keyed by the client's IP address, for new WebSocket connections
//! (`connectionRatePerAddress`, `connectionBurstPerAddress`) and for authentications that go to
//! Drupal (`authRatePerAddress`, `authBurstPerAddress`).
//!
//! A bucket holds up to `burst` tokens and refills at `rate` per second; each event takes one.
//! An address nobody has seen for a while has a full bucket, which is the same as no bucket:
//! such entries are dropped whenever the table has doubled since the last sweep, so memory
//! stays proportional to the addresses active in the last `burst / rate` seconds. Past
//! [`MAX_TRACKED`] addresses at once (an attack from a huge address range) new addresses are let
//! through untracked rather than evicting others: the limit protects against one noisy address,
//! and the global `maxConnections` is the bound for the rest. The table uses std's SipHash, so
//! chosen addresses cannot degrade it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

/// The key of `ip` for per-address limits: an IPv4 address (IPv4-mapped IPv6 included) as it
/// is, an IPv6 address as its /64 network (the low 64 bits cleared).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Most addresses tracked at once.
pub const MAX_TRACKED: usize = 1_000_000;
/// The table size below which no sweep happens.
const MIN_SWEEP: usize = 1024;

/// What a limiter says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused; `first` is true for the first refusal since the address was last allowed, so
    /// callers can log once per burst instead of once per event.
    Refused {
        first: bool,
    },
}

/// One token bucket per address.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    burst: f64,
    table: Mutex<Table>,
}

#[derive(Debug)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    sweep_at: usize,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: TokenBucket,
    refusing: bool,
}

/// A bucket of up to `burst` tokens refilled at `rate` per second; each event takes one.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> TokenBucket {
        TokenBucket { tokens: burst, at: now }
    }

    /// Takes a token at `now` if there is one.
    pub fn take(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket would be full again at `now`.
    fn refilled(&self, rate: f64, burst: f64, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate >= burst
    }
}

/// Takes a token from one socket's bucket for a per-socket rate of `rate` per second after bursts
/// of `burst` (`rate` 0: no limit, always true). The bucket is allocated on the first event, so
/// a socket that never asks costs one empty pointer.
pub fn take_per_socket(bucket: &mut Option<Box<TokenBucket>>, rate: f64, burst: f64, now: Instant) -> bool {
    if rate <= 0.0 {
        return true;
    }
    let burst = burst.max(1.0);
    bucket.get_or_insert_with(|| Box::new(TokenBucket::full(burst, now))).take(rate, burst, now)
}

impl RateLimit {
    /// A limiter of `rate` events per second with bursts of `burst`; `None` when `rate` is 0
    /// (no limit).
    pub fn new(rate: f64, burst: u32) -> Option<RateLimit> {
        (rate > 0.0).then(|| RateLimit {
            rate,
            burst: f64::from(burst.max(1)),
            table: Mutex::new(Table { buckets: HashMap::new(), sweep_at: MIN_SWEEP }),
        })
    }

    /// Takes a token for `ip` (its [`address_key`]) at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        let ip = address_key(ip);
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.buckets.len() >= table.sweep_at {
            self.sweep(&mut table, now);
        }
        let full = Bucket { tokens: TokenBucket::full(self.burst, now), refusing: false };
        if table.buckets.len() >= MAX_TRACKED && !table.buckets.contains_key(&ip) {
            return Verdict::Allowed;
        }
        let bucket = table.buckets.entry(ip).or_insert(full);
        if bucket.tokens.take(self.rate, self.burst, now) {
            bucket.refusing = false;
            Verdict::Allowed
        } else {
            let first = !bucket.refusing;
            bucket.refusing = true;
            Verdict::Refused { first }
        }
    }

    /// Drops the buckets that have refilled completely.
    fn sweep(&self, table: &mut Table, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        table.buckets.retain(|_, b| !b.tokens.refilled(rate, burst, now));
        table.sweep_at = (table.buckets.len() * 2).max(MIN_SWEEP);
    }

    /// Addresses tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn zero_rate_is_no_limit() {
        assert!(RateLimit::new(0.0, 10).is_none());
    }

    #[test]
    fn a_burst_then_the_rate() {
        let l = RateLimit::new(2.0, 3).unwrap();
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check(ip(1), t), Verdict::Allowed);
        }
        assert_eq!(l.check(ip(1), t), Verdict::Refused { first: true });
        assert_eq!(l.check(ip(1), t), Verdict::Refused { first: false });
        assert_eq!(l.check(ip(2), t), Verdict::Allowed, "another address has its own bucket");
        let later = t + Duration::from_millis(500);
        assert_eq!(l.check(ip(1), later), Verdict::Allowed, "one token refilled in 0.5 s at 2/s");
        assert_eq!(l.check(ip(1), later), Verdict::Refused { first: true });
        let much_later = t + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.check(ip(1), much_later), Verdict::Allowed, "refills up to the burst");
        }
        assert_eq!(l.check(ip(1), much_later), Verdict::Refused { first: true });
    }

    fn v6(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Security review finding 6: IPv6 clients were limited per /128, so one host with a /64
    /// had 2^64 fresh buckets.
    #[test]
    fn ipv6_addresses_are_keyed_by_their_64_network() {
        assert_eq!(address_key(v6("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), v6("2001:db8:1:2::"));
        assert_eq!(address_key(v6("2001:db8:1:2::1")), address_key(v6("2001:db8:1:2:ffff::9")));
        assert_ne!(address_key(v6("2001:db8:1:2::1")), address_key(v6("2001:db8:1:3::1")));
        assert_eq!(address_key(v6("::1")), v6("::"), "the loopback's /64");
        assert_eq!(address_key(v6("::ffff:203.0.113.9")), v6("203.0.113.9"), "IPv4-mapped: IPv4");
        assert_eq!(address_key(v6("203.0.113.9")), v6("203.0.113.9"));
        assert_ne!(address_key(v6("203.0.113.9")), address_key(v6("203.0.113.10")), "IPv4: per address");
        let l = RateLimit::new(0.001, 2).unwrap();
        let t = Instant::now();
        assert_eq!(l.check(v6("2001:db8::1"), t), Verdict::Allowed);
        assert_eq!(l.check(v6("2001:db8::2"), t), Verdict::Allowed);
        assert_eq!(l.check(v6("2001:db8::3:4"), t), Verdict::Refused { first: true }, "one /64, one bucket");
        assert_eq!(l.check(v6("2001:db8:0:1::1"), t), Verdict::Allowed, "the next /64 has its own");
        assert_eq!(l.tracked(), 2);
    }

    #[test]
    fn refilled_buckets_are_swept() {
        let l = RateLimit::new(10.0, 1).unwrap();
        let t = Instant::now();
        for n in 0..MIN_SWEEP as u32 {
            l.check(ip(n), t);
        }
        assert_eq!(l.tracked(), MIN_SWEEP);
        // A second later every bucket is full again; the next new address triggers the sweep.
        l.check(ip(u32::MAX), t + Duration::from_secs(1));
        assert_eq!(l.tracked(), 1);
    }
}
