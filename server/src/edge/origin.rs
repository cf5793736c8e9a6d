//! The origin allow-list of the WebSocket upgrade (`allowedOrigins`).
//!
//! A browser sends the page's origin (`scheme://host[:port]`) with every WebSocket handshake; a
//! page of another site that tries to use our server on its visitors' behalf shows up with its
//! own origin and is refused with 403. A client that sends no `Origin` at all is not a browser
//! page (browsers always send one), so the check has nothing to say about it and lets it in.
//!
//! Patterns: `*` (every origin), `null` (sandboxed frames and `file:` pages, only when listed),
//! or `scheme://host[:port]` where the host may start with `*.` (any subdomain, at any depth, but
//! not the bare domain) and the port may be `*` (any port). Without a port a pattern means the
//! scheme's default port. Comparison ignores ASCII case.

use crate::error::ConfigError;

/// The parsed `allowedOrigins`.
#[derive(Debug, Clone)]
pub struct Origins {
    /// `None`: every origin is allowed.
    patterns: Option<Vec<Pattern>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Null,
    Origin { scheme: String, host: Host, port: Port },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// The scheme's default port (none written, or the default written out).
    Default,
    Any,
    Number(u16),
}

/// An origin as a browser sends it, split and normalised.
struct Parsed<'a> {
    scheme: String,
    host: String,
    port: Option<&'a str>,
}

impl Origins {
    /// Parses the configured list; an error names the entry (`allowedOrigins[1]: …`).
    pub fn parse(list: &[String]) -> Result<Origins, ConfigError> {
        if list.is_empty() || list.iter().any(|p| p.trim() == "*") {
            return Ok(Origins { patterns: None });
        }
        let patterns = list
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Pattern::parse(p.trim())
                    .map_err(|e| ConfigError::new(format!("allowedOrigins[{i}]"), format!("{p:?} {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Origins { patterns: Some(patterns) })
    }

    /// Whether every origin is allowed.
    pub fn allows_all(&self) -> bool {
        self.patterns.is_none()
    }

    /// Whether a handshake with this `Origin` header value may proceed.
    pub fn allows(&self, origin: &str) -> bool {
        let Some(patterns) = &self.patterns else { return true };
        if origin.trim().eq_ignore_ascii_case("null") {
            return patterns.contains(&Pattern::Null);
        }
        let Ok(parsed) = split(origin.trim()) else { return false };
        let Some(port) = normalise_port(&parsed.scheme, parsed.port) else { return false };
        patterns.iter().any(|p| p.matches(&parsed.scheme, &parsed.host, port))
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        if text.eq_ignore_ascii_case("null") {
            return Ok(Pattern::Null);
        }
        let text = text.strip_suffix('/').unwrap_or(text);
        let parsed = split(text)?;
        let host = match parsed.host.strip_prefix("*.") {
            Some(rest) if !rest.is_empty() && !rest.contains('*') => Host::Subdomains(format!(".{rest}")),
            _ if parsed.host.contains('*') => {
                return Err("has a '*' inside the host; only a leading \"*.\" is supported".into());
            }
            _ => Host::Exact(parsed.host),
        };
        let port = match parsed.port {
            Some("*") => Port::Any,
            p => match normalise_port(&parsed.scheme, p) {
                Some(None) => Port::Default,
                Some(Some(n)) => Port::Number(n),
                None => return Err("has a port that is not a number from 1 to 65535 or '*'".into()),
            },
        };
        Ok(Pattern::Origin { scheme: parsed.scheme, host, port })
    }

    fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Pattern::Origin { scheme: s, host: h, port: p } = self else { return false };
        let host_ok = match h {
            Host::Exact(e) => e == host,
            Host::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        };
        let port_ok = match p {
            Port::Any => true,
            Port::Default => port.is_none(),
            Port::Number(n) => port == Some(*n),
        };
        s == scheme && host_ok && port_ok
    }
}

/// Splits `scheme://host[:port]`, lowercasing scheme and host.
fn split(text: &str) -> Result<Parsed<'_>, String> {
    let (scheme, rest) = text.split_once("://").ok_or("is not of the form scheme://host[:port]")?;
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return Err("has no valid scheme (like https)".into());
    }
    if rest.contains(['/', '?', '#', '@']) {
        return Err("has a path, query or user part; an origin is only scheme://host[:port]".into());
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("has an unclosed '[' in the host")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("has text after the IPv6 address")?),
        };
        (format!("[{addr}]"), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (rest.to_owned(), None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("has no host".into());
    }
    Ok(Parsed { scheme: scheme.to_ascii_lowercase(), host: host.to_ascii_lowercase(), port })
}

/// `Some(None)` for the scheme's default port (absent or written out), `Some(Some(n))` for
/// another port, `None` for a port that is not a number.
fn normalise_port(scheme: &str, port: Option<&str>) -> Option<Option<u16>> {
    let Some(text) = port else { return Some(None) };
    let n: u16 = text.parse().ok().filter(|n| *n > 0)?;
    let default = match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    Some((default != Some(n)).then_some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Origins {
        Origins::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn empty_or_star_allows_everything() {
        assert!(origins(&[]).allows_all());
        assert!(origins(&["https://a.example", "*"]).allows("https://evil.example"));
    }

    #[test]
    fn exact_origins_with_default_ports_and_case() {
        let o = origins(&["https://www.example.com", "http://localhost:8080/"]);
        assert!(o.allows("https://www.example.com"));
        assert!(o.allows("HTTPS://WWW.Example.com:443"));
        assert!(o.allows("http://localhost:8080"));
        assert!(!o.allows("http://www.example.com"), "the scheme counts");
        assert!(!o.allows("https://www.example.com:8443"), "another port");
        assert!(!o.allows("http://localhost"), "default port is not 8080");
        assert!(!o.allows("https://www.example.com.evil.example"));
        assert!(!o.allows("null"));
        assert!(!o.allows("garbage"));
    }

    #[test]
    fn subdomain_and_port_wildcards() {
        let o = origins(&["https://*.example.com", "http://localhost:*", "null"]);
        assert!(o.allows("https://www.example.com"));
        assert!(o.allows("https://a.b.example.com"));
        assert!(!o.allows("https://example.com"), "the bare domain is listed on its own");
        assert!(!o.allows("https://badexample.com"));
        assert!(!o.allows("https://www.example.com:444"));
        assert!(o.allows("http://localhost:3000"));
        assert!(o.allows("http://localhost"));
        assert!(o.allows("null"));
    }

    #[test]
    fn ipv6_hosts() {
        let o = origins(&["http://[::1]:8080"]);
        assert!(o.allows("http://[::1]:8080"));
        assert!(!o.allows("http://[::1]"));
    }

    #[test]
    fn bad_patterns_name_the_entry() {
        for (bad, why) in [
            ("www.example.com", "scheme://"),
            ("https://example.com/path", "path"),
            ("https://ex*ample.com", "'*'"),
            ("https://*.", "'*'"),
            ("https://example.com:http", "port"),
            ("https://example.com:0", "port"),
            ("https://:8080", "no host"),
        ] {
            let e = Origins::parse(&["https://ok.example".into(), bad.into()]).unwrap_err();
            assert_eq!(e.key, "allowedOrigins[1]", "{e}");
            assert!(e.message.contains(why), "{bad}: {e}");
        }
    }
}
