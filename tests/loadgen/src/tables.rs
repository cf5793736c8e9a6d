//! The tables of `RESULTS.md`: hold, connect, fan-out (each with drupal-push's ratio to the
//! peer, to Sockudo and to the ceiling), where Sockudo is ahead, REST latency during a fan-out,
//! and the interleaved comparisons.

use crate::report::{Run, name};
use crate::results::{ConnectResult, FanoutResult, InterleaveResult, SuiteResult};
use crate::target::{Kind, Servers};
use std::fmt::Write;

pub fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 && b > 0.0 { format!("{:.2}x", a / b) } else { "–".into() }
}

/// The fan-out round of the main table (rounds with a REST probe are reported apart).
pub fn find(s: Option<&SuiteResult>, subscribers: usize, window: u32) -> Option<&FanoutResult> {
    s?.fanout.iter().find(|f| f.subscribers == subscribers && f.window == window && f.probe.is_none())
}

/// drupal-push's ratios against the peer, Sockudo (default, tuned) and the ceiling, of a figure
/// read by `get` where higher is better; `lower_better` turns them around (memory).
fn ratios(run: &Run, lower_better: bool, get: impl Fn(&SuiteResult) -> Option<f64>) -> [String; 3] {
    let of = |kind: Kind| run.get(kind).and_then(&get).unwrap_or(0.0);
    let ours = of(Kind::Ours);
    let r = |other: f64| if lower_better { ratio(other, ours) } else { ratio(ours, other) };
    let sockudo = match run.get(Kind::SockudoTuned) {
        Some(_) => format!("{} / {}", r(of(Kind::Sockudo)), r(of(Kind::SockudoTuned))),
        None => r(of(Kind::Sockudo)),
    };
    [r(of(Kind::Peer)), sockudo, r(of(Kind::Ceiling))]
}

const RATIO_HEAD: &str = "vs peer | vs Sockudo (default / tuned) | vs ceiling";

pub fn hold(md: &mut String, run: &Run) -> anyhow::Result<()> {
    writeln!(md, "## Hold: idle connections\n")?;
    writeln!(
        md,
        "RSS of the server process from /proc/PID/status before the clients connect and 3 s after \
         the last is ready; per connection = difference / connections.\n"
    )?;
    writeln!(
        md,
        "| server | held | failed | dropped | connect time s | RSS before MiB | RSS after MiB | KiB per connection | {RATIO_HEAD} |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for s in run.all() {
        let Some(h) = &s.hold else { continue };
        let vs = if s.kind == Kind::Ours {
            ratios(run, true, |s| s.hold.as_ref().map(|h| h.kib_per_conn)).join(" | ")
        } else {
            " | | ".into()
        };
        writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {vs} |",
            name(s.kind),
            h.ready,
            h.failed,
            h.dropped,
            h.connect_secs,
            h.rss_before_kib as f64 / 1024.0,
            h.rss_after_kib as f64 / 1024.0,
            h.kib_per_conn,
        )?;
    }
    writeln!(md)?;
    Ok(())
}

fn connect_row(md: &mut String, kind: Kind, c: &ConnectResult) -> std::fmt::Result {
    writeln!(
        md,
        "| {} | {} | {} | {}/{} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.0} | {:.0} |",
        c.round,
        name(kind),
        c.clients,
        c.ready,
        c.failed,
        c.secs,
        c.per_sec,
        c.p50_ms,
        c.p99_ms,
        c.max_ms,
        c.backend_auth_calls,
        c.server_cpu,
        c.loadgen_cpu
    )
}

pub fn connect(md: &mut String, run: &Run) -> anyhow::Result<()> {
    writeln!(md, "## Connect + authenticate\n")?;
    writeln!(
        md,
        "| round | server | clients | ready/failed | time s | per s | p50 ms | p99 ms | max ms | backend auth calls | server CPU % | loadgen CPU % |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for round in ["cold", "cached"] {
        for s in run.all() {
            for c in s.connect.iter().filter(|c| c.round == round) {
                connect_row(md, s.kind, c)?;
            }
        }
    }
    writeln!(md, "\n| round | drupal-push {RATIO_HEAD} (no backend calls) |\n|---|---|---|---|")?;
    for round in ["cold", "cached"] {
        let r = ratios(run, false, |s| s.connect.iter().find(|c| c.round == round).map(|c| c.per_sec));
        writeln!(md, "| {round} | {} |", r.join(" | "))?;
    }
    writeln!(md)?;
    Ok(())
}

/// Load generator CPU (% of its core) above which a figure may be bounded by it.
const LOADGEN_BOUND: f64 = 90.0;

/// The (subscribers, window) pairs of the main fan-out table, largest first.
fn fanout_keys(run: &Run) -> Vec<(usize, u32)> {
    let mut keys: Vec<(usize, u32)> = run
        .all()
        .flat_map(|s| s.fanout.iter().filter(|f| f.probe.is_none()).map(|f| (f.subscribers, f.window)))
        .collect();
    keys.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    keys.dedup();
    keys
}

pub fn fanout(md: &mut String, run: &Run) -> anyhow::Result<()> {
    writeln!(md, "## Fan-out: one channel, publish via HTTP\n")?;
    let Some(f0) = run.all().flat_map(|s| s.fanout.first()).next() else { return Ok(()) };
    writeln!(md, "{} messages of {} bytes per round.\n", f0.messages, f0.body_bytes)?;
    writeln!(
        md,
        "| subscribers | window | server | deliveries/s | p50 ms | p99 ms | max ms | lost | dup | publish p50 ms | server CPU % | loadgen CPU % | {RATIO_HEAD} |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for (subs, window) in fanout_keys(run) {
        for s in run.all() {
            let Some(f) = find(Some(s), subs, window) else { continue };
            let vs = if s.kind == Kind::Ours {
                let [peer, sockudo, _] =
                    ratios(run, false, |s| find(Some(s), subs, window).map(|f| f.per_sec));
                let ceiling = match find(run.get(Kind::Ceiling), subs, window) {
                    Some(c) if c.per_sec > 0.0 => format!("{:.0} %", 100.0 * f.per_sec / c.per_sec),
                    _ => "–".into(),
                };
                format!("{peer} | {sockudo} | {ceiling}")
            } else {
                " | | ".into()
            };
            writeln!(
                md,
                "| {subs} | {window} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {}{} | {} | {:.2} | {:.0} | {:.0}{} | {vs} |",
                name(s.kind),
                f.per_sec,
                f.p50_ms,
                f.p99_ms,
                f.max_ms,
                f.lost,
                if f.stalled { " (stalled)" } else { "" },
                f.duplicated,
                f.publish_p50_ms,
                f.server_cpu,
                f.loadgen_cpu,
                if f.loadgen_cpu >= LOADGEN_BOUND { " (!)" } else { "" },
            )?;
        }
    }
    writeln!(
        md,
        "\n(!) the load generator used {LOADGEN_BOUND:.0} % of its core or more: that figure may be bounded by the \
         load generator rather than by the server.\n"
    )?;
    Ok(())
}

/// Lists the figures where a Sockudo run beats drupal-push (the why is in PROFILE.md).
pub fn sockudo_ahead(md: &mut String, run: &Run) -> anyhow::Result<()> {
    let Some(ours) = run.get(Kind::Ours) else { return Ok(()) };
    let mut ahead = Vec::new();
    for kind in [Kind::Sockudo, Kind::SockudoTuned] {
        let Some(s) = run.get(kind) else { continue };
        if let (Some(o), Some(h)) = (&ours.hold, &s.hold) {
            if h.kib_per_conn < o.kib_per_conn {
                ahead.push(format!(
                    "{}: hold, {:.2} vs {:.2} KiB per connection",
                    name(kind),
                    h.kib_per_conn,
                    o.kib_per_conn
                ));
            }
        }
        for c in &s.connect {
            if let Some(o) = ours.connect.iter().find(|o| o.round == c.round) {
                if c.per_sec > o.per_sec {
                    ahead.push(format!(
                        "{}: connect {}, {:.0} vs {:.0}/s",
                        name(kind),
                        c.round,
                        c.per_sec,
                        o.per_sec
                    ));
                }
            }
        }
        for (subs, window) in fanout_keys(run) {
            if let (Some(f), Some(o)) = (find(Some(s), subs, window), find(Some(ours), subs, window)) {
                if f.per_sec > o.per_sec {
                    ahead.push(format!(
                        "{}: fan-out {subs} window {window}, {:.0} vs {:.0} deliveries/s",
                        name(kind),
                        f.per_sec,
                        o.per_sec
                    ));
                }
            }
        }
    }
    if run.get(Kind::Sockudo).is_none() && run.get(Kind::SockudoTuned).is_none() {
        return Ok(());
    }
    writeln!(md, "## Where Sockudo is ahead\n")?;
    if ahead.is_empty() {
        writeln!(md, "Nowhere in this run: drupal-push leads every hold, connect and fan-out figure.\n")?;
    } else {
        writeln!(
            md,
            "Figures of this run where Sockudo beats drupal-push (why: `PROFILE.md`, section Sockudo):\n"
        )?;
        for a in ahead {
            writeln!(md, "- {a}")?;
        }
        writeln!(md)?;
    }
    Ok(())
}

/// REST calls timed during a sequential fan-out round (its own round, after the main ones).
pub fn probes(md: &mut String, run: &Run) -> anyhow::Result<()> {
    let rows: Vec<(&SuiteResult, &FanoutResult)> =
        run.all().flat_map(|s| s.fanout.iter().filter(|f| f.probe.is_some()).map(move |f| (s, f))).collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(md, "## REST latency during a fan-out\n")?;
    writeln!(
        md,
        "One more sequential round (window 1) at that size while the load generator makes one REST \
         call after another (a new one every {} ms, never two at once) and times each.\n",
        rows[0].1.probe.as_ref().map_or(0, |p| p.every_ms)
    )?;
    writeln!(
        md,
        "| server | subscribers | REST call | calls | errors | p50 ms | p99 ms | max ms | fan-out deliveries/s | delivery p99 ms | lost |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for (s, f) in rows {
        let Some(p) = &f.probe else { continue };
        writeln!(
            md,
            "| {} | {} | `{}` | {} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1} | {} |",
            name(s.kind),
            f.subscribers,
            Servers::probe_route(s.kind),
            p.calls,
            p.errors,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            f.per_sec,
            f.p99_ms,
            f.lost
        )?;
    }
    writeln!(md)?;
    Ok(())
}

pub fn interleave(md: &mut String, i: &InterleaveResult) -> anyhow::Result<()> {
    writeln!(md, "## {} vs {}: fan-out, interleaved runs\n", i.a.label, i.b.label)?;
    writeln!(
        md,
        "Window {}, {} messages of {} bytes per round. Each run is a fresh server and a fresh \
         fleet; the runs alternate ({} first). Ratio = {} / {} deliveries/s within a run pair; \
         the median over the pairs, with the lowest and highest ratio. Command: `{}`.\n",
        i.window, i.messages, i.body_bytes, i.a.label, i.a.label, i.b.label, i.loadgen_argv
    )?;
    writeln!(
        md,
        "| subscribers | run | {} deliveries/s | {} deliveries/s | ratio | lost (a/b) | p99 ms (a/b) |",
        i.a.label, i.b.label
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for s in &i.sizes {
        for (n, (a, b)) in s.runs.iter().enumerate() {
            writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {:.2} | {}/{} | {:.1}/{:.1} |",
                s.subscribers,
                n + 1,
                a.per_sec,
                b.per_sec,
                a.per_sec / b.per_sec.max(1.0),
                a.lost,
                b.lost,
                a.p99_ms,
                b.p99_ms
            )?;
        }
        writeln!(
            md,
            "| **{}** | median | | | **{:.2}** ({:.2}-{:.2}) | | |",
            s.subscribers, s.median_ratio, s.min_ratio, s.max_ratio
        )?;
    }
    writeln!(md)?;
    for v in [&i.a, &i.b] {
        writeln!(md, "- {}: {}, started as `{}`", v.label, v.version, v.command)?;
    }
    writeln!(md)?;
    Ok(())
}
