//! The browser checks in front of what runs without a service key: the demo's page routes
//! (`--demo`) and Drupal's API under an empty key (`allowEmptyServiceKey`). Without a key,
//! the only thing between a web page on another site and these routes is the browser's own
//! rules, so they are held to what a browser cannot fake (security review, finding 11):
//!
//! * `Host` must name the loopback (`localhost`, `*.localhost`, `127.x.y.z`, `[::1]`) or the
//!   configured `host`: a page using DNS rebinding (its own name resolving to 127.0.0.1) sends
//!   its own name. A request without `Host` (HTTP/1.0) is no browser's and passes.
//! * `Origin`, when present, must be this server's own (`http://` or `https://` and the `Host`).
//! * `Sec-Fetch-Site`, when present, must be `same-origin` or `none` (typed in the address
//!   bar): an `<img>` or form of another site says `cross-site` or `same-site`.
//! * Anything but GET and HEAD must carry `Content-Type: application/json`, which a page of
//!   another site cannot send without a CORS preflight, and no preflight is ever granted here.
//!
//! With a service key none of this applies: Drupal's calls (Drupal 7's without a Content-Type)
//! are checked by the key alone.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// What the checks need from the configuration.
#[derive(Debug, Clone)]
pub struct OpenGuard {
    /// The configured `host`, when it names one address or name (not `""` or `0.0.0.0`).
    host: Option<String>,
}

impl OpenGuard {
    /// `host`: the configured `host` setting.
    pub fn new(host: &str) -> Arc<OpenGuard> {
        let host = match host {
            "" | "0.0.0.0" | "::" => None,
            h => Some(h.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase()),
        };
        Arc::new(OpenGuard { host })
    }

    /// Why a request is refused, if it is.
    fn refusal(&self, method: &Method, headers: &HeaderMap) -> Option<(StatusCode, String)> {
        let text = |name| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let host = text(header::HOST);
        if let Some(host) = &host
            && !self.host_allowed(host)
        {
            return Some((
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} refused: without a service key this server answers only requests \
                     addressed to localhost, a loopback address or its host setting (a defence against \
                     DNS rebinding); set serviceKey to reach it by other names"
                ),
            ));
        }
        if let Some(origin) = text(header::ORIGIN) {
            let own = host.as_deref().is_some_and(|host| {
                let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
                rest.is_some_and(|rest| rest.eq_ignore_ascii_case(host))
            });
            if !own {
                return Some((
                    StatusCode::FORBIDDEN,
                    format!(
                        "Origin {origin:?} refused: without a service key this server takes requests only \
                         from its own pages"
                    ),
                ));
            }
        }
        if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
            && !matches!(site.as_str(), "same-origin" | "none")
        {
            return Some((
                StatusCode::FORBIDDEN,
                format!(
                    "a request from another site (Sec-Fetch-Site: {site}) refused: without a service key \
                     this server takes requests only from its own pages"
                ),
            ));
        }
        if *method != Method::GET && *method != Method::HEAD && !is_json(headers) {
            return Some((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "{method} needs Content-Type: application/json while this server has no service key \
                     (a page of another site cannot send that header without the server's consent); \
                     callers that send no Content-Type, like Drupal 7, need serviceKey set"
                ),
            ));
        }
        None
    }

    /// Whether `host` (a `Host` header: name or address, with or without a port) is the
    /// loopback or the configured host.
    fn host_allowed(&self, host: &str) -> bool {
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => match host.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => host,
            },
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name == "localhost"
            || name.ends_with(".localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
            || self.host.as_deref() == Some(name.as_str())
    }
}

/// Whether the request says its body is JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// The middleware: refuses with a JSON `error` naming the problem, or passes the request on.
pub async fn check(State(guard): State<Arc<OpenGuard>>, req: Request, next: Next) -> Response {
    if let Some((status, error)) = guard.refusal(req.method(), req.headers()) {
        tracing::warn!(path = req.uri().path(), "request refused: {error}");
        return (status, axum::Json(serde_json::json!({ "error": error }))).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(host: &str) -> OpenGuard {
        Arc::unwrap_or_clone(OpenGuard::new(host))
    }

    #[test]
    fn hosts() {
        let g = guard("");
        for ok in
            ["localhost", "localhost:8080", "LOCALHOST.", "app.localhost:1", "127.0.0.1:80", "127.1.2.3"]
        {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for ok in ["[::1]:8080", "[::1]", "[::ffff:127.0.0.1]:9"] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in
            ["evil.example", "evil.example:8080", "localhost.evil.example", "10.0.0.1:80", "[::2]:80", ""]
        {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        assert!(guard("192.168.1.5").host_allowed("192.168.1.5:8080"));
        assert!(guard("push.dev.example").host_allowed("Push.Dev.Example:8080"));
    }
}
