//! The bounded queue between the hub and one connection's socket.
//!
//! Publishers push pre-encoded frames with [`Outbox::push`], which never waits: when the queue
//! is over its frame or byte limit the outbox closes itself with the slow-consumer code, so a
//! client that does not read never slows a publish nor holds memory. The connection task takes
//! everything queued at once with [`Outbox::next`] (one flush per batch). Closing for a reason
//! (kick, logout, shutdown) goes through the same outbox, so it is seen even when the queue is full.
//! An idle outbox holds no heap memory besides its own allocation.

use axum::extract::ws::Utf8Bytes;
use drupal_push_protocol::CloseCode;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Queue limits, shared by all outboxes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_frames: usize,
    pub max_bytes: usize,
}

/// Outcome of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The outbox is closed (or just closed itself as a slow consumer): nothing was queued.
    Dropped,
}

/// What the connection task gets from [`Outbox::next`].
#[derive(Debug)]
pub enum Batch {
    Frames(Vec<Utf8Bytes>),
    Close(CloseCode),
}

#[derive(Debug, Default)]
struct Inner {
    frames: VecDeque<Utf8Bytes>,
    bytes: usize,
    close: Option<CloseCode>,
}

#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    limits: Limits,
}

impl Outbox {
    pub fn new(limits: Limits) -> Self {
        Outbox { inner: Mutex::new(Inner::default()), notify: Notify::new(), limits }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a frame without waiting; a full queue closes the outbox as a slow consumer.
    pub fn push(&self, frame: Utf8Bytes) -> Pushed {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return Pushed::Dropped;
        }
        if inner.frames.len() >= self.limits.max_frames || inner.bytes + frame.len() > self.limits.max_bytes {
            inner.close = Some(CloseCode::SLOW_CONSUMER);
            inner.frames = VecDeque::new();
            inner.bytes = 0;
            drop(inner);
            self.notify.notify_one();
            return Pushed::Dropped;
        }
        inner.bytes += frame.len();
        let was_empty = inner.frames.is_empty();
        inner.frames.push_back(frame);
        drop(inner);
        if was_empty {
            self.notify.notify_one();
        }
        Pushed::Queued
    }

    /// Asks the connection to close with `code`; frames still queued are dropped. The first
    /// reason given wins.
    pub fn close(&self, code: CloseCode) {
        let mut inner = self.lock();
        if inner.close.is_none() {
            inner.close = Some(code);
            inner.frames = VecDeque::new();
            inner.bytes = 0;
        }
        drop(inner);
        self.notify.notify_one();
    }

    /// Takes what is queued without waiting (for tests of the hub).
    #[cfg(test)]
    pub fn drain(&self) -> Vec<Utf8Bytes> {
        let mut inner = self.lock();
        inner.bytes = 0;
        std::mem::take(&mut inner.frames).into()
    }

    pub fn is_closed(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Takes everything queued, waiting until there is something or the outbox closes.
    /// Cancel-safe: a wake-up not consumed is kept by the `Notify` permit.
    pub async fn next(&self) -> Batch {
        loop {
            {
                let mut inner = self.lock();
                if let Some(code) = inner.close {
                    return Batch::Close(code);
                }
                if !inner.frames.is_empty() {
                    inner.bytes = 0;
                    let frames = std::mem::take(&mut inner.frames);
                    return Batch::Frames(frames.into());
                }
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(max_frames: usize, max_bytes: usize) -> Outbox {
        Outbox::new(Limits { max_frames, max_bytes })
    }

    #[tokio::test]
    async fn batches_everything_queued() {
        let o = outbox(10, 1000);
        assert_eq!(o.push("a".into()), Pushed::Queued);
        assert_eq!(o.push("b".into()), Pushed::Queued);
        match o.next().await {
            Batch::Frames(f) => assert_eq!(f, vec![Utf8Bytes::from("a"), Utf8Bytes::from("b")]),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn overflow_closes_as_slow_consumer_and_drops_the_rest() {
        let o = outbox(2, 1000);
        o.push("a".into());
        o.push("b".into());
        assert_eq!(o.push("c".into()), Pushed::Dropped);
        assert_eq!(o.push("d".into()), Pushed::Dropped);
        assert!(matches!(o.next().await, Batch::Close(CloseCode::SLOW_CONSUMER)));
        let o = outbox(100, 3);
        o.push("ab".into());
        assert_eq!(o.push("cd".into()), Pushed::Dropped);
        assert!(o.is_closed());
    }

    #[tokio::test]
    async fn first_close_reason_wins_and_wakes_the_reader() {
        let o = std::sync::Arc::new(outbox(10, 100));
        let reader = {
            let o = o.clone();
            tokio::spawn(async move { o.next().await })
        };
        tokio::task::yield_now().await;
        o.close(CloseCode::KICKED);
        o.close(CloseCode::GOING_AWAY);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await.unwrap().unwrap();
        assert!(matches!(got, Batch::Close(CloseCode::KICKED)));
    }
}
