//! Real `redis-server` processes for the tests of the Redis engine: one per test (or per
//! cluster), on a free port, stopped when dropped. They can be stopped and started again, with
//! their data (saved to a dump file in their own directory) or without.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether the integration tests run against the Redis engine (`DRUPAL_PUSH_TEST_ENGINE=redis`,
/// set by tests/run-all.sh for the second pass).
pub fn engine_is_redis() -> bool {
    std::env::var("DRUPAL_PUSH_TEST_ENGINE").is_ok_and(|e| e == "redis")
}

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl RedisServer {
    /// Starts `redis-server` (installed by tests/run-all.sh) on a free loopback port.
    pub async fn start() -> RedisServer {
        let dir =
            std::env::temp_dir().join(format!("drupal-push-redis-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("redis directory");
        let mut r = RedisServer { port: free_port(), dir, child: None };
        r.launch().await;
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    async fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--dbfilename", "dump.rdb", "--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (tests/run-all.sh installs it)");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        while self.cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not start on {}", self.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `redis-cli` against this server; its trimmed output, or `None` when it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli").args(["-p", &self.port.to_string()]).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The keys matching `pattern` (`SCAN`, so it is fine on a busy server).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let out = self.cli(&["--scan", "--pattern", pattern]).unwrap_or_default();
        out.lines().map(str::to_owned).filter(|k| !k.is_empty()).collect()
    }

    /// `PTTL` of `key`: `Some(ms)` when it expires, `None` when it never does (or is gone: -2
    /// is `Some(-2)`).
    pub fn pttl(&self, key: &str) -> Option<i64> {
        let ms: i64 = self.cli(&["PTTL", key])?.parse().ok()?;
        (ms != -1).then_some(ms)
    }

    /// `INFO commandstats` as command -> calls (commands run by scripts count too).
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let out = self.cli(&["INFO", "commandstats"]).unwrap_or_default();
        out.lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest.split(',').find_map(|f| f.strip_prefix("calls="))?.parse().ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }

    /// Stops it; with `keep_data` its data is saved first, so a restart finds it again.
    pub fn stop(&mut self, keep_data: bool) {
        if keep_data {
            self.cli(&["SAVE"]);
        } else {
            let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !keep_data {
            let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.launch().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop(false);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
