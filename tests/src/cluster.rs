//! Several nodes of the real `drupal-push` binary sharing one real `redis-server` and one fake
//! Drupal: what the multi-node tests (`server/tests/real_binary/cluster.rs`) start. Each node is its own
//! process with its own config file; it can be killed with SIGKILL (a crash) or restarted.

use crate::fake_drupal::FakeDrupal;
use crate::redis::RedisServer;
use crate::server::SERVICE_KEY;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// One node: a `drupal-push` process on the Redis engine.
pub struct NodeProcess {
    child: Option<Child>,
    config: PathBuf,
    binary: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    http: reqwest::Client,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl NodeProcess {
    /// Starts the binary on the config file and reads its "listening on" line.
    fn launch(binary: &Path, config: &Path) -> NodeProcess {
        let mut child = Command::new(binary)
            .arg(config)
            .env("RUST_LOG", "warn,drupal_push_server::engine=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn drupal-push");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("stdout line");
        let base = line
            .trim()
            .strip_prefix("drupal-push listening on ")
            .unwrap_or_else(|| panic!("expected the listening line, got {line:?}"))
            .to_owned();
        NodeProcess {
            child: Some(child),
            config: config.to_owned(),
            binary: binary.to_owned(),
            base,
            http: crate::http_client(),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replace("http://", "ws://"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: the node vanishes without telling anyone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the same node again (same config, a new port).
    pub fn restart(&mut self) {
        self.kill();
        *self = NodeProcess::launch(&self.binary, &self.config);
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + crate::WAIT * 2;
        loop {
            let ready = self.http.get(self.url("/readyz")).send().await.map(|r| r.status().is_success());
            if matches!(ready, Ok(true)) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "node {} did not get ready", self.base);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `POST /nodejs/{path}` as Drupal 8+ sends it; the status and the JSON answer.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let call = self
            .http
            .post(self.url(&format!("/nodejs/{path}")))
            .header("NodejsServiceKey", SERVICE_KEY)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        answer(call).await
    }

    /// `GET /nodejs/{path}` with the service key.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let call =
            self.http.get(self.url(&format!("/nodejs/{path}"))).header("NodejsServiceKey", SERVICE_KEY);
        answer(call).await
    }

    /// `GET /status.json`.
    pub async fn status(&self) -> Value {
        let call = self.http.get(self.url("/status.json")).send();
        let resp =
            tokio::time::timeout(crate::WAIT, call).await.expect("status in time").expect("status call");
        resp.json().await.expect("status is JSON")
    }
}

/// A Redis, a fake Drupal and `n` nodes in front of them.
pub struct Cluster {
    pub drupal: FakeDrupal,
    pub redis: RedisServer,
    pub nodes: Vec<NodeProcess>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cluster {
    /// Starts Redis, the fake Drupal and `n` nodes of `binary` with the default settings of
    /// the tests (presence grace 300 ms) plus `extra` TOML lines; waits until all are ready.
    pub async fn start(binary: &Path, n: usize, extra: &str) -> Cluster {
        let redis = RedisServer::start().await;
        let drupal = FakeDrupal::start(SERVICE_KEY).await;
        let dir =
            std::env::temp_dir().join(format!("drupal-push-cluster-{}-{}", std::process::id(), redis.port));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let mut nodes = Vec::new();
        for i in 0..n {
            let config = dir.join(format!("node{i}.toml"));
            let grace = if extra.contains("presenceGraceMs") { "" } else { "presenceGraceMs = 300\n" };
            // Every origin, said explicitly (no start-up warning in the test output).
            let toml = format!(
                "host = \"127.0.0.1\"\nport = 0\nserviceKey = \"{SERVICE_KEY}\"\nengine = \"redis\"\n\
                 {grace}drainWindowMs = 0\nallowedOrigins = [\"*\"]\n{extra}\n\
                 [backend]\nhost = \"127.0.0.1\"\nport = {}\ntimeoutMs = 2000\n\
                 [redis]\nurl = \"{}\"\n",
                drupal.addr.port(),
                redis.url()
            );
            std::fs::write(&config, toml).expect("node config");
            nodes.push(NodeProcess::launch(binary, &config));
        }
        for node in &nodes {
            node.wait_ready().await;
        }
        Cluster { drupal, redis, nodes, dir }
    }
}

/// Sends a REST call; its status and JSON answer (the raw text when it is not JSON).
async fn answer(call: reqwest::RequestBuilder) -> (u16, Value) {
    let resp =
        tokio::time::timeout(crate::WAIT, call.send()).await.expect("API answers in time").expect("API call");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}
