//! What a run measures, as JSON read back by `report`: one [`SuiteResult`] per server, one
//! [`InterleaveResult`] per interleaved comparison, and one [`ClusterResult`] for the cluster
//! scenario.

use crate::redis::RedisMemory;
use crate::target::Kind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectResult {
    /// `cold` (every token new: one backend call each) or `cached` (the same tokens again).
    pub round: String,
    pub clients: usize,
    pub ready: usize,
    pub failed: usize,
    pub secs: f64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Authenticate calls the backend got during the round.
    pub backend_auth_calls: u64,
    pub server_cpu: f64,
    pub loadgen_cpu: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HoldResult {
    pub clients: usize,
    pub ready: usize,
    pub failed: usize,
    pub connect_secs: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub kib_per_conn: f64,
    pub loadgen_kib_per_conn: f64,
    /// Connections that ended on their own while held.
    pub dropped: usize,
}

impl HoldResult {
    /// A hold of `clients` after connect wave `wave`: RSS in KiB of the servers and of the load
    /// generator before and after, divided by the clients that got ready.
    pub fn measured(
        clients: usize,
        wave: &crate::fleet::Wave,
        servers: (u64, u64),
        loadgen: (u64, u64),
    ) -> HoldResult {
        let per_conn =
            |(before, after): (u64, u64)| after.saturating_sub(before) as f64 / wave.ready.max(1) as f64;
        HoldResult {
            clients,
            ready: wave.ready,
            failed: wave.failed,
            connect_secs: wave.secs,
            rss_before_kib: servers.0,
            rss_after_kib: servers.1,
            kib_per_conn: per_conn(servers),
            loadgen_kib_per_conn: per_conn(loadgen),
            dropped: 0,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FanoutResult {
    pub subscribers: usize,
    pub messages: u32,
    /// Size of the published body, bytes.
    pub body_bytes: usize,
    /// Messages in flight (published, not yet delivered to every subscriber).
    pub window: u32,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub stray: u64,
    pub secs: f64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub publish_p50_ms: f64,
    /// 99th percentile of the publish requests' round trips.
    #[serde(default)]
    pub publish_p99_ms: f64,
    pub publish_errors: u64,
    /// Publishes whose `sent` differed from the subscriber count.
    pub sent_mismatch: u64,
    pub stalled: bool,
    pub server_cpu: f64,
    pub loadgen_cpu: f64,
    /// CPU of the deployment's shared redis-server, % of one core (cluster runs only).
    #[serde(default)]
    pub redis_cpu: Option<f64>,
    /// A REST call timed during the round (a round of its own, not in the main table).
    #[serde(default)]
    pub probe: Option<ProbeResult>,
}

/// A REST call made once every `every_ms` (one at a time) during a fan-out round.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProbeResult {
    pub every_ms: u64,
    pub calls: u64,
    /// Transport errors, time-outs (10 s) and non-2xx answers.
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub mem_total: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpus: cpuinfo.lines().filter(|l| l.starts_with("processor")).count(),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            mem_total: meminfo
                .lines()
                .find(|l| l.starts_with("MemTotal"))
                .map(|l| l.trim_start_matches("MemTotal:").trim().to_owned())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteResult {
    pub kind: Kind,
    pub version: String,
    /// How the server was started, and with what configuration.
    pub command: String,
    pub config: String,
    /// How the load generator was started.
    pub loadgen_argv: String,
    pub machine: Machine,
    pub started_unix: u64,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub connect: Vec<ConnectResult>,
    pub hold: Option<HoldResult>,
    pub fanout: Vec<FanoutResult>,
    /// Distinct client errors, most frequent first.
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}

/// One side of an interleaved comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variant {
    pub label: String,
    pub kind: Kind,
    /// Extra drupal-push configuration lines of this side.
    pub toml: Vec<String>,
    pub version: String,
    pub command: String,
    pub config: String,
}

/// Hold + one sequential fan-out size, run `runs` times per side, the sides alternating
/// (a, b, a, b, …), each run against a freshly started server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterleaveResult {
    pub a: Variant,
    pub b: Variant,
    pub window: u32,
    pub messages: u32,
    pub body_bytes: usize,
    pub loadgen_argv: String,
    pub machine: Machine,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub sizes: Vec<InterleaveSize>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterleaveSize {
    pub subscribers: usize,
    /// Run i of a and run i of b (run i of a started first).
    pub runs: Vec<(FanoutResult, FanoutResult)>,
    /// Median over the runs of a's deliveries/s divided by b's in the same run pair.
    pub median_ratio: f64,
    pub min_ratio: f64,
    pub max_ratio: f64,
}

/// Publish latency alone (`publish.rs`): `publishes` requests, `in_flight` at a time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PublishResult {
    pub in_flight: u32,
    pub publishes: u32,
    pub body_bytes: usize,
    /// Non-2xx answers, JSON errors and transport errors.
    pub errors: u64,
    /// The first error's text, if any.
    #[serde(default)]
    pub first_error: Option<String>,
    pub secs: f64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub server_cpu: f64,
    pub loadgen_cpu: f64,
    pub redis_cpu: Option<f64>,
}

/// The cluster scenario (`cluster.rs`): each deployment measured in turn in one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterResult {
    pub version: String,
    pub redis_version: String,
    pub loadgen_argv: String,
    pub machine: Machine,
    pub started_unix: u64,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub deployments: Vec<DeploymentResult>,
}

/// One deployment of the cluster scenario: its nodes, held connections, fan-out rounds to all of
/// them and publish latency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentResult {
    pub label: String,
    /// `redis` or `memory`.
    pub engine: String,
    pub nodes: usize,
    /// Fleet processes of the load generator (one per node).
    pub fleet_processes: usize,
    /// How node 0 was started, and its configuration.
    pub command: String,
    pub config: String,
    pub redis_command: Option<String>,
    /// Nodes' RSS (all nodes together) before and after the connections.
    pub hold: HoldResult,
    pub redis_before: Option<RedisMemory>,
    pub redis_after: Option<RedisMemory>,
    pub fanout: Vec<FanoutResult>,
    pub publish: Vec<PublishResult>,
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}
