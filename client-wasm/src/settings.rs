//! Reading the page settings Drupal renders for the nodejs module.
//!
//! Drupal 8+ puts them in `drupalSettings.nodejs`, Drupal 7 in `Drupal.settings.nodejs` (spec
//! 2.5). Both have `nodejs{scheme,host,port}` (where the Drupal side reaches the server) and
//! `client{scheme,host,port}` (where browsers do); Drupal 7 also has `secure` flags. The client
//! values win, the server values fill the gaps, the page's own location fills what is left.
//! `client.path` (default `/ws`) is the WebSocket path, `connectTimeout` the delay after which
//! `connectionFailure` handlers run when the page is still not connected (default 5000 ms, as in
//! the module).

use crate::out::{digits, whole};
use crate::tokens::TokenMap;
use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

/// Default WebSocket path of the server (`wsPath` there).
pub const DEFAULT_PATH: &str = "/ws";
/// Default connect timeout of the nodejs module, in milliseconds.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5000;

/// What the client needs from the page settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `ws://host:port/path` or `wss://…`.
    pub url: String,
    pub auth_token: String,
    /// Content-token channel -> token, from `contentTokens`.
    pub content_tokens: TokenMap,
    pub connect_timeout_ms: u64,
}

/// Where the page itself was loaded from: the last fallback for scheme and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLocation {
    pub secure: bool,
    pub hostname: String,
}

/// A leaf of the settings object.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
    /// `null`, an object or an array.
    Other,
}

/// Read access to the settings object: a JS object in the browser, JSON in tests.
pub trait Source {
    /// Whether the settings exist at all (an object).
    fn is_object(&self) -> bool;
    /// The leaf at `path` (`None` when missing).
    fn scalar(&self, path: &[&str]) -> Option<Scalar>;
    /// The members of the object at `path` (none when it is not an object, e.g. Drupal 7's
    /// `[]`).
    fn entries(&self, path: &[&str]) -> Vec<(String, Scalar)>;
}

/// The settings object is missing or not an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSettings;

impl MissingSettings {
    pub const TEXT: &'static str =
        "drupal-push: no nodejs settings on this page (drupalSettings.nodejs or Drupal.settings.nodejs)";
}

/// Parses the `nodejs` settings object.
pub fn parse(nodejs: &impl Source, page: &PageLocation) -> Result<Settings, MissingSettings> {
    if !nodejs.is_object() {
        return Err(MissingSettings);
    }
    let at = |endpoint: &str, key: &str| nodejs.scalar(&[endpoint, key]);
    let secure = secure_flag(at("client", "scheme"), at("client", "secure"))
        .or_else(|| secure_flag(at("nodejs", "scheme"), at("nodejs", "secure")))
        .unwrap_or(page.secure);
    let host = text(at("client", "host"))
        .or_else(|| text(at("nodejs", "host")))
        .unwrap_or_else(|| page.hostname.clone());
    let port = port(at("client", "port")).or_else(|| port(at("nodejs", "port")));
    let path = text(at("client", "path")).unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let (auth_token, content_tokens) = credentials(nodejs);
    Ok(Settings {
        url: ws_url(secure, &host, port, &path),
        auth_token: auth_token.unwrap_or_default(),
        content_tokens,
        connect_timeout_ms: millis(nodejs.scalar(&["connectTimeout"]))
            .or_else(|| millis(at("client", "connectTimeout")))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
    })
}

/// The auth token and content tokens the settings hold now (page code or Drupal AJAX may
/// change them after the page loaded). `contentTokens` is an object of channel -> token, or
/// `[]` (an empty PHP array) when there is none; integers are taken as their digits, other
/// values are skipped.
pub fn credentials(nodejs: &impl Source) -> (Option<String>, TokenMap) {
    let mut tokens = TokenMap::default();
    for (channel, token) in nodejs.entries(&["contentTokens"]) {
        if let Some(token) = text(Some(token)) {
            tokens.insert(channel, token);
        }
    }
    (text(nodejs.scalar(&["authToken"])), tokens)
}

/// `scheme` ("https"/"http") when present, else Drupal 7's `secure` flag.
fn secure_flag(scheme: Option<Scalar>, secure: Option<Scalar>) -> Option<bool> {
    if let Some(scheme) = text(scheme) {
        let scheme = scheme.to_ascii_lowercase();
        return Some(scheme == "https" || scheme == "wss");
    }
    match secure? {
        Scalar::Bool(b) => Some(b),
        Scalar::Num(n) => Some(n != 0.0),
        Scalar::Str(s) => Some(!matches!(s.trim_ascii(), "" | "0" | "false")),
        Scalar::Other => None,
    }
}

/// A non-empty string, or an integer as its digits.
fn text(v: Option<Scalar>) -> Option<String> {
    match v? {
        Scalar::Str(s) if !s.trim_ascii().is_empty() => Some(s.trim_ascii().to_owned()),
        Scalar::Num(n) => whole(n).map(digits),
        _ => None,
    }
}

fn port(v: Option<Scalar>) -> Option<u16> {
    text(v)?.parse().ok().filter(|p| *p != 0)
}

fn millis(v: Option<Scalar>) -> Option<u64> {
    match v? {
        Scalar::Num(n) => (1.0..9.0e15).contains(&n).then_some(n as u64),
        Scalar::Str(s) => s.trim_ascii().parse().ok().filter(|ms| *ms > 0),
        _ => None,
    }
}

fn ws_url(secure: bool, host: &str, port: Option<u16>, path: &str) -> String {
    let mut url = String::from(if secure { "wss://" } else { "ws://" });
    let bracket = host.contains(':') && !host.starts_with('[');
    if bracket {
        url.push('[');
    }
    url.push_str(host);
    if bracket {
        url.push(']');
    }
    if let Some(port) = port {
        url.push(':');
        url.push_str(&digits(port.into()));
    }
    if !path.starts_with('/') {
        url.push('/');
    }
    url.push_str(path);
    url
}

#[cfg(feature = "std")]
use serde_json::Value;

#[cfg(feature = "std")]
fn scalar_of(v: &Value) -> Scalar {
    match v {
        Value::String(s) => Scalar::Str(s.clone()),
        Value::Number(n) => n.as_f64().map_or(Scalar::Other, Scalar::Num),
        Value::Bool(b) => Scalar::Bool(*b),
        _ => Scalar::Other,
    }
}

#[cfg(feature = "std")]
fn walk<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(key))
}

/// Settings as JSON (native tests and tools).
#[cfg(feature = "std")]
impl Source for Value {
    fn is_object(&self) -> bool {
        Value::is_object(self)
    }

    fn scalar(&self, path: &[&str]) -> Option<Scalar> {
        walk(self, path).map(scalar_of)
    }

    fn entries(&self, path: &[&str]) -> Vec<(String, Scalar)> {
        let Some(map) = walk(self, path).and_then(Value::as_object) else { return Vec::new() };
        map.iter().map(|(k, v)| (k.clone(), scalar_of(v))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page() -> PageLocation {
        PageLocation { secure: false, hostname: "site.example".into() }
    }

    #[test]
    fn drupal8_settings_use_the_client_endpoint() {
        let s = parse(
            &json!({
                "nodejs": {"scheme": "http", "host": "internal", "port": 8080},
                "client": {"scheme": "https", "host": "push.example", "port": 443},
                "authToken": "abc",
                "contentTokens": {"chat": "t1"}
            }),
            &page(),
        )
        .unwrap();
        assert_eq!(s.url, "wss://push.example:443/ws");
        assert_eq!(s.auth_token, "abc");
        assert_eq!(s.content_tokens.get("chat"), Some("t1"));
        assert_eq!(s.connect_timeout_ms, 5000);
    }

    #[test]
    fn client_values_fall_back_to_the_server_ones_then_to_the_page() {
        let s = parse(
            &json!({"nodejs": {"scheme": "https", "host": "push.example", "port": "8443"},
                    "client": {"host": ""}}),
            &page(),
        )
        .unwrap();
        assert_eq!(s.url, "wss://push.example:8443/ws");
        let s = parse(&json!({"authToken": "x"}), &PageLocation { secure: true, ..page() }).unwrap();
        assert_eq!(s.url, "wss://site.example/ws");
        assert_eq!(s.auth_token, "x");
    }

    #[test]
    fn drupal7_uses_the_secure_flag_and_empty_arrays() {
        let s = parse(
            &json!({"client": {"secure": 1, "host": "h", "port": 8080},
                    "nodejs": {"secure": 0, "host": "i", "port": 8080},
                    "authToken": "t", "contentTokens": []}),
            &page(),
        )
        .unwrap();
        assert_eq!(s.url, "wss://h:8080/ws");
        assert!(s.content_tokens.is_empty());
        let s = parse(&json!({"client": {"secure": "0", "host": "h", "port": 80}}), &page()).unwrap();
        assert_eq!(s.url, "ws://h:80/ws");
    }

    #[test]
    fn path_timeout_and_ipv6() {
        let s = parse(
            &json!({"client": {"scheme": "http", "host": "::1", "port": 9, "path": "push/ws"},
                    "connectTimeout": 1500}),
            &page(),
        )
        .unwrap();
        assert_eq!(s.url, "ws://[::1]:9/push/ws");
        assert_eq!(s.connect_timeout_ms, 1500);
        let s = parse(&json!({"client": {"connectTimeout": "700"}}), &page()).unwrap();
        assert_eq!(s.connect_timeout_ms, 700);
        let s = parse(&json!({"connectTimeout": 0}), &page()).unwrap();
        assert_eq!(s.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS);
    }

    #[test]
    fn missing_settings_are_an_error_and_odd_tokens_are_skipped() {
        assert_eq!(parse(&Value::Null, &page()), Err(MissingSettings));
        let (_, tokens) =
            credentials(&json!({"contentTokens": {"a": "x", "b": 5, "c": null, "d": {"e": 1}, "f": 1.5}}));
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.get("b"), Some("5"));
        let (token, tokens) = credentials(&json!({"authToken": "n", "contentTokens": {"c": "t"}}));
        assert_eq!(token.as_deref(), Some("n"));
        assert_eq!(tokens.get("c"), Some("t"));
        assert_eq!(credentials(&json!({})), (None, TokenMap::default()));
    }
}
