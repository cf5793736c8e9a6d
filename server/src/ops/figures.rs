//! One snapshot of the server's figures ([`Figures`]), read once per request and rendered three
//! ways: `/status.json` (public: counters only, [`Figures::status_json`]), Drupal's
//! `health/check` (behind the service key, [`Figures::health_json`]) and Prometheus `/metrics`
//! (behind its token, [`crate::ops::metrics::Metrics::render`]). Each figure is named and
//! computed here once, so the three cannot disagree on what, say, `clusterSockets` means.
//!
//! The engine's cluster-wide figures cost round trips on Redis: `/status.json` takes them from
//! the [`crate::ops::status::StatsCache`] (at most one computation a second), the two guarded
//! answers ask the engine each time. When the engine cannot answer, the snapshot keeps why, and
//! each rendering still reports this node's own figures.

use crate::App;
use crate::config::COMPAT_VERSION;
use crate::engine::EngineStats;
use crate::hub::LocalStats;
use serde_json::{Value, json};

/// Everything the three answers report, read at one moment.
#[derive(Debug, Clone)]
pub struct Figures {
    /// This node's sockets, channels and client addresses.
    pub local: LocalStats,
    /// The engine's cluster-wide figures, or why it could not give them.
    pub cluster: Result<EngineStats, String>,
    /// The engine reaches the shared state.
    pub engine_ready: bool,
    /// `memory` or `redis`.
    pub engine: &'static str,
    pub draining: bool,
    pub uptime_secs: u64,
    pub rss_bytes: u64,
    /// Authentications waiting for a request slot to Drupal.
    pub backend_queued: usize,
    /// Requests to Drupal in flight.
    pub backend_in_flight: usize,
    /// Presence notices waiting to be sent to Drupal.
    pub pending_notices: usize,
    /// Publications delivered by this node, and deliveries to its sockets, since start.
    pub publications: u64,
    pub deliveries: u64,
    /// Bytes queued in this node's outboxes.
    pub queued_bytes: i64,
}

impl Figures {
    /// Reads this node's figures now, with `cluster` the engine's (fresh or cached: the caller
    /// decides).
    pub fn read(app: &App, cluster: Result<EngineStats, String>) -> Figures {
        Figures {
            local: app.hub.stats(),
            cluster,
            engine_ready: app.engine.ready(),
            engine: match app.settings.engine.kind() {
                crate::config::EngineKind::Memory => "memory",
                crate::config::EngineKind::Redis => "redis",
            },
            draining: app.admission.is_draining(),
            uptime_secs: app.started.elapsed().as_secs(),
            rss_bytes: rss_bytes(),
            backend_queued: app.backend.queued(),
            backend_in_flight: app.backend.in_flight(),
            pending_notices: app.backend.notices().pending(),
            publications: app.metrics.publication_total(),
            deliveries: app.metrics.delivery_total(),
            queued_bytes: app.metrics.queued_bytes.get(),
        }
    }

    /// Reads them with the engine's figures asked now.
    pub async fn fresh(app: &App) -> Figures {
        let cluster = app.engine.stats().await.map_err(|e| e.to_string());
        Figures::read(app, cluster)
    }

    /// Authenticated sockets on all nodes: the engine's count when there are several nodes,
    /// this node's own (always current) when it is alone or the engine cannot say.
    pub fn cluster_sockets(&self) -> usize {
        match &self.cluster {
            Ok(c) if c.nodes > 1 => c.cluster_sockets,
            _ => self.local.sockets,
        }
    }

    /// The busiest client address's part of this node's connections, 0 to 1 in steps of 0.001
    /// (0 without any connection).
    pub fn top_address_share(&self) -> f64 {
        let connections = self.local.sockets + self.local.pre_auth_sockets;
        if connections == 0 {
            return 0.0;
        }
        (self.local.top_address_connections as f64 * 1000.0 / connections as f64).round() / 1000.0
    }

    /// `/status.json`: counters only, no channel names, tokens, keys or addresses.
    pub fn status_json(&self) -> Value {
        let l = &self.local;
        let mut body = json!({
            "server": concat!("drupal-push ", env!("CARGO_PKG_VERSION")),
            "compatVersion": COMPAT_VERSION,
            "engine": self.engine,
            "engineReady": self.engine_ready,
            "uptimeSecs": self.uptime_secs,
            "rssBytes": self.rss_bytes,
            "sockets": l.sockets,
            "preAuthSockets": l.pre_auth_sockets,
            "clientAddresses": l.client_addresses,
            "topAddressConnections": l.top_address_connections,
            "topAddressShare": self.top_address_share(),
            "backendQueuedAuthentications": self.backend_queued,
            "backendPendingNotices": self.pending_notices,
            "draining": self.draining,
            "publications": self.publications,
            "deliveries": self.deliveries,
            "queuedBytes": self.queued_bytes,
        });
        match &self.cluster {
            Ok(c) => {
                body["nodes"] = json!(c.nodes);
                body["clusterSockets"] = json!(self.cluster_sockets());
                body["authenticatedClients"] = json!(c.sessions);
                body["onlineUsers"] = json!(c.online_users);
                body["channels"] = json!(c.channels);
                body["tokenChannels"] = json!(c.token_channels);
                body["cachedAuthTokens"] = json!(c.cached_auth_tokens);
                body["historyMessages"] = json!(c.history_messages);
                body["historyBytes"] = json!(c.history_bytes);
            }
            Err(e) => body["engineError"] = json!(e),
        }
        body
    }

    /// `health/check`'s counters (the caller adds `contentTokens`). While the engine cannot be
    /// reached it answers from this node's own figures, with `engineError` saying why the
    /// cluster's are missing: a monitoring Drupal still sees the node.
    pub fn health_json(&self) -> Value {
        let l = &self.local;
        match &self.cluster {
            Ok(c) => json!({
                "authenticatedClients": c.sessions,
                "sockets": l.sockets,
                "preAuthSockets": l.pre_auth_sockets,
                "onlineUsers": c.online_users,
                "channels": c.channels,
                "tokenChannels": c.token_channels,
                "cachedAuthTokens": c.cached_auth_tokens,
                "historyMessages": c.history_messages,
                "historyBytes": c.history_bytes,
                "nodes": c.nodes,
                "clusterSockets": self.cluster_sockets(),
            }),
            Err(e) => json!({
                "authenticatedClients": l.sessions,
                "sockets": l.sockets,
                "preAuthSockets": l.pre_auth_sockets,
                "channels": l.channels,
                "tokenChannels": l.token_channels,
                "engineError": e,
            }),
        }
    }
}

/// Resident memory of this process, from `/proc/self/statm` (Linux); 0 elsewhere.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(cluster: Result<EngineStats, String>) -> Figures {
        Figures {
            local: LocalStats {
                sockets: 3,
                pre_auth_sockets: 1,
                sessions: 2,
                channels: 4,
                token_channels: 1,
                client_addresses: 2,
                top_address_connections: 3,
            },
            cluster,
            engine_ready: true,
            engine: "redis",
            draining: false,
            uptime_secs: 5,
            rss_bytes: 1 << 20,
            backend_queued: 0,
            backend_in_flight: 0,
            pending_notices: 0,
            publications: 7,
            deliveries: 21,
            queued_bytes: 0,
        }
    }

    #[test]
    fn cluster_sockets_are_the_engines_only_with_several_nodes() {
        let two = EngineStats { nodes: 2, cluster_sockets: 10, ..EngineStats::default() };
        assert_eq!(figures(Ok(two)).cluster_sockets(), 10);
        let one = EngineStats { nodes: 1, cluster_sockets: 0, ..EngineStats::default() };
        assert_eq!(figures(Ok(one)).cluster_sockets(), 3);
        assert_eq!(figures(Err("down".into())).cluster_sockets(), 3);
    }

    #[test]
    fn every_rendering_says_why_cluster_figures_are_missing() {
        let f = figures(Err("redis: connection refused".into()));
        assert_eq!(f.status_json()["engineError"], "redis: connection refused");
        assert_eq!(f.health_json()["engineError"], "redis: connection refused");
        assert_eq!(f.health_json()["authenticatedClients"], 2, "this node's sessions");
        assert!(f.status_json().get("nodes").is_none());
        assert_eq!(f.top_address_share(), 0.75);
    }
}
