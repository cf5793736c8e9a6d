//! What the fuzz targets in `server/fuzz/` run on each input, kept here so that plain
//! `cargo test` replays the committed corpus through exactly the same code
//! (`tests/tests/integration/fuzz_corpus.rs`) with no nightly toolchain.
//!
//! Each function takes the raw fuzz input, drives one input parser of the server, and panics
//! only when an invariant breaks: a parser that panics, a frame that does not survive its own
//! encoding, a REST answer that is not JSON or has an unexpected status.
//!
//! * [`frames`]: `ClientFrame::decode` (every browser frame) and `AuthAnswer::parse` (Drupal's
//!   answer to `authenticate`), plus the authenticate message built from a client frame.
//! * [`rest`]: the real axum [`Router`](axum::Router) of [`drupal_push_server::app`], in process,
//!   fed a short sequence of requests written in a small HTTP-like text format ([`parse_requests`]).
//! * [`config_js`], [`config_toml`]: a config file's text through the whole loader.
//! * [`ws_codec`]: the server's own WebSocket frame reader (RFC 6455), fed a byte stream whole
//!   and cut into arbitrary reads.

use axum::body::Body;
use axum::extract::ConnectInfo;
use drupal_push_protocol::backend::{AuthAnswer, AuthenticateRequest, BackendMessage};
use drupal_push_protocol::{ClientFrame, ServerFrame, SocketId};
use drupal_push_server::config::{self, Cli, FileFormat};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

/// Browser frames and Drupal's authenticate answers: no panic; a decoded client frame encodes
/// to JSON that decodes to the same frame; the authenticate message sent to Drupal keeps the
/// server's own members (a client cannot set `messageType`, `clientId`, …).
pub fn frames(data: &[u8]) {
    let _ = AuthAnswer::parse(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ServerFrame::decode(text);
    let Ok(frame) = ClientFrame::decode(text) else { return };
    let encoded = frame.encode();
    let again = ClientFrame::decode(&encoded).unwrap_or_else(|e| panic!("{encoded} does not decode: {e}"));
    assert_eq!(again, frame, "{text} -> {encoded}");
    if let ClientFrame::Authenticate(auth) = &frame {
        let sid = SocketId("fuzz-socket".into());
        let json = BackendMessage::Authenticate(AuthenticateRequest::new(auth, sid.clone())).to_json();
        let back: BackendMessage = serde_json::from_str(&json).expect("the authenticate message decodes");
        let BackendMessage::Authenticate(req) = back else { panic!("not an authenticate message: {json}") };
        assert_eq!((req.auth_token.as_str(), &req.client_id), (auth.auth_token.as_str(), &sid), "{json}");
        assert_eq!(req.content_tokens, auth.content_tokens, "{json}");
    }
}

/// Close codes the frame reader may answer a violation with (RFC 6455 7.4.1): protocol error,
/// unsupported data (binary), invalid UTF-8, message too big.
pub const CODEC_CLOSE_CODES: [u16; 4] = [1002, 1003, 1007, 1009];

/// The WebSocket frame reader of the server (`drupal_push_server::fuzz_codec`) on a byte stream
/// from a client, fed whole, cut at the points the input chooses, and (when short) one byte at
/// a time: no panic; every way of cutting gives the same messages and the same violation (a
/// socket may deliver any split of the same bytes); a violation carries 1002, 1003, 1007 or 1009.
///
/// Input: byte 0 picks `maxFrameSize` (0: 64 KiB, else 4 × the byte, so small limits and the
/// 1009 path are reached); byte 1 modulo 16 is the number of cuts; each of the next bytes of
/// that number is the length of one read (0 is an empty read); the rest is the stream, and
/// whatever follows the last cut is the final read.
pub fn ws_codec(data: &[u8]) {
    let (&limit, rest) = data.split_first().unwrap_or((&0, &[]));
    let (&cuts, rest) = rest.split_first().unwrap_or((&0, &[]));
    let cuts = usize::from(cuts % 16).min(rest.len());
    let (steps, stream) = rest.split_at(cuts);
    let max = if limit == 0 { 64 * 1024 } else { usize::from(limit) * 4 };
    let mut chunks: Vec<&[u8]> = Vec::with_capacity(cuts + 1);
    let mut at = 0;
    for &step in steps {
        let end = (at + usize::from(step)).min(stream.len());
        chunks.push(&stream[at..end]);
        at = end;
    }
    chunks.push(&stream[at..]);
    let whole = drupal_push_server::fuzz_codec(max, &[stream]);
    if let Some((code, what)) = whole.violation {
        assert!(CODEC_CLOSE_CODES.contains(&code), "violation {what:?} closes with {code}");
    }
    let cut = drupal_push_server::fuzz_codec(max, &chunks);
    assert_eq!(
        cut,
        whole,
        "cut into reads of {:?} bytes",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
    if stream.len() <= 512 {
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(drupal_push_server::fuzz_codec(max, &bytes), whole, "fed one byte at a time");
    }
}

/// A `nodejs.config.js` (or JSON5) file through the whole config loader: no panic.
pub fn config_js(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_config(config::load_file_text(FileFormat::Js, text));
    }
}

/// A TOML config file through the whole config loader: no panic.
pub fn config_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_config(config::load_file_text(FileFormat::Toml, text));
    }
}

fn check_config(result: Result<(config::Settings, Vec<String>), config::LoadError>) {
    match result {
        // A config that loads is valid by construction: it parsed into settings, with a
        // backend URL and an address to bind.
        Ok((s, _)) => {
            assert!(s.backend.url.contains("://"), "{}", s.backend.url);
            assert_eq!(s.listen.addr.port(), s.listen.port);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// The service key of the server [`rest`] drives; requests carry it unless they set the header.
pub const REST_SERVICE_KEY: &str = "fuzz-key";

/// One request of a [`rest`] input.
#[derive(Debug)]
pub struct FuzzRequest {
    pub method: Method,
    pub uri: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Vec<u8>,
}

/// Requests are separated by a line `%%`. Each is `METHOD /path?query`, then `Name: value` header
/// lines, an empty line and the body, as in HTTP/1.1. Lines that are not valid HTTP are dropped
/// (hyper would refuse them before the router sees them). At most 8 requests.
pub fn parse_requests(data: &[u8]) -> Vec<FuzzRequest> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for chunk in text.split("\n%%\n").take(8) {
        let (head, body) = chunk.split_once("\n\n").unwrap_or((chunk, ""));
        let mut lines = head.lines();
        let Some((method, uri)) = lines.next().and_then(|l| l.split_once(' ')) else { continue };
        let Ok(method) = Method::from_bytes(method.as_bytes()) else { continue };
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .filter_map(|(n, v)| {
                Some((
                    HeaderName::from_bytes(n.trim().as_bytes()).ok()?,
                    HeaderValue::from_str(v.trim()).ok()?,
                ))
            })
            .collect();
        out.push(FuzzRequest { method, uri: uri.trim().to_owned(), headers, body: body.as_bytes().to_vec() });
    }
    out
}

/// A server in demo mode (so the demo routes are exercised too) and the requests of `data` sent
/// one after the other to its router. Every answer must have a status below 500; every answer
/// under `/nodejs/` and from a demo route, and `/status.json`'s data, must be JSON.
///
/// Building the server state costs more than a request (its backend HTTP client loads the
/// system's TLS roots), so each thread keeps one state for [`REST_STATE_REUSE`] inputs: an
/// input also meets the channels and tokens earlier ones left. A crash that does not replay
/// alone replays with the inputs run before it (the corpus replay test runs them in order).
pub fn rest(data: &[u8]) {
    let requests = parse_requests(data);
    if requests.is_empty() {
        return;
    }
    REST_SERVER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let server = match slot.as_mut() {
            Some(s) if s.inputs < REST_STATE_REUSE => s,
            _ => slot.insert(RestServer::new()),
        };
        server.inputs += 1;
        let router = server.router.clone();
        server.runtime.block_on(async move {
            for r in requests {
                send(&router, r).await;
            }
        });
    });
}

/// How many [`rest`] inputs share one server state.
pub const REST_STATE_REUSE: u32 = 500;

thread_local! {
    static REST_SERVER: std::cell::RefCell<Option<RestServer>> = const { std::cell::RefCell::new(None) };
}

struct RestServer {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    inputs: u32,
}

impl RestServer {
    fn new() -> RestServer {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let cli = Cli {
            service_key: Some(REST_SERVICE_KEY.into()),
            demo: true,
            set: vec!["bodyParserJsonLimit=4kb".into()],
            ..Cli::default()
        };
        let (config, _) = config::load(&cli, std::iter::empty()).expect("fuzz config is valid");
        let local: SocketAddr = ([127, 0, 0, 1], 9).into();
        let router = runtime.block_on(async { drupal_push_server::router(config, local).expect("state") });
        RestServer { runtime, router, inputs: 0 }
    }
}

async fn send(router: &axum::Router, r: FuzzRequest) {
    let Ok(mut req) = Request::builder().method(r.method.clone()).uri(&r.uri).body(Body::from(r.body)) else {
        return;
    };
    for (n, v) in r.headers {
        req.headers_mut().append(n, v);
    }
    if !req.headers().contains_key("nodejsservicekey") {
        req.headers_mut().insert("nodejsservicekey", HeaderValue::from_static(REST_SERVICE_KEY));
    }
    // The demo's page routes take JSON only (server/src/edge/open_guard.rs): inputs that name no
    // type reach their handlers as the demo page's requests do.
    if req.uri().path().starts_with("/demo/") && !req.headers().contains_key(header::CONTENT_TYPE) {
        req.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let path = req.uri().path().to_owned();
    let response = router.clone().oneshot(req).await.expect("the router is infallible");
    check_response(&r.method, &path, response).await;
}

async fn check_response(method: &Method, path: &str, response: axum::response::Response) {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let body = response.into_body().collect().await.expect("a body").to_bytes();
    let what =
        || format!("{method} {path} -> {status} {content_type:?} {:?}", String::from_utf8_lossy(&body));
    assert!(!status.is_server_error(), "server error: {}", what());
    // An unknown path outside the API gets the original's plain `Not Found.` (spec 1.1), also
    // under `/demo/`.
    let demo_route = path.starts_with("/demo/") && status != StatusCode::NOT_FOUND;
    let api_route = path == "/nodejs" || path.starts_with("/nodejs/");
    // `/status.json` answers GET (and HEAD) with JSON; other methods get axum's bare 405.
    let status_json = path == "/status.json" && status.is_success();
    let json_route = api_route || demo_route || status_json;
    if !json_route || status == StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let is_json = content_type.as_ref().is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    assert!(is_json, "not JSON: {}", what());
    if *method != Method::HEAD {
        let v: Value =
            serde_json::from_slice(&body).unwrap_or_else(|_| panic!("body is not JSON: {}", what()));
        assert!(v.is_object(), "not a JSON object: {}", what());
        if !status.is_success() {
            assert!(v["error"].is_string(), "an error without an error text: {}", what());
        }
    }
}
