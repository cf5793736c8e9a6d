//! Who may open a WebSocket and ask Drupal: the checks in front of the upgrade (draining,
//! [`origin`](crate::edge::origin) allow-list, per-address connection rate) and the per-address
//! authentication rate, for a client address found through [`proxy`](crate::edge::proxy).
//!
//! Entry points: [`Admission::admit_upgrade`] (one call in the upgrade handler) and
//! [`Admission::allow_auth`] (before an authentication goes to Drupal). A handshake from a peer
//! that is not a trusted proxy but carries `X-Forwarded-For` or `Forwarded` is counted
//! (`drupal_push_untrusted_forwarded_handshakes_total`) and its peer named in the log once, with
//! the setting to add it to; the refusals of that address repeat the advice
//! ([`crate::edge::proxy::UntrustedForwarders`]). Refusals are plain
//! HTTP answers before the upgrade: 503 while draining (the client reconnects, to another
//! node), 403 for a foreign origin, 429 for too many connections from one address.

use crate::edge::limits::{RateLimit, Verdict};
use crate::edge::origin::Origins;
use crate::edge::proxy::{Noted, TrustedProxies, UntrustedForwarders, forwarding_header};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What admission is configured with: the parsed `allowedOrigins` and `trustedProxies`, and the
/// per-address rates (0: no limit) with their bursts.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub origins: Origins,
    pub proxies: TrustedProxies,
    /// `connectionRatePerAddress`, `connectionBurstPerAddress`.
    pub connection_rate: f64,
    pub connection_burst: u32,
    /// `authRatePerAddress`, `authBurstPerAddress`.
    pub auth_rate: f64,
    pub auth_burst: u32,
}

pub struct Admission {
    origins: Origins,
    proxies: TrustedProxies,
    connections: Option<RateLimit>,
    auths: Option<RateLimit>,
    draining: AtomicBool,
    untrusted: UntrustedForwarders,
    /// Handshakes with a forwarding header from peers that are not trusted proxies.
    untrusted_handshakes: Counter,
}

impl Admission {
    /// `untrusted_handshakes` counts the handshakes with a forwarding header from a peer that
    /// is not a trusted proxy (a metric); such peers are noted in `untrusted`.
    pub fn new(
        settings: &EdgeSettings,
        untrusted: UntrustedForwarders,
        untrusted_handshakes: Counter,
    ) -> Admission {
        Admission {
            origins: settings.origins.clone(),
            proxies: settings.proxies.clone(),
            connections: RateLimit::new(settings.connection_rate, settings.connection_burst),
            auths: RateLimit::new(settings.auth_rate, settings.auth_burst),
            draining: AtomicBool::new(false),
            untrusted,
            untrusted_handshakes,
        }
    }

    /// Checks a WebSocket handshake from `peer`: `Ok(client address)` or why it is refused.
    pub fn admit_upgrade(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<IpAddr, Refusal> {
        if self.is_draining() {
            return Err(Refusal::Draining);
        }
        let client = self.proxies.client_ip(peer.ip(), headers);
        if !self.proxies.contains(peer.ip())
            && let Some(header) = forwarding_header(headers)
        {
            self.untrusted_forwarder(peer.ip(), header);
        }
        if let Some(origin) = headers.get(header::ORIGIN)
            && !self.origins.allows_all()
        {
            let text = String::from_utf8_lossy(origin.as_bytes());
            if !self.origins.allows(&text) {
                tracing::warn!(origin = %text, %client, "websocket refused: origin not in allowedOrigins");
                return Err(Refusal::Origin(text.into_owned()));
            }
        }
        if let Some(limit) = &self.connections
            && let Verdict::Refused { first } = limit.check(client, Instant::now())
        {
            if first {
                let hint = self.untrusted.hint(client);
                tracing::warn!(%client, "websocket refused: connectionRatePerAddress exceeded (logged once per burst){hint}");
            }
            return Err(Refusal::TooManyConnections);
        }
        Ok(client)
    }

    /// Whether `client` may send one more authentication to Drupal now.
    pub fn allow_auth(&self, client: IpAddr) -> bool {
        let Some(limit) = &self.auths else { return true };
        match limit.check(client, Instant::now()) {
            Verdict::Allowed => true,
            Verdict::Refused { first } => {
                if first {
                    let hint = self.untrusted.hint(client);
                    tracing::warn!(%client, "authentication refused: authRatePerAddress exceeded (logged once per burst){hint}");
                }
                false
            }
        }
    }

    /// A handshake from `peer`, not a trusted proxy, carried `header`: counted, and logged the
    /// first time for this peer.
    fn untrusted_forwarder(&self, peer: IpAddr, header: &str) {
        self.untrusted_handshakes.inc();
        match self.untrusted.note(peer) {
            Noted::First => tracing::warn!(
                %peer,
                "a connection from {peer} carries {header} but {peer} is not in trustedProxies, so the header \
                 is ignored and every browser behind {peer} counts as this one address for the per-address \
                 limits (connectionRatePerAddress, authRatePerAddress, maxConnectionsPerAddress, \
                 backend.queueSharePerAddress): if {peer} \
                 is your reverse proxy, add \"{peer}\" to trustedProxies (logged once per address)"
            ),
            Noted::Full => tracing::warn!(
                "more than {} addresses not in trustedProxies sent forwarding headers; further ones are not logged",
                crate::edge::proxy::MAX_UNTRUSTED_FORWARDERS
            ),
            Noted::Again => {}
        }
    }

    /// What a refusal of `client` adds when it is an untrusted peer that sent forwarding
    /// headers (else nothing).
    pub fn proxy_hint(&self, client: IpAddr) -> String {
        self.untrusted.hint(client)
    }

    /// From now on new WebSockets are refused with 503 (shutdown has begun).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

/// Why a WebSocket handshake is refused; answered as plain HTTP before the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 503: shutdown has begun; reconnect (to another node).
    Draining,
    /// 403: the page's origin is not in `allowedOrigins`.
    Origin(String),
    /// 429: `connectionRatePerAddress` exceeded.
    TooManyConnections,
}

impl Refusal {
    /// The `reason` label of `drupal_push_handshakes_refused_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Draining => "draining",
            Refusal::Origin(_) => "origin",
            Refusal::TooManyConnections => "rate_limited",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let retry = [(header::RETRY_AFTER, "1")];
        match self {
            Refusal::Draining => {
                (StatusCode::SERVICE_UNAVAILABLE, retry, "the server is shutting down").into_response()
            }
            Refusal::Origin(origin) => {
                (StatusCode::FORBIDDEN, format!("origin {origin} is not allowed (allowedOrigins)"))
                    .into_response()
            }
            Refusal::TooManyConnections => {
                (StatusCode::TOO_MANY_REQUESTS, retry, "too many connections from this address")
                    .into_response()
            }
        }
    }
}
