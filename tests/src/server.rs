//! The drupal-push server started in-process on 127.0.0.1:0 against a fake Drupal, and a client
//! for its REST API that sends what Drupal sends. [`Setup`] is the one way tests build both:
//! the fake Drupal's answers per auth token, the server's settings, and the engine.

use crate::fake_drupal::{Answer, FakeDrupal};
use crate::redis::RedisServer;
use drupal_push_server::config::{self, Cli, Settings};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::sync::oneshot;

pub const SERVICE_KEY: &str = "test-service-key";

/// A running server; shut down with [`TestServer::shutdown`] or when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub config: Settings,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), drupal_push_server::StartError>>>,
    http: reqwest::Client,
    /// The Redis of a server on the Redis engine (stopped with the server).
    pub redis: Option<RedisServer>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Settings for [`TestServer::start_with`] as `key=value` pairs (same keys as the config file).
pub fn settings(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// A fake Drupal and a server in front of it, built step by step:
/// `Setup::new().user("s1", Answer::valid(1, &["chat"])).set("historySize", "0").start().await`.
#[derive(Default)]
#[must_use]
pub struct Setup {
    answers: Vec<(String, Answer)>,
    settings: Vec<(String, String)>,
    memory: bool,
    redis: bool,
}

impl Setup {
    pub fn new() -> Setup {
        Setup::default()
    }

    /// Drupal answers `answer` for the auth token `token`.
    pub fn user(mut self, token: &str, answer: Answer) -> Setup {
        self.answers.push((token.to_owned(), answer));
        self
    }

    /// One setting, with the config file's key (`historySize`, `backend.timeoutMs`).
    pub fn set(mut self, key: &str, value: &str) -> Setup {
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Several settings at once.
    pub fn settings(mut self, pairs: &[(&str, &str)]) -> Setup {
        self.settings.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// Runs on the memory engine whatever `DRUPAL_PUSH_TEST_ENGINE` says: for tests of a feature
    /// only the memory engine has (so they run, on it, in the Redis pass too, rather than skip).
    pub fn memory_engine(mut self) -> Setup {
        self.memory = true;
        self
    }

    /// Runs on the Redis engine (a `redis-server` of its own) whatever `DRUPAL_PUSH_TEST_ENGINE`
    /// says: for tests of what the Redis engine keeps in Redis (its keys, their expiry).
    pub fn redis_engine(mut self) -> Setup {
        self.redis = true;
        self
    }

    pub async fn start(self) -> (FakeDrupal, TestServer) {
        let drupal = FakeDrupal::start(SERVICE_KEY).await;
        for (token, answer) in self.answers {
            drupal.answer(&token, answer);
        }
        let pairs: Vec<(&str, &str)> = self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let server = TestServer::launch(
            &drupal,
            &pairs,
            self.redis || (!self.memory && crate::redis::engine_is_redis()),
        )
        .await;
        (drupal, server)
    }
}

impl TestServer {
    /// A server with default settings, except a short presence grace (300 ms), backend timeout
    /// (2 s) and no drain window (every socket closed at once on shutdown), to keep tests fast.
    pub async fn start(drupal: &FakeDrupal) -> TestServer {
        Self::start_with(drupal, &[]).await
    }

    /// A fake Drupal expecting [`SERVICE_KEY`] and a default server in front of it.
    pub async fn with_fake_drupal() -> (FakeDrupal, TestServer) {
        let drupal = FakeDrupal::start(SERVICE_KEY).await;
        let server = Self::start(&drupal).await;
        (drupal, server)
    }

    /// A server with extra `key=value` settings. With `DRUPAL_PUSH_TEST_ENGINE=redis` it runs
    /// on the Redis engine, against a `redis-server` of its own.
    pub async fn start_with(drupal: &FakeDrupal, extra: &[(&str, &str)]) -> TestServer {
        Self::launch(drupal, extra, crate::redis::engine_is_redis()).await
    }

    async fn launch(drupal: &FakeDrupal, extra: &[(&str, &str)], on_redis: bool) -> TestServer {
        let redis = match on_redis {
            true => Some(RedisServer::start().await),
            false => None,
        };
        let url = redis.as_ref().map(RedisServer::url).unwrap_or_default();
        let port = drupal.addr.port().to_string();
        let mut pairs = vec![
            ("backend.host", "127.0.0.1"),
            ("backend.port", port.as_str()),
            ("presenceGraceMs", "300"),
            ("backend.timeoutMs", "2000"),
            ("drainWindowMs", "0"),
        ];
        if redis.is_some() {
            pairs.extend_from_slice(&[("engine", "redis"), ("redis.url", url.as_str())]);
        }
        pairs.extend_from_slice(extra);
        let cli = Cli {
            service_key: Some(SERVICE_KEY.into()),
            port: Some(0),
            host: Some("127.0.0.1".into()),
            set: settings(&pairs),
            ..Cli::default()
        };
        let (config, _) = config::load(&cli, std::iter::empty()).expect("test config is valid");
        let mut server = Self::start_config(config).await;
        if redis.is_some() {
            server.redis = redis;
            server.wait_ready().await;
        }
        server
    }

    /// Waits until `/readyz` says the server can serve (its engine is connected).
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        // An https server (tests/tls.rs) has a self-signed certificate: only readiness is asked.
        let (http, url) = match self.config.listen.scheme {
            config::Scheme::Http => (self.http.clone(), self.url("/readyz")),
            config::Scheme::Https => (
                reqwest::Client::builder().danger_accept_invalid_certs(true).build().expect("client"),
                format!("https://{}/readyz", self.addr),
            ),
        };
        loop {
            let ready = http.get(&url).send().await.map(|r| r.status().is_success());
            if matches!(ready, Ok(true)) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the server did not get ready");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn start_config(config: Settings) -> TestServer {
        let listener = tokio::net::TcpListener::bind(config.listen.addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let c = config.clone();
        let task = tokio::spawn(async move {
            drupal_push_server::run(listener, c, None, async {
                let _ = stopped.await;
            })
            .await
        });
        TestServer {
            addr,
            config,
            stop: Some(stop),
            task: Some(task),
            http: crate::http_client(),
            redis: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, self.config.listen.ws_path)
    }

    /// Triggers a graceful shutdown and waits for `run` to return.
    pub async fn shutdown(&mut self) -> Result<(), drupal_push_server::StartError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let task = self.task.take().expect("server running");
        tokio::time::timeout(crate::WAIT * 2, task)
            .await
            .expect("shutdown finishes in time")
            .expect("server task")
    }

    /// `GET /status.json`: the public counters.
    pub async fn status(&self) -> Value {
        let resp = tokio::time::timeout(crate::WAIT, self.http.get(self.url("/status.json")).send())
            .await
            .expect("status answers in time")
            .expect("status call");
        resp.json().await.expect("status is JSON")
    }

    /// `POST /nodejs/{path}` with the service key and a JSON body, the way Drupal 8+ does
    /// (Guzzle: `Content-Type: application/json`).
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let json = Some("application/json");
        self.call(reqwest::Method::POST, path, Some(body.to_string()), Some(SERVICE_KEY), json).await.1
    }

    /// `POST /nodejs/{path}` the way Drupal 7's `drupal_http_request` sends it, over a raw TCP
    /// socket so that no client library adds headers: HTTP/1.0, `Host`, its `User-Agent`,
    /// `Content-Length`, the service key and **no `Content-Type`** (spec 9.1). Returns the status
    /// and the JSON body.
    pub async fn post_drupal7(&self, path: &str, body: &str) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!(
            "POST /nodejs/{path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: Drupal (+http://drupal.org/)\r\n\
             NodejsServiceKey: {SERVICE_KEY}\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let exchange = async {
            let mut tcp = tokio::net::TcpStream::connect(self.addr).await?;
            tcp.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            tcp.read_to_end(&mut response).await?; // HTTP/1.0: the server closes after answering
            std::io::Result::Ok(response)
        };
        let response = tokio::time::timeout(crate::WAIT, exchange)
            .await
            .expect("API answers in time")
            .expect("raw HTTP/1.0 exchange");
        let text = String::from_utf8(response).expect("UTF-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP response");
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        (status, serde_json::from_str(body).unwrap_or(Value::String(body.into())))
    }

    /// `GET /nodejs/{path}` with the service key (Drupal 7 and the read routes).
    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None, Some(SERVICE_KEY), None).await.1
    }

    /// Any call: method, path under `/nodejs/`, raw body, key header, content type.
    /// Returns the status and the JSON body (`Value::String` when it is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        key: Option<&str>,
        content_type: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(&format!("/nodejs/{path}")));
        if let Some(k) = key {
            req = req.header("NodejsServiceKey", k);
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = tokio::time::timeout(crate::WAIT, req.send())
            .await
            .expect("API answers in time")
            .expect("API call");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}
