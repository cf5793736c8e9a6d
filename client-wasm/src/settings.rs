//! Reading the page settings Drupal renders for the nodejs module.
//!
//! Drupal 8+ puts them in `drupalSettings.nodejs`, Drupal 7 in `Drupal.settings.nodejs` (spec
//! 2.5). Both have `nodejs{scheme,host,port}` (where the Drupal side reaches the server) and
//! `client{scheme,host,port}` (where browsers do); Drupal 7 also has `secure` flags. The client
//! values win, the server values fill the gaps, the page's own location fills what is left.
//! `client.path` (default `/ws`) is the WebSocket path, `connectTimeout` the delay after which
//! `connectionFailure` handlers run when the page is still not connected (default 5000 ms, as in
//! the module).

use serde_json::Value;
use std::collections::BTreeMap;

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
    pub content_tokens: BTreeMap<String, String>,
    pub connect_timeout_ms: u64,
}

/// Where the page itself was loaded from: the last fallback for scheme and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLocation {
    pub secure: bool,
    pub hostname: String,
}

/// The settings object is missing or not an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSettings;

impl std::fmt::Display for MissingSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no nodejs settings on this page (drupalSettings.nodejs or Drupal.settings.nodejs)")
    }
}

/// Parses the `nodejs` settings object.
pub fn parse(nodejs: &Value, page: &PageLocation) -> Result<Settings, MissingSettings> {
    if !nodejs.is_object() {
        return Err(MissingSettings);
    }
    let client = nodejs.get("client").unwrap_or(&Value::Null);
    let server = nodejs.get("nodejs").unwrap_or(&Value::Null);
    let secure = secure_flag(client).or_else(|| secure_flag(server)).unwrap_or(page.secure);
    let host = text(client.get("host"))
        .or_else(|| text(server.get("host")))
        .unwrap_or_else(|| page.hostname.clone());
    let port = port(client.get("port")).or_else(|| port(server.get("port")));
    let path = text(client.get("path")).unwrap_or_else(|| DEFAULT_PATH.to_owned());
    Ok(Settings {
        url: ws_url(secure, &host, port, &path),
        auth_token: text(nodejs.get("authToken")).unwrap_or_default(),
        content_tokens: content_tokens(nodejs.get("contentTokens").unwrap_or(&Value::Null)),
        connect_timeout_ms: millis(nodejs.get("connectTimeout"))
            .or_else(|| millis(client.get("connectTimeout")))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
    })
}

/// The auth token and content tokens the settings hold now (page code or Drupal AJAX may
/// change them after the page loaded).
pub fn credentials(nodejs: &Value) -> (Option<String>, BTreeMap<String, String>) {
    let token = text(nodejs.get("authToken"));
    (token, content_tokens(nodejs.get("contentTokens").unwrap_or(&Value::Null)))
}

/// `contentTokens` as Drupal renders it: an object of channel -> token, or `[]` (an empty PHP
/// array) when there is none. Numbers are taken as their text; other values are skipped.
pub fn content_tokens(value: &Value) -> BTreeMap<String, String> {
    let Some(map) = value.as_object() else {
        return BTreeMap::new();
    };
    map.iter().filter_map(|(channel, token)| Some((channel.clone(), text(Some(token))?))).collect()
}

/// `scheme` ("https"/"http") when present, else Drupal 7's `secure` flag.
fn secure_flag(endpoint: &Value) -> Option<bool> {
    if let Some(scheme) = text(endpoint.get("scheme")) {
        let scheme = scheme.to_ascii_lowercase();
        return Some(scheme == "https" || scheme == "wss");
    }
    endpoint.get("secure").filter(|v| !v.is_null()).map(truthy_flag)
}

/// Drupal 7 renders flags as `true`, `1` or `"1"`.
fn truthy_flag(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !matches!(s.trim(), "" | "0" | "false"),
        _ => false,
    }
}

/// A non-empty string, or a number as text.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn port(v: Option<&Value>) -> Option<u16> {
    text(v)?.parse().ok().filter(|p| *p != 0)
}

fn millis(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_f64().filter(|f| *f > 0.0).map(|f| f as u64),
        Value::String(s) => s.trim().parse().ok().filter(|ms| *ms > 0),
        _ => None,
    }
}

fn ws_url(secure: bool, host: &str, port: Option<u16>, path: &str) -> String {
    let scheme = if secure { "wss" } else { "ws" };
    let host =
        if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
    let slash = if path.starts_with('/') { "" } else { "/" };
    format!("{scheme}://{host}{port}{slash}{path}")
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
        assert_eq!(s.content_tokens.get("chat").map(String::as_str), Some("t1"));
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
        let tokens = content_tokens(&json!({"a": "x", "b": 5, "c": null, "d": {"e": 1}}));
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens["b"], "5");
        let (token, tokens) = credentials(&json!({"authToken": "n", "contentTokens": {"c": "t"}}));
        assert_eq!(token.as_deref(), Some("n"));
        assert_eq!(tokens["c"], "t");
        assert_eq!(credentials(&json!({})), (None, BTreeMap::new()));
    }
}
