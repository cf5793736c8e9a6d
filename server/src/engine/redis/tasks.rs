//! The Redis engine's pub/sub reader: publications and commands on one connection, handled in
//! Redis's order (publications of one stream that queued up go out as one batch).

use super::wire::{self, Command, Incoming, Order};
use super::{RECONNECT_MAX, RedisEngine, heartbeat};
use crate::engine::{BATCH_MESSAGES, BatchSize, Publication};
use drupal_push_protocol::backend::BackendMessage;
use futures_util::{FutureExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Starts the reader and the heartbeat; both stop when the engine is dropped.
pub(super) fn spawn(engine: RedisEngine) {
    let weak = Arc::downgrade(&engine.inner);
    tokio::spawn(read_loop(weak.clone()));
    tokio::spawn(heartbeat::run(weak));
}

pub(super) fn upgrade(weak: &std::sync::Weak<super::Inner>) -> Option<RedisEngine> {
    weak.upgrade().map(|inner| RedisEngine { inner })
}

/// Reads `P:pub` and `P:ctl` on one connection, reconnecting with a capped backoff.
async fn read_loop(weak: std::sync::Weak<super::Inner>) {
    let mut delay = Duration::from_millis(100);
    let mut logged_down = false;
    loop {
        let Some(engine) = upgrade(&weak) else { return };
        match subscribe(&engine).await {
            Ok(mut pubsub) => {
                engine.inner.subscribed.store(true, Ordering::Relaxed);
                if logged_down {
                    tracing::info!("redis: subscribed again");
                }
                delay = Duration::from_millis(100);
                let (pub_channel, ctl_channel) = (engine.keys().publications(), engine.keys().commands());
                drop(engine);
                let mut messages = pubsub.on_message();
                let mut ended = false;
                while let Some(first) = messages.next().await {
                    // What else has arrived meanwhile is handled with it, so that publications
                    // of one stream that queued up go out as one batch (see `Deliveries`).
                    let mut arrived = vec![first];
                    while arrived.len() < BATCH_MESSAGES {
                        match messages.next().now_or_never() {
                            Some(Some(msg)) => arrived.push(msg),
                            Some(None) => {
                                ended = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    let Some(engine) = upgrade(&weak) else { return };
                    let mut deliveries = Deliveries::default();
                    for msg in &arrived {
                        let channel = msg.get_channel_name();
                        if channel == pub_channel {
                            deliveries.add(&engine, msg.get_payload_bytes()).await;
                        } else if channel == ctl_channel {
                            deliveries.flush(&engine).await;
                            on_command(&engine, msg.get_payload_bytes()).await;
                        }
                    }
                    deliveries.flush(&engine).await;
                    if ended {
                        break;
                    }
                }
                let Some(engine) = upgrade(&weak) else { return };
                engine.inner.subscribed.store(false, Ordering::Relaxed);
                tracing::warn!("redis: the subscription connection was lost; reconnecting");
                logged_down = true;
            }
            Err(e) => {
                if !logged_down {
                    tracing::warn!(error = %e, url = %crate::ids::redact_url(&engine.inner.settings.url), "redis: cannot subscribe; retrying");
                    logged_down = true;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX);
    }
}

async fn subscribe(engine: &RedisEngine) -> Result<redis::aio::PubSub, redis::RedisError> {
    let connect = engine.inner.client.get_async_pubsub();
    let mut pubsub = tokio::time::timeout(Duration::from_secs(2), connect)
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timed out connecting")))??;
    pubsub.subscribe(engine.keys().publications()).await?;
    pubsub.subscribe(engine.keys().commands()).await?;
    Ok(pubsub)
}

/// Publications read together from `P:pub`, delivered in Redis's order: consecutive ones of
/// the same stream and sender as one batch within the engine's [`BatchSize`] limits (the node
/// writes a batch to each socket with one system call); anything else ends the batch.
#[derive(Default)]
struct Deliveries {
    batch: Vec<Publication>,
    size: BatchSize,
    /// This node's publications in the batch, whose publishers wait for the count.
    mine: Vec<u64>,
}

impl Deliveries {
    async fn add(&mut self, engine: &RedisEngine, payload: &[u8]) {
        match wire::parse_publication(payload) {
            Some(Incoming::Publication { origin, pid, publication }) => {
                if !self.size.admit(self.batch.first(), &publication) {
                    self.flush(engine).await;
                    self.size.admit(None, &publication);
                }
                if origin == engine.inner.node_id {
                    self.mine.push(pid);
                }
                self.batch.push(publication);
            }
            Some(Incoming::Barrier { origin, pid }) => {
                self.flush(engine).await;
                if origin == engine.inner.node_id {
                    if let Some(tx) = engine.waiting().remove(&pid) {
                        let _ = tx.send(0);
                    }
                }
            }
            None => tracing::warn!("redis: unreadable publication ignored"),
        }
    }

    async fn flush(&mut self, engine: &RedisEngine) {
        if self.batch.is_empty() {
            return;
        }
        let sent = engine.node().deliver(&self.batch).await;
        for pid in self.mine.drain(..) {
            if let Some(tx) = engine.waiting().remove(&pid) {
                let _ = tx.send(sent);
            }
        }
        self.batch.clear();
        self.size = BatchSize::default();
    }
}

async fn on_command(engine: &RedisEngine, payload: &[u8]) {
    let Some(command) = Command::decode(payload) else {
        tracing::warn!("redis: unreadable command ignored");
        return;
    };
    if command.from == engine.inner.node_id {
        return;
    }
    match command.order() {
        Some(Order::Apply(event)) => {
            let changes = engine.node().apply(&event);
            engine.apply_changes(changes).await;
        }
        Some(Order::Notify { to, uid, online }) if to == engine.inner.node_id => {
            let m =
                if online { BackendMessage::UserOnline { uid } } else { BackendMessage::UserOffline { uid } };
            engine.node().notify_backend(m);
        }
        Some(Order::Notify { .. }) => {}
        None => {}
    }
}
