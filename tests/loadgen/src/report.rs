//! `report`: renders `tests/bench/RESULTS.md` from the JSON of one run (the suites of
//! drupal-push, the peer, Sockudo with default and with documented settings, the ceiling, the
//! interleaved comparisons and the cluster scenario): machine, versions, commands, method, the
//! tables (in [`crate::tables`] and [`crate::cluster_tables`]) and the project's targets checked
//! against the figures. With `--only-cluster` it replaces just the cluster section of an
//! existing `RESULTS.md` (after `run.sh cluster`, which runs that part alone).

use crate::cluster_tables;
use crate::results::{ClusterResult, InterleaveResult, SuiteResult};
use crate::tables::{self, find};
use crate::target::Kind;
use anyhow::Context;
use std::fmt::Write;
use std::path::PathBuf;

#[derive(clap::Args, Clone)]
pub struct ReportArgs {
    /// Directory with ours.json, peer.json, sockudo.json, sockudo-tuned.json, ceiling.json,
    /// interleave-*.json and cluster.json (missing ones are skipped).
    #[arg(long)]
    dir: PathBuf,
    /// Replace only the cluster section of `--out` (appended if it has none) with the one of
    /// `cluster.json`; the rest of the file stays as it is.
    #[arg(long)]
    only_cluster: bool,
    /// The Markdown file to write.
    #[arg(long)]
    out: PathBuf,
    /// A text file with the exact commands the run executed (shown verbatim).
    #[arg(long)]
    commands: Option<PathBuf>,
    /// Extra version lines (toolchain), one per flag.
    #[arg(long = "version-line")]
    version_lines: Vec<String>,
}

/// Every result of one run.
pub struct Run {
    pub suites: Vec<SuiteResult>,
    pub interleaves: Vec<InterleaveResult>,
    pub cluster: Option<ClusterResult>,
}

/// The order servers appear in, in every table.
const ORDER: [Kind; 5] = [Kind::Ours, Kind::Peer, Kind::Sockudo, Kind::SockudoTuned, Kind::Ceiling];

impl Run {
    pub fn all(&self) -> impl Iterator<Item = &SuiteResult> {
        self.suites.iter()
    }

    pub fn get(&self, kind: Kind) -> Option<&SuiteResult> {
        self.suites.iter().find(|s| s.kind == kind)
    }
}

fn load(args: &ReportArgs) -> anyhow::Result<Run> {
    let read = |path: &std::path::Path| -> anyhow::Result<String> {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut suites = Vec::new();
    for kind in ORDER {
        let path = args.dir.join(format!("{}.json", kind.slug()));
        if path.exists() {
            let s: SuiteResult = serde_json::from_str(&read(&path)?)
                .with_context(|| format!("cannot parse {}", path.display()))?;
            suites.push(s);
        }
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&args.dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("interleave-") && n.ends_with(".json"))
        })
        .collect();
    names.sort();
    let mut interleaves = Vec::new();
    for path in names {
        interleaves.push(
            serde_json::from_str(&read(&path)?)
                .with_context(|| format!("cannot parse {}", path.display()))?,
        );
    }
    let path = args.dir.join("cluster.json");
    let cluster = match path.exists() {
        true => Some(
            serde_json::from_str(&read(&path)?)
                .with_context(|| format!("cannot parse {}", path.display()))?,
        ),
        false => None,
    };
    Ok(Run { suites, interleaves, cluster })
}

pub fn render(args: &ReportArgs) -> anyhow::Result<()> {
    let run = load(args)?;
    if args.only_cluster {
        let cluster =
            run.cluster.as_ref().with_context(|| format!("no cluster.json in {}", args.dir.display()))?;
        let mut section = String::new();
        cluster_tables::section(&mut section, cluster)?;
        let existing =
            std::fs::read_to_string(&args.out).unwrap_or_else(|_| "# drupal-push benchmarks\n".into());
        let md = cluster_tables::splice(&existing, &section);
        std::fs::write(&args.out, md).with_context(|| format!("cannot write {}", args.out.display()))?;
        eprintln!("wrote the cluster section of {}", args.out.display());
        return Ok(());
    }
    let mut md = String::new();
    header(&mut md, &run, args)?;
    tables::hold(&mut md, &run)?;
    tables::connect(&mut md, &run)?;
    tables::fanout(&mut md, &run)?;
    tables::sockudo_ahead(&mut md, &run)?;
    tables::probes(&mut md, &run)?;
    for i in &run.interleaves {
        tables::interleave(&mut md, i)?;
    }
    match &run.cluster {
        Some(c) => {
            cluster_tables::section(&mut md, c)?;
            writeln!(md)?;
        }
        // A run without the cluster part keeps the section of an earlier one, as it was.
        None => {
            let existing = std::fs::read_to_string(&args.out).unwrap_or_default();
            if let Some(section) = cluster_tables::find(&existing) {
                writeln!(md, "{section}\n")?;
            }
        }
    }
    targets(&mut md, &run)?;
    notes(&mut md, &run)?;
    std::fs::write(&args.out, md).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

pub fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Ours => "drupal-push",
        Kind::Peer => "laravel-echo-server",
        Kind::Sockudo => "Sockudo",
        Kind::SockudoTuned => "Sockudo (tuned)",
        Kind::Ceiling => "ceiling",
    }
}

fn header(md: &mut String, run: &Run, args: &ReportArgs) -> anyhow::Result<()> {
    writeln!(md, "# drupal-push benchmarks\n")?;
    writeln!(
        md,
        "Generated by `tests/bench/run.sh` (the load generator is `drupal-push-bench`, \
         `tests/loadgen/`). Every figure below comes from this one run; compare \
         figures only within it. Analysis and profiles: `tests/bench/PROFILE.md`. Commands and \
         paths are relative to the repository root.\n"
    )?;
    let machine = run.all().next().map(|s| &s.machine).or(run.interleaves.first().map(|i| &i.machine));
    if let Some(m) = machine {
        writeln!(md, "## Machine\n")?;
        writeln!(md, "- CPUs: {} x {}", m.cpus, m.cpu_model)?;
        writeln!(md, "- kernel {}, memory {}", m.kernel, m.mem_total)?;
    }
    writeln!(
        md,
        "- load average (1/5/15 min; the benchmark itself keeps up to 2 cores busy) before and after each suite:"
    )?;
    for s in run.all() {
        writeln!(md, "  - {}: {} -> {}", name(s.kind), s.loadavg_before, s.loadavg_after)?;
    }
    for i in &run.interleaves {
        writeln!(md, "  - {} vs {}: {} -> {}", i.a.label, i.b.label, i.loadavg_before, i.loadavg_after)?;
    }
    writeln!(md, "\n## Versions\n")?;
    for s in run.all() {
        writeln!(md, "- {}: {}", name(s.kind), s.version)?;
    }
    for line in &args.version_lines {
        writeln!(md, "- {line}")?;
    }
    writeln!(md, "\n## Commands\n")?;
    if let Some(path) = &args.commands {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        writeln!(md, "```sh\n{}\n```\n", text.trim_end())?;
    }
    for s in run.all() {
        writeln!(md, "- {} started as `{}`", name(s.kind), s.command)?;
    }
    for s in run.all().filter(|s| s.config != "(none)" && !s.config.is_empty()) {
        let lang = if s.kind == Kind::Peer { "json" } else { "toml" };
        writeln!(
            md,
            "\n{} configuration (ports differ per start):\n\n```{lang}\n{}\n```",
            name(s.kind),
            s.config.trim_end()
        )?;
    }
    writeln!(md, "\n## Method\n")?;
    writeln!(
        md,
        "- Server pinned to CPU 0, load generator (clients, publisher and fake Drupal backend, one \
         process) to CPU 1 with `taskset`; CPU figures are % of one core from /proc/PID/stat over \
         the measured window.\n\
         - drupal-push clients authenticate with their own token (unique uid each), channel \
         `bench` comes from the backend's answer. laravel-echo-server clients subscribe to the \
         private channel `private-bench`, whose auth request goes to the same fake backend \
         (`authHost`): both servers make one backend call per new client.\n\
         - Sockudo speaks the Pusher protocol 7 (`/app/<key>?protocol=7`). In the connect rounds \
         each client subscribes to the private channel `private-bench` and first gets its \
         subscription signed by the fake backend (`POST /pusher/auth`, HMAC-SHA256 of socket id \
         and channel, as a page asks its site): one backend request per client, like the others, \
         but made by the client (on the load generator's core), not by the server; Pusher has no \
         auth cache, so the cached round makes them again. Hold and fan-out clients subscribe to \
         the public channel `bench`. Publishing uses its signed HTTP API (`POST /apps/bench/events`, \
         `body_md5` and `auth_signature`).\n\
         - *Ready*: drupal-push and the ceiling when the client receives `authenticated`; Sockudo \
         on `pusher_internal:subscription_succeeded`; laravel-echo-server sends no \
         acknowledgement, so when the backend receives its auth request (this flatters the peer \
         slightly).\n\
         - Fan-out: the publisher stamps each message with the wall clock (same machine, same \
         clock); latency is delivery time minus stamp. *Window 1* publishes the next message once \
         every subscriber has the previous one (sequential); *window 10* keeps 10 messages in \
         flight. Deliveries/s = deliveries / (last delivery - first publish). Lost = expected - \
         unique deliveries; duplicates are counted per client.\n\
         - Ratios are drupal-push's advantage: its rate divided by the other's, or for memory the \
         other's KiB per connection divided by drupal-push's (> 1: drupal-push is better).\n\
         - Ceiling: `drupal-push-bench broadcaster` (`ceiling.rs`): hand-rolled upgrade, `hello` and \
         `authenticated` without any backend, and a publish that appends one pre-encoded frame to \
         every socket's backlog, written by one flusher task with one `write` per socket; the \
         machine's limit for this fan-out (one loopback `write` costs ~6-7 µs of kernel time here, \
         receiver side included).\n\
         - laravel-echo-server runs with `\"database\": \"none\"` (no presence channels are used, \
         so it needs neither Redis nor SQLite) and publishes through its HTTP API.\n\
         - Sockudo runs with its defaults except for what the configuration above sets: loopback \
         addresses and free ports (metrics included), the bench app, and its rate limiter off (by \
         default it admits 20 WebSocket connections per minute per IP address and every client \
         here comes from 127.0.0.1). *Sockudo (tuned)* adds the per-connection buffer settings of \
         its documentation (README example: `max_messages = 1000`, `max_bytes = 1048576`, \
         `disconnect_on_buffer_full = false`; cleanup queue 50000, batch 25); the documentation \
         gives no values for a given connection count.\n"
    )?;
    Ok(())
}

fn check(md: &mut String, ok: bool, what: String) -> std::fmt::Result {
    writeln!(md, "- [{}] {what}", if ok { "x" } else { " " })
}

fn targets(md: &mut String, run: &Run) -> anyhow::Result<()> {
    writeln!(md, "## Targets (checked against this run)\n")?;
    let ours = run.get(Kind::Ours);
    if let Some(h) = ours.and_then(|s| s.hold.as_ref()) {
        check(
            md,
            h.ready >= 19_000 && h.kib_per_conn <= 8.0,
            format!(
                "hold 19,000 connections at <= 8 KiB RSS each: {} held at {:.2} KiB",
                h.ready, h.kib_per_conn
            ),
        )?;
    }
    let rate =
        |kind: Kind, subs: usize, window: u32| find(run.get(kind), subs, window).map_or(0.0, |f| f.per_sec);
    for window in [1, 10] {
        if let Some(o) = find(ours, 10_000, window) {
            let (peer, ceiling) = (rate(Kind::Peer, 10_000, window), rate(Kind::Ceiling, 10_000, window));
            check(
                md,
                peer > 0.0 && o.per_sec >= 10.0 * peer,
                format!(
                    "fan-out 10k, window {window}: >= 10x the peer's deliveries/s: {}",
                    tables::ratio(o.per_sec, peer)
                ),
            )?;
            check(
                md,
                ceiling > 0.0 && o.per_sec >= 0.7 * ceiling,
                format!(
                    "fan-out 10k, window {window}: >= 70 % of the ceiling: {:.0} %",
                    100.0 * o.per_sec / ceiling.max(1.0)
                ),
            )?;
        }
    }
    for i in run.interleaves.iter().filter(|i| i.a.kind == Kind::Ours && i.b.kind == Kind::Ceiling) {
        for s in &i.sizes {
            check(
                md,
                s.median_ratio >= 0.85 && i.errors.is_empty(),
                format!(
                    "sequential fan-out at {} subscribers >= 85 % of the ceiling (median of {} interleaved runs, 0 lost): {:.0} % ({:.0}-{:.0} %)",
                    s.subscribers,
                    s.runs.len(),
                    100.0 * s.median_ratio,
                    100.0 * s.min_ratio,
                    100.0 * s.max_ratio
                ),
            )?;
        }
    }
    for i in run.interleaves.iter().filter(|i| i.a.kind == Kind::Ours && i.b.kind == Kind::Ours) {
        for s in &i.sizes {
            check(
                md,
                s.median_ratio >= 0.9,
                format!(
                    "fan-out at {} subscribers, {} vs {}: costs at most 10 %: {:.0} % of the other (median of {})",
                    s.subscribers,
                    i.a.label,
                    i.b.label,
                    100.0 * s.median_ratio,
                    s.runs.len()
                ),
            )?;
        }
    }
    if let Some(o) = find(ours, 10_000, 1) {
        check(md, o.p99_ms < 50.0, format!("fan-out 10k sequential: p99 < 50 ms: {:.1} ms", o.p99_ms))?;
    }
    if let Some(s) = ours {
        let lost: u64 = s.fanout.iter().map(|f| f.lost + f.duplicated).sum();
        check(
            md,
            lost == 0 && !s.fanout.is_empty(),
            format!("0 lost and 0 duplicated over all fan-out rounds: {lost}"),
        )?;
        for round in ["cold", "cached"] {
            let per_sec = |s: Option<&SuiteResult>| {
                s.and_then(|s| s.connect.iter().find(|c| c.round == round)).map_or(0.0, |c| c.per_sec)
            };
            let (o, peer) = (per_sec(Some(s)), per_sec(run.get(Kind::Peer)));
            check(
                md,
                peer > 0.0 && o >= 10.0 * peer,
                format!("connect {round}: >= 10x the peer's rate: {}", tables::ratio(o, peer)),
            )?;
        }
        if let Some(c) = s.connect.iter().find(|c| c.round == "cached") {
            check(
                md,
                c.backend_auth_calls == 0,
                format!(
                    "reconnect storm of {} clients with cached tokens: 0 backend authenticate calls: {}",
                    c.clients, c.backend_auth_calls
                ),
            )?;
        }
    }
    writeln!(md)?;
    Ok(())
}

fn notes(md: &mut String, run: &Run) -> anyhow::Result<()> {
    let any = run.all().any(|s| !s.errors.is_empty() || !s.notes.is_empty())
        || run.interleaves.iter().any(|i| !i.errors.is_empty());
    if !any {
        return Ok(());
    }
    writeln!(md, "## Errors and notes\n")?;
    for s in run.all() {
        for line in s.notes.iter().chain(&s.errors) {
            writeln!(md, "- {}: {line}", name(s.kind))?;
        }
    }
    for i in &run.interleaves {
        for line in &i.errors {
            writeln!(md, "- {} vs {}: {line}", i.a.label, i.b.label)?;
        }
    }
    writeln!(md)?;
    Ok(())
}
