//! Measuring without disturbing: a lock-free latency histogram (which a fleet process sends to
//! its coordinator as [`Buckets`]), wall-clock timestamps shared by every process on the
//! machine, and CPU time and RSS of any process read from `/proc`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch: the clock the publisher stamps into a message and the
/// subscriber reads on delivery (one machine, one clock).
pub fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Values below this are counted exactly; above it in 64 sub-buckets per power of two
/// (at most 1.6 % error).
const LINEAR: u64 = 128;
const SUB: u64 = 64;
const BUCKETS: usize = (LINEAR + SUB * 57) as usize;

/// A log-linear histogram of microseconds, recorded with relaxed atomics (no lock on the
/// delivery path).
pub struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - u64::from(v.leading_zeros());
    let mantissa = (v >> (e - 6)) - SUB;
    (LINEAR + (e - 7) * SUB + mantissa) as usize
}

/// The middle of the bucket `i` covers.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let e = (i - LINEAR) / SUB + 7;
    let low = (SUB + (i - LINEAR) % SUB) << (e - 6);
    low + (1 << (e - 6)) / 2
}

impl Histogram {
    pub fn record(&self, v: u64) {
        self.counts[index(v).min(BUCKETS - 1)].fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        self.max.fetch_max(v, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.total.load(Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }

    /// The value at quantile `q` (0..=1); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed);
            if seen >= rank {
                return value(i).min(self.max());
            }
        }
        self.max()
    }

    /// p50, p99 and max in milliseconds.
    pub fn summary_ms(&self) -> (f64, f64, f64) {
        let ms = |us: u64| us as f64 / 1000.0;
        (ms(self.quantile(0.50)), ms(self.quantile(0.99)), ms(self.max()))
    }

    /// The non-empty buckets, to be added to a histogram of another process.
    pub fn buckets(&self) -> Buckets {
        let counts = self
            .counts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = c.load(Relaxed);
                (c > 0).then_some((i as u32, c))
            })
            .collect();
        Buckets { counts, max: self.max() }
    }

    /// Adds another histogram's buckets (indexes out of range are ignored).
    pub fn add(&self, b: &Buckets) {
        for &(i, c) in &b.counts {
            if let Some(slot) = self.counts.get(i as usize) {
                slot.fetch_add(c, Relaxed);
                self.total.fetch_add(c, Relaxed);
            }
        }
        self.max.fetch_max(b.max, Relaxed);
    }
}

/// A histogram's non-empty buckets (index, count) and its maximum, as JSON.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Buckets {
    pub counts: Vec<(u32, u64)>,
    pub max: u64,
}

/// Clock ticks per second of `/proc/*/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU time of a process (all threads), in ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// CPU use of some processes over a window, in percent of one core.
pub struct CpuMeter {
    pids: Vec<u32>,
    ticks: u64,
    started: Instant,
}

impl CpuMeter {
    pub fn start(pids: &[u32]) -> CpuMeter {
        let mut meter = CpuMeter { pids: pids.to_vec(), ticks: 0, started: Instant::now() };
        meter.ticks = meter.ticks_now();
        meter
    }

    fn ticks_now(&self) -> u64 {
        self.pids.iter().filter_map(|p| cpu_ticks(*p)).sum()
    }

    /// Percent of one core since `start` (100 = one core busy all the time), all processes
    /// together.
    pub fn percent(&self) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        let used = self.ticks_now().saturating_sub(self.ticks);
        if secs <= 0.0 { 0.0 } else { used as f64 / TICKS_PER_SEC / secs * 100.0 }
    }
}

/// CPU meters for the servers under test and the load generator (and the shared Redis of a
/// cluster, if any), started together.
pub struct CpuPair {
    pub server: CpuMeter,
    pub loadgen: CpuMeter,
    pub redis: Option<CpuMeter>,
}

impl CpuPair {
    /// The servers and this process.
    pub fn start(server_pids: &[u32]) -> CpuPair {
        CpuPair::of(server_pids, &[std::process::id()], None)
    }

    /// The servers, the load generator's processes and Redis.
    pub fn of(server_pids: &[u32], loadgen_pids: &[u32], redis_pid: Option<u32>) -> CpuPair {
        CpuPair {
            server: CpuMeter::start(server_pids),
            loadgen: CpuMeter::start(loadgen_pids),
            redis: redis_pid.map(|p| CpuMeter::start(&[p])),
        }
    }

    /// Servers' and load generator's CPU, % of one core.
    pub fn read(&self) -> (f64, f64) {
        (self.server.percent(), self.loadgen.percent())
    }

    /// Redis's CPU, % of one core, when there is one.
    pub fn redis(&self) -> Option<f64> {
        self.redis.as_ref().map(CpuMeter::percent)
    }
}

/// `/proc/loadavg`'s first three fields.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_ascii_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_two_percent() {
        for v in [0, 1, 127, 128, 129, 1000, 4095, 4096, 65_000, 1_234_567, 10_000_000_000] {
            let back = value(index(v));
            let err = (back as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 0.02, "{v} -> {back}");
        }
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.count(), 1000);
        assert!((490..=510).contains(&h.quantile(0.5)), "{}", h.quantile(0.5));
        assert!((980..=1000).contains(&h.quantile(0.99)));
        assert_eq!(h.max(), 1000);
    }

    #[test]
    fn buckets_added_elsewhere_give_the_same_quantiles() {
        let (a, b, sum) = (Histogram::default(), Histogram::default(), Histogram::default());
        for v in 1..=1000 {
            a.record(v);
            sum.record(v);
        }
        for v in 5000..=5100 {
            b.record(v);
            sum.record(v);
        }
        let merged = Histogram::default();
        let wire: Buckets = serde_json::from_str(&serde_json::to_string(&a.buckets()).unwrap()).unwrap();
        merged.add(&wire);
        merged.add(&b.buckets());
        assert_eq!(merged.count(), sum.count());
        assert_eq!(merged.max(), 5100);
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(merged.quantile(q), sum.quantile(q));
        }
    }
}
