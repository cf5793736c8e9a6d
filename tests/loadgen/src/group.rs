//! A group of fleet processes (`drupal-push-bench fleet`, see `child.rs`) that the coordinator
//! drives as one [`Audience`]: more clients than one process may hold sockets for. Process k
//! holds `clients[k]` clients, all on node k of the deployment.
//!
//! During a round the coordinator keeps its own [`Round`] whose "subscribers" are the processes:
//! a message is complete when every process has reported it complete, and the deliveries
//! counted so far are the sum of the processes' progress reports. When the round ends, each
//! process's totals and latency histogram are added into it.

use crate::child::{Command, Event};
use crate::fleet::{Round, Wave};
use crate::metrics::{Histogram, rss_kib};
use crate::round::Audience;
use anyhow::{Context, bail};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// How long a process may take to answer anything but `connect`.
const ANSWER: Duration = Duration::from_secs(60);

struct Proc {
    child: Child,
    pid: u32,
    clients: usize,
    stdin: tokio::sync::Mutex<ChildStdin>,
    answers: tokio::sync::Mutex<UnboundedReceiver<Event>>,
    /// Its deliveries in the current round, as last reported.
    unique: Arc<AtomicU64>,
    /// Its strays since it started, as last reported.
    stray: AtomicU64,
}

pub struct Group {
    procs: Vec<Proc>,
    /// The round the processes' reports count into.
    current: Arc<Mutex<Option<Arc<Round>>>>,
    errors: Mutex<Vec<String>>,
}

/// What one fleet process is started with.
pub struct ProcSpec {
    pub url: String,
    pub clients: usize,
    pub token_gen: u32,
    pub channel: String,
    pub sources: u8,
    pub concurrency: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Group {
    /// Starts one fleet process per spec (this binary, `fleet` subcommand); they connect nothing
    /// until [`Group::connect`].
    pub fn spawn(specs: &[ProcSpec]) -> anyhow::Result<Group> {
        let exe = std::env::current_exe()?;
        let current: Arc<Mutex<Option<Arc<Round>>>> = Arc::default();
        let mut procs = Vec::new();
        for (k, s) in specs.iter().enumerate() {
            procs.push(spawn_one(&exe, k, s, &current)?);
        }
        Ok(Group { procs, current, errors: Mutex::default() })
    }

    pub fn clients(&self) -> usize {
        self.procs.iter().map(|p| p.clients).sum()
    }

    /// The clients of process `k` (on node `k`).
    pub fn clients_of(&self, k: usize) -> usize {
        self.procs.get(k).map_or(0, |p| p.clients)
    }

    /// RSS of the fleet processes, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.procs.iter().filter_map(|p| rss_kib(p.pid)).sum()
    }

    /// Every process connects all its clients at once; the slowest one's time.
    pub async fn connect(&self, limit: Duration) -> anyhow::Result<(Wave, Histogram)> {
        let command = Command::Connect { limit_secs: limit.as_secs().max(1) };
        let answers = self.ask_all(&command, limit + ANSWER).await?;
        let (mut wave, latency) = (Wave { secs: 0.0, ready: 0, failed: 0 }, Histogram::default());
        for a in answers {
            let Event::Wave { ready, failed, secs, latency: l } = a else {
                bail!("fleet: {a:?} instead of wave")
            };
            wave.ready += ready;
            wave.failed += failed;
            wave.secs = wave.secs.max(secs);
            latency.add(&l);
        }
        Ok((wave, latency))
    }

    /// Ready and dropped clients, and client errors (most frequent first, per process).
    pub async fn stats(&self) -> anyhow::Result<(usize, usize, Vec<String>)> {
        let (mut ready, mut dropped, mut errors) = (0, 0, Vec::new());
        for (k, a) in self.ask_all(&Command::Stats, ANSWER).await?.into_iter().enumerate() {
            let Event::Stats { ready: r, dropped: d, errors: e } = a else {
                bail!("fleet: {a:?} instead of stats")
            };
            ready += r;
            dropped += d;
            errors.extend(e.into_iter().map(|e| format!("fleet process {k}: {e}")));
        }
        errors.extend(std::mem::take(&mut *lock(&self.errors)));
        Ok((ready, dropped, errors))
    }

    /// Sends `command` to every process, then reads each one's answer.
    async fn ask_all(&self, command: &Command, wait: Duration) -> anyhow::Result<Vec<Event>> {
        let mut line = serde_json::to_string(command)?;
        line.push('\n');
        for (k, p) in self.procs.iter().enumerate() {
            let mut stdin = p.stdin.lock().await;
            stdin.write_all(line.as_bytes()).await.with_context(|| format!("fleet process {k} is gone"))?;
            stdin.flush().await?;
        }
        let mut out = Vec::new();
        for (k, p) in self.procs.iter().enumerate() {
            let answer = tokio::time::timeout(wait, async { p.answers.lock().await.recv().await })
                .await
                .with_context(|| format!("fleet process {k}: no answer to {command:?} within {wait:?}"))?
                .with_context(|| format!("fleet process {k} exited (its errors are above)"))?;
            out.push(answer);
        }
        Ok(out)
    }

    /// Closes stdin (the processes close their clients and exit); kills what is left after 30 s.
    pub async fn stop(self) {
        let mut children = Vec::new();
        for p in self.procs {
            drop(p.stdin);
            children.push(p.child);
        }
        for mut c in children {
            if tokio::time::timeout(Duration::from_secs(30), c.wait()).await.is_err() {
                let _ = c.start_kill();
                let _ = c.wait().await;
            }
        }
    }
}

fn spawn_one(
    exe: &Path,
    k: usize,
    s: &ProcSpec,
    current: &Arc<Mutex<Option<Arc<Round>>>>,
) -> anyhow::Result<Proc> {
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("fleet")
        .args(["--url", &s.url, "--clients", &s.clients.to_string(), "--token-gen", &s.token_gen.to_string()])
        .args(["--channel", &s.channel, "--sources", &s.sources.to_string()])
        .args(["--concurrency", &s.concurrency.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("cannot start fleet process {k}"))?;
    let pid = child.id().context("fleet process exited at once")?;
    let stdin = child.stdin.take().context("no stdin")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let (tx, rx) = unbounded_channel();
    let unique = Arc::new(AtomicU64::new(0));
    let (current, mine) = (current.clone(), unique.clone());
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(event) = serde_json::from_str::<Event>(&line) else {
                eprintln!("fleet process {k}: unexpected output {line:?}");
                continue;
            };
            let round = lock(&current).clone();
            match event {
                Event::Complete { id, seq } => {
                    if let Some(r) = round.filter(|r| r.id == id) {
                        r.count(seq);
                    }
                }
                Event::Progress { id, unique } => {
                    if let Some(r) = round.filter(|r| r.id == id) {
                        let before = mine.swap(unique, Relaxed);
                        r.unique.fetch_add(unique.saturating_sub(before), Relaxed);
                    }
                }
                answer => {
                    if tx.send(answer).is_err() {
                        break;
                    }
                }
            }
        }
    });
    Ok(Proc {
        child,
        pid,
        clients: s.clients,
        stdin: tokio::sync::Mutex::new(stdin),
        answers: tokio::sync::Mutex::new(rx),
        unique,
        stray: AtomicU64::new(0),
    })
}

impl Audience for Group {
    async fn start_round(&self, id: u32, msgs: u32, subscribers: u32) -> anyhow::Result<Arc<Round>> {
        if subscribers as usize != self.clients() {
            bail!("a group of {} clients cannot run a round for {subscribers}", self.clients());
        }
        let round = Arc::new(Round::new(id, msgs, self.procs.len() as u32));
        for p in &self.procs {
            p.unique.store(0, Relaxed);
        }
        *lock(&self.current) = Some(round.clone());
        let mut line = String::new();
        for p in &self.procs {
            let c = Command::Round { id, msgs, subscribers: p.clients as u32 };
            line.clear();
            line.push_str(&serde_json::to_string(&c)?);
            line.push('\n');
            p.stdin.lock().await.write_all(line.as_bytes()).await.context("a fleet process is gone")?;
        }
        for (k, p) in self.procs.iter().enumerate() {
            let answer = tokio::time::timeout(ANSWER, async { p.answers.lock().await.recv().await })
                .await
                .ok()
                .flatten();
            if !matches!(answer, Some(Event::Started { id: i }) if i == id) {
                bail!("fleet process {k}: {answer:?} instead of started {id}");
            }
        }
        Ok(round)
    }

    async fn end_round(&self, round: &Round) -> anyhow::Result<()> {
        let answers = self.ask_all(&Command::End { id: round.id }, ANSWER).await?;
        *lock(&self.current) = None;
        let (mut unique, mut dup, mut last_ns) = (0, 0, 0);
        for (p, a) in self.procs.iter().zip(answers) {
            let Event::Ended { id, unique: u, dup: d, last_ns: l, latency, stray } = a else {
                bail!("fleet: {a:?} instead of ended");
            };
            if id != round.id {
                bail!("fleet: ended {id} instead of {}", round.id);
            }
            unique += u;
            dup += d;
            last_ns = last_ns.max(l);
            round.latency.add(&latency);
            p.stray.store(stray, Relaxed);
        }
        round.unique.store(unique, Relaxed);
        round.dup.store(dup, Relaxed);
        round.last_ns.store(last_ns, Relaxed);
        Ok(())
    }

    fn stray(&self) -> u64 {
        self.procs.iter().map(|p| p.stray.load(Relaxed)).sum()
    }

    fn note_error(&self, why: String) {
        let mut errors = lock(&self.errors);
        if errors.len() < 20 && !errors.contains(&why) {
            errors.push(why);
        }
    }

    fn pids(&self) -> Vec<u32> {
        std::iter::once(std::process::id()).chain(self.procs.iter().map(|p| p.pid)).collect()
    }
}
