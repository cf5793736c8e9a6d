//! `interleave`: two server variants measured alternately on one sequential fan-out size, so that
//! drift of a shared machine (other work, thermal state, page cache) hits both alike. For each
//! size, run i of `a` then run i of `b`, `runs` times; every run is a fresh server, a fresh fleet
//! of that many subscribers, a warm-up message and one round. The figure is the median over the
//! runs of a / b (deliveries/s), with the lowest and highest ratio as its spread.
//!
//! Uses: drupal-push against the ceiling (`--a ours --b ceiling`: the target of issue 7), and
//! drupal-push with channel history on and off (`--a ours --b ours --b-toml 'historySize = 0'`:
//! issue 8).

use crate::results::{InterleaveResult, InterleaveSize, Machine, Variant};
use crate::scenario::{self, FanoutPlan};
use crate::target::Kind;
use crate::{ServerArgs, backend, metrics};
use anyhow::bail;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Clone)]
pub struct InterleaveArgs {
    #[command(flatten)]
    servers: ServerArgs,
    /// The first variant (the numerator of the ratio).
    #[arg(long, value_enum, default_value = "ours")]
    a: Kind,
    /// The second variant (the denominator).
    #[arg(long, value_enum, default_value = "ceiling")]
    b: Kind,
    /// Extra drupal-push TOML lines of variant a only (repeatable).
    #[arg(long = "a-toml")]
    a_toml: Vec<String>,
    /// Extra drupal-push TOML lines of variant b only (repeatable).
    #[arg(long = "b-toml")]
    b_toml: Vec<String>,
    /// Names of the variants in the report (default: the kind and its extra lines).
    #[arg(long)]
    a_label: Option<String>,
    #[arg(long)]
    b_label: Option<String>,
    /// Subscriber counts, each measured separately.
    #[arg(long, value_delimiter = ',', default_value = "10000,19000")]
    sizes: Vec<usize>,
    /// Runs per variant and size.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Messages per round.
    #[arg(long, default_value_t = 100)]
    messages: u32,
    /// Size of each published body, bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// Messages in flight (1: sequential).
    #[arg(long, default_value_t = 1)]
    window: u32,
    /// Where to write the JSON result.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn label(kind: Kind, toml: &[String]) -> String {
    if toml.is_empty() { kind.slug().to_owned() } else { format!("{} ({})", kind.slug(), toml.join("; ")) }
}

pub async fn run(args: &InterleaveArgs) -> anyhow::Result<()> {
    if args.runs == 0 || args.sizes.is_empty() {
        bail!("nothing to run: --runs and --sizes must not be empty");
    }
    let loadavg_before = metrics::loadavg();
    let backend = backend::Backend::start("bench", args.servers.anonymous).await?;
    let ctx_a = args.servers.ctx(args.a, &args.a_toml, &format!("{}-a", args.a.slug()), backend.clone());
    let ctx_b = args.servers.ctx(args.b, &args.b_toml, &format!("{}-b", args.b.slug()), backend);
    let mut variants = Vec::new();
    for (ctx, kind, toml, name) in
        [(&ctx_a, args.a, &args.a_toml, &args.a_label), (&ctx_b, args.b, &args.b_toml, &args.b_label)]
    {
        let (command, config) = crate::describe(ctx).await;
        if command.starts_with("(cannot start") {
            bail!("variant {}: {command}", label(kind, toml));
        }
        variants.push(Variant {
            label: name.clone().unwrap_or_else(|| label(kind, toml)),
            kind,
            toml: toml.clone(),
            version: crate::version(&args.servers, kind),
            command,
            config,
        });
    }
    let mut sizes = Vec::new();
    let mut problems = Vec::new();
    let mut notes_all = Vec::new();
    for &subscribers in &args.sizes {
        let plan = FanoutPlan {
            sizes: vec![subscribers],
            messages: args.messages,
            body_bytes: args.size,
            windows: vec![args.window],
            probe_sizes: Vec::new(),
            probe_every: Duration::from_millis(20),
            expect_sent: None,
        };
        let mut runs = Vec::new();
        for i in 0..args.runs {
            let mut pair = Vec::new();
            for (ctx, v) in [(&ctx_a, &variants[0]), (&ctx_b, &variants[1])] {
                eprintln!(
                    "== interleave: {subscribers} subscribers, run {} of {}: {}",
                    i + 1,
                    args.runs,
                    v.label
                );
                let (hold, mut fanout, notes) = scenario::hold_and_fanout(ctx, subscribers, &plan).await?;
                let Some(f) = fanout.pop() else { bail!("{}: no fan-out round ran", v.label) };
                eprintln!("  {:.0} deliveries/s, lost {}, dup {}", f.per_sec, f.lost, f.duplicated);
                if hold.ready != subscribers || f.lost != 0 || f.duplicated != 0 || f.stalled {
                    problems.push(format!(
                        "{} at {subscribers}, run {}: {} of {subscribers} ready, lost {}, duplicated {}{}",
                        v.label,
                        i + 1,
                        hold.ready,
                        f.lost,
                        f.duplicated,
                        if f.stalled { ", stalled" } else { "" }
                    ));
                }
                notes_all.extend(notes.into_iter().map(|n| format!("{}: {n}", v.label)));
                pair.push(f);
            }
            let b = pair.pop().expect("two results");
            let a = pair.pop().expect("two results");
            runs.push((a, b));
        }
        let mut ratios: Vec<f64> = runs.iter().map(|(a, b)| a.per_sec / b.per_sec.max(1.0)).collect();
        ratios.sort_by(f64::total_cmp);
        sizes.push(InterleaveSize {
            subscribers,
            runs,
            median_ratio: median(&ratios),
            min_ratio: ratios[0],
            max_ratio: ratios[ratios.len() - 1],
        });
    }
    let mut errors: Vec<String> = ctx_a.errors.lock().map(|e| e.clone()).unwrap_or_default();
    errors.extend(ctx_b.errors.lock().map(|e| e.clone()).unwrap_or_default());
    errors.extend(notes_all);
    errors.extend(problems.iter().cloned());
    let result = InterleaveResult {
        b: variants.pop().expect("two variants"),
        a: variants.pop().expect("two variants"),
        window: args.window,
        messages: args.messages,
        body_bytes: args.size,
        loadgen_argv: crate::argv(),
        machine: Machine::read(),
        loadavg_before,
        loadavg_after: metrics::loadavg(),
        sizes,
        errors,
    };
    for s in &result.sizes {
        eprintln!(
            "interleave: {} subscribers: {} / {} = {:.2} (median of {}, {:.2}..{:.2})",
            s.subscribers,
            result.a.label,
            result.b.label,
            s.median_ratio,
            s.runs.len(),
            s.min_ratio,
            s.max_ratio
        );
    }
    crate::write_json(args.out.as_ref(), &result)?;
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("interleave: FAILED: {p}");
        }
        bail!("{} run(s) lost, duplicated or stalled: their ratios are not comparable", problems.len());
    }
    Ok(())
}

/// The median of sorted values (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[0.8]), 0.8);
        assert_eq!(median(&[0.7, 0.9, 1.0]), 0.9);
        assert_eq!(median(&[0.5, 0.7, 0.9, 1.0]), 0.8);
        assert_eq!(label(Kind::Ours, &["historySize = 0".into()]), "ours (historySize = 0)");
    }
}
