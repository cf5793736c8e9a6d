//! The shared `redis-server` of a deployment on the Redis engine (issue 9): started by the load
//! generator on a free loopback port with persistence off (`--save '' --appendonly no`), pinned
//! like the servers, asked for its memory (`INFO memory`) over a few lines of RESP, and stopped
//! with the deployment. Its log and (never written) dump go to the work directory.

use anyhow::{Context, bail};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

pub struct Redis {
    child: Child,
    pub pid: u32,
    pub port: u16,
    /// How it was started, for the report.
    pub command: String,
}

/// Redis's own account of its memory, and the process's RSS.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct RedisMemory {
    /// `used_memory`: bytes its allocator has handed out for data and buffers.
    pub used_bytes: u64,
    /// RSS of the redis-server process from /proc, KiB.
    pub rss_kib: u64,
}

impl Redis {
    /// Starts `bin` (e.g. `redis-server`) on a free port, on CPUs `cpu` (`taskset -c`) when given.
    pub async fn start(bin: &Path, work_dir: &Path, cpu: Option<&str>) -> anyhow::Result<Redis> {
        std::fs::create_dir_all(work_dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = work_dir.join("redis.log");
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(["--dir".into(), work_dir.display().to_string()]);
        args.extend(["--logfile".into(), log.display().to_string()]);
        let mut cmd = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(&args).stdin(Stdio::null()).stdout(Stdio::null()).kill_on_drop(true);
        let command = format!(
            "{}{} {}",
            cpu.map(|c| format!("taskset -c {c} ")).unwrap_or_default(),
            bin.display(),
            args.iter()
                .map(|a| if a.is_empty() { "''".into() } else { crate::target::relative(a) })
                .collect::<Vec<_>>()
                .join(" ")
        );
        let child =
            cmd.spawn().with_context(|| format!("cannot start {command} (is redis-server installed?)"))?;
        let pid = child.id().context("redis-server exited at once")?;
        let mut redis = Redis { child, pid, port, command };
        for _ in 0..300 {
            if let Some(status) = redis.child.try_wait()? {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                bail!("redis-server exited with {status}: {}", text.lines().last().unwrap_or("(no log)"));
            }
            if matches!(redis.command_reply(&["PING"]).await.as_deref(), Ok("PONG")) {
                return Ok(redis);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        redis.stop().await;
        bail!("redis-server is not answering on port {port} after 30 s")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `INFO memory`'s `used_memory` and the process's RSS.
    pub async fn memory(&self) -> anyhow::Result<RedisMemory> {
        let info = self.command_reply(&["INFO", "memory"]).await?;
        let used_bytes = info_field(&info, "used_memory").context("no used_memory in INFO memory")?;
        Ok(RedisMemory { used_bytes, rss_kib: crate::metrics::rss_kib(self.pid).unwrap_or(0) })
    }

    /// `INFO server`'s `redis_version`.
    pub async fn version(&self) -> String {
        let info = self.command_reply(&["INFO", "server"]).await.unwrap_or_default();
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map_or_else(|| "?".into(), |v| format!("redis-server {}", v.trim()))
    }

    /// Sends one command on a new connection; its simple-string or bulk-string reply.
    async fn command_reply(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let exchange = async {
            let mut tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
            tcp.write_all(request.as_bytes()).await?;
            let mut reader = BufReader::new(tcp);
            let mut head = String::new();
            reader.read_line(&mut head).await?;
            let head = head.trim_end();
            if let Some(simple) = head.strip_prefix('+') {
                return Ok(simple.to_owned());
            }
            let Some(len) = head.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) else {
                bail!("redis answered {head:?}");
            };
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body).await?;
            body.truncate(len);
            Ok::<_, anyhow::Error>(String::from_utf8_lossy(&body).into_owned())
        };
        tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .context("redis did not answer within 5 s")?
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// A numeric `name:value` line of an `INFO` reply.
fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields() {
        let info = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_rss:2000\r\n";
        assert_eq!(info_field(info, "used_memory"), Some(1_048_576));
        assert_eq!(info_field(info, "used_memory_rss"), Some(2000));
        assert_eq!(info_field(info, "maxmemory"), None);
    }
}
