//! Reconnection delays: exponential backoff with full jitter, and a small seeded PRNG.
//!
//! Attempt `n` (counting from 0 since the last stable connection) waits a uniformly random time
//! in `[0, min(CAP, BASE * 2^n))`: 0.5 s, 1 s, 2 s … capped at 30 s. Full jitter spreads the
//! reconnects of many pages after a server restart instead of synchronising them. A close with
//! code 1001 (server restarting) waits only a short random delay ([`soon_delay`]).

/// First backoff ceiling.
pub const BASE_MS: u64 = 500;
/// Largest backoff ceiling.
pub const CAP_MS: u64 = 30_000;
/// Shortest delay after a 1001 close.
pub const SOON_MIN_MS: u64 = 100;
/// Spread of the delay after a 1001 close.
pub const SOON_SPAN_MS: u64 = 900;

/// Exponential backoff state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The ceiling of the next delay.
    pub fn ceiling_ms(&self) -> u64 {
        BASE_MS.saturating_mul(1u64 << self.attempt.min(20)).min(CAP_MS)
    }

    /// The next delay for a random `unit` in `[0, 1)`; advances the attempt counter.
    pub fn next_delay(&mut self, unit: f64) -> u64 {
        let delay = (unit.clamp(0.0, 1.0) * self.ceiling_ms() as f64) as u64;
        self.attempt = self.attempt.saturating_add(1);
        delay.min(CAP_MS)
    }

    /// After a stable connection: start again from the base delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// The delay after the server said it is going away (1001).
pub fn soon_delay(unit: f64) -> u64 {
    SOON_MIN_MS + (unit.clamp(0.0, 1.0) * SOON_SPAN_MS as f64) as u64
}

/// xorshift64*: good enough for jitter, deterministic in tests, seeded from `Math.random` in
/// the browser.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_from_half_a_second_to_thirty() {
        let mut b = Backoff::default();
        let ceilings: Vec<u64> = (0..9)
            .map(|_| {
                let c = b.ceiling_ms();
                b.next_delay(0.5);
                c
            })
            .collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        for _ in 0..100 {
            b.next_delay(0.999);
        }
        assert_eq!(b.ceiling_ms(), CAP_MS);
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.ceiling_ms(), BASE_MS);
    }

    #[test]
    fn delays_are_full_jitter_below_the_ceiling() {
        let mut b = Backoff::default();
        assert_eq!(b.next_delay(0.0), 0);
        assert_eq!(b.next_delay(0.5), 500);
        assert_eq!(b.next_delay(0.999_999), 1999);
        assert_eq!(b.next_delay(7.0), 4000, "out-of-range units are clamped");
    }

    #[test]
    fn soon_is_short() {
        assert_eq!(soon_delay(0.0), 100);
        assert_eq!(soon_delay(1.0), 1000);
    }

    #[test]
    fn rng_is_uniform_enough_and_deterministic() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<f64> = (0..10_000).map(|_| a.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        assert_eq!(b.unit(), xs[0]);
        assert!(Rng::new(0).unit() > 0.0, "a zero seed still produces numbers");
    }
}
