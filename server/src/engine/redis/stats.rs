//! The Redis engine's cluster-wide figures (`/health`-style stats and per content-token channel
//! details).

use super::{RedisEngine, now_ms, streams, unavailable};
use crate::engine::{EngineStats, TokenChannelDetail};
use crate::error::EngineError;
use redis::AsyncCommands;

/// online, channels, token channels, cached auth, waiting tokens, sessions, node ids.
type StatsReply = (Option<i64>, Option<i64>, usize, usize, Option<i64>, Option<i64>, Vec<String>);

/// Cluster-wide counters: each is one Redis value (nodes' socket counts come with their
/// heartbeats; the history count is kept by the publish script, see `history_count.lua`).
pub(super) async fn stats(engine: &RedisEngine) -> Result<EngineStats, EngineError> {
    let mut conn = engine.conn();
    let now = now_ms();
    let (online, channels, token_channels, cached, waiting, sessions, nodes): StatsReply = redis::pipe()
        .get(engine.keys().online())
        .get(engine.keys().channel_count())
        .scard(engine.keys().token_channels())
        .zcount(engine.keys().auth_expiry(), now, "+inf")
        .get(engine.keys().waiting_tokens())
        .get(engine.keys().session_count())
        .smembers(engine.keys().nodes())
        .query_async(&mut conn)
        .await
        .map_err(unavailable)?;
    let keys: Vec<String> = nodes.iter().map(|n| engine.keys().node(n)).collect();
    let figures: Vec<Option<String>> =
        if keys.is_empty() { Vec::new() } else { conn.mget(&keys).await.map_err(unavailable)? };
    let alive: Vec<serde_json::Value> =
        figures.into_iter().flatten().filter_map(|f| serde_json::from_str(&f).ok()).collect();
    let history = streams::history_count(engine).await?;
    let count = |v: Option<i64>| v.unwrap_or(0).max(0) as usize;
    Ok(EngineStats {
        online_users: count(online),
        channels: count(channels),
        token_channels,
        cached_auth_tokens: cached,
        waiting_content_tokens: count(waiting),
        sessions: count(sessions),
        history_messages: count(Some(history)),
        history_bytes: 0,
        nodes: alive.len(),
        cluster_sockets: alive.iter().map(|f| f["sockets"].as_u64().unwrap_or(0) as usize).sum(),
    })
}

/// Per content-token channel: unused tokens and joined sockets (scans; behind the key).
pub(super) async fn token_channel_details(
    engine: &RedisEngine,
) -> Result<Vec<TokenChannelDetail>, EngineError> {
    let mut conn = engine.conn();
    let channels: Vec<String> = conn.smembers(engine.keys().token_channels()).await.map_err(unavailable)?;
    let mut out = Vec::new();
    for channel in channels.into_iter().take(1000) {
        let entries: Vec<String> = conn.hvals(engine.keys().tokens(&channel)).await.map_err(unavailable)?;
        let (mut waiting, mut sockets) = (0, 0);
        for e in entries {
            let users =
                serde_json::from_str::<serde_json::Value>(&e).ok().and_then(|v| v["u"].as_u64()).unwrap_or(0);
            if users == 0 {
                waiting += 1;
            }
            sockets += users as usize;
        }
        out.push(TokenChannelDetail { channel, waiting, sockets });
    }
    Ok(out)
}
